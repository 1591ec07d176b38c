import streamlit as st

import shell

shell.enter()

st.title("musicgen")
st.write(
    "Teach a small neural network (an LSTM) the style of a set of MIDI files, then let it write new music "
    "in that style, all on this computer. Everything works offline: two corpora of public-domain music are "
    "built in, and a pretrained model is ready on the Generate page."
)
c1, c2, c3 = st.columns(3)
with c1:
    st.subheader("1. Dataset")
    st.write("Explore the built-in Bach chorales or German folk songs, or upload your own MIDI files or a zip.")
    st.page_link("pages/dataset.py", label="Open Dataset", icon=":material/library_music:")
with c2:
    st.subheader("2. Train")
    st.write("Choose a model family and its settings, start training and watch the loss fall. "
             "Training goes on if you close the tab.")
    st.page_link("pages/train.py", label="Open Train", icon=":material/model_training:")
with c3:
    st.subheader("3. Generate")
    st.write("Pick a model, set temperature and length, then read, hear and download the new piece, "
             "or give a melody and let a four-part model write the voices under it.")
    st.page_link("pages/generate.py", label="Open Generate", icon=":material/piano:")
