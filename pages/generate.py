import random
from pathlib import Path

import streamlit as st

from musicgen import corpus, metrics, render, store
from musicgen.config import SampleConfig, field_range
from musicgen.errors import MusicgenError
from musicgen.explore import note_rows, summarize
from musicgen.midi_io import read_midi
from musicgen.sample import generate

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
names = [m.name for m in models]
try:
    preferred = st.session_state.get("model") or store.default_model().name
except MusicgenError:
    preferred = names[0]
c1, c2 = st.columns([2, 1])
name = c1.selectbox("Model", names, index=names.index(preferred) if preferred in names else 0,
                    format_func=lambda n: f"{n} ({next(m.family for m in models if m.name == n)})")
st.session_state["model"] = name
program = c2.selectbox("Instrument", [0, 19, 40, 73, 24], format_func=lambda p: {
    0: "Piano", 19: "Church organ", 40: "Violin", 73: "Flute", 24: "Guitar"}[p])

c1, c2, c3 = st.columns(3)
temperature = c1.slider("Temperature", *field_range(SampleConfig, "temperature"),
                        store.default_temperature(store.model_path(name)), 0.05,
                        help="lower is safer and more repetitive, higher is wilder")
length = c2.slider("Length (notes or chords)", *field_range(SampleConfig, "length"), 120)
st.session_state.setdefault("seed", 0)
with c3:
    seed = st.number_input("Seed", 0, 2**31 - 1, key="seed", help="the same seed gives the same piece")
    # a callback: it runs before the script, when the seed widget may still be changed
    st.button("Roll the dice", icon=":material/casino:",
              on_click=lambda: st.session_state.update(seed=random.randrange(2**31 - 1)))

kind = st.radio("Primer", ["None: start like a piece", "A piece from a dataset", "My MIDI file"], horizontal=True)
primer = None
try:
    if kind == "A piece from a dataset":
        c1, c2, c3 = st.columns(3)
        infos = [i.name for i in corpus.list_datasets() if i.built]
        ds = c1.selectbox("Dataset", infos)
        data = corpus.open_dataset(ds) if ds else None
        piece = c2.selectbox("Piece", [p.name for p in data.pieces]) if data else None
        count = c3.slider("Primer notes", 4, 128, 32)
        primer = data.piece(piece).notes.head(count) if piece else None
    elif kind == "My MIDI file":
        upload = st.file_uploader("A MIDI file to continue", type=["mid", "midi"])
        if upload is not None:
            primer = read_midi(upload.getvalue(), name=upload.name).head(64)
            st.caption(f"Primer: {summarize(primer).text()}")
except MusicgenError as e:
    st.error(str(e))

if st.button("Generate", type="primary", icon=":material/music_note:"):
    folder = store.model_path(name)
    try:
        with st.spinner("Composing..."):
            model = step_model(str(folder), (folder / "weights.npz").stat().st_mtime)
            result = generate(model, SampleConfig(length=length, temperature=temperature, seed=int(seed)), primer)
            title = f"{name}, temperature {temperature:g}, seed {int(seed)}"
            rendered = render.render_all(result.notes, title, program)
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
                        r.title, render.png(render.statistics_figure(stats, metrics.statistics(r.notes))),
                        metrics.copy_verdict(metrics.longest_copy(r.notes, pieces)))
            shown = st.session_state.get("comparison")
            if shown and shown[0] == r.title:
                if shown[1]:
                    st.image(shown[1])
                st.write(shown[2])
