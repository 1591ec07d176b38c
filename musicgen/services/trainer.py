"""Trainers for the app: start one (new, fine-tuned or resumed) as a process of its own, reap it, stop it by a
signal it handles; only processes we started are signalled."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from musicgen import families
from musicgen.config import data_dir
from musicgen.data.folders import dataset_name
from musicgen.errors import TrainingError
from musicgen.runs.store import check_model, process_start, read_configs, read_json, read_status, write_json

# Added to a training run's nice value: the long background work yields the cores to everything interactive
# (the app's pages at 0, its jobs making a piece at +5) and still has them all when nothing else runs.
TRAIN_NICENESS = 15


def launch(dataset: str, name: str, family: str, preset_name: str, model_changes: dict,
           train_changes: dict) -> Path:
    """Start `python -m musicgen train` in its own process (it outlives the page); returns the model folder.

    Settings are checked here first, so a mistake is a sentence on the page, not a failed run.
    """
    from musicgen.config import checked

    model, train_cfg = families.preset(family, preset_name)
    checked(model, **model_changes)
    checked(train_cfg, **train_changes)
    folder = _new_folder(name)
    args = ["--data", dataset, "--family", family, "--preset", preset_name]
    for key, value in {**model_changes, **train_changes}.items():
        args += [f"--{key.replace('_', '-')}", *map(str, value if isinstance(value, tuple) else [value])]
    return _start(folder, args)


def launch_finetune(base: str | os.PathLike, dataset: str, name: str, epochs: int) -> Path:
    """Start a new run `name` that begins from the weights of model `base` and trains on `dataset`
    (base's family, settings and vocabulary); returns the new model folder."""
    from musicgen.config import checked

    base = check_model(base)
    _, train_cfg, _ = read_configs(base)
    checked(train_cfg, epochs=epochs)
    folder = _new_folder(name)
    return _start(folder, ["--data", dataset, "--init", str(base.resolve()), "--epochs", str(epochs)])


def _new_folder(name: str) -> Path:
    """A new model folder for a run the app starts, named by the same rules as datasets."""
    from musicgen.runs.store import model_path

    folder = model_path(dataset_name(name))
    if folder.exists():
        raise TrainingError(f"A model called '{folder.name}' exists already; choose another name.")
    folder.mkdir(parents=True)
    return folder


def launch_resume(folder: str | os.PathLike) -> Path:
    """Continue a stopped (or ended) run in its own process, on the data it was trained on."""
    folder = Path(folder)
    status = read_status(folder)
    if status["state"] == "running":
        raise TrainingError(f"{folder.name} is still training.")
    if not (folder / "last.keras").exists():
        raise TrainingError(f"{folder.name} has no saved epoch to go on from; train a new model instead.")
    return _start(folder, ["--data", read_json(folder / "data.json")["dataset"], "--resume"], append=True)


def _start(folder: Path, args: list[str], append: bool = False) -> Path:
    """`python -m musicgen train ARGS --out FOLDER` in its own process, which outlives the page; its handle
    is kept (CHILDREN), its output goes to train.log."""
    import subprocess
    import sys

    from musicgen.runs.store import models_dir

    env = {**os.environ, "MUSICGEN_MODELS_DIR": str(models_dir().resolve()),
           "MUSICGEN_DATA_DIR": str(data_dir().resolve())}
    cmd = [sys.executable, "-m", "musicgen", "train", *args, "--out", str(folder.resolve())]
    with open(folder / "train.log", "a" if append else "w") as log:
        proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[2], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    CHILDREN[folder.resolve()] = proc
    # waited for the moment it ends, whether or not a page is looking: no defunct process under the server
    threading.Thread(target=proc.wait, name=f"wait for {folder.name}", daemon=True).start()
    old = read_json(folder / "status.json") if (folder / "status.json").exists() else {}
    if old.get("pid") != proc.pid:  # unless the child has already said something (e.g. failed at once)
        write_json(folder / "status.json", {**old, "state": "running", "message": "starting", "pid": proc.pid,
                                            "started": process_start(proc.pid), "updated": time.time()})
    return folder


CHILDREN: dict[Path, "subprocess.Popen"] = {}  # noqa: F821  (training processes this process started)


def reap() -> None:
    """Collect the trainers this process started that have ended, so none lingers as a defunct process."""
    for folder, proc in list(CHILDREN.items()):
        if proc.poll() is not None:
            del CHILDREN[folder]


def request_stop(folder: str | os.PathLike) -> bool:
    """Ask a running training process to stop after its current batch (it saves first); False if none runs.

    Only a process we know is this folder's trainer is signalled: one we started ourselves, or one whose PID,
    start time and command line match; a stale status never is.
    """

    folder = Path(folder)
    reap()
    proc = CHILDREN.get(folder.resolve())
    if proc is not None:
        proc.send_signal(signal.SIGTERM)
        return True
    status = read_status(folder)
    if status["state"] != "running":
        return False
    try:
        os.kill(int(status["pid"]), signal.SIGTERM)
    except (OSError, TypeError, ValueError):
        return False
    return True
