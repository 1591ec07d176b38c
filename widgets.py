"""HTML and JavaScript the pages embed (the UI layer's, not the library's): the follow-along player."""

from __future__ import annotations

import base64
import json

from musicgen.render.bundle import Rendered
from musicgen.render.notation import Sheet

FOLLOW_SCORE_PX = 520  # the score's box in the follow-along view; it scrolls to what is playing


def follow_html(r: Rendered, sheet: Sheet) -> str:
    """One HTML block for the page: the sound's player, the score whose sounding notes light up and the piano
    roll with a line at the playing time; both follow the player (beats from the piece's own tempo map)."""
    tm = r.notes.tempo_map
    tempo = [[float(b), float(tm.seconds(b)), float(q)] for b, q in zip(tm.beat, tm.qpm)]
    ogg = base64.b64encode(r.ogg).decode()
    roll = base64.b64encode(r.piano_roll_png).decode()
    data = json.dumps({"cues": [list(c) for c in sheet.cues], "tempo": tempo, "axes": list(r.roll_axes),
                       "start": r.sound_start})
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; font-family: sans-serif; }}
audio {{ width: 100%; }}
#score {{ max-height: {FOLLOW_SCORE_PX}px; overflow-y: auto; border: 1px solid #ddd; border-radius: 6px; }}
#score svg {{ width: 100%; height: auto; }}
#score g.playing, #score g.playing * {{ fill: #c0392b; stroke: #c0392b; }}
#roll {{ position: relative; margin-top: 8px; }}
#roll img {{ width: 100%; display: block; }}
#line {{ position: absolute; top: 0; bottom: 0; width: 2px; background: #c0392b; display: none; }}
</style></head><body>
<audio id="player" controls preload="auto" src="data:audio/ogg;base64,{ogg}"></audio>
<div id="score">{sheet.svg}</div>
<div id="roll"><img alt="piano roll" src="data:image/png;base64,{roll}"><div id="line"></div></div>
<script>
const D = {data};
const player = document.getElementById("player"), box = document.getElementById("score");
const line = document.getElementById("line");
const svg = box.querySelector("svg");
if (svg) {{  // scale to the box: the engraved size becomes the picture's own coordinates
  const w = parseFloat(svg.getAttribute("width")), h = parseFloat(svg.getAttribute("height"));
  if (w && h) svg.setAttribute("viewBox", `0 0 ${{w}} ${{h}}`);
  svg.removeAttribute("width"); svg.removeAttribute("height");
}}
const notes = D.cues.map(c => [document.getElementById(c[0]), c[1], c[2]]).filter(c => c[0]);
function beatAt(t) {{  // the tempo map: from beat b (at second s) on, q quarter notes a minute
  let k = 0;
  while (k + 1 < D.tempo.length && D.tempo[k + 1][1] <= t) k++;
  const [b, s, q] = D.tempo[k];
  return b + (t - s) * q / 60;
}}
let shown = null;
function follow() {{
  const t = player.currentTime + D.start, beat = beatAt(t);  // the sound begins at the first note
  let first = null;
  for (const [el, on, off] of notes) {{
    const now = on <= beat + 1e-6 && beat < off;
    el.classList.toggle("playing", now);
    if (now && !first) first = el;
  }}
  if (first && first !== shown) {{  // keep the sounding system in view
    shown = first;
    const a = first.getBoundingClientRect(), c = box.getBoundingClientRect();
    if (a.top < c.top || a.bottom > c.bottom) box.scrollTop += a.top - c.top - c.height / 3;
  }}
  const [x0, x1, t0, t1] = D.axes;
  if (D.axes.length === 4 && t1 > t0) {{
    const f = Math.min(Math.max((t - t0) / (t1 - t0), 0), 1);
    line.style.left = (100 * (x0 + f * (x1 - x0))) + "%";
    line.style.display = "block";
  }}
  document.body.dataset.beat = beat.toFixed(3);
  document.body.dataset.playing = String(notes.filter(n => n[0].classList.contains("playing")).length);
}}
function loop() {{ follow(); if (!player.paused) requestAnimationFrame(loop); }}
player.addEventListener("play", loop);
player.addEventListener("timeupdate", follow);
player.addEventListener("seeked", follow);
</script></body></html>"""

