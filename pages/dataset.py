import streamlit as st

from musicgen import corpus
from musicgen.errors import MusicgenError
from musicgen.explore import note_rows, summarize
from musicgen.render import piano_roll

st.title("Dataset")
infos = corpus.list_datasets()
name = st.selectbox("Dataset", [i.name for i in infos], key="dataset",
                    format_func=lambda n: next(f"{i.title} ({n})" for i in infos if i.name == n))
bar = st.progress(0.0, text="Opening the dataset...")
try:
    data = corpus.open_dataset(name, progress=lambda done, total, what: bar.progress(done / max(total, 1), text=what))
except MusicgenError as e:
    st.error(str(e))
    st.stop()
bar.empty()
st.write(summarize([p.notes for p in data.pieces]).text())
for problem in data.problems:
    st.warning(problem)
piece = st.selectbox("Piece", [p.name for p in data.pieces])
if piece:
    notes = data.piece(piece).notes
    first = st.slider("Notes shown", 10, max(10, min(len(notes), 1000)), min(len(notes), 200))
    st.pyplot(piano_roll(notes, first=first, title=piece))
    st.dataframe(note_rows(notes, limit=first), hide_index=True)
