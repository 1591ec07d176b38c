"""Files users give us, read safely (size limits, MIDI magic, zip members without absolute paths or ..), and
parsed into note tables, in worker processes when there are many."""

from __future__ import annotations

import gc
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from musicgen.config import MAX_MIDI_BYTES, MAX_UPLOAD_BYTES, MAX_ZIP_MEMBERS, MAX_ZIP_TOTAL_BYTES, MIDI_SUFFIXES
from musicgen.data.folders import SPLITS, Progress
from musicgen.errors import DatasetError, MidiError
from musicgen.music.midi import read_midi, too_large
from musicgen.music.notes import Notes

# A worker process costs about half a second to start; below these counts one process is faster.
PARSE_PARALLEL_FROM = 400  # MIDI files, about 2.5 ms each


@dataclass(frozen=True)
class MidiFile:
    """MIDI bytes found in a source, not parsed yet."""

    label: str  # what the user calls it, e.g. songs.zip/a/b.mid
    relpath: str  # path inside its folder or zip, '/'-separated, safe
    data: bytes
    split: str | None = None


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
        from musicgen.infra.processes import pool_context

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
