"""musicgen's entry point: page setup and navigation only; every page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="musicgen", page_icon=":musical_note:", layout="wide")

page = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/library_music:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/piano:"),
])
page.run()
