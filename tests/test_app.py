"""Each page through Streamlit's AppTest, without a browser, on tiny data and tiny models."""

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from musicgen.data import datasets
from musicgen.data import imports
from musicgen.runs import store


APP = "../app.py"


@pytest.fixture
def app_env(small_builtins, tiny_models, monkeypatch):
    monkeypatch.setenv("MUSICGEN_DATA_DIR", str(small_builtins))
    monkeypatch.setenv("MUSICGEN_MODELS_DIR", str(tiny_models))


def page(name, **state):
    at = AppTest.from_file(APP, default_timeout=60).run()
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def made(at, before: int = 0, timeout: float = 60):
    """Run the page until the piece being made (in its own process) has joined the results."""
    end = time.monotonic() + timeout
    while len(at.session_state["results"] if "results" in at.session_state else []) <= before:
        assert time.monotonic() < end, "no piece came"
        assert not at.exception, at.exception
        time.sleep(0.2)
        at.run()
    return at.run()  # the run the finished job asked for


def test_home_runs():
    at = AppTest.from_file(APP).run(timeout=30)
    assert not at.exception
    assert at.title[0].value == "musicgen"


def test_dataset_page_shows_a_user_dataset():
    from helpers import midi_bytes, scale


    imports.import_files("class", [("scale.mid", midi_bytes(scale(count=9)))])
    at = page("dataset", dataset="class")
    assert [m.value for m in at.metric][:2] == ["1", "9"]
    assert at.get("audio") and at.get("image")
    assert not at.error


def test_a_dataset_that_needs_parsing_is_opened_by_a_job_the_page_follows():
    from helpers import midi_bytes, scale


    imports.import_files("later", [(f"s{i}.mid", midi_bytes(scale(40 + i, count=9))) for i in range(3)])
    (datasets.datasets_dir() / "later" / "cache.json").unlink()  # as after files were added by hand
    assert not datasets.is_ready("later")
    at = page("dataset", dataset="later")
    assert not at.metric and "goes on if you leave the page" in at.get("progress")[0].proto.text
    end = time.monotonic() + 60
    while not at.metric:
        assert time.monotonic() < end and not at.exception
        time.sleep(0.3)
        at.run()
    assert datasets.is_ready("later") and [m.value for m in at.metric][:2] == ["3", "27"]


def test_dataset_page_builtin_corpus(app_env):
    at = page("dataset")
    assert at.metric[0].value == "6"

    at.selectbox[1].set_value(datasets.open_dataset("bach-chorales").pieces[2].name).run()  # named by its title
    assert not at.exception and at.get("audio")
    at.radio[0].set_value("A time window").run()
    at.slider[0].set_value((2.0, 6.0)).run()
    images = at.get("image")
    assert not at.exception and at.get("audio") and len(images) == 8  # 6 histograms, the score and the roll
    assert any("image/svg+xml" in str(i.proto) for i in images)  # the piece's score
    assert at.selectbox[1].options[2].endswith(f"({at.selectbox[1].value})") and "(BWV " in at.selectbox[1].options[2]


def test_generate_page_makes_music(app_env):
    at = page("generate", model="tiny-nc")
    at.slider[1].set_value(24)
    next(b for b in at.button if b.label == "Generate").click().run()
    assert at.get("progress"), "no progress bar while the piece is made"
    made(at)
    assert not at.exception and not at.error
    assert at.get("audio"), "no audio player"
    images = at.get("image")
    assert images, "no sheet music or piano roll"
    results = [p.rendered for p in at.session_state["results"][0]]
    assert len(results) == 1 and "<svg" in results[0].sheet.svg and results[0].ogg[:4] == b"OggS"
    assert results[0].midi[:4] == b"MThd" and b"score-partwise" in results[0].sheet.musicxml
    next(b for b in at.button if b.label == "Roll the dice").click().run()
    assert not at.exception and at.session_state["seed"] != 0
    next(b for b in at.button if b.label == "Generate").click().run()
    made(at, 1)
    assert len(at.session_state["results"]) == 2  # the earlier piece stays to compare
    images = len(at.get("image"))
    next(b for b in at.button if b.label.startswith("Compare with the music")).click().run()
    assert not at.exception
    assert len(at.get("image")) == images + 1  # the statistics beside the training pieces'
    assert any("the training music" in m.value for m in at.markdown)  # the copy detector's verdict


def test_generate_page_harmonizes_a_chorale_soprano(app_env, small_builtins):

    at = page("generate")
    at.radio[0].set_value("Harmonize a melody").run()
    assert not at.exception and at.selectbox[0].value == "tiny-poly"  # only polyphony models harmonize
    at.radio[1].set_value("A chorale's soprano").run()
    piece = at.selectbox[2].value
    next(b for b in at.button if b.label == "Harmonize").click().run()
    made(at)
    assert not at.exception and not at.error
    result = at.session_state["results"][0][0].rendered
    chorale = datasets.open_dataset("bach-chorales", root=small_builtins).piece(piece)
    assert chorale.title and result.title.startswith(f"{chorale.title} harmonized by")  # its own title
    soprano = chorale.notes.take(chorale.notes.voice == 0)
    top = result.notes.take(result.notes.voice == 0)
    assert top.pitch.tolist() == soprano.pitch.tolist()
    assert "harmonized by tiny-poly" in result.title and "<svg" in result.sheet.svg and at.get("audio")


def test_harmonize_mode_without_a_polyphony_model_says_so(app_env, tiny_models, tmp_path, monkeypatch):
    import shutil

    only = tmp_path / "only-psd"
    shutil.copytree(tiny_models / "tiny-psd", only / "tiny-psd")
    monkeypatch.setenv("MUSICGEN_MODELS_DIR", str(only))
    at = page("generate")
    at.radio[0].set_value("Harmonize a melody").run()
    assert "needs a polyphony model" in at.warning[0].value


def test_generate_without_models_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("MUSICGEN_MODELS_DIR", str(tmp_path / "none"))
    at = page("generate")
    assert "no trained model" in at.warning[0].value


def test_train_page_starts_and_shows_a_run(app_env, tiny_models, monkeypatch):
    at = page("train")
    assert "tiny-psd" in [r for r in at.dataframe[0].value["model"]]
    at.slider[0].set_value(1)  # epochs
    at.text_input[1].set_value("app-run")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and not at.error
    folder = tiny_models / "app-run"
    assert folder.exists()
    deadline = time.time() + 180
    while store.read_status(folder)["state"] == "running" and time.time() < deadline:
        time.sleep(1)
    assert store.read_status(folder)["state"] == "finished", (folder / "train.log").read_text()
    at.run()
    assert any("finished" in s.value for s in at.success)
    assert at.metric[0].label == "Held-out pieces" and at.metric[1].label.startswith("Next-")
    # fine-tune the finished run: a new run from its weights, selected at once
    tune = next(b for b in at.button if b.label == "Fine-tune")
    at.text_input[2].set_value("app-run-tuned")
    tune.click().run()
    assert not at.exception and not at.error, at.error
    tuned = tiny_models / "app-run-tuned"
    assert at.selectbox(key="watch").value == "app-run-tuned"
    deadline = time.time() + 180
    while store.read_status(tuned)["state"] == "running" and time.time() < deadline:
        time.sleep(1)
    assert store.read_status(tuned)["state"] == "finished", (tuned / "train.log").read_text()
    assert store.read_configs(tuned)[2].to_json() == store.read_configs(folder)[2].to_json()  # its vocabulary
    store.delete_model(tuned)
    store.delete_model(folder)


def test_train_page_refuses_a_taken_name(app_env):
    at = page("train")
    at.text_input[1].set_value("tiny-psd")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert "exists already" in at.error[0].value


def test_shared_without_password_shows_music_but_changes_nothing(app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert at.session_state["may_change"]  # local by default (.streamlit/config.toml)
    from musicgen.infra import access

    assert access.is_shared("0.0.0.0") and access.is_shared(None) and not access.is_shared("127.0.0.1")
    assert not access.may_change("0.0.0.0", None, None) and access.may_change("127.0.0.1", None, None)
    assert access.may_change("0.0.0.0", "s3cret", "s3cret") and not access.may_change("0.0.0.0", "s3cret", "x")


def test_a_password_guards_training_and_uploads(app_env, monkeypatch):
    monkeypatch.setenv("MUSICGEN_PASSWORD", "s3cret")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.session_state["may_change"]
    assert any("password" in i.value for i in at.info)
    at.switch_page("pages/train.py").run()
    assert next(b for b in at.button if b.label == "Start training").disabled
    at.switch_page("pages/dataset.py").run()
    assert not at.get("file_uploader")
    for given, allowed in (("wrong", False), ("s3cret", True)):
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["password"] = given  # what the sidebar's password field holds
        at.run()
        assert at.session_state["may_change"] is allowed
        at.switch_page("pages/train.py").run()
        assert next(b for b in at.button if b.label == "Start training").disabled is not allowed


def test_a_piece_being_made_can_be_cancelled(app_env):
    at = page("generate", model="tiny-poly")
    at.slider[1].set_value(2000)
    next(b for b in at.button if b.label == "Generate").click().run()
    job = at.session_state["jobs"][0]
    assert job.process.is_alive()
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert not at.exception and "jobs" not in at.session_state
    assert not job.process.is_alive() and job.process.exitcode is not None  # stopped and reaped
    assert not job.folder.exists() and "results" not in at.session_state


def test_two_temperatures_side_by_side(app_env):
    at = page("generate", model="tiny-poly", other_temperature=1.8)
    at.slider[1].set_value(16)
    next(c for c in at.checkbox if c.label.startswith("Side by side")).check().run()
    next(b for b in at.button if b.label == "Generate").click().run()
    made(at)
    pair = [p.rendered for p in at.session_state["results"][0]]
    assert len(pair) == 2 and "temperature 1.8" in pair[1].title and "temperature 1.8" not in pair[0].title
    assert len(at.get("audio")) == 2 and not at.exception
    assert not all(np.array_equal(a, b) for a, b in [(pair[0].notes.pitch, pair[1].notes.pitch)])


def test_projector_view_folds_the_settings_away(app_env):
    at = page("generate", model="tiny-poly", projector=True)
    assert not at.exception
    assert any(e.label == "Settings" for e in at.expander)  # the settings, folded
    at.slider[1].set_value(16)
    next(b for b in at.button if b.label == "Generate").click().run()
    made(at)
    # the music first: sound, score and piano roll in one block that follows the playing
    assert not at.get("audio") and at.get("iframe") and "player" in at.get("iframe")[0].proto.srcdoc
    assert not at.exception


def test_the_app_keeps_a_dataset_open_until_it_changes():
    """Pages reopen the dataset on every click: the app keeps it open (a collection of 20,000 pieces takes half
    a second to open) and opens it again once files are added."""
    from helpers import midi_bytes, scale

    import shell
    from musicgen.data import imports

    imports.import_files("kept", [(f"{i}.mid", midi_bytes(scale(50 + i))) for i in range(2)])
    first = shell.dataset("kept")
    assert shell.dataset("kept") is first
    imports.import_files("kept", [("new.mid", midi_bytes(scale(70)))])
    again = shell.dataset("kept")
    assert again is not first and [p.name for p in again.pieces] == ["0.mid", "1.mid", "new.mid"]


def test_a_primer_asked_for_but_missing_is_said_not_swapped_for_none(app_env):
    at = page("generate")
    primer = next(r for r in at.radio if r.label == "Primer")
    assert "My MIDI file" in primer.options  # uploads are allowed on a local server
    primer.set_value("My MIDI file").run()
    next(b for b in at.button if b.label == "Generate").click().run()
    assert any("Choose a primer first" in e.value for e in at.error)
    assert "jobs" not in at.session_state  # nothing is made without the primer the user asked for
