"""musicgen's entry point: page setup, navigation and the shared sidebar; every page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="musicgen", page_icon=":musical_note:", layout="wide")

page = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/library_music:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/piano:"),
])
with st.sidebar:
    st.caption(f"Dataset: **{st.session_state.get('dataset', 'bach-chorales')}**")
    st.caption(f"Model: **{st.session_state.get('model') or 'the pretrained default'}**")
page.run()
