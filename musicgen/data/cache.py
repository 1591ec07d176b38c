"""A dataset's parse cache (cache.bin: the note tables' columns; cache.json: one entry per file): written as
files are parsed, read back as views of a mapped file, so re-opening a dataset costs about a millisecond."""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from musicgen.data.folders import Progress, _file_key, _file_title, _midi_files
from musicgen.data.sources import parse_files
from musicgen.errors import storage_error
from musicgen.infra.files import write_atomic
from musicgen.infra.memory import MappedFile
from musicgen.music.notes import Notes, TempoMap

CACHE_VERSION = 7  # 3: beats, voices, tempo map and signatures, checksum; 4: titles; 5: blocks, added as parsed;


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


IMPORT_BATCH_FILES = 500  # files parsed at a time by an import (in parallel when there are many)
