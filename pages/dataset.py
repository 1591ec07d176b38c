import streamlit as st

import shell

from musicgen.data import builtins, datasets, imports
from musicgen.infra import jobs
from musicgen.render.audio import audio
from musicgen.render import figures, notation
from musicgen.services import pieces
from musicgen.errors import MusicgenError
from musicgen.music.notes import clock
from musicgen.analysis.explore import histograms, note_rows
from musicgen.music.theory import note_name
from musicgen.music.notes import summarize

shell.enter()


@st.cache_data(max_entries=64, show_spinner=False)
def histogram_pngs(name: str, version: str, piece: str | None) -> list[bytes]:
    data = shell.dataset(name)
    tables = [data.piece(piece).notes] if piece else [p.notes for p in data.pieces]
    hists = histograms(tables)
    titles = {"pitch": "Pitch", "step": "Time between notes (s)", "duration": "Note length (s)"}
    return [figures.png(figures.histogram_figure(h, titles[k])) for k, h in hists.items()]


@st.cache_data(max_entries=16, show_spinner=False)
def piece_score(name: str, version: str, piece: str, first: int | None, window: tuple[float, float] | None) -> str:
    found = shell.dataset(name).piece(piece)
    notes = found.notes
    if window:  # from the bar line before the window, so the bars stay where they are
        start = notes.bar_start(window[0])
        return notation.sheet_music_svg(notes.window(start, window[1]).shifted(-start), found.label)
    return notation.sheet_music_svg(notes.head(first), found.label)


@st.cache_data(max_entries=32, show_spinner=False)
def piece_media(name: str, version: str, piece: str, first: int | None,
                window: tuple[float, float] | None) -> tuple[bytes, bytes, str | None]:
    found = shell.dataset(name).piece(piece)
    notes = found.notes
    shown = notes.window(*window).shifted(-window[0]) if window else notes.head(first)
    sound = audio(shown)
    return figures.png(figures.piano_roll(notes, first=first, window=window, title=found.label)), sound.ogg, sound.note


st.title("Dataset")
infos = {i.name: i for i in datasets.list_datasets()}
names = list(infos)
current = st.session_state.get("dataset", builtins.DEFAULT_DATASET)
name = st.selectbox("Dataset", names, index=names.index(current) if current in names else 0,
                    format_func=lambda n: f"{infos[n].title} ({'built-in' if infos[n].builtin else 'yours'})")
st.session_state["dataset"] = name  # a plain key, kept while other pages run (widget keys are not)

if st.session_state.get("may_change"):  # uploads need the password on a shared server (see app.py)
    with st.expander("Upload MIDI files or a zip into a dataset of yours"):
        with st.form("upload", clear_on_submit=True):
            uploads = st.file_uploader("MIDI files (.mid, .midi) or zip archives", type=["mid", "midi", "zip"],
                                       accept_multiple_files=True, key="uploads")
            # the name typed last while looking at this dataset (the form clears on submit, a failed import
            # too), else the dataset being looked at when it is the user's: one-by-one uploads land together
            typed, seen = st.session_state.get("upload_target", (None, None))
            target = st.text_input("Dataset name", value=typed if typed and seen == name else
                                   name if not infos[name].builtin else "my-songs")
            pedal = st.checkbox("Piano performances: apply the sustain pedal to note lengths",
                                help="recordings of a pianist hold notes with the pedal, not the keys")
            if st.form_submit_button("Import", type="primary"):
                # the outcome is said on a rerun, where the name field shows the name just used (kept above)
                st.session_state["upload_target"] = (target, name)
                if not uploads:
                    st.session_state["dataset_note"] = (
                        "warning", "Choose one or more MIDI files or zips first, then Import.", [])
                else:
                    bar = st.progress(0.0)
                    try:
                        report = imports.import_uploads(
                            target, [(u.name, u) for u in uploads],
                            lambda done, total, what: bar.progress(done / max(total, 1), what), pedal=pedal or None)
                        st.session_state["dataset_note"] = (
                            "success", f"Added {len(report.added)} file(s) to '{report.name}'"
                            + (f"; {report.duplicates} were there already" if report.duplicates else "") + ".",
                            report.problems)
                        st.session_state["dataset"] = report.name
                    except MusicgenError as e:
                        st.session_state["dataset_note"] = ("error", str(e), [])
                    finally:
                        bar.empty()
                        del uploads
                        shell.forget_uploads("uploads")
                st.rerun()
if "dataset_note" in st.session_state:
    kind, message, problems = st.session_state.pop("dataset_note")
    {"success": st.success, "warning": st.warning, "error": st.error}[kind](shell.plain(message))
    for problem in problems:
        st.warning(shell.plain(problem))


@st.cache_resource
def builds() -> tuple[jobs.Shared, set]:
    """This server's dataset builds (every session follows the same one), and the datasets whose cache cannot
    be written (a read-only folder), which open here instead."""
    return jobs.Shared(), set()


@st.fragment(run_every=0.5)
def follow_build(name: str) -> None:
    """A long build (a built-in corpus, a large collection's first parse) runs in a job of its own: it goes on
    when the page is left, and any visit shows its progress, a count and an estimate."""
    shared, uncached = builds()
    job = shared.job(name, pieces.open_dataset, name)
    if job.done():
        if shared.finish(name) and not datasets.is_ready(name):
            uncached.add(name)
        st.rerun()
    p = job.progress()
    left = f", about {p.remaining:.0f} s to go" if p.remaining is not None else ""
    st.progress(p.fraction, text=f"{p.stage.capitalize()}{left}. This goes on if you leave the page.")


shared, uncached = builds()
if not datasets.is_ready(name) and name not in uncached:
    if name in shared.failed:
        st.error(shell.plain(shared.failed[name]))
        if st.button("Try again"):
            shared.failed.pop(name, None)
            st.rerun()
    else:
        follow_build(name)
    st.stop()
try:
    data = shell.dataset(name)
except MusicgenError as e:
    st.error(shell.plain(e))
    st.stop()
if not data.pieces:
    st.warning("This dataset has no usable pieces.")
    st.stop()

summary = data.summary()
version = summary.text()
cols = st.columns(5)
cols[0].metric("Pieces", f"{summary.pieces:,}")
cols[1].metric("Notes", f"{summary.notes:,}")
cols[2].metric("Playing time", clock(summary.seconds))
cols[3].metric("Pitch range", f"{note_name(summary.pitch_min)}–{note_name(summary.pitch_max)}")
cols[4].metric("Tempo (median)", f"{summary.tempo:.0f} bpm")
if data.problems:
    with st.expander(f"{len(data.problems)} file(s) could not be used"):
        for problem in data.problems:
            st.write(shell.plain(problem))

st.subheader("The whole dataset")
for col, image in zip(st.columns(3), histogram_pngs(name, version, None)):
    col.image(image)

st.subheader("One piece")
labels = {p.name: p.label for p in data.pieces}
piece = st.selectbox("Piece", list(labels), key="dataset_piece", format_func=labels.get)
notes = data.piece(piece).notes
st.caption(shell.plain(summarize(notes).text()))
if st.radio("Show", ["The first notes", "A time window"], horizontal=True) == "The first notes":
    first, window = st.slider("Notes shown and played", 10, max(11, min(len(notes), 2000)), min(len(notes), 300)), None
else:
    end = max(1.0, round(notes.seconds, 1))
    first, window = None, st.slider("Seconds shown and played", 0.0, end, (0.0, min(end, 20.0)), 0.5)
roll, wav, sound_note = piece_media(name, version, piece, first, window)
st.audio(wav, format="audio/ogg")
if sound_note:
    st.info(sound_note)
if st.toggle("Sheet music", value=True, help="the notes shown, engraved: one staff pair, voices as voices"):
    with st.spinner("Engraving..."):
        try:
            st.image(piece_score(name, version, piece, first, window), width="stretch")
        except MusicgenError as e:
            st.error(shell.plain(e))
st.image(roll)
for col, image in zip(st.columns(3), histogram_pngs(name, version, piece)):
    col.image(image)
with st.expander("Notes table"):
    st.dataframe(note_rows(notes.window(*window) if window else notes, limit=first), hide_index=True)
st.download_button("Download this MIDI file", data.midi_path(piece).read_bytes(), file_name=piece,
                   mime="audio/midi")
