"""Tiny models on tiny data: train -> save -> load -> generate for both families, errors, stop and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from musicgen.config import ModelConfig, SampleConfig, TrainConfig, checked
from musicgen.families import build_encoding, preset
from musicgen.errors import ConfigError, ModelError, MusicgenError, TrainingError
from musicgen.learn.sample import generate
from musicgen.data import datasets
from musicgen.data import imports
from musicgen.learn import sample
from musicgen.runs import store

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "pitch-step-duration": ModelConfig(family="pitch-step-duration", seq_length=8, units=(16,)),
    "notes-and-chords": ModelConfig(family="notes-and-chords", seq_length=8, units=(16, 12), embedding=8,
                                    dropout=0.1, min_count=1),
}
FAST = TrainConfig(epochs=2, batch_size=32, learning_rate=0.01, seed=3)


@pytest.fixture
def bach(small_builtins, monkeypatch):
    monkeypatch.setenv("MUSICGEN_DATA_DIR", str(small_builtins))  # evaluate() finds the model's dataset by name
    return datasets.open_dataset("bach-chorales")


@pytest.mark.parametrize("family", list(TINY))
def test_train_save_load_generate(family, bach, tmp_path):
    from musicgen.learn.evaluate import evaluate
    from musicgen.learn.train import train

    out = tmp_path / "models" / family
    status = train(bach, out, TINY[family], FAST)
    assert status["state"] == "finished" and status["best_val_loss"] > 0
    for name in ("model.keras", "weights.npz", "config.json", "vocab.json", "data.json", "history.jsonl"):
        assert (out / name).exists(), name
    assert not (out / "last.keras").exists()  # only a stopped run keeps it
    summary = json.loads((out / "data.json").read_text())
    assert summary["dataset"] == "bach-chorales"
    assert len(summary["pieces"]["train"]) == 5 and len(summary["pieces"]["validation"]) == 1
    epochs = [r for r in store.read_history(out) if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2] and all("val_loss" in r for r in epochs)
    g = generate(sample.load_step_model(out), SampleConfig(length=24, seed=1))
    assert len(g.notes) > 0 and g.notes.pitch.max() <= 127 and (g.notes.duration > 0).all()
    figures = evaluate(out)
    assert figures["pieces"] == 1 and 0 <= figures["accuracy"] <= 1
    assert store.heldout(out) == figures  # written by the run when it finished
    assert set(figures["loss"]) == {"token" if family == "notes-and-chords" else "pitch", "step", "duration"}
    info = {m.name: m for m in store.list_models()}[family]
    assert info.state == "finished" and info.epochs == 2 and info.best_val_loss == pytest.approx(min(
        r["val_loss"] for r in epochs))


def test_tutorial_preset_trains_with_regression_heads(bach, tmp_path):
    from musicgen.learn.train import train

    model, train_cfg = preset("pitch-step-duration", "tutorial")
    assert model.time_heads == "regression" and train_cfg.learning_rate == 0.005
    assert train_cfg.loss_weights == (0.05, 1.0, 1.0) and model.units == (128,) and model.seq_length == 25
    tiny = checked(model, units=(8,), seq_length=8)
    out = tmp_path / "tut"
    assert train(bach, out, tiny, checked(train_cfg, epochs=1))["state"] == "finished"
    g = generate(sample.load_step_model(out), SampleConfig(length=16, seed=0))
    assert (g.notes.duration > 0).all() and (np.diff(g.notes.start) >= 0).all()


def test_same_seed_same_weights(bach, tmp_path):
    from musicgen.learn.train import train

    for name in ("a", "b"):
        train(bach, tmp_path / name, TINY["pitch-step-duration"], checked(FAST, epochs=1))
    with np.load(tmp_path / "a" / "weights.npz") as a, np.load(tmp_path / "b" / "weights.npz") as b:
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_fine_tune_keeps_the_vocabulary(bach, tmp_path):
    from musicgen.learn.train import train

    train(bach, tmp_path / "base", TINY["notes-and-chords"], checked(FAST, epochs=1))
    status = train(bach, tmp_path / "tuned", TINY["notes-and-chords"], checked(FAST, epochs=1),
                   init_from=tmp_path / "base")
    assert status["state"] == "finished"
    base = json.loads((tmp_path / "base" / "vocab.json").read_text())
    assert json.loads((tmp_path / "tuned" / "vocab.json").read_text()) == base


def test_fine_tuning_a_run_killed_in_its_first_epoch_is_a_sentence(bach, tmp_path, monkeypatch):
    from musicgen.learn.train import train

    monkeypatch.setenv("MUSICGEN_MODELS_DIR", str(tmp_path))
    killed = store.RunFolder(tmp_path / "killed")  # what a run leaves when kill -9 ends its first epoch
    killed.create(TINY["notes-and-chords"], FAST,
                  build_encoding(TINY["notes-and-chords"], [p.notes for p in bach.pieces]), {"dataset": "x"})
    killed.status("running", "training", pid=2**22 + 7)
    for init in ("killed", tmp_path / "killed"):  # by name, as the app and the CLI say it, or by folder
        with pytest.raises(MusicgenError, match="killed: the model folder has no trained weights"):
            train(bach, tmp_path / "tuned", TINY["notes-and-chords"], FAST, init_from=init)
        assert not (tmp_path / "tuned").exists()


def test_too_little_data(tmp_path):
    from helpers import midi_bytes, scale

    from musicgen.learn.train import train

    imports.import_files("one", [("a.mid", midi_bytes(scale()))])
    one = datasets.open_dataset("one")
    with pytest.raises(TrainingError, match="at least 2 usable pieces"):
        train(one, tmp_path / "m", TINY["pitch-step-duration"], FAST)
    assert not (tmp_path / "m").exists()


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="Unknown model family"):
        preset("waltz")
    with pytest.raises(ConfigError, match="no preset 'mozart'"):
        preset("notes-and-chords", "mozart")
    with pytest.raises(ConfigError, match="Dropout must be between"):
        checked(ModelConfig(), dropout=0.9)
    with pytest.raises(ConfigError, match="Unknown optimizer"):
        checked(TrainConfig(), optimizer="sgd")
    with pytest.raises(ConfigError, match="at least one LSTM size"):
        checked(ModelConfig(), units=())  # an empty field on the page, not a run that dies at once


def test_missing_and_broken_models_are_sentences(tmp_path):
    with pytest.raises(ModelError, match="no model called 'ghost'"):
        sample.load_step_model("ghost")
    broken = tmp_path / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="no trained weights"):
        sample.load_step_model("broken")
    with pytest.raises(ModelError, match="no trained model yet"):
        store.default_model()


def cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "musicgen", *map(str, args)], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300, **kw)


def test_sigterm_stops_cleanly_then_resume_finishes(small_builtins, tmp_path):
    env = {"MUSICGEN_DATA_DIR": str(small_builtins)}
    out = tmp_path / "models" / "long"
    cmd = [sys.executable, "-m", "musicgen", "train", "--data", "bach-chorales", "--family", "pitch-step-duration",
           "--out", str(out), "--epochs", "200", "--patience", "50", "--units", "16", "--seq-length", "8",
           "--batch-size", "8", "--seed", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "weights.npz").exists() and proc.poll() is None:
        time.sleep(0.2)
    assert (out / "weights.npz").exists(), proc.stderr.read() if proc.poll() is not None else "no epoch in 120 s"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    status = store.read_status(out)
    assert status["state"] == "stopped" and "Resume goes on" in status["message"]
    assert "part way through epoch" in status["message"]  # a stop cuts an epoch short, and says so
    assert (out / "last.keras").exists()
    done = len([r for r in store.read_history(out) if r["type"] == "epoch"])
    assert 1 <= done < 200
    r = cli("generate", "--model", out, "--length", "10", "--out", tmp_path / "g.mid", env=env)
    assert r.returncode == 0, r.stderr  # a stopped model is a usable model
    r = cli("train", "--data", "bach-chorales", "--out", out, "--resume", "--epochs", str(done + 1), env=env)
    assert r.returncode == 0, r.stderr
    assert store.read_status(out)["state"] == "finished"
    assert "and part of one more" in store.read_status(out)["message"]  # the stopped epoch is not a whole one
    assert [r["epoch"] for r in store.read_history(out) if r["type"] == "epoch"][-1] == done + 1


def test_mirrored_training_on_two_logical_cpus(small_builtins, tmp_path):
    out = tmp_path / "models" / "mirrored"
    r = cli("train", "--data", "bach-chorales", "--family", "notes-and-chords", "--out", out, "--epochs", "1",
            "--units", "8", "--seq-length", "8", "--batch-size", "16",
            env={"MUSICGEN_DATA_DIR": str(small_builtins), "MUSICGEN_LOGICAL_CPUS": "2"})
    assert r.returncode == 0, r.stderr
    status = store.read_status(out)
    assert status["state"] == "finished"
    assert status["strategy"] == "MirroredStrategy" and status["replicas"] == 2


def test_two_workers_train_as_one_process(small_builtins, tmp_path):
    """MultiWorkerMirroredStrategy over two local processes: the same losses and weights as one process (every
    global batch split between them, a short last batch padded), and only worker 0's folder is kept."""
    import socket

    env = {**os.environ, "MUSICGEN_DATA_DIR": str(small_builtins)}
    args = [sys.executable, "-m", "musicgen", "train", "--data", "bach-chorales", "--family", "polyphony",
            "--epochs", "2", "--units", "16", "--seq-length", "16", "--batch-size", "10", "--dropout", "0"]
    one = subprocess.run([*args, "--out", str(tmp_path / "one")], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 0, one.stderr
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("localhost", 0))
            ports.append(sock.getsockname()[1])
    cluster = ["--workers", ",".join(f"localhost:{p}" for p in ports), "--out", str(tmp_path / "two")]
    other = subprocess.Popen([*args, *cluster, "--worker-index", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        chief = subprocess.run([*args, *cluster, "--worker-index", "0"], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=300)
        other_out = other.communicate(timeout=60)[0]
    finally:
        other.kill()
    assert chief.returncode == 0 and other.returncode == 0, chief.stderr + other_out
    assert "Worker 0 keeps the model." in other_out
    status = store.read_status(tmp_path / "two")
    assert status["state"] == "finished" and status["replicas"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    epochs = {k: [r for r in store.read_history(tmp_path / k) if r["type"] == "epoch"] for k in ("one", "two")}
    assert len(epochs["one"]) == len(epochs["two"]) == 2
    for a, b in zip(epochs["one"], epochs["two"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["val_loss"] == pytest.approx(b["val_loss"],
                                                                                                  rel=1e-5)
    w1, w2 = np.load(tmp_path / "one" / "weights.npz"), np.load(tmp_path / "two" / "weights.npz")
    assert sorted(w1) == sorted(w2)
    for k in w1:  # stored as float16
        np.testing.assert_allclose(w1[k].astype(np.float32), w2[k].astype(np.float32), rtol=1e-2, atol=1e-3)


def test_worker_addresses_are_checked(small_builtins, tmp_path):
    env = {"MUSICGEN_DATA_DIR": str(small_builtins)}
    base = ["train", "--data", "bach-chorales", "--family", "polyphony", "--out", tmp_path / "x"]
    r = cli(*base, "--workers", "localhost", env=env)
    assert r.returncode == 2 and "--workers takes two or more HOST:PORT" in r.stderr
    r = cli(*base, "--workers", "a:1,b:2", "--worker-index", "2", env=env)
    assert r.returncode == 2 and "--worker-index must be 0 to 1" in r.stderr
    r = cli(*base, "--resume", env={**env, "TF_CONFIG": '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"index": 0}}'})
    assert r.returncode == 2 and "cannot be resumed" in r.stderr
    assert not (tmp_path / "x").exists()


def test_cli_errors_are_sentences(small_builtins, tmp_path):
    env = {"MUSICGEN_DATA_DIR": str(small_builtins)}
    r = cli("train", "--data", "bach-chorales", "--family", "notes-and-chords", "--preset", "mozart",
            "--out", tmp_path / "x", env=env)
    assert r.returncode == 2 and "error: The family 'notes-and-chords' has no preset 'mozart'" in r.stderr
    r = cli("train", "--data", "no-such-data", "--family", "notes-and-chords", "--out", tmp_path / "x", env=env)
    assert r.returncode == 2 and "no dataset called 'no-such-data'" in r.stderr
    r = cli("generate", "--model", "ghost", "--out", tmp_path / "g.mid", env=env)
    assert r.returncode == 2 and "error: There is no model called 'ghost'" in r.stderr


def test_transposed_copies_stay_on_the_piano():
    from helpers import notes

    from musicgen.families import get
    from musicgen.learn.train import transposed

    low = notes([(22, 0, 1), (40, 1, 2)])
    out = transposed([low], 2, get("pitch-step-duration").move_bounds([low]))
    assert sorted(int(n.pitch.min()) for n in out) == [21, 22, 23, 24]  # 20 would be below the piano


def test_a_stale_status_is_ended_and_never_signalled(tmp_path):
    from musicgen.services.trainer import request_stop

    folder = tmp_path / "models" / "stale"
    folder.mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        for pid in (bystander.pid, os.getpid()):  # an unrelated process, and a PID reused by a live one
            (folder / "status.json").write_text(json.dumps({"state": "running", "message": "epoch 3", "pid": pid}))
            status = store.read_status(folder)
            assert status["state"] == "ended" and "no longer running" in status["message"]
            assert request_stop(folder) is False
        assert bystander.poll() is None  # never signalled
        (folder / "status.json").write_text(json.dumps({"state": "running", "pid": bystander.pid,
                                                        "started": "1"}))
        assert store.read_status(folder)["state"] == "ended"  # same PID, another start time
    finally:
        bystander.kill()
        bystander.wait()


def test_two_runs_can_never_share_a_folder(tmp_path):
    from musicgen.runs.store import claim

    out = tmp_path / "models" / "shared"
    claim(out)
    with pytest.raises(TrainingError, match="being trained by another run"):
        claim(out)


def test_a_launched_run_that_fails_early_says_why_and_leaves_no_defunct_process(small_builtins, tmp_path,
                                                                                 monkeypatch):
    from helpers import midi_bytes, scale

    from musicgen.data import imports
    from musicgen.runs import store
    from musicgen.services import trainer

    monkeypatch.setenv("MUSICGEN_DATA_DIR", str(tmp_path / "data"))
    imports.import_files("one", [("a.mid", midi_bytes(scale()))])
    folder = trainer.launch("one", "doomed", "pitch-step-duration", "default", {}, {"epochs": 1})
    deadline = time.time() + 60
    while store.read_status(folder)["state"] == "running" and time.time() < deadline:
        time.sleep(0.2)
    status = store.read_status(folder)
    assert status["state"] == "failed" and "at least 2 usable pieces" in status["message"], status
    pid = trainer.CHILDREN[folder.resolve()].pid
    deadline = time.time() + 30
    while Path(f"/proc/{pid}").exists() and time.time() < deadline:  # no page asks: it is waited for anyway
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), Path(f"/proc/{pid}/stat").read_text()  # not even defunct
    trainer.reap()
    assert folder.resolve() not in trainer.CHILDREN
    store.delete_model(folder)


@pytest.mark.parametrize("damage", ["truncated weights", "empty weights", "vocab null", "wrong shapes",
                                    "config list", "unknown family", "ranges broken"])
def test_damaged_model_folders_are_sentences(damage, tiny_models, tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "models" / "hurt"
    shutil.copytree(tiny_models / "tiny-nc", folder)
    monkeypatch.setenv("MUSICGEN_MODELS_DIR", str(tmp_path / "models"))
    weights = folder / "weights.npz"
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "empty weights":
        weights.write_bytes(b"")
    elif damage == "vocab null":
        (folder / "vocab.json").write_text("null")
    elif damage == "wrong shapes":
        vocab = json.loads((folder / "vocab.json").read_text())
        vocab["tokens"] = vocab["tokens"][:-3]
        (folder / "vocab.json").write_text(json.dumps(vocab))
    elif damage == "ranges broken":
        vocab = json.loads((folder / "vocab.json").read_text())
        vocab["ranges"] = [[60, 81]]
        (folder / "vocab.json").write_text(json.dumps(vocab))
    elif damage == "config list":
        (folder / "config.json").write_text("[]")
    else:
        cfg = json.loads((folder / "config.json").read_text())
        cfg["model"]["family"] = "waltz"
        (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError) as info:
        sample.load_step_model("hurt")
    assert str(info.value).startswith("hurt: ") and str(tmp_path) not in str(info.value)
    assert "hurt" in [m.name for m in store.list_models()]  # still listed, so it can be deleted


def test_resume_of_a_missing_model_leaves_nothing_behind(small_builtins, tmp_path):
    from musicgen.learn.train import resume

    with pytest.raises(TrainingError, match="no model called 'typo'"):
        resume(tmp_path / "models" / "typo", datasets.open_dataset("bach-chorales", root=small_builtins))
    assert not (tmp_path / "models" / "typo").exists()


def test_a_full_disk_while_training_is_a_sentence_and_the_run_says_failed(bach, tmp_path, monkeypatch):
    import errno

    from musicgen.errors import StorageError
    from musicgen.learn.train import train

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", no_space)
    out = tmp_path / "models" / "full"
    with pytest.raises(StorageError, match="The disk is full, so weights.npz could not be written"):
        train(bach, out, TINY["pitch-step-duration"], checked(FAST, epochs=1))
    status = store.read_status(out)
    assert status["state"] == "failed" and "disk is full" in status["message"]
    assert not list(out.glob(".*tmp*"))


def test_one_tune_stays_on_one_side_of_the_split():
    """A duplicate harmonization (the same tune moved to another key, other voices under it, a passing note
    added) is never split from its twin, whatever the seed; distinct tunes are split as before."""
    import numpy as np

    from musicgen.data.datasets import Dataset, Piece
    from musicgen.data.splits import same_tunes
    from musicgen.music.notes import Notes
    from musicgen.data.splits import split_pieces

    rng = np.random.default_rng(0)

    def tune(steps, shift=0, bass=48, passing=False):
        line = 67 + np.cumsum(np.r_[0, steps]) + shift
        rows = [(p, b, b + 1) for b, p in enumerate(line)] + [(bass + b % 5, b, b + 1) for b in range(len(line))]
        if passing:
            rows[3] = (rows[3][0], 3.0, 3.5)
            rows.append((rows[3][0] + 1, 3.5, 4.0))
        a = np.array(rows, np.float64)
        return Notes.from_beats(a[:, 0], a[:, 1], a[:, 2])

    tunes = [rng.choice([-2, -1, 1, 2, 3, -3], 24) for _ in range(20)]
    pieces = [Piece(f"t{k}", tune(t)) for k, t in enumerate(tunes)]
    pieces.append(Piece("t3-again", tune(tunes[3], shift=5, bass=43, passing=True)))
    groups = same_tunes([p.notes for p in pieces])
    assert groups[3] == groups[-1] and len(set(groups)) == 20
    for seed in range(12):
        split = split_pieces(Dataset("d", "d", pieces), 0.2, seed)
        sides = {p.name: side for side, ps in split.items() for p in ps}
        assert sides["t3"] == sides["t3-again"], seed
        assert len(split["validation"]) in (3, 4, 5) and len(split["train"]) + len(split["validation"]) == 21
