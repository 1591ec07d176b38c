"""Datasets: open one (lazily, from its parse cache), list, delete; a Dataset is its pieces and problems.

A dataset is a folder data/datasets/NAME/ holding midi/ (the files), dataset.json (title, splits)
and a parse cache (cache.bin + cache.json) that makes re-opening it cost about a millisecond.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from musicgen.config import MIDI_SUFFIXES
from musicgen.data.builtins import BUILTINS, build_builtin
from musicgen.data.cache import _cache_head, _load_cache, _refresh_cache, _Stored
from musicgen.data.folders import (
    Progress,
    _file_title,
    _folder,
    _locked,
    _midi_files,
    _read_meta,
    _summary,
    dataset_name,
    datasets_dir,
)
from musicgen.data.sources import _without_gc, parse_files, read_sources
from musicgen.errors import DatasetError, StorageError
from musicgen.infra.memory import MappedFile
from musicgen.music.notes import Notes


class Piece:
    """A piece of a dataset. A cached collection's notes are made when asked for (views of the mapped cache),
    so opening 20,000 pieces makes 20,000 small handles, not 20,000 note tables."""

    __slots__ = ("name", "split", "title", "_notes")

    def __init__(self, name: str, notes: Notes | Callable[[], Notes], split: str | None = None,
                 title: str | None = None):
        self.name = name  # file name inside the dataset (or a label for files read from elsewhere)
        self.split = split  # train / validation / test when the dataset says so
        self.title = title  # the piece's own title, where its file gives one
        self._notes = notes

    @property
    def notes(self) -> Notes:
        n = self._notes
        return n if isinstance(n, Notes) else n()

    @property
    def label(self) -> str:
        """How a page names the piece: its title and its file, or the file alone."""
        return f"{self.title} ({self.name})" if self.title else self.name

    def __repr__(self) -> str:
        return f"Piece({self.name!r}, split={self.split!r})"


@dataclass
class Dataset:
    name: str
    title: str
    pieces: list[Piece]
    problems: list[str] = field(default_factory=list)  # one sentence per file that could not be used
    folder: Path | None = None  # None for files read straight from paths
    builtin: bool = False
    pages: MappedFile | None = None  # the cache file the notes are read from, when they are
    sizes: object = None  # explore.Summary of every piece, once known (from the cache's entries when cached)

    def summary(self):
        """explore.summarize of every piece; a cached dataset's comes from its cache entries, so a collection
        of 20,000 files is summed up without a note table made."""
        if self.sizes is None:
            from musicgen.music.notes import summarize

            self.sizes = summarize([p.notes for p in self.pieces])
        return self.sizes

    def release_pages(self) -> None:
        """Hand back the pages of notes read so far (a pass over a collection then keeps memory flat)."""
        if self.pages is not None:
            self.pages.release()

    def piece(self, name: str) -> Piece:
        for p in self.pieces:
            if p.name == name:
                return p
        raise DatasetError(f"The dataset '{self.name}' has no piece called '{name}'.")

    def midi_path(self, name: str) -> Path:
        """The MIDI file of a piece (datasets on disk only)."""
        if self.folder is None:
            raise DatasetError(f"'{self.name}' is not a stored dataset.")
        self.piece(name)  # a name that is not ours never becomes a path
        return self.folder / "midi" / name


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    builtin: bool
    built: bool  # False for a built-in corpus not made yet
    pieces: int
    notes: int
    seconds: float








# ---------------------------------------------------------------- the parse cache



def _read_folder_dataset(folder: Path, splits: dict[str, str], progress: Progress | None,
                         pedal: bool = False) -> tuple[list[Piece], list[str], MappedFile | None, object]:
    """(pieces, problems, the cache file their notes are read from, their summary) of the files in
    folder/midi, using and refreshing the parse cache.

    Like Python's own import cache, the cache is trusted while the midi folder's modification time is
    unchanged: musicgen adds, replaces and removes files by renaming, which always updates it.
    Otherwise each file is checked by size and time, and only new or changed files are parsed, a batch at a
    time, each batch added to the cache as it is done (an import adds its files as it writes them).
    """
    midi = folder / "midi"
    try:
        stamp = os.stat(midi).st_mtime_ns  # taken before scanning: a change during the scan is seen next time
    except FileNotFoundError:
        stamp = 0
    with _without_gc():
        cache = _load_cache(folder)
    if cache is not None and cache[0].get("pedal", False) != pedal:
        cache = None  # read with the other pedal setting: every file again
    if cache is None or cache[0].get("stamp") != stamp:
        with _locked(folder):
            cache = _load_cache(folder)  # another process may have refreshed it meanwhile
            if cache is not None and cache[0].get("pedal", False) != pedal:
                cache = None
            if cache is None or cache[0].get("stamp") != stamp:
                try:
                    _refresh_cache(folder, midi, stamp, cache, progress, pedal)
                except StorageError:  # a full disk or a read-only folder: the dataset still opens, uncached
                    return _read_uncached(midi, splits, progress, pedal)
                cache = _load_cache(folder)
        if cache is None:
            raise DatasetError(f"The dataset folder {folder} cannot be read back; is the disk full?")
    meta, blocks, pages = cache
    files = sorted(meta["files"], key=lambda f: f["name"])
    with _without_gc():
        pieces = [Piece(f["name"], _Stored(blocks[f["block"]], f), splits.get(f["name"]), f.get("title"))
                  for f in files if not f["error"]]
    return pieces, [f["error"] for f in files if f["error"]], pages, _summary(files)


def _read_uncached(midi: Path, splits: dict[str, str], progress: Progress | None,
                   pedal: bool) -> tuple[list[Piece], list[str], None, None]:
    """Every file parsed into memory (when the cache cannot be written)."""
    names = sorted(_midi_files(midi))
    results = parse_files([(n, midi / n) for n in names], progress, pedal)
    return ([Piece(n, r, splits.get(n), _file_title(midi / n)) for n, r in zip(names, results) if not isinstance(r, str)],
            [r for r in results if isinstance(r, str)], None, None)


# ---------------------------------------------------------------- datasets


def open_dataset(name: str, progress: Progress | None = None, root: Path | None = None) -> Dataset:
    """A stored dataset by name; a built-in corpus is made on first use (about a minute, with progress)."""
    key = dataset_name(name)
    folder = _folder(key, root)
    meta = _read_meta(folder)
    if not meta and key in BUILTINS:
        build_builtin(key, progress, root)
        meta = _read_meta(folder)
    if not meta:
        raise DatasetError(f"There is no dataset called '{name}'. "
                           f"Known datasets: {', '.join(i.name for i in list_datasets(root))}.")
    pieces, problems, pages, sizes = _read_folder_dataset(folder, meta.get("splits", {}), progress,
                                                          meta.get("pedal") is True)
    return Dataset(key, meta.get("title", key), pieces, meta.get("skipped", []) + problems, folder, key in BUILTINS,
                   pages, sizes)


def is_ready(name: str, root: Path | None = None) -> bool:
    """Whether opening the dataset is quick: made, and its parse cache current (else open_dataset parses or
    builds, a long job for a large collection). A name that is no dataset is 'ready': opening it says so at once."""
    key = dataset_name(name)
    folder = _folder(key, root)
    meta = _read_meta(folder)
    if not meta:
        return key not in BUILTINS
    head = _cache_head(folder)
    try:
        return (head is not None and head.get("stamp") == os.stat(folder / "midi").st_mtime_ns
                and head.get("pedal", False) == (meta.get("pedal") is True))
    except OSError:
        return False


def stamp(name: str, root: Path | None = None) -> tuple | None:
    """What changes whenever a stored dataset does (its settings, its files, its cache): a key for keeping it
    open between uses; None when there is no such dataset."""
    folder = _folder(dataset_name(name), root)
    try:
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in
                     (os.stat(folder / "dataset.json"), os.stat(folder / "midi"), os.stat(folder / "cache.json")))
    except OSError:
        return None


def is_dataset_name(spec: str) -> bool:
    """Whether spec names a dataset rather than a path (a path that exists always wins)."""
    looks_like_file = spec.lower().endswith(MIDI_SUFFIXES + (".zip",)) or "/" in spec or "\\" in spec
    return not looks_like_file and not Path(spec).exists()


def load_data(spec: str, progress: Progress | None = None, root: Path | None = None) -> Dataset:
    """A dataset name, or a path (file, folder, zip) read directly; what `--data` accepts."""
    if is_dataset_name(spec):
        return open_dataset(spec, progress, root)
    files, problems = read_sources([spec])
    results = parse_files([(f.label, f.data) for f in files], progress)
    pieces = [Piece(f.label, r, f.split) for f, r in zip(files, results) if not isinstance(r, str)]
    problems += [r for r in results if isinstance(r, str)]
    return Dataset(Path(spec).name or spec, Path(spec).name or spec, pieces, problems)


def list_datasets(root: Path | None = None) -> list[DatasetInfo]:
    """Built-in corpora first (built or not), then user datasets, with sizes from their caches."""
    out = []
    base = datasets_dir(root)
    user = sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "dataset.json").exists()) \
        if base.is_dir() else []
    for name in list(BUILTINS) + [n for n in user if n not in BUILTINS]:
        folder = base / name
        meta = _read_meta(folder)
        head = _cache_head(folder)  # the sizes it lists; opening the dataset checks the notes themselves
        sizes = head["sizes"] if head else {}
        out.append(DatasetInfo(name, meta.get("title") or (BUILTINS[name].title if name in BUILTINS else name),
                               name in BUILTINS, bool(meta), int(sizes.get("pieces", 0)),
                               int(sizes.get("notes", 0)), float(sizes.get("seconds", 0.0))))
    return out


def delete_dataset(name: str, root: Path | None = None) -> None:
    """Remove a user dataset (built-in corpora are only rebuilt, never deleted by users)."""
    key = dataset_name(name)
    folder = _folder(key, root)
    if key in BUILTINS:
        raise DatasetError(f"'{key}' is a built-in corpus and cannot be deleted.")
    if not (folder / "dataset.json").exists():
        raise DatasetError(f"There is no dataset called '{name}'.")
    with _locked(folder):
        shutil.rmtree(folder)




