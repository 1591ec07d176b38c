"""What app.py and every page share: page setup, navigation and the sidebar, and the hand-over of a deep link
on a freshly started server."""

import re

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from musicgen.infra import access, memory
from musicgen.data import datasets

memory.return_large_blocks()  # uploads and pieces of hundreds of MB: freed, they go back to the system

PAGES = [("pages/home.py", "Home", ":material/home:"),
         ("pages/dataset.py", "Dataset", ":material/library_music:"),
         ("pages/train.py", "Train", ":material/model_training:"),
         ("pages/generate.py", "Generate", ":material/piano:")]


def secrets() -> dict:
    """Streamlit's secrets, or {} when there is no secrets file."""
    try:
        return dict(st.secrets)
    except (FileNotFoundError, OSError, KeyError, ValueError):
        return {}


def plain(text) -> str:
    """Text shown as it is: every ASCII punctuation mark escaped, so a user's names, file names and the
    sentences that quote them never become markdown, colours or icons on a page; an invisible space after
    '@', '//' and 'www' keeps addresses from being turned into links (escapes do not stop that)."""
    text = re.sub(r"(@|//|(?i:www))", "\\1\u200b", str(text))
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def forget_uploads(key: str) -> None:
    """Drop the files of the uploader `key` from the server's memory once they are imported: Streamlit keeps
    each upload whole, in its file store and in the widget's state, for as long as the session lives
    (streamlit#9218); both go, then the memory goes back to the system."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    files = st.session_state.get(key) or []
    ctx = get_script_run_ctx()
    if ctx is not None:
        for f in files if isinstance(files, list) else [files]:
            ctx.uploaded_file_mgr.remove_file(ctx.session_id, f.file_id)
    if key in st.session_state:
        del st.session_state[key]
    del files
    memory.release()


@st.cache_resource(max_entries=2, show_spinner=False)
def _opened(name: str, stamp: tuple | None):
    return datasets.open_dataset(name)


def dataset(name: str):
    """The dataset, opened once for every session while it is unchanged (20,000 pieces take half a second)."""
    key = datasets.stamp(name)
    return datasets.open_dataset(name) if key is None else _opened(name, key)  # None: not made yet, or gone


_navigated = False  # whether this server has drawn the navigation yet


def chrome():
    """Page setup, the navigation and the shared sidebar; returns the page the address asks for."""
    global _navigated
    _navigated = True
    st.set_page_config(page_title="musicgen", page_icon=":musical_note:", layout="wide")
    page = st.navigation([st.Page(path, title=title, icon=icon, default=i == 0)
                          for i, (path, title, icon) in enumerate(PAGES)])
    with st.sidebar:
        st.caption(f"Dataset: **{plain(st.session_state.get('dataset', 'bach-chorales'))}**")
        st.caption(f"Model: **{plain(st.session_state.get('model') or 'the pretrained default')}**")
        address, expected = st.get_option("server.address"), access.password(secrets())
        given = st.text_input("Password", type="password", key="password",
                              help="needed to upload, train or delete") if expected else None
        st.session_state["may_change"] = access.may_change(address, expected, given)
        if not st.session_state["may_change"]:
            st.info(access.LOCKED if expected else access.NO_PASSWORD)
    return page


def enter() -> None:
    """Called first by every page. A fresh server's first request for /generate runs the page on its own
    (Streamlit's old pages/ folder mode: raw file names in the sidebar, no layout): draw app.py's chrome here
    too, which also ends that mode for the server; then run it again the app's way at once (its widgets
    belong to the other mode's page, so a first click on them would be lost)."""
    if PagesManager.uses_pages_directory:
        first = not _navigated
        chrome()
        if first:
            st.rerun()
