"""Constants with their units, limits on user files, and the model, training and sampling settings."""

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

PITCH_MIN, PITCH_MAX = 0, 127  # MIDI note numbers
PIANO_LOW, PIANO_HIGH = 21, 108  # MIDI pitches of a piano's lowest and highest keys
VELOCITY_MIN, VELOCITY_MAX = 1, 127  # velocity 0 would mean note-off
DEFAULT_VELOCITY = 80
DEFAULT_TEMPO_QPM = 100.0  # quarter notes per minute, for scores that state none
MIN_DURATION_S = 0.01  # shorter notes are lengthened to this, in seconds

# Limits on what users give us.
MAX_MIDI_BYTES = 16 * 1024 * 1024  # the largest MAESTRO file is about 1 MB
MAX_NOTES = 300_000  # notes in one file
MAX_PIECE_SECONDS = 4 * 3600.0  # longer than this means broken timing
MAX_PIECE_BEATS = 100_000  # quarter notes: 4 hours at over 400 a minute
MAX_TEMPO_CHANGES = 20_000  # distinct tempo changes in one file; a long rubato performance has a few thousand
MAX_ZIP_MEMBERS = 5_000
MAX_ZIP_TOTAL_BYTES = 512 * 1024 * 1024  # unpacked
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # one upload or zip, packed

MIDI_SUFFIXES = (".mid", ".midi")


def data_dir() -> Path:
    """The folder that holds every dataset and cache: $MUSICGEN_DATA_DIR or ./data."""
    return Path(os.environ.get("MUSICGEN_DATA_DIR") or "data")


def cluster() -> tuple[int, list[str]]:
    """(this worker's index, every worker's HOST:PORT) from TF_CONFIG, TensorFlow's standard description of a
    training cluster; (0, []) when it names fewer than two. Worker 0 is the chief: it alone writes the run folder."""
    import json

    try:
        spec = json.loads(os.environ.get("TF_CONFIG") or "{}")
        workers = [str(w) for w in spec.get("cluster", {}).get("worker", [])]
        index = int(spec.get("task", {}).get("index", 0))
        if len(workers) > 1 and not 0 <= index < len(workers):
            raise ValueError
        return (index, workers) if len(workers) > 1 else (0, [])
    except (ValueError, TypeError, AttributeError):
        from musicgen.errors import ConfigError

        raise ConfigError("TF_CONFIG is not a cluster description TensorFlow understands "
                          "(see tf.distribute.MultiWorkerMirroredStrategy).") from None


def join_cluster(workers: list[str], index: int) -> None:
    """Describe the cluster in TF_CONFIG for this process (before TensorFlow is imported): workers as HOST:PORT,
    this one the index-th."""
    import json

    from musicgen.errors import ConfigError

    bad = [w for w in workers if w.rpartition(":")[0] == "" or not w.rpartition(":")[2].isdigit()]
    if bad or len(workers) < 2:
        raise ConfigError(f"--workers takes two or more HOST:PORT, separated by commas (not {','.join(workers)!r}).")
    if not 0 <= index < len(workers):
        raise ConfigError(f"--worker-index must be 0 to {len(workers) - 1}: one of the {len(workers)} workers.")
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


# ---------------------------------------------------------------- models, training, sampling

OPTIMIZERS = ("adam", "adamax", "rmsprop")


def _range(lo, hi, help_text: str = ""):
    """Field metadata read by the UI's sliders and by validation: the one source of allowed values."""
    return {"range": (lo, hi), "help": help_text}


@dataclass(frozen=True)
class ModelConfig:
    """What a model is: family, input window and layer sizes. Saved beside the weights as config.json."""

    family: str = "pitch-step-duration"
    preset: str = "default"
    seq_length: int = field(default=25, metadata=_range(4, 200, "notes the model sees before predicting one"))
    units: tuple[int, ...] = (128,)  # LSTM sizes, one per stacked layer
    dropout: float = field(default=0.0, metadata=_range(0.0, 0.7, "fraction of units dropped while training"))
    embedding: int = 64  # notes-and-chords: size of the token embedding
    dense: int = 0  # a ReLU layer of this size before the heads; 0 for none
    time_heads: str = "categorical"  # pitch-step-duration: 'categorical' (time bins) or 'regression' (tutorial)
    every_step: bool = True  # predict the next note after every position of a window, not only the last
    min_count: int = 2  # notes-and-chords: rarer tokens become <unk>
    grid: int = 4  # polyphony: grid steps per quarter note (4: sixteenths, 2: eighths)
    normalize_key: bool = False  # polyphony: move every piece to C major / A minor instead of augmenting

    def __post_init__(self):
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))


@dataclass(frozen=True)
class TrainConfig:
    """How to fit: optimizer, batches, epochs, early stopping and the seed."""

    epochs: int = field(default=30, metadata=_range(1, 500, "passes over the training data"))
    batch_size: int = field(default=64, metadata=_range(8, 1024, "windows per gradient step"))
    learning_rate: float = field(default=0.002, metadata=_range(1e-5, 0.1, "Adam's step size"))
    optimizer: str = "adam"
    patience: int = field(default=5, metadata=_range(1, 50, "epochs without a better validation loss before stopping"))
    validation_fraction: float = 0.1  # of the pieces, when the dataset names no split
    transpose: int = field(default=0, metadata=_range(0, 6, "also learn every training piece moved up and "
                                                             "down by up to this many semitones"))
    seed: int = field(default=0, metadata=_range(0, 2**32 - 1, "the same seed gives the same weights"))
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # pitch or token, step, duration


@dataclass(frozen=True)
class SampleConfig:
    """How to generate."""

    length: int = field(default=120, metadata=_range(8, 2000, "notes or chords to generate"))
    temperature: float = field(default=1.0, metadata=_range(0.1, 2.0, "lower is safer, higher is wilder"))
    seed: int = field(default=0, metadata=_range(0, 2**32 - 1, "the same seed gives the same piece"))
    voices: int = field(default=4, metadata=_range(1, 6, "polyphony: notes sounding at once, at most "
                                                        "(exactly, under a melody being harmonized)"))


def checked(config, **changes):
    """config with changes applied, each checked against its field's range; a ConfigError names the first bad one."""
    from musicgen.errors import ConfigError

    known = {f.name: f for f in fields(config)}
    for key, value in changes.items():
        if key not in known:
            raise ConfigError(f"Unknown setting '{key}'.")
        lo_hi = known[key].metadata.get("range")
        if lo_hi and not lo_hi[0] <= value <= lo_hi[1]:
            raise ConfigError(f"{key.replace('_', ' ').capitalize()} must be between {lo_hi[0]} and {lo_hi[1]} "
                              f"(got {value}).")
    if changes.get("optimizer", OPTIMIZERS[0]) not in OPTIMIZERS:
        raise ConfigError(f"Unknown optimizer '{changes['optimizer']}'. Choose one of: {', '.join(OPTIMIZERS)}.")
    if changes.get("grid", 4) not in (2, 4):
        raise ConfigError("The grid must be 4 (sixteenth notes) or 2 (eighth notes) steps per beat.")
    if changes.get("time_heads", "categorical") not in ("categorical", "regression"):
        raise ConfigError("Time heads must be 'categorical' or 'regression'.")
    if "units" in changes and not changes["units"]:
        raise ConfigError("Give at least one LSTM size (one number per layer), e.g. 256.")
    if any(u < 1 or u > 2048 for u in changes.get("units", (1,))):
        raise ConfigError("LSTM sizes must be between 1 and 2048 units.")
    return replace(config, **changes)


def to_json(config) -> dict:
    return asdict(config)


def from_json(cls, data: dict):
    """A config from saved JSON, ignoring keys this version does not know (older or newer folders)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


def field_range(cls, name: str) -> tuple:
    """(low, high) of a config field, for a slider."""
    return next(f for f in fields(cls) if f.name == name).metadata["range"]
