"""What a model was trained on: its own pieces of each split, read back from its dataset, and the runs of
its training music that generated pieces keep clear of."""

from __future__ import annotations

from pathlib import Path

from musicgen.data import datasets
from musicgen.errors import MusicgenError
from musicgen.music.copies import Quotes
from musicgen.runs.store import read_json


def model_pieces(folder: Path, split: str) -> dict:
    """{name: Notes} of the model's own pieces of one split ('train', 'validation'), from its dataset.

    Raises DatasetError when that dataset is no longer on this computer.
    """
    summary = read_json(Path(folder) / "data.json")
    names = set(summary["pieces"][split])
    data = datasets.load_data(summary["dataset"])
    return {p.name: p.notes for p in data.pieces if p.name in names}


def training_data_ready(folder: Path) -> bool:
    """Whether the model's training dataset opens quickly (made, its cache current), so a page may read it;
    else a job does, in its own process (building a corpus takes a minute)."""
    try:
        name = read_json(Path(folder) / "data.json")["dataset"]
    except (MusicgenError, OSError, KeyError, TypeError, ValueError):
        return True  # nothing to read: model_quotes says None at once
    return not datasets.is_dataset_name(name) or datasets.is_ready(name)


def model_quotes(folder: Path):
    """The runs of the model's training music (metrics.Quotes) its pieces keep clear of; None when its
    dataset is not on this computer (then nothing is checked)."""
    try:
        return Quotes(model_pieces(Path(folder), "train").values())
    except (MusicgenError, OSError, KeyError, TypeError):
        return None
