"""Datasets on disk: built-in corpora made from music21's bundled scores, user datasets, and their parse cache.

A dataset is a folder data/datasets/NAME/ holding midi/ (the files), dataset.json (title, splits)
and a parse cache (cache.bin + cache.json) that makes re-opening it cost about a millisecond.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import json
import os
import re
import shutil
import zipfile
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .config import (
    DEFAULT_TEMPO_QPM,
    MAX_MIDI_BYTES,
    MAX_UPLOAD_BYTES,
    MAX_ZIP_MEMBERS,
    MAX_ZIP_TOTAL_BYTES,
    MIDI_SUFFIXES,
    data_dir,
)
from .errors import DatasetError, MidiError, StorageError, storage_error
from .memory import MappedFile
from .midi_io import Notes, Part, TempoMap, midi_title, read_midi, too_large, write_atomic, write_json, write_midi

Progress = Callable[[int, int, str], None]  # (done, total, what is happening)
SPLITS = ("train", "validation", "test")
# A worker process costs about half a second to start; below these counts one process is faster.
PARSE_PARALLEL_FROM = 400  # MIDI files, about 2.5 ms each
BUILD_PARALLEL_FROM = 8  # music21 scores, about 60 ms each
CACHE_VERSION = 7  # 3: beats, voices, tempo map and signatures, checksum; 4: titles; 5: blocks, added as parsed;
# 6: each file's pitch range; 7: fermatas
BUILTIN_VERSION = 3  # 2: titles in the files; 3: fermatas; an older built-in corpus is made again by `datasets --build`


@dataclass(frozen=True)
class Builtin:
    title: str
    description: str
    source: str  # what music21 ships: 'chorales' or a list of Essen .abc files


BUILTINS = {
    "bach-chorales": Builtin(
        "Bach chorales",
        "371 four-part chorales by J. S. Bach (soprano, alto, tenor, bass), from the music21 corpus.",
        "chorales",
    ),
    "essen-folk": Builtin(
        "German folk songs",
        "629 German folk melodies (altdeu10 and altdeu20) from the Essen Folksong Collection, from the music21 corpus.",
        "essenFolksong/altdeu10 essenFolksong/altdeu20",
    ),
}
DEFAULT_DATASET = "bach-chorales"


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
            from .explore import summarize

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


@dataclass(frozen=True)
class MidiFile:
    """MIDI bytes found in a source, not parsed yet."""

    label: str  # what the user calls it, e.g. songs.zip/a/b.mid
    relpath: str  # path inside its folder or zip, '/'-separated, safe
    data: bytes
    split: str | None = None


# ---------------------------------------------------------------- names and folders

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


def safe_file_name(relpath: str) -> str:
    """A relative path inside a folder or zip as one flat, safe file name (folders joined by '__')."""
    parts = [re.sub(r"[^A-Za-z0-9._ ()+,-]+", "_", p).strip(" .") for p in PurePosixPath(relpath).parts]
    name = "__".join(p for p in parts if p) or "piece.mid"
    stem, dot, suffix = name.rpartition(".")
    if not dot or "." + suffix.lower() not in MIDI_SUFFIXES:
        stem, suffix = name, "mid"
    return f"{stem[:150]}.{suffix.lower()}"


@contextmanager
def _without_gc():
    """Many small objects made at once and kept (a collection's cache entries and pieces, none in a cycle): the
    collector would otherwise scan them again and again while they are made (20,000 files: 0.6-1.0 s -> 0.5 s)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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


# ---------------------------------------------------------------- reading sources safely

def _is_unsafe(member: str) -> bool:
    p = member.replace("\\", "/")
    return p.startswith("/") or re.match(r"^[A-Za-z]:", p) is not None or ".." in p.split("/")


def _zip_files(zf: zipfile.ZipFile, label: str, problems: list[str]) -> Iterator[tuple[str, bytes]]:
    """(relpath, bytes) of the MIDI members, refusing zip bombs and paths that climb out."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_MEMBERS:
        raise DatasetError(f"{label}: the zip archive holds {len(infos):,} files; the limit is {MAX_ZIP_MEMBERS:,}.")
    stated = sum(i.file_size for i in infos)
    if stated > MAX_ZIP_TOTAL_BYTES:
        raise DatasetError(f"{label}: the zip archive would unpack to {stated / 2**20:,.0f} MB; "
                           f"the limit is {MAX_ZIP_TOTAL_BYTES // 2**20} MB.")
    unpacked = 0
    for info in infos:
        member = info.filename
        base = member.replace("\\", "/").rsplit("/", 1)[-1]
        if member.startswith("__MACOSX/") or base.startswith("._") or base in (".DS_Store", "Thumbs.db"):
            continue  # operating-system litter, not the user's files
        if _is_unsafe(member):
            problems.append(f"{label}/{member}: skipped, its path points outside the archive.")
            continue
        if not base.lower().endswith(MIDI_SUFFIXES):
            problems.append(f"{label}/{member}: skipped, not a MIDI file (.mid or .midi).")
            continue
        if info.file_size > MAX_MIDI_BYTES:
            problems.append(too_large(f"{label}/{member}", info.file_size, MAX_MIDI_BYTES))
            continue
        try:
            with zf.open(info) as fh:
                data = fh.read(MAX_MIDI_BYTES + 1)  # the header's size may lie; never read more than the cap
        except (zipfile.BadZipFile, OSError, RuntimeError) as e:  # RuntimeError: encrypted, unknown compression
            problems.append(f"{label}/{member}: skipped, it cannot be unpacked ({e}).")
            continue
        if len(data) > MAX_MIDI_BYTES:
            problems.append(f"{label}/{member}: skipped, it unpacks to more than {MAX_MIDI_BYTES // 2**20} MB.")
            continue
        unpacked += len(data)
        if unpacked > MAX_ZIP_TOTAL_BYTES:
            raise DatasetError(f"{label}: the zip archive unpacks to more than {MAX_ZIP_TOTAL_BYTES // 2**20} MB; "
                               f"the files after that were skipped.")
        yield member.replace("\\", "/"), data


def _read_zip(data_or_path, label: str, problems: list[str]) -> Iterator[MidiFile]:
    """The zip's MIDI members one at a time (only one member's bytes in memory at once)."""
    import io

    src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    damaged = f"{label}: the zip archive is damaged and cannot be opened."
    try:
        zf = zipfile.ZipFile(src)
    except zipfile.BadZipFile:
        raise DatasetError(damaged) from None
    with zf:
        try:
            csv_texts = {n.replace("\\", "/"): zf.read(n) for n in zf.namelist()
                         if n.lower().endswith(".csv") and not _is_unsafe(n) and zf.getinfo(n).file_size < 2**24}
        except (zipfile.BadZipFile, OSError, RuntimeError):
            csv_texts = {}
        splits = _splits_from_csvs(csv_texts)
        try:
            for rel, d in _zip_files(zf, label, problems):
                yield MidiFile(f"{label}/{rel}", rel, d, splits.get(rel))
        except zipfile.BadZipFile:
            raise DatasetError(damaged) from None


def _splits_from_csvs(csvs: dict[str, bytes]) -> dict[str, str]:
    """A MAESTRO-style CSV (columns midi_filename and split) names each file's split; paths are relative to it."""
    import csv
    import io

    out = {}
    for rel, raw in csvs.items():
        base = PurePosixPath(rel).parent
        try:
            rows = csv.DictReader(io.StringIO(raw.decode("utf-8-sig", errors="replace")))
            if not rows.fieldnames or not {"midi_filename", "split"} <= set(rows.fieldnames):
                continue
            for row in rows:
                split = {"valid": "validation", "val": "validation"}.get(row["split"].strip(), row["split"].strip())
                if split in SPLITS and row["midi_filename"]:
                    out[(base / row["midi_filename"].strip()).as_posix()] = split
        except csv.Error:
            continue
    return out


Source = str | os.PathLike | tuple[str, bytes] | tuple[str, Path]  # a path, or an upload: (its name, bytes or a file)


def read_sources(sources: Iterable[Source]) -> tuple[list[MidiFile], list[str]]:
    """MIDI files from paths (files, folders, zips) and uploads given as (file name, bytes or a file on disk).

    Returns (files, problems): every source that yields nothing usable is explained in problems.
    Files are not parsed here; a file with a MIDI suffix but bad content is caught when parsed.
    """
    problems: list[str] = []
    return list(iter_sources(sources, problems)), problems


def iter_sources(sources: Iterable[Source], problems: list[str]) -> Iterator[MidiFile]:
    """read_sources one file at a time, so a large import never holds all its bytes; problems fill as it goes."""
    for src in sources:
        try:
            yield from _read_source(src, problems)
        except DatasetError as e:  # one bad source (a damaged zip, a bomb) never stops the good ones
            problems.append(str(e))
        except OSError as e:
            problems.append(f"{src if not isinstance(src, tuple) else src[0]}: cannot be read ({e.strerror or e}).")


def count_sources(sources: Iterable[Source]) -> int:
    """About how many files the sources hold (for progress): zip members, MIDI files in folders, one each else."""
    import io

    total = 0
    for src in sources:
        what = src[1] if isinstance(src, tuple) else Path(src)
        try:
            if isinstance(what, Path) and what.is_dir():
                total += sum(1 for p in what.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)
                continue
            head = what[:2] if isinstance(what, bytes) else _head(what)
            if head == b"PK":
                with zipfile.ZipFile(io.BytesIO(what) if isinstance(what, bytes) else what) as zf:
                    total += sum(1 for i in zf.infolist() if i.filename.lower().endswith(MIDI_SUFFIXES))
                continue
        except (OSError, zipfile.BadZipFile):
            pass
        total += 1
    return total


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(2)


def _read_source(src, problems: list[str]) -> Iterator[MidiFile]:
    if isinstance(src, tuple):
        label, data = src
        label = PurePosixPath(str(label).replace("\\", "/")).name or "upload"
        size = len(data) if isinstance(data, bytes) else Path(data).stat().st_size
        if size > MAX_UPLOAD_BYTES:
            problems.append(too_large(label, size, MAX_UPLOAD_BYTES))
            return
        head = data[:2] if isinstance(data, bytes) else _head(Path(data))
        if head == b"PK" or label.lower().endswith(".zip"):
            yield from _read_zip(data, label, problems)
        elif size > MAX_MIDI_BYTES:
            problems.append(too_large(label, size, MAX_MIDI_BYTES))
        else:
            yield MidiFile(label, label, data if isinstance(data, bytes) else Path(data).read_bytes())
        return
    path = Path(src)
    if path.is_dir():
        yield from _read_folder(path, problems)
    elif path.is_file() and (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)):
        yield from _read_zip(path, path.name, problems)
    elif path.is_file():
        if path.stat().st_size > MAX_MIDI_BYTES:
            problems.append(too_large(path.name, path.stat().st_size, MAX_MIDI_BYTES))
        else:
            yield MidiFile(str(src), path.name, path.read_bytes())
    else:
        problems.append(f"{src}: there is no such file, folder or dataset.")


def _walk(folder: Path, rel: str = "") -> Iterator[str]:
    """Relative paths of the MIDI files under folder, in sorted path order, a folder's names at a time (a
    collection's paths are never all in memory)."""
    with os.scandir(os.path.join(folder, rel)) as it:
        entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
    names = [name for name, _ in entries]
    dirs = {name for name, is_dir in entries if is_dir}
    del entries
    for name in names:
        path = f"{rel}/{name}" if rel else name
        if name in dirs:
            yield from _walk(folder, path)
        elif name.lower().endswith(MIDI_SUFFIXES):
            yield path


def _read_folder(folder: Path, problems: list[str]) -> Iterator[MidiFile]:
    csvs = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.csv")
            if p.stat().st_size < 2**24}
    splits = _splits_from_csvs(csvs)
    found = False
    for rel in _walk(folder):
        p = Path(os.path.join(folder, rel))  # one string: pathlib interns each name it is given
        if not p.is_file():
            continue
        found = True
        if p.stat().st_size > MAX_MIDI_BYTES:
            problems.append(too_large(f"{folder.name}/{rel}", p.stat().st_size, MAX_MIDI_BYTES))
            continue
        yield MidiFile(str(p), rel, p.read_bytes(), splits.get(rel))
    if not found:
        problems.append(f"{folder}: the folder has no MIDI files (.mid or .midi).")


# ---------------------------------------------------------------- parsing, in parallel when it pays

def _parse_one(item: tuple[str, bytes | str, bool]) -> tuple:
    label, data, pedal = item
    try:
        n = read_midi(data if isinstance(data, bytes) else Path(data), name=label, pedal=pedal)
    except MidiError as e:
        return ("error", str(e))
    return ("ok", n)


def _run_all(fn, items: list, progress: Progress | None, what: str, parallel_from: int) -> list:
    """fn over items, in worker processes on all cores when there are enough items, reporting progress."""
    total = len(items)
    workers = min(os.cpu_count() or 1, 8)
    if progress:
        progress(0, total, what)
    if total >= parallel_from and workers > 1:
        from .jobs import pool_context

        pool = ProcessPoolExecutor(workers, mp_context=pool_context())
        try:
            return _collect(pool.map(fn, items, chunksize=max(1, total // 64)), total, progress, what)
        except BrokenProcessPool:
            pass  # a worker could not start (e.g. an unusual __main__): do the work here instead
        finally:
            pool.shutdown(cancel_futures=True)
    return _collect(map(fn, items), total, progress, what)


def _collect(results: Iterable, total: int, progress: Progress | None, what: str) -> list:
    out = []
    for i, r in enumerate(results, 1):
        out.append(r)
        if progress and (i == total or i % max(1, total // 100) == 0):
            progress(i, total, what)
    return out


def parse_files(items: list[tuple[str, bytes | Path]], progress: Progress | None = None,
                pedal: bool = False) -> list[Notes | str]:
    """Parse (label, bytes or path) items; each result is a Notes or the sentence saying why not.
    pedal: apply the sustain pedal to note lengths (piano performances)."""
    out = []
    for r in _run_all(_parse_one, [(label, d if isinstance(d, bytes) else str(d), pedal) for label, d in items],
                      progress, "reading MIDI files", PARSE_PARALLEL_FROM):
        out.append(r[1])
    return out


# ---------------------------------------------------------------- the parse cache

_FLOATS, _INTS = ("start", "end", "start_beat", "end_beat"), ("pitch", "velocity", "program", "voice")
_ROW_BYTES = 8 * len(_FLOATS) + 2 * len(_INTS)  # a multiple of 8: every block starts aligned for float64
CACHE_NAME = "the dataset's note cache"  # what a sentence about a failed cache write names (not a temp file)
CACHE_GARBAGE = 0.5  # rewrite the cache when more than this share of its rows belongs to files gone or changed


def _crc(fh, at: int, length: int) -> int:
    """zlib.crc32 of length bytes from at, read a megabyte at a time (never all in memory)."""
    fh.seek(at)
    crc = 0
    while length > 0:
        chunk = fh.read(min(length, 1 << 20))
        if not chunk:
            return -1
        crc, length = zlib.crc32(chunk, crc), length - len(chunk)
    return crc


def _cache_meta(folder: Path) -> dict | None:
    """cache.json when it is this version's and well-formed (its blocks not checked), else None."""
    try:
        meta = json.loads((folder / "cache.json").read_text())
        if meta.get("version") != CACHE_VERSION or not isinstance(meta["files"], list) or \
                not isinstance(meta["blocks"], list) or not isinstance(meta.get("sizes"), dict):
            return None
        for b in meta["blocks"]:
            if not all(isinstance(b[k], int) and b[k] >= 0 for k in ("at", "rows", "crc32")):
                return None
        for e in meta["files"]:
            if not isinstance(e["name"], str) or not (e["error"] is None or isinstance(e["error"], str)):
                return None
            if e["error"] is None and not (0 <= e["block"] < len(meta["blocks"]) and e["count"] >= 0 and
                                           0 <= e["offset"] <= meta["blocks"][e["block"]]["rows"] - e["count"]):
                return None
        return meta
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _load_cache(folder: Path) -> tuple[dict, list[dict[str, np.ndarray]], MappedFile] | None:
    """(meta, each block's columns, the mapped file they lie in) or None when missing, stale, damaged or
    half-written.
    Every block's checksum is checked on opening (flipped bytes are parsed again, never served)."""
    meta = _cache_meta(folder)
    if meta is None:
        return None
    path = folder / "cache.bin"
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            for b in meta["blocks"]:
                if b["at"] % 8 or b["at"] + b["rows"] * _ROW_BYTES > size or \
                        _crc(fh, b["at"], b["rows"] * _ROW_BYTES) != b["crc32"]:
                    return None  # another process half-way, or flipped bytes: parse again
        pages = MappedFile(path)  # its many slices (8 per piece) are plain views
        raw = pages.bytes
    except (OSError, ValueError):
        return None
    blocks = []
    for b in meta["blocks"]:
        at, n = b["at"], b["rows"]
        floats = raw[at:at + 8 * len(_FLOATS) * n].view(np.float64).reshape(len(_FLOATS), n)
        ints = raw[at + 8 * len(_FLOATS) * n:at + _ROW_BYTES * n].view(np.int16).reshape(len(_INTS), n)
        blocks.append({**dict(zip(_FLOATS, floats)), **dict(zip(_INTS, ints))})
    return meta, blocks, pages


class _Stored:
    """How to make one cached piece's notes: where its rows lie and its timing as read from cache.json."""

    __slots__ = ("cols", "at", "count", "tempo_map", "meter", "keys", "fermatas")

    def __init__(self, cols: dict[str, np.ndarray], e: dict):
        self.cols, self.at, self.count = cols, e["offset"], e["count"]
        self.tempo_map, self.meter, self.keys = e["tempo_map"], e["meter"], e["keys"]
        self.fermatas = e.get("fermatas", ())

    def __call__(self) -> Notes:
        cols, s = self.cols, slice(self.at, self.at + self.count)
        return Notes(pitch=cols["pitch"][s], start=cols["start"][s], end=cols["end"][s],
                     velocity=cols["velocity"][s], program=cols["program"][s], start_beat=cols["start_beat"][s],
                     end_beat=cols["end_beat"][s], voice=cols["voice"][s],
                     tempo_map=TempoMap.from_json(self.tempo_map),
                     meter=tuple((float(b), int(n), int(d)) for b, n, d in self.meter),
                     keys=tuple((float(b), int(k), bool(m)) for b, k, m in self.keys),
                     fermatas=tuple(float(b) for b in self.fermatas))


_HEAD_END = b',"files":[\n'  # how cache.json's first line ends


def _cache_head(folder: Path) -> dict | None:
    """cache.json without its entries (version, stamp, pedal, blocks, sizes), from its first line alone: a
    collection's listing reads a line, not every file's entry. None when missing or not of this layout."""
    try:
        with open(folder / "cache.json", "rb") as fh:
            line = fh.readline(1 << 22)
        if not line.endswith(_HEAD_END):
            return None
        head = json.loads(line[:-len(_HEAD_END)] + b"}")
        ok = isinstance(head, dict) and head.get("version") == CACHE_VERSION and isinstance(head.get("sizes"), dict)
        return head if ok else None
    except (OSError, ValueError):
        return None


def _compact(entry: dict) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode()


class _CacheWriter:
    """Adds note tables to a dataset's cache a block at a time: cache.bin grows by appending (rows already
    there stay where they are, so readers of the old cache.json go on undisturbed), and cache.json, written
    atomically after each block, says which rows are whose. Each file's entry waits in a spool file beside the
    cache, so memory holds one block, however large the dataset.

    An old cache's entries are kept for the files still there unchanged (by size and time); fresh=True starts
    a new cache (written beside and put in place whole by close)."""

    def __init__(self, folder: Path, pedal: bool, old: dict | None, fresh: bool):
        self.folder, self.fresh = folder, fresh or old is None
        # the old stamp until close: a reader never takes a cache still being added to as current
        self.head = {"version": CACHE_VERSION, "stamp": None if self.fresh else old.get("stamp"), "pedal": pedal,
                     "blocks": [] if self.fresh else list(old["blocks"])}
        self.path = folder / (f".cache.{os.getpid()}.tmp" if self.fresh else "cache.bin")
        self.spool_path = folder / f".cache.{os.getpid()}.entries.tmp"
        self.count = 0  # entries in the spool
        self.head["sizes"] = {"pieces": 0, "notes": 0, "seconds": 0.0}  # of the usable files: what a listing shows
        end = max((b["at"] + b["rows"] * _ROW_BYTES for b in self.head["blocks"]), default=0)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.spool = open(self.spool_path, "w+b")
            self.fh = open(self.path, "r+b" if self.path.exists() and not self.fresh else "w+b")
            self.fh.truncate(end)  # bytes after the last block are a crashed writer's: not anyone's
            for e in [] if self.fresh else old["files"]:
                try:
                    if _file_key(folder / "midi" / e["name"]) == e["key"]:
                        self._spool(e)
                except OSError:
                    pass  # gone
        except OSError as e:
            self.abandon()
            raise storage_error(CACHE_NAME, e) from None

    def _spool(self, entry: dict) -> None:
        self.spool.write(_compact(entry) + b",\n")
        self.count += 1
        if not entry["error"]:
            sizes = self.head["sizes"]
            sizes["pieces"] += 1
            sizes["notes"] += entry["count"]
            sizes["seconds"] += float(entry.get("seconds", 0.0))

    def add(self, entries: list[dict], tables: list[Notes | None]) -> None:
        """One block: the entries (name, key, error, title) of files not in the cache, with their note tables
        (None for an error)."""
        kept = [t for t in tables if t is not None]
        block, at = len(self.head["blocks"]), 0
        for e, t in zip(entries, tables):
            if t is not None:
                e.update(block=block, offset=at, count=len(t), seconds=float(t.end.max()) if len(t) else 0.0,
                         low=int(t.pitch.min()) if len(t) else 0, high=int(t.pitch.max()) if len(t) else 0,
                         tempo_map=t.tempo_map.to_json(), meter=[list(m) for m in t.meter],
                         keys=[list(k) for k in t.keys])
                if t.fermatas:
                    e["fermatas"] = list(t.fermatas)
                at += len(t)
        try:
            where, crc = self.fh.seek(0, os.SEEK_END), 0
            for names, dtype in ((_FLOATS, np.float64), (_INTS, np.int16)):  # a column at a time
                for f in names:
                    column = np.concatenate([getattr(t, f) for t in kept] or [np.zeros(0)]).astype(dtype)
                    self.fh.write(column)
                    crc = zlib.crc32(column, crc)
            self.fh.flush()
            self.head["blocks"].append({"at": where, "rows": at, "crc32": crc})
            for e in entries:
                self._spool(e)
            if not self.fresh:
                self._write_json()
        except OSError as e:
            raise storage_error(CACHE_NAME, e) from None

    def _lines(self) -> Iterator[bytes]:
        """The spool's entries, a line each (without the separator)."""
        self.spool.flush()
        self.spool.seek(0)
        for line in self.spool:
            yield line[:-2]
        self.spool.seek(0, os.SEEK_END)

    def _write_json(self) -> None:
        """cache.json: the head on the first line (see _cache_head), then the entries from the spool, a line
        at a time."""
        def chunks():
            yield _compact(self.head)[:-1] + _HEAD_END
            for k, line in enumerate(self._lines()):
                yield line if k == 0 else b",\n" + line
            yield b"\n]}\n"

        write_atomic(self.folder / "cache.json", chunks())

    def covers(self, midi: Path) -> bool:
        """Whether the cache has an entry for each file in the midi folder (each entry is a file's there)."""
        return self.count == sum(1 for e in os.scandir(midi) if e.is_file() and not e.name.startswith("."))

    def entries(self) -> Iterator[dict]:
        """The cache's entries, one at a time (until close)."""
        return (json.loads(line) for line in self._lines())

    def close(self, stamp: int | None = None) -> None:
        """Finish: mark the cache as current for the midi folder's stamp; a fresh cache takes the place of the
        old one."""
        if stamp is not None:
            self.head["stamp"] = stamp
        try:
            self.fh.close()
            if self.fresh:
                (self.folder / "cache.json").unlink(missing_ok=True)  # never the new rows with the old layout
                os.replace(self.path, self.folder / "cache.bin")
            self._write_json()
        except OSError as e:
            self.abandon()
            raise storage_error(CACHE_NAME, e) from None
        self.spool.close()
        self.spool_path.unlink(missing_ok=True)

    def abandon(self) -> None:
        for fh in (getattr(self, "fh", None), getattr(self, "spool", None)):
            if fh is not None:
                fh.close()
        if self.fresh:
            self.path.unlink(missing_ok=True)
        self.spool_path.unlink(missing_ok=True)


def _cache_batches(names: list[str], midi: Path, progress: Progress | None, pedal: bool):
    """(entries, tables) a batch of files at a time, parsed."""
    total = len(names)
    for at in range(0, total, IMPORT_BATCH_FILES):
        batch = names[at:at + IMPORT_BATCH_FILES]

        def step(d, t, what, at=at):
            if progress:
                progress(at + d, total, what)

        results = parse_files([(n, midi / n) for n in batch], step, pedal)
        entries, tables = [], []
        for name, r in zip(batch, results):
            try:
                key = _file_key(midi / name)
            except OSError:  # gone meanwhile: seen next time
                continue
            entries.append({"name": name, "key": key, "error": r if isinstance(r, str) else None,
                            "title": None if isinstance(r, str) else _file_title(midi / name)})
            tables.append(None if isinstance(r, str) else r)
        yield entries, tables


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


def _refresh_cache(folder: Path, midi: Path, stamp: int, cache, progress: Progress | None, pedal: bool) -> None:
    """Bring the cache up to date: cached files kept, new or changed ones parsed and added; the cache is
    written anew (without the rows of files gone) when those are more than CACHE_GARBAGE of it."""
    current = _midi_files(midi)
    old = cache[0] if cache else None
    cached = {e["name"]: e for e in old["files"]} if old else {}
    fresh = sorted(n for n, key in current.items() if cached.get(n, {}).get("key") != key)
    live = sum(e.get("count", 0) for n, e in cached.items() if current.get(n) == e["key"] and not e["error"])
    rows = sum(b["rows"] for b in old["blocks"]) if old else 0
    rewrite = old is None or rows > live / (1 - CACHE_GARBAGE)
    writer = _CacheWriter(folder, pedal, old, fresh=rewrite)
    try:
        if rewrite and cache is not None:  # the files still there, copied over a block at a time
            by_block: dict[int, list[dict]] = {}
            for n, e in cached.items():
                if current.get(n) == e["key"]:
                    by_block.setdefault(e.get("block", -1), []).append(dict(e))
            for b, entries in sorted(by_block.items()):
                writer.add(entries, [None if e["error"] else _Stored(cache[1][e["block"]], e)() for e in entries])
        for entries, tables in _cache_batches(fresh, midi, progress, pedal):
            writer.add(entries, tables)
        writer.close(stamp)
    except BaseException:
        writer.abandon()
        raise


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


# ---------------------------------------------------------------- datasets

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


@dataclass
class ImportReport:
    name: str  # the dataset's
    added: list[str]  # stored file names
    problems: list[str]  # files skipped, each with its sentence
    duplicates: int  # files already in the dataset
    summary: object  # explore.Summary of the whole dataset now


def _summary(entries: Iterable[dict]):
    """explore.summarize of a cache's pieces, from its entries one at a time (no note table opened)."""
    from array import array

    from .explore import Summary

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


IMPORT_BATCH_FILES = 500  # files parsed at a time by an import (in parallel when there are many)
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


# ---------------------------------------------------------------- built-in corpora from music21

def _builtin_tasks(name: str) -> list[tuple[str, str, str, str | None]]:
    """(file name, kind, what to parse, title) for every piece of a built-in corpus."""
    from music21 import corpus as m21corpus

    def work_path(work: str) -> Path:
        found = m21corpus.getWork(work)
        found = found if isinstance(found, list) else [found]
        # 'bach/bwv245.3' also matches bwv245.37, and some works come as both .krn and .mxl
        exact = [Path(p) for p in found if Path(p).stem == Path(work).name] or [Path(p) for p in found]
        return sorted(exact, key=lambda p: p.suffix != ".mxl")[0]

    source = BUILTINS[name].source
    if source == "chorales":
        titles = m21corpus.chorales.ChoraleListRKBWV().byBWV  # by BWV number as text, e.g. '10.7'

        def title(work: str) -> str | None:
            found = titles.get(Path(work).name.removeprefix("bwv"), {}).get("title")
            return f"{found} (BWV {Path(work).name.removeprefix('bwv')})" if found else None

        return [(f"{Path(w).name}.mid", "path", str(work_path(w)), title(w))
                for w in dict.fromkeys(m21corpus.chorales.Iterator(returnType="filename"))]  # it lists some twice
    tasks = []
    for work in source.split():
        path = work_path(work)
        text = path.read_text(encoding="latin-1")
        for tune in re.split(r"\n(?=X:)", text):
            m = re.match(r"X:\s*(\d+)", tune.strip())
            if m:
                t = re.search(r"^T:\s*(.+)$", tune, re.M)
                title = t.group(1).strip() if t else "untitled"
                tasks.append((safe_file_name(f"{path.stem}-{int(m.group(1)):03d} {title}.mid"), "abc", tune.strip(),
                              title))
    return tasks


def _score_parts(task: tuple[str, str, str, str | None]) -> tuple[str, bytes | None, str | None]:
    """One music21 score as MIDI bytes with one track per part, its time and key signature;
    (file name, bytes, error). A pickup bar is padded with rests, so bar lines fall where MIDI expects them."""
    from music21 import converter, expressions, key, meter, tempo

    file_name, kind, what, title = task
    try:
        score = (converter.parse(what, forceSource=True, storePickle=False) if kind == "path"
                 else converter.parse(what, format="abc", forceSource=True))
        flat = score.flatten()
        marks = list(flat.getElementsByClass(tempo.MetronomeMark))
        qpm = float(marks[0].getQuarterBPM() or DEFAULT_TEMPO_QPM) if marks else DEFAULT_TEMPO_QPM
        signatures = list(flat.getElementsByClass(meter.TimeSignature))
        sig = (int(signatures[0].numerator), int(signatures[0].denominator)) if signatures else None
        found = list(flat.getElementsByClass(key.KeySignature))
        keys = ((0.0, int(found[0].sharps), getattr(found[0], "mode", "major") == "minor"),) if found else ()
        voices = list(getattr(score, "parts", None) or [score])
        measures = list(voices[0].getElementsByClass("Measure"))
        pad = float(measures[0].paddingLeft) if measures else 0.0
        meter_rows = ((0.0, *sig),) if sig else ()
        parts, fermatas = [], set()
        for i, part in enumerate(voices):
            rows = []
            for el in part.flatten().stripTies().notes:
                ql = float(el.quarterLength)
                if ql <= 0:
                    continue  # grace notes have no length of their own
                t = float(el.offset) + pad
                rows += [(p.midi, t, t + ql) for p in el.pitches]
                if any(isinstance(x, expressions.Fermata) for x in el.expressions):
                    fermatas.add(round(t * 48) / 48)
            if rows:
                arr = np.array(rows, dtype=np.float64)
                notes = Notes.from_beats(arr[:, 0], arr[:, 1], arr[:, 2], voice=i, tempo_map=TempoMap.constant(qpm),
                                         meter=meter_rows, keys=keys)
                parts.append(Part(part.partName or f"Part {i + 1}", 0, notes))
        if not parts:
            return file_name, None, f"{file_name}: the score has no notes."
        if kind == "abc":  # Essen's K: names only the tonic (K:A over an A-minor tune): the notes' key instead
            keys = ((0.0, *parts[0].notes.key_signature()),)
            parts = [Part(p.name, p.program, p.notes.replace(keys=keys)) for p in parts]
        parts[0] = Part(parts[0].name, parts[0].program, parts[0].notes.replace(fermatas=tuple(sorted(fermatas))))
        return file_name, write_midi(parts, title=title), None
    except Exception as e:  # a score music21 cannot read is skipped, the corpus goes on
        return file_name, None, f"{file_name}: music21 could not read this score ({type(e).__name__})."


def build_builtin(name: str, progress: Progress | None = None, root: Path | None = None,
                  limit: int | None = None) -> Path:
    """Write a built-in corpus as MIDI files under the data folder; `limit` keeps only the first pieces (tests)."""
    key = dataset_name(name)
    if key not in BUILTINS:
        raise DatasetError(f"There is no built-in corpus called '{name}'. Built-in: {', '.join(BUILTINS)}.")
    folder = _folder(key, root)
    with _locked(folder):
        if _read_meta(folder).get("version") == BUILTIN_VERSION:
            return folder
        tasks = _builtin_tasks(key)[:limit]
        results = _run_all(_score_parts, tasks, progress, f"building the {BUILTINS[key].title} corpus",
                           BUILD_PARALLEL_FROM)
        staging = folder.with_name(f".{key}.building")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "midi").mkdir(parents=True)
        for file_name, data, _ in results:
            if data is not None:
                (staging / "midi" / file_name).write_bytes(data)
        skipped = [err for _, _, err in results if err]
        _write_meta(staging, {"name": key, "title": BUILTINS[key].title, "builtin": True, "version": BUILTIN_VERSION,
                              "description": BUILTINS[key].description, "splits": {}, "skipped": skipped})
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    return folder
