"""Adding files to a user dataset: MIDI files, folders, zips and uploads, in batches that bound memory, with a
report of what was added, skipped or refused."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.config import data_dir
from musicgen.data.builtins import BUILTINS
from musicgen.data.cache import IMPORT_BATCH_FILES, _cache_meta, _CacheWriter
from musicgen.data.datasets import open_dataset
from musicgen.data.folders import Progress, _file_key, _folder, _locked, _read_meta, _summary, _write_meta, dataset_name
from musicgen.data.sources import MidiFile, Source, count_sources, iter_sources, parse_files, safe_file_name
from musicgen.errors import DatasetError, StorageError, storage_error
from musicgen.infra.files import write_atomic
from musicgen.music.midi import midi_title


@dataclass
class ImportReport:
    name: str  # the dataset's
    added: list[str]  # stored file names
    problems: list[str]  # files skipped, each with its sentence
    duplicates: int  # files already in the dataset
    summary: object  # explore.Summary of the whole dataset now


IMPORT_BATCH_BYTES = 64 * 2**20  # MIDI bytes held at a time: an import's memory does not grow with its size


class _Contents:
    """Which file contents a dataset holds, as 63 bits of their SHA-1: a sorted array (8 bytes a file) and a
    set for the batch being read, so that a collection's import never holds a Python object per file."""

    def __init__(self, midi: Path):
        self.known = np.sort(np.fromiter((self.digest(e.path) for e in os.scandir(midi) if e.is_file()), np.int64)) \
            if midi.is_dir() else np.zeros(0, np.int64)
        self.recent: set[int] = set()

    @staticmethod
    def digest(data: bytes | str) -> int:
        if isinstance(data, str):
            with open(data, "rb") as fh:
                data = fh.read()
        return int.from_bytes(hashlib.sha1(data).digest()[:8], "little") >> 1

    def add(self, data: bytes) -> bool:
        """Whether data is new to the dataset (it is then counted in)."""
        d = self.digest(data)
        i = int(np.searchsorted(self.known, d))
        if d in self.recent or (i < len(self.known) and self.known[i] == d):
            return False
        self.recent.add(d)
        return True

    def settle(self) -> None:
        """At the end of a batch: the batch's contents join the array."""
        self.known = np.union1d(self.known, np.fromiter(self.recent, np.int64, len(self.recent)))
        self.recent.clear()


def _batches(files: Iterator[MidiFile]) -> Iterator[list[MidiFile]]:
    batch, size = [], 0
    for f in files:
        batch.append(f)
        size += len(f.data)
        if len(batch) >= IMPORT_BATCH_FILES or size >= IMPORT_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def import_files(name: str, sources: Iterable[Source], progress: Progress | None = None, root: Path | None = None,
                 pedal: bool | None = None) -> ImportReport:
    """Make or extend the user dataset `name` with the usable MIDI files found in sources.

    Each file is checked before it is written; if none is usable, nothing changes and DatasetError says why.
    Sources are read and parsed a batch at a time, so memory stays bounded however large the import is; an
    import that cannot finish (a full disk) takes back the files it wrote.
    pedal: from now on read the dataset with the sustain pedal applied (True) or not (False); None keeps it.
    """
    key = dataset_name(name)
    if key in BUILTINS:
        raise DatasetError(f"'{key}' is a built-in corpus; choose another name for your dataset.")
    sources = list(sources)
    total = count_sources(sources)
    problems: list[str] = []
    folder = _folder(key, root)
    midi = folder / "midi"
    with _locked(folder):
        created = not folder.exists()
        meta = _read_meta(folder) or {"name": key, "title": str(name).strip() or key, "splits": {}}
        reading = pedal if pedal is not None else meta.get("pedal") is True  # how the dataset reads its files
        added: list[str] = []
        have, duplicates, usable, done, writer = None, 0, 0, 0, None  # have: the contents there
        try:
            for batch in _batches(iter_sources(sources, problems)):
                def step(d, t, what, at=done):
                    if progress:
                        progress(at + d, max(total, at + t), what)

                results = parse_files([(f.label, f.data) for f in batch], step, reading)
                done += len(batch)
                entries, tables = [], []  # the parse cache's rows for this batch: no second parse on opening
                for f, r in zip(batch, results):
                    if isinstance(r, str):
                        problems.append(r)
                        continue
                    usable += 1
                    if have is None:  # what the dataset holds already
                        have = _Contents(midi)
                    if not have.add(f.data):
                        duplicates += 1
                        continue
                    stored = safe_file_name(f.relpath)
                    stem, suffix = stored.rsplit(".", 1)
                    k = 2
                    # a path made from one string: pathlib interns each name it is given, and `added` keeps them
                    while (target := Path(os.path.join(midi, stored))).exists():
                        stored, k = f"{stem}-{k}.{suffix}", k + 1
                    write_atomic(target, f.data)
                    added.append(stored)
                    entries.append({"name": stored, "key": _file_key(target), "error": None,
                                    "title": midi_title(f.data[:1 << 16])})
                    tables.append(r)
                    if f.split:
                        meta["splits"][stored] = f.split
                if entries:
                    if writer is None:
                        old = _cache_meta(folder)
                        fresh = old is None or old.get("pedal", False) != reading
                        writer = _CacheWriter(folder, reading, None if fresh else old, fresh)
                    writer.add(entries, tables)
                if have is not None:
                    have.settle()
                del batch, results, entries, tables
            if not usable:
                detail = (f" {problems[0]}" if len(problems) == 1 else
                          f" ({len(problems)} problems; the first: {problems[0]})" if problems else "")
                raise DatasetError(f"No usable MIDI file was found, so the dataset '{key}' was not changed.{detail}")
            if pedal is not None:
                meta["pedal"] = pedal
            summary = None
            if writer is not None:
                stamp = os.stat(midi).st_mtime_ns  # before looking: a file added after it is seen next time
                if writer.covers(midi):  # the cache is current: no refresh on opening
                    summary = _summary(writer.entries())
                    writer.close(stamp)
                else:  # files the cache has not seen: opening the dataset (below) refreshes it
                    writer.close()
                writer = None
            _write_meta(folder, meta)
        except BaseException as e:  # nothing half-made: the files of this import go again
            if writer is not None:
                writer.abandon()
            for stored in added:
                (midi / stored).unlink(missing_ok=True)
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            if isinstance(e, StorageError):
                raise DatasetError(f"Nothing was added to '{key}': {e}") from None
            raise
    if summary is None:
        summary = open_dataset(key, progress, root).summary()
    return ImportReport(key, added, problems, duplicates, summary)


def import_uploads(name: str, uploads: Iterable[tuple[str, object]], progress: Progress | None = None,
                   root: Path | None = None, pedal: bool | None = None) -> ImportReport:
    """import_files for uploads given as (file name, a binary file object): each is copied to disk in blocks
    first, so an upload never exists twice in memory, and the copies go when the import ends."""
    import tempfile

    spool = (root or data_dir()) / "uploads"
    try:
        spool.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=spool) as tmp:
            sources = []
            for i, (label, fh) in enumerate(uploads):
                path = Path(tmp) / f"{i}.upload"  # an uploaded name never becomes a path
                with open(path, "wb") as out:
                    shutil.copyfileobj(fh, out, 1 << 20)
                sources.append((label, path))
            return import_files(name, sources, progress, root, pedal)
    except OSError as e:
        raise DatasetError(f"Nothing was added to '{dataset_name(name)}': {storage_error(spool, e)}") from None
