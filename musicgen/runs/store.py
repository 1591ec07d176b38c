"""Model folders, models/<name>/, each self-describing so loading never guesses.

model.keras    best weights so far (no optimizer), for evaluation and fine-tuning
weights.npz    the same weights as float16 numpy arrays, for generating without TensorFlow
last.keras     the latest weights with optimizer state, kept while a run can be resumed
config.json    {"model": ModelConfig, "train": TrainConfig}
vocab.json     the Encoding (vocabulary, time bins, tempo)
data.json      what it was trained on: dataset, pieces per split, notes
heldout.json   held-out figures, written when training finishes
sampling.json  optional: the temperature chosen for this model by `evaluate --samples` (see README)
history.jsonl  one JSON line per epoch, and progress lines within epochs
status.json    running / stopped / finished / failed, with a message
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen import families
from musicgen.config import ModelConfig, TrainConfig, from_json, to_json
from musicgen.errors import ModelError, MusicgenError, TrainingError, storage_error
from musicgen.families import Encoding
from musicgen.infra.files import write_json

DEFAULT_MODEL = "bach-voices"  # the pretrained model Generate selects first: it writes chorales best (README)
HARMONIZE_MODEL = "bach-voices"  # the pretrained polyphony model harmonize uses when none is named
STATES = ("running", "stopped", "finished", "failed")  # what a trainer writes; a reader may also say "ended"


def models_dir() -> Path:
    """Where models live: $MUSICGEN_MODELS_DIR or ./models."""
    return Path(os.environ.get("MUSICGEN_MODELS_DIR") or "models")


def model_path(name_or_path: str | os.PathLike) -> Path:
    """A model folder from a name ('bach') or a path ('models/bach')."""
    p = Path(name_or_path)
    return p if len(p.parts) > 1 or p.exists() else models_dir() / p


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path.parent.name}: the model folder has no {path.name}; "
                         f"it is not a musicgen model or it is incomplete.") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{path.parent.name}: {path.name} cannot be read ({e}).") from None


# ---------------------------------------------------------------- writing a run

class RunFolder:
    """Everything a training run writes, each file replaced atomically so a reader never sees half of one."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def create(self, model: ModelConfig, train: TrainConfig, enc: Encoding, data: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / "config.json", {"model": to_json(model), "train": to_json(train)})
        write_json(self.folder / "vocab.json", enc.to_json())
        write_json(self.folder / "data.json", data)

    def status(self, state: str, message: str = "", **extra) -> None:
        assert state in STATES
        old = read_status(self.folder) if (self.folder / "status.json").exists() else {}
        write_json(self.folder / "status.json", {**old, **extra, "state": state, "message": message,
                                                  "pid": os.getpid(), "started": process_start(os.getpid()),
                                                  "updated": time.time()})

    def append(self, record: dict) -> None:
        with open(self.folder / "history.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def save_best(self, bare, weights: dict[str, np.ndarray]) -> None:
        """model.keras (`bare`: the model without optimizer state, smaller) and weights.npz for the sampler
        (`weights`: learn.model.numpy_weights)."""
        _save_keras(bare, self.folder / "model.keras")
        tmp = self.folder / ".weights.tmp.npz"
        try:
            # float16 on disk halves the folder (the sampler computes in float32); a default stays < 10 MB
            np.savez(tmp, **{k: v.astype(np.float16) for k, v in weights.items()})
            os.replace(tmp, self.folder / "weights.npz")
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise storage_error(self.folder / "weights.npz", e) from None

    def save_last(self, model) -> None:
        _save_keras(model, self.folder / "last.keras")


def _save_keras(model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")  # Keras insists on the .keras suffix
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise storage_error(path, e) from None


# ---------------------------------------------------------------- reading

ENDED = ("The training process is no longer running (it was killed, or the computer restarted, before it "
         "could say why). Resume it or delete it.")


def read_status(folder: Path) -> dict:
    """status.json; a 'running' run whose trainer is gone (or whose PID now belongs to another process)
    is reported as 'ended'."""
    try:
        status = json.loads((Path(folder) / "status.json").read_text())
        if not isinstance(status, dict) or status.get("state") not in STATES:
            raise ValueError
    except (OSError, ValueError):
        return {"state": "failed", "message": "The model folder has no readable status."}
    if status["state"] == "running" and not trainer_alive(folder, status):
        status = {**status, "state": "ended", "message": ENDED}
    return status


def process_start(pid) -> str | None:
    """When a process started (clock ticks since boot, from /proc), or None when none runs or it has ended."""
    try:
        text = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, TypeError, ValueError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]  # state, then field 22: starttime


def trainer_alive(folder: Path, status: dict) -> bool:
    """Whether the process status.json names is this folder's trainer, still running: the same PID, the same
    start time (a reused PID has another) and a `musicgen train` command line naming this folder."""
    pid = status.get("pid")
    if not Path("/proc").is_dir():  # not Linux: only whether the PID is alive can be known
        try:
            os.kill(int(pid), 0)
        except (TypeError, ValueError, ProcessLookupError):
            return False
        except PermissionError:
            return True
        return True
    started = process_start(pid)
    if started is None or (status.get("started") is not None and str(status["started"]) != started):
        return False
    try:
        args = Path(f"/proc/{int(pid)}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    return "musicgen" in args and "train" in args and any(Path(a).name == Path(folder).name for a in args)


def read_history(folder: Path) -> list[dict]:
    """Every record of history.jsonl; a half-written last line (a run being written) is skipped."""
    try:
        lines = (Path(folder) / "history.jsonl").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def read_configs(folder: Path) -> tuple[ModelConfig, TrainConfig, Encoding]:
    folder = Path(folder)
    cfg = read_json(folder / "config.json")
    try:
        model, train = from_json(ModelConfig, cfg["model"]), from_json(TrainConfig, cfg["train"])
        families.get(model.family)
    except (TypeError, KeyError, ValueError, AttributeError, MusicgenError):
        raise ModelError(f"{folder.name}: config.json is not one this version understands; "
                         f"train the model again or delete it.") from None
    vocab = read_json(folder / "vocab.json")  # its own sentence names the folder
    try:
        return model, train, Encoding.from_json(vocab)
    except ModelError as e:
        raise ModelError(f"{folder.name}: {e} Train the model again or delete it.") from None


def check_model(name_or_path: str | os.PathLike) -> Path:
    """The folder of a usable model, or a ModelError saying why it is not one."""
    folder = model_path(name_or_path)
    if not folder.is_dir():
        known = ", ".join(m.name for m in list_models()) or "none yet"
        raise ModelError(f"There is no model called '{name_or_path}'. Models: {known}.")
    if not (folder / "weights.npz").exists():
        status = read_status(folder)
        if status["state"] == "running":
            raise ModelError(f"{folder.name}: the model is still training its first epoch; try again in a moment.")
        raise ModelError(f"{folder.name}: the model folder has no trained weights "
                         f"({status['state']}: {status.get('message') or 'no epoch finished'}).")
    return folder


@dataclass(frozen=True)
class ModelInfo:
    name: str
    folder: Path
    family: str
    preset: str
    state: str
    message: str
    epochs: int  # epochs finished
    best_val_loss: float | None
    size_bytes: int
    dataset: str


def is_model_folder(folder: Path) -> bool:
    """A folder a run made: with its settings, or at least its status (a run that failed before its first epoch)."""
    return (folder / "config.json").exists() or (folder / "status.json").exists()


def list_models(root: Path | None = None) -> list[ModelInfo]:
    """Every model folder under models/, newest first; wrong-typed or broken files never hide the others."""
    base = root or models_dir()
    out = []
    for folder in sorted(base.iterdir() if base.is_dir() else [], key=lambda p: -p.stat().st_mtime):
        if not folder.is_dir() or not is_model_folder(folder):
            continue
        cfg, data = _json_dict(folder / "config.json").get("model"), _json_dict(folder / "data.json")
        cfg = cfg if isinstance(cfg, dict) else {}
        status = read_status(folder)
        epochs = [r for r in read_history(folder) if isinstance(r, dict) and r.get("type") == "epoch"]
        losses = [r["val_loss"] for r in epochs if isinstance(r.get("val_loss"), (int, float))]
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        out.append(ModelInfo(folder.name, folder, str(cfg.get("family", "?")), str(cfg.get("preset", "?")),
                             status["state"], str(status.get("message", "")), len(epochs),
                             min(losses) if losses else None, size, str(data.get("dataset", "?"))))
    return out


def _json_dict(path: Path) -> dict:
    """A JSON object from a file, or {} when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def default_model() -> Path:
    """The model used when none is named: the pretrained default, else the newest usable one."""
    preferred = models_dir() / DEFAULT_MODEL
    if (preferred / "weights.npz").exists():
        return preferred
    for info in list_models():
        if (info.folder / "weights.npz").exists():
            return info.folder
    raise ModelError("There is no trained model yet. Train one first: "
                     "python -m musicgen train --data bach-chorales --out models/my-model")


def delete_model(name_or_path: str | os.PathLike) -> None:
    folder = model_path(name_or_path)
    if not is_model_folder(folder):
        raise ModelError(f"There is no model called '{name_or_path}'.")
    if read_status(folder)["state"] == "running":
        raise ModelError(f"{folder.name} is training; stop it before deleting it.")
    shutil.rmtree(folder)


def epoch_table(folder: Path) -> dict[str, list]:
    """Per-epoch figures for a chart: {'epoch': [...], 'loss': [...], 'val_loss': [...], 'val_pitch_loss': ...}."""
    rows = [r for r in read_history(folder) if r.get("type") == "epoch"]
    keys = sorted({k for r in rows for k in r if k.endswith("loss")})
    return {"epoch": [r["epoch"] for r in rows], **{k: [r.get(k) for r in rows] for k in keys}}


def progress_now(folder: Path) -> dict | None:
    """The latest within-epoch progress line, if it is newer than the latest epoch."""
    for r in reversed(read_history(folder)):
        if r.get("type") == "progress":
            return r
        if r.get("type") == "epoch":
            return None
    return None


def heldout(folder: Path) -> dict | None:
    """The held-out figures written when training finished, if any."""
    try:
        return json.loads((Path(folder) / "heldout.json").read_text())
    except (OSError, ValueError):
        return None


def default_temperature(folder: Path) -> float:
    """The temperature chosen for this model (sampling.json), else 1.0."""
    try:
        return float(json.loads((Path(folder) / "sampling.json").read_text())["temperature"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1.0


def mark_failed(out: Path, message: str) -> None:
    """Write 'failed' with the sentence into a run folder this process owns (claimed, or launched for it)."""
    status_file = Path(out) / "status.json"
    try:
        status = json.loads(status_file.read_text()) if status_file.exists() else None
    except (OSError, ValueError):
        status = None
    ours = any(Path(fh.name).parent.resolve() == Path(out).resolve() for fh in _CLAIMS)
    if status is not None and (ours or status.get("pid") == os.getpid()) and status.get("state") == "running":
        try:
            RunFolder(Path(out)).status("failed", message)
        except MusicgenError:
            pass  # a full disk: the CLI still prints the sentence


def claim(out: Path):
    """Hold the model folder for this process until it ends (a lock the kernel drops with the process), so two
    runs can never write into one folder; a TrainingError when another run holds it."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / ".claim", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise TrainingError(f"{out.name} is being trained by another run; choose another name.") from None
    _CLAIMS.append(fh)  # kept open: the claim lasts as long as this process
    return fh


_CLAIMS: list = []
