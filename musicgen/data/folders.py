"""A dataset's folder on disk: its name, location, lock, files, titles and dataset.json, and the progress
signature every data step reports with."""

from __future__ import annotations

import fcntl
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from musicgen.config import data_dir
from musicgen.errors import DatasetError
from musicgen.infra.files import write_json
from musicgen.music.midi import midi_title

Progress = Callable[[int, int, str], None]  # (done, total, what is happening)


SPLITS = ("train", "validation", "test")


def dataset_name(text: str) -> str:
    """A user's dataset name made safe as a folder name: lower case, spaces to '-', nothing else odd."""
    # letters beyond ASCII stay ('Müller' and 'Mäller' are two datasets); \w is Unicode-aware
    slug = re.sub(r"[^\w.-]+", "-", unicodedata.normalize("NFC", str(text)).strip().lower()).strip("-._")
    if not slug:
        raise DatasetError("A dataset needs a name made of letters, digits, '-', '_' or '.'.")
    return slug[:64]


def datasets_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "datasets"


def _folder(name: str, root: Path | None) -> Path:
    return datasets_dir(root) / dataset_name(name)


@contextmanager
def _locked(folder: Path):
    """One writer per dataset across processes (two browser tabs may import or build at once). In a folder that
    cannot be written there is no writer to wait for, and no lock."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fh = open(folder.parent / f".{folder.name}.lock", "w")
    except OSError:
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _midi_files(midi: Path) -> dict[str, str]:
    """The dataset's files now: name -> key (size and modification time)."""
    return {e.name: _file_key(e) for e in os.scandir(midi) if e.is_file() and not e.name.startswith(".")} \
        if midi.is_dir() else {}


def _file_key(entry: os.DirEntry | Path) -> str:
    st = entry.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _file_title(path: Path) -> str | None:
    """The title a MIDI file gives itself (read from its first track only)."""
    try:
        with open(path, "rb") as fh:
            return midi_title(fh.read(1 << 16))
    except OSError:
        return None


def _read_meta(folder: Path) -> dict:
    """dataset.json, or {} when it is missing, unreadable or not what musicgen writes."""
    try:
        meta = json.loads((folder / "dataset.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(meta, dict):
        return {}
    for key, kind in (("splits", dict), ("skipped", list), ("title", str)):
        if key in meta and not isinstance(meta[key], kind):
            meta.pop(key)
    return meta


def _write_meta(folder: Path, meta: dict) -> None:
    write_json(folder / "dataset.json", meta)


def _summary(entries: Iterable[dict]):
    """explore.summarize of a cache's pieces, from its entries one at a time (no note table opened)."""
    from array import array

    from musicgen.music.notes import Summary

    pieces, notes, seconds, low, high, tempi = 0, 0, 0.0, 127, 0, array("d")
    for e in entries:
        if e["error"]:
            continue
        pieces += 1
        if e["count"]:
            notes, seconds = notes + e["count"], seconds + e["seconds"]
            low, high = min(low, e["low"]), max(high, e["high"])
            tempi.append(round(float(e["tempo_map"][0][1]), 3))  # TempoMap.first of a map as stored: at beat 0
    if not notes:
        return Summary(pieces, 0, 0.0, None, None, None)
    return Summary(pieces, notes, seconds, low, high, float(np.median(tempi)))
