"""Each page through Streamlit's AppTest, without a browser."""

from streamlit.testing.v1 import AppTest


def test_home_runs():
    at = AppTest.from_file("../app.py").run(timeout=30)
    assert not at.exception
    assert at.title[0].value == "musicgen"


def test_dataset_page_shows_a_user_dataset():
    from helpers import midi_bytes, scale

    from musicgen import corpus

    corpus.import_files("class", [("scale.mid", midi_bytes(scale(count=9)))])
    at = AppTest.from_file("../app.py").run(timeout=30)
    at.session_state["dataset"] = "class"  # not the default corpus, which would be built first
    at.switch_page("pages/dataset.py").run(timeout=30)
    assert not at.exception
    assert any("9 notes" in m.value for m in at.markdown)


def test_placeholder_pages_run():
    at = AppTest.from_file("../app.py").run(timeout=30)
    for page in ("pages/train.py", "pages/generate.py"):
        at.switch_page(page).run(timeout=30)
        assert not at.exception
