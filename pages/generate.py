import hashlib
import random
import time
from pathlib import Path

import streamlit as st

import shell
from widgets import follow_html

from musicgen.analysis import metrics
from musicgen.data import datasets
from musicgen.infra import jobs
from musicgen.learn import sample
from musicgen.music import copies
from musicgen.render import bundle, figures, notation
from musicgen.runs import provenance, store
from musicgen.services import pieces
from musicgen.config import SampleConfig, field_range
from musicgen.errors import MusicgenError
from musicgen.analysis.explore import note_rows
from musicgen.music.notes import summarize
from musicgen.music.midi import read_midi
from musicgen.learn.sample import next_choices

shell.enter()

KEEP = 3  # results kept on the page to compare


@st.cache_data(max_entries=32, show_spinner=False)
def what_it_hears(folder: str, mtime: float, primer_key: str, temps: tuple, _primer) -> tuple:
    """The model's likeliest next choices after the primer (named by primer_key), and their chart."""
    heard = next_choices(sample.load_step_model(folder), _primer, temps)
    return heard, figures.png(figures.choices_figure(heard.choices, temps))


def hearing_text(heard, temps: tuple, primed: bool) -> str:
    """The chart in words: the likeliest first note, and how often time moves on before any note."""
    best = heard.choices[0]
    text = (f"{'After the primer' if primed else 'At the start of a piece'}, the model's likeliest first note is "
            f"**{best.name}**: {100 * best.chances[0]:.0f}% at temperature {temps[0]:g}, "
            f"{100 * best.chances[1]:.0f}% at {temps[1]:g}.")
    if heard.wait is not None and heard.wait[0] >= 0.005:
        text += (f" Before any note it may first let time move on (a rest, or the notes sounding held): "
                 f"{100 * heard.wait[0]:.0f}% at {temps[0]:g}, {100 * heard.wait[1]:.0f}% at {temps[1]:g}.")
    return text + (" A lower temperature makes it choose what it finds likely more often; a higher one gives the "
                   "long shots a chance.")


@st.cache_data(max_entries=4, show_spinner=False)
def training_music(folder: str, mtime: float) -> tuple[dict, dict] | None:
    """(statistics of every training piece, the pieces) of a model, or None when its dataset is gone."""
    try:
        pieces = provenance.model_pieces(Path(folder), "train")
    except MusicgenError:
        return None
    return metrics.corpus_statistics(list(pieces.values())), pieces


def data_stamp(folder: Path) -> float:
    """When the model's training data summary was written (a cache key); 0 when it has none."""
    try:
        return (folder / "data.json").stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=4, show_spinner=False)
def training_quotes(folder: str, mtime: float):
    """The runs of a model's training music its pieces keep clear of (metrics.Quotes), found once for every
    session: a click then hands them to the piece's process instead of it reading the dataset again."""
    return provenance.model_quotes(Path(folder))


@st.cache_resource(show_spinner=False)
def warm_up() -> dict:
    """Start the process pieces are made in (with the notation and audio libraries loaded) before the first
    click, so Generate answers fast; the dict keeps this server's measured pace."""
    jobs.warm()
    return {"seconds_per_event": pieces.SECONDS_PER_EVENT}


st.title("Generate")
pace = warm_up()
models = [m for m in store.list_models() if (m.folder / "weights.npz").exists()]
if not models:
    st.warning("There is no trained model yet: train one on the Train page.")
    st.stop()
projector = st.toggle("Projector view", key="projector",
                      help="for a class: large type, the music first, the settings folded away")
if projector:
    st.html("<style>html { font-size: 22px; } [data-testid='stMainBlockContainer'] { max-width: 100%; }</style>")
with st.expander("Settings", icon=":material/tune:") if projector else st.container():
    mode = st.radio("Make", ["A new piece", "Harmonize a melody"], horizontal=True,
                    help="a new piece from the model alone, or voices written under a melody you give")
    harmonizing = mode == "Harmonize a melody"
    if harmonizing:
        models = [m for m in models if m.family == "polyphony"]
        if not models:
            st.warning("Harmonizing needs a polyphony model; train one on the Train page (family polyphony).")
            st.stop()
    names = [m.name for m in models]
    try:
        preferred = (store.HARMONIZE_MODEL if harmonizing
                     else st.session_state.get("model") or store.default_model().name)
    except MusicgenError:
        preferred = names[0]
    c1, c2 = st.columns([2, 1])
    name = c1.selectbox("Model", names, index=names.index(preferred) if preferred in names else 0,
                        format_func=lambda n: f"{n} ({next(m.family for m in models if m.name == n)})")
    if not harmonizing:
        st.session_state["model"] = name
    INSTRUMENTS = {0: "Piano", 19: "Church organ", 40: "Violin", 73: "Flute", 24: "Guitar", 52: "Choir"}
    program = c2.selectbox("Instrument", list(INSTRUMENTS), format_func=INSTRUMENTS.get)

    c1, c2, c3 = st.columns(3)
    temperature = c1.slider("Temperature", *field_range(SampleConfig, "temperature"),
                            store.default_temperature(store.model_path(name)), 0.05,
                            help="lower is safer and more repetitive, higher is wilder")
    if harmonizing:
        voices = c2.slider("Voices", 2, field_range(SampleConfig, "voices")[1], 4,
                           help="voices in all, the melody included")
        length = SampleConfig().length
    else:
        length = c2.slider("Length (notes or chords)", *field_range(SampleConfig, "length"), 120)
        voices = SampleConfig().voices
        cap = pieces.length_cap(pace["seconds_per_event"])
        if length > cap:
            c2.caption(f"Capped at {cap} on this computer: a longer piece would take more than "
                       f"{pieces.MAX_JOB_S // 60} minutes to make.")
            length = cap
    st.session_state.setdefault("seed", 0)
    with c3:
        seed = st.number_input("Seed", 0, 2**31 - 1, key="seed", help="the same seed gives the same piece")
        # a callback: it runs before the script, when the seed widget may still be changed
        st.button("Roll the dice", icon=":material/casino:",
                  on_click=lambda: st.session_state.update(seed=random.randrange(2**31 - 1)))

    choices = (["A German folk song", "A chorale's soprano"] if harmonizing else
               ["None: start like a piece", "A piece from a dataset"])
    choices += ["My MIDI file"] if st.session_state.get("may_change") else []  # an upload: see app.py
    kind = st.radio("Melody" if harmonizing else "Primer", choices, horizontal=True)
    given, given_name, given_title, source, primer_label = None, None, None, None, None
    try:
        if kind in ("A German folk song", "A chorale's soprano"):
            key = "essen-folk" if kind == "A German folk song" else "bach-chorales"
            data = shell.dataset(key)
            labels = {p.name: p.label for p in data.pieces}
            given_name = st.selectbox("Melody", list(labels), format_func=labels.get)
            chosen = data.piece(given_name)
            given, given_title = chosen.notes, chosen.title
            if key == "bach-chorales":
                given = given.take(given.voice == 0)  # the soprano's own track
        elif kind == "A piece from a dataset":
            c1, c2 = st.columns(2)
            infos = [i.name for i in datasets.list_datasets() if i.built]
            ds = c1.selectbox("Dataset", infos)
            data = shell.dataset(ds) if ds else None
            labels = {p.name: p.label for p in data.pieces} if data else {}
            given_name = c2.selectbox("Piece", list(labels), format_func=labels.get) if data else None
            chosen = data.piece(given_name) if given_name else None
            source, given_title = (chosen.notes, chosen.title) if chosen else (None, None)
        elif kind == "My MIDI file":
            upload = st.file_uploader("A MIDI file" + (" with the melody" if harmonizing else " to continue"),
                                      type=["mid", "midi"])
            if upload is not None:
                given_name = upload.name
                source = read_midi(upload.getvalue(), name=upload.name)
                given = source if harmonizing else None
        given_title = given_title or (Path(given_name).stem if given_name else None)  # else the file's name
        if not harmonizing and source is not None and len(source):
            c1, c2 = st.columns(2)
            count = c1.slider("Primer notes", 4, 128, max(4, min(32, len(source))))
            begin = c2.slider("Starting at note", 1, max(2, len(source)), 1,
                              help="where in the piece the primer starts (from the bar that holds that note)")
            given = source.excerpt(begin - 1, count)
            primer_label = f"notes {begin}-{begin - 1 + len(given)} of {given_title}"
        if given is not None:
            st.caption(f"{'Melody' if harmonizing else 'Primer'}: {summarize(given).text()}")
    except MusicgenError as e:
        st.error(shell.plain(e))

    other = st.session_state.get("other_temperature", 1.5 if temperature < 1.0 else 0.5)
    if not harmonizing:
        with st.expander("What the model hears", icon=":material/hearing:"):
            other = st.slider("Compare with temperature", *field_range(SampleConfig, "temperature"), other, 0.05,
                              key="other_temperature")
            try:
                folder = store.check_model(name)
                temps = (temperature, other)
                primer_key = (hashlib.md5(given.pitch.tobytes() + given.start_beat.tobytes()).hexdigest()
                              if given is not None else "")
                heard, chart = what_it_hears(str(folder), (folder / "weights.npz").stat().st_mtime, primer_key,
                                             temps, given)
                st.write(hearing_text(heard, temps, given is not None))
                st.image(chart)
            except MusicgenError as e:
                st.error(shell.plain(e))
    both = st.checkbox(f"Side by side: the same seed at temperature {other:g} too",
                       help="two pieces to compare, with their scores and sound (the second temperature is set "
                            "under 'What the model hears')")


def request(folder: Path, t: float) -> pieces.PieceRequest:
    """The piece the settings ask for, titled so that results can be told apart."""
    if harmonizing:
        title = f"{given_title} harmonized by {name}, {voices} voices"
    else:
        title = f"{name}, {length} events" + (f", after {primer_label}" if given is not None else "")
    title += f", temperature {t:g}, seed {int(seed)}, {INSTRUMENTS[program].lower()}"
    settings = SampleConfig(length=length, temperature=t, seed=int(seed), voices=voices)
    # A training dataset not yet made (or re-read) is read by the piece's own process, not by this page.
    quotes = training_quotes(str(folder), data_stamp(folder)) \
        if not harmonizing and provenance.training_data_ready(folder) else None
    return pieces.PieceRequest(str(folder), settings, title, program, primer=None if harmonizing else given,
                             melody=given if harmonizing else None, quotes=quotes)


if st.button("Harmonize" if harmonizing else "Generate", type="primary", icon=":material/music_note:",
             disabled="jobs" in st.session_state, key="make"):
    folder = store.model_path(name)
    try:
        if harmonizing and given is None:
            raise MusicgenError("Choose a melody first: a folk song, a chorale's soprano or your MIDI file.")
        if not harmonizing and kind != "None: start like a piece" and given is None:  # never a silent swap
            raise MusicgenError("Choose a primer first: a piece of a dataset or a MIDI file with notes, or "
                                "'None: start like a piece'.")
        store.check_model(folder)
        asked = [request(folder, t) for t in ((temperature, other) if both else (temperature,))]
        # two pieces run side by side, one per core
        st.session_state["jobs"] = [jobs.Job.start(pieces.make_piece, r) for r in asked]
        st.session_state["job_events"] = length if not harmonizing else len(given)
    except MusicgenError as e:
        st.error(shell.plain(e))


@st.fragment(run_every=0.25)
def follow() -> None:
    """The pieces being made: progress, an estimate and Cancel; the result joins the page when all are done."""
    running = st.session_state.get("jobs")
    if not running:
        return
    until = time.monotonic() + 0.2  # waits here between ticks: the piece shows as soon as it is made
    while not all(j.done() for j in running) and time.monotonic() < until:
        time.sleep(0.01)
    if all(j.done() for j in running):
        del st.session_state["jobs"]
        try:
            made = [j.result() for j in running]
        except MusicgenError as e:
            st.session_state["job_error"] = str(e)
        else:
            seconds = max(j.progress().elapsed for j in running)
            pace["seconds_per_event"] = max(seconds / max(st.session_state.get("job_events", 1), 1), 1e-4)
            st.session_state["results"] = [made] + st.session_state.get("results", [])[:KEEP - 1]
            st.session_state.pop("sheets", None)
        st.rerun()
    ps = [j.progress() for j in running]
    fraction = sum(p.fraction for p in ps) / len(ps)
    left = [p.remaining for p in ps]
    left = f", about {max(left):.0f} s to go" if all(x is not None for x in left) else ""
    c1, c2 = st.columns([5, 1])
    c1.progress(fraction, text=f"{ps[0].stage.capitalize()}... {ps[0].elapsed:.0f} s{left}")
    if c2.button("Cancel", icon=":material/stop:"):
        for j in running:
            j.cancel()
        del st.session_state["jobs"]
        st.rerun()


if st.session_state.get("jobs"):  # only then: a ticking fragment can swallow a click elsewhere on the page
    follow()
if "job_error" in st.session_state:
    st.error(shell.plain(st.session_state.pop("job_error")))


@st.fragment
def show_sheet(r: bundle.Rendered, slot: int, follow: bool) -> None:
    """The score, a section at a time for a long piece (each further section engraved on request); when
    following, with the sound and the piano roll in one block whose cursor follows the playing."""
    count = notation.sections(r.notes)
    k = 0
    if count > 1:
        k = st.select_slider("Bars", list(range(count)), 0, key=f"section{slot}",
                             format_func=lambda i: "{}-{}".format(*notation.section_bars(r.notes, i)[:2]))
    sheets = st.session_state.setdefault("sheets", {})
    sheets.setdefault((slot, 0), r.sheet)
    if (slot, k) not in sheets:
        with st.spinner("Engraving bars {}-{}...".format(*notation.section_bars(r.notes, k)[:2])):
            job = jobs.Job.start(pieces.make_sheet, r.notes, r.title, k, r.seam)
            while not job.done():  # this fragment's own thread waits; other sessions are not held up
                time.sleep(0.1)
        try:
            sheets[(slot, k)] = job.result()
        except MusicgenError as e:
            st.error(shell.plain(e))
            return
    sheet = sheets[(slot, k)]
    if follow:
        st.iframe(follow_html(r, sheet))  # sized to its content
    else:
        st.image(sheet.svg, width="stretch")
    first, end, _ = notation.section_bars(r.notes, k)
    label = "MusicXML" + (f" (bars {first}-{end})" if count > 1 else "")
    st.download_button(label, sheet.musicxml, f"{stem(r)}{'' if count == 1 else f'_bars-{first}'}.musicxml",
                       "application/vnd.recordare.musicxml+xml", key=f"xml{slot}")


def stem(r: bundle.Rendered) -> str:
    return r.title.replace(", ", "_").replace(" ", "-")


def show_piece(piece: pieces.Piece, key: str, newest: bool, slot: int) -> None:
    r = piece.rendered
    if newest:
        st.subheader(shell.plain(r.title))
        if piece.note:
            st.info(shell.plain(piece.note))
    else:
        st.markdown(f"**{shell.plain(r.title)}**")
    st.caption(summarize(r.notes).text())
    follow = newest and st.toggle("Follow the music as it plays", value=projector, key=f"follow{slot}",
                                  help="the notes sounding light up in the score, and a line moves over the "
                                       "piano roll")
    if not follow:
        st.audio(r.ogg, format="audio/ogg")
    if r.sound_note:
        st.info(r.sound_note)
    if newest:  # the sheet music travels inline with every rerun: only the newest pieces'
        show_sheet(r, slot, follow)
    if not follow:
        st.image(r.piano_roll_png)
    c1, c2 = st.columns(2)
    c1.download_button("MIDI", r.midi, f"{stem(r)}.mid", "audio/midi", key=f"mid{key}")
    c2.download_button("Audio (OGG)", r.ogg, f"{stem(r)}.ogg", "audio/ogg", key=f"ogg{key}")


for i, made in enumerate(st.session_state.get("results", [])):
    titles = " | ".join(p.rendered.title for p in made)
    with st.container(border=True) if i == 0 else st.expander(f"Earlier: {shell.plain(titles)}"):
        places = st.columns(len(made)) if len(made) > 1 else [st.container()]
        for slot, (place, piece) in enumerate(zip(places, made)):
            with place:
                show_piece(piece, f"{i}-{slot}", i == 0, slot)
        if i == 0:
            r = made[0].rendered
            with st.expander("Notes table"):
                st.dataframe(note_rows(r.notes), hide_index=True)
            if st.button("Compare with the music the model learned from", key="compare"):
                folder = Path(made[0].model)
                with st.spinner("Reading the music the model learned from"):
                    known = training_music(str(folder), data_stamp(folder))
                if known is None:
                    st.session_state["comparison"] = (r.title, None, "The model's training dataset is not on "
                                                      "this computer, so there is nothing to compare with.")
                else:
                    stats, pieces = known
                    st.session_state["comparison"] = (
                        r.title, figures.png(figures.statistics_figure(stats, metrics.all_statistics(r.notes))),
                        metrics.copy_verdict(copies.longest_copy(r.notes, pieces)))
            shown = st.session_state.get("comparison")
            if shown and shown[0] == r.title:
                if shown[1]:
                    st.image(shown[1])
                st.write(shell.plain(shown[2]))
