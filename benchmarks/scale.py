"""Collections of thousands of MIDI files: made from the built-in chorales (each piece transposed and at another
tempo, so every file is new music to the parser and the encoder), imported with `musicgen import`, then one
epoch of `musicgen train` (the encoding written to disk, windows drawn by index). For each size: files/s and
notes/s of the import, samples/s of the epoch, and the peak resident memory of each command's own process
(its parse workers not counted). The baseline is the smallest size, measured in the same run: the growth
columns say how much each figure moved from it (memory goal: flat within 20%).

    .venv/bin/python benchmarks/scale.py [--sizes 1000 5000] [--family polyphony --preset small]
    .venv/bin/python benchmarks/scale.py --sizes 1000 5000 20000     (the largest takes a while)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# runs one CLI command in this process and reports its peak resident memory (VmHWM) on stderr's last line
PEAK = """
import atexit, runpy, sys
def peak():
    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))
    sys.stderr.write(f"\\npeak-kb {line.split()[1]}\\n")
atexit.register(peak)
sys.argv = ['musicgen'] + sys.argv[1:]
runpy.run_module('musicgen', run_name='__main__')
"""


def make_files(folder: Path, count: int) -> int:
    """count MIDI files: chorale k % 350, moved by a few semitones and played 0.8-1.25 times as fast; notes."""
    from musicgen.data import datasets
    from musicgen.music.midi import write_midi
    from musicgen.music.notes import Notes, TempoMap

    pieces = datasets.open_dataset("bach-chorales").pieces
    folder.mkdir(parents=True, exist_ok=True)
    notes = 0
    for i in range(count):
        p = pieces[i % len(pieces)]
        lap = i // len(pieces)
        shift, speed = (lap % 11) - 5, 0.8 + 0.05 * (lap % 10)
        n = p.notes.transposed(shift) if shift else p.notes
        qpm = float(n.tempo_map.qpm[0]) * speed
        n = Notes.from_beats(n.pitch, n.start_beat, n.end_beat, n.velocity, n.program, n.voice,
                             TempoMap.constant(qpm), n.meter, n.keys)
        write_midi(n, folder / f"{i:06d}.mid", title=f"{p.title or p.name}, {shift:+d}, x{speed:.2f}")
        notes += len(n)
    return notes


def run(args: list[str], env: dict) -> tuple[float, float, str]:
    """(seconds, peak resident MB, output) of `python -m musicgen ARGS`."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PEAK, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"musicgen {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    peak = int(out.stderr.strip().splitlines()[-1].split()[1]) / 1024
    return seconds, peak, out.stdout


def main() -> None:
    import os

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--family", default="polyphony")
    ap.add_argument("--preset", default="small")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="musicgen-scale-"))
    rows = []
    for size in args.sizes:
        src = work / f"src{size}"
        notes = make_files(src, size)
        env = dict(os.environ, MUSICGEN_DATA_DIR=str(work / f"data{size}"), MUSICGEN_MODELS_DIR=str(work / "models"))
        imported, import_mb, _ = run(["import", f"scale{size}", str(src)], env)
        trained, train_mb, _ = run(["train", "--data", f"scale{size}", "--family", args.family, "--preset",
                                    args.preset, "--epochs", "1", "--out", f"scale{size}"], env)
        folder = work / "models" / f"scale{size}"
        epoch = next(json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()
                     if json.loads(line).get("type") == "epoch")
        windows = json.loads((folder / "data.json").read_text())["windows"]["train"]
        rows.append((size, notes, imported, import_mb, windows / epoch["seconds"], train_mb, trained))
    base = rows[0]
    print(f"{args.family} ({args.preset}), one epoch; growth is against {base[0]:,} files (baseline)")
    print(f"{'files':>7} {'notes':>10} {'import files/s':>15} {'notes/s':>10} {'import MB':>10} {'growth':>7} "
          f"{'train samples/s':>16} {'train MB':>9} {'growth':>7}")
    for size, notes, imported, import_mb, rate, train_mb, _ in rows:
        print(f"{size:7,} {notes:10,} {size / imported:15,.0f} {notes / imported:10,.0f} {import_mb:10,.0f} "
              f"{import_mb / base[3]:6.2f}x {rate:16,.0f} {train_mb:9,.0f} {train_mb / base[5]:6.2f}x")
    print("goals: import >= 250 files/s on 2 cores; memory flat (within 20%) from the smallest to the largest")


if __name__ == "__main__":
    main()
