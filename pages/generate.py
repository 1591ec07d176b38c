import random
from pathlib import Path

import streamlit as st

import shell

from musicgen import corpus, metrics, render, store
from musicgen.config import SampleConfig, field_range
from musicgen.errors import MusicgenError
from musicgen.explore import note_rows, summarize
from musicgen.midi_io import read_midi
from musicgen.sample import generate, harmonize

shell.enter()

KEEP = 3  # results kept on the page to compare


@st.cache_resource(max_entries=4, show_spinner=False)
def step_model(folder: str, mtime: float):
    return store.load_step_model(folder)  # shared between sessions: never mutated


@st.cache_data(max_entries=4, show_spinner=False)
def training_music(folder: str, mtime: float) -> tuple[dict, dict] | None:
    """(statistics of every training piece, the pieces) of a model, or None when its dataset is gone."""
    try:
        pieces = store.model_pieces(Path(folder), "train")
    except MusicgenError:
        return None
    return metrics.corpus_statistics(list(pieces.values())), pieces


@st.cache_resource(show_spinner=False)
def warm_up() -> bool:
    """Import the notation and audio libraries once, before the first click, so Generate answers fast."""
    import matplotlib.figure  # noqa: F401
    import music21  # noqa: F401
    import verovio  # noqa: F401

    return True


st.title("Generate")
warm_up()
models = [m for m in store.list_models() if (m.folder / "weights.npz").exists()]
if not models:
    st.warning("There is no trained model yet: train one on the Train page.")
    st.stop()
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
    preferred = store.HARMONIZE_MODEL if harmonizing else (st.session_state.get("model") or store.default_model().name)
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
given, given_name = None, None
try:
    if kind in ("A German folk song", "A chorale's soprano"):
        key = "essen-folk" if kind == "A German folk song" else "bach-chorales"
        data = corpus.open_dataset(key)
        given_name = st.selectbox("Melody", [p.name for p in data.pieces])
        given = data.piece(given_name).notes
        if key == "bach-chorales":
            given = given.take(given.voice == 0)  # the soprano's own track
        st.caption(f"Melody: {summarize(given).text()}")
    elif kind == "A piece from a dataset":
        c1, c2, c3 = st.columns(3)
        infos = [i.name for i in corpus.list_datasets() if i.built]
        ds = c1.selectbox("Dataset", infos)
        data = corpus.open_dataset(ds) if ds else None
        given_name = c2.selectbox("Piece", [p.name for p in data.pieces]) if data else None
        count = c3.slider("Primer notes", 4, 128, 32)
        given = data.piece(given_name).notes.head(count) if given_name else None
    elif kind == "My MIDI file":
        upload = st.file_uploader("A MIDI file" + (" with the melody" if harmonizing else " to continue"),
                                  type=["mid", "midi"])
        if upload is not None:
            given_name = upload.name
            given = read_midi(upload.getvalue(), name=upload.name)
            given = given if harmonizing else given.head(64)
            st.caption(f"{'Melody' if harmonizing else 'Primer'}: {summarize(given).text()}")
except MusicgenError as e:
    st.error(str(e))

if st.button("Harmonize" if harmonizing else "Generate", type="primary", icon=":material/music_note:"):
    folder = store.model_path(name)
    try:
        if harmonizing and given is None:
            raise MusicgenError("Choose a melody first: a folk song, a chorale's soprano or your MIDI file.")
        with st.spinner("Composing..."):
            model = step_model(str(folder), (folder / "weights.npz").stat().st_mtime)
            settings = SampleConfig(length=length, temperature=temperature, seed=int(seed), voices=voices)
            result = harmonize(model, given, settings) if harmonizing else generate(model, settings, given)
            if harmonizing:  # a title that tells results apart: what, by which model, with which settings
                title = f"{Path(given_name).stem} harmonized by {name}, {voices} voices"
            else:
                title = f"{name}, {length} events" + (f", after {len(given)} notes of {Path(given_name).stem}"
                                                      if given is not None else "")
            title += f", temperature {temperature:g}, seed {int(seed)}, {INSTRUMENTS[program].lower()}"
            rendered = render.render_all(result.notes, title, program)
        if result.note:
            st.info(result.note)
        st.session_state["results"] = [rendered] + st.session_state.get("results", [])[:KEEP - 1]
        st.session_state["results_model"] = [str(folder)] + st.session_state.get("results_model", [])[:KEEP - 1]
    except MusicgenError as e:
        st.error(str(e))

for i, r in enumerate(st.session_state.get("results", [])):
    box = st.container(border=True) if i == 0 else st.expander(f"Earlier: {r.title}")
    with box:
        if i == 0:
            st.subheader(r.title)
        st.caption(summarize(r.notes).text())
        st.audio(r.wav, format="audio/wav")
        if r.sound_note:
            st.info(r.sound_note)
        if i == 0:  # the sheet music travels inline with every rerun: only the newest piece's
            st.image(r.svg, width="stretch")
        st.image(r.piano_roll_png)
        c1, c2, c3 = st.columns(3)
        stem = r.title.replace(", ", "_").replace(" ", "-")
        c1.download_button("MIDI", r.midi, f"{stem}.mid", "audio/midi", key=f"mid{i}")
        c2.download_button("WAV", r.wav, f"{stem}.wav", "audio/wav", key=f"wav{i}")
        c3.download_button("MusicXML", r.musicxml, f"{stem}.musicxml", "application/vnd.recordare.musicxml+xml",
                           key=f"xml{i}")
        if i == 0:
            with st.expander("Notes table"):
                st.dataframe(note_rows(r.notes), hide_index=True)
            if st.button("Compare with the music the model learned from", key="compare"):
                folder = Path(st.session_state["results_model"][0])
                known = training_music(str(folder), (folder / "data.json").stat().st_mtime)
                if known is None:
                    st.session_state["comparison"] = (r.title, None, "The model's training dataset is not on "
                                                      "this computer, so there is nothing to compare with.")
                else:
                    stats, pieces = known
                    st.session_state["comparison"] = (
                        r.title, render.png(render.statistics_figure(stats, metrics.all_statistics(r.notes))),
                        metrics.copy_verdict(metrics.longest_copy(r.notes, pieces)))
            shown = st.session_state.get("comparison")
            if shown and shown[0] == r.title:
                if shown[1]:
                    st.image(shown[1])
                st.write(shown[2])
