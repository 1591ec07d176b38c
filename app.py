"""musicgen's entry point: page setup, navigation and the shared sidebar; every page lives in pages/."""

import streamlit as st

from musicgen import access


def secrets() -> dict:
    """Streamlit's secrets, or {} when there is no secrets file."""
    try:
        return dict(st.secrets)
    except (FileNotFoundError, OSError, KeyError, ValueError):
        return {}


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
    address, expected = st.get_option("server.address"), access.password(secrets())
    given = st.text_input("Password", type="password", key="password", help="needed to upload, train or delete") \
        if expected else None
    st.session_state["may_change"] = access.may_change(address, expected, given)
    if not st.session_state["may_change"]:
        st.info(access.LOCKED if expected else access.NO_PASSWORD)
page.run()
