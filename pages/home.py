import streamlit as st

st.title("musicgen")
st.write(
    "Train LSTM networks on MIDI files and generate new music from them, on your own computer. "
    "Start on **Dataset** to explore the built-in Bach chorales and German folk songs, or upload your own MIDI files."
)
st.page_link("pages/dataset.py", label="Explore a dataset", icon=":material/library_music:")
