"""A dataset's encoding for one family on disk: every piece's input and target rows end to end in two flat
memory-mapped files, with the pieces' offsets. Training draws its windows from them by index, a batch at a
time, so its memory does not grow with the collection (as nanoGPT's memmap and keras-io's per-batch windows).

A folder data/encoded/KEY/ holds inputs.bin, targets.bin, offsets.bin and meta.json; KEY is a fingerprint of
the encoding and of the pieces' notes, so an encoding is written once and reused while neither changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.config import data_dir
from musicgen.errors import storage_error
from musicgen.families import Encoding, Windows, encode
from musicgen.infra.files import write_json
from musicgen.infra.memory import MappedFile
from musicgen.music.notes import Notes

FORMAT = 1
RELEASE_EVERY = 4  # batches drawn between handing back the pages they read


@dataclass(frozen=True)
class Encoded:
    inputs: np.ndarray  # memory-mapped, shape=(rows, columns)
    targets: np.ndarray  # memory-mapped, shape=(rows, heads)
    offsets: np.ndarray  # int64, shape=(pieces + 1,): piece k is rows offsets[k]:offsets[k + 1]
    files: tuple = ()  # the memory.MappedFile of inputs and targets

    def release(self) -> None:
        """Hand back the pages read so far (resident memory stays flat however many windows are drawn)."""
        for f in self.files:
            f.release()

    @property
    def pieces(self) -> int:
        return len(self.offsets) - 1


def fingerprint(enc: Encoding, tables: list[Notes], extra: str = "") -> str:
    """A key for the encoding of these tables: the encoding's settings and a checksum of every note."""
    h = hashlib.sha1(json.dumps(enc.to_json(), sort_keys=True).encode() + extra.encode())
    for n in tables:
        crc = zlib.crc32(n.pitch.tobytes(), zlib.crc32(n.start_beat.tobytes(), zlib.crc32(n.end_beat.tobytes())))
        h.update(f"{len(n)}:{crc}:{zlib.crc32(n.voice.tobytes())}:{n.keys}:{n.meter};".encode())
    return h.hexdigest()[:20]


def encoded(enc: Encoding, tables: Iterable[Notes], key: str, root: Path | None = None) -> Encoded:
    """The encoding of the tables, from data/encoded/KEY when written before, else written now a piece at a
    time (only one piece's rows in memory) into a folder that becomes KEY whole or not at all."""
    base = (root or data_dir()) / "encoded"
    found = load(base / key)
    if found is not None:
        return found
    shutil.rmtree(base / key, ignore_errors=True)  # not whole (a crash, flipped bytes): written again
    tmp = base / f".{key}.{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        offsets, x_dtype, y_dtype, cols, heads = [0], None, None, None, None
        with open(tmp / "inputs.bin", "wb") as xf, open(tmp / "targets.bin", "wb") as yf:
            for notes in tables:
                x, y = encode(enc, notes)
                if x_dtype is None:
                    x_dtype, y_dtype, cols, heads = x.dtype.str, y.dtype.str, x.shape[1], y.shape[1]
                xf.write(np.ascontiguousarray(x, dtype=x_dtype).tobytes())
                yf.write(np.ascontiguousarray(y, dtype=y_dtype).tobytes())
                offsets.append(offsets[-1] + len(x))
        np.asarray(offsets, np.int64).tofile(tmp / "offsets.bin")
        write_json(tmp / "meta.json", {"format": FORMAT, "rows": offsets[-1], "pieces": len(offsets) - 1,
                                       "columns": cols or 1, "heads": heads or 1, "x_dtype": x_dtype or "<f4",
                                       "y_dtype": y_dtype or "<f4"})
        try:
            os.replace(tmp, base / key)
        except OSError:  # another process wrote the same encoding first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise storage_error(base / key, e) from None
    found = load(base / key)
    if found is None:
        raise storage_error(base / key, OSError("written but unreadable"))
    return found


def load(folder: Path) -> Encoded | None:
    """The encoding in folder, memory-mapped; None when missing, of another format or not whole."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            return None
        rows, cols, heads = int(meta["rows"]), int(meta["columns"]), int(meta["heads"])
        offsets = np.fromfile(folder / "offsets.bin", dtype=np.int64)
        if len(offsets) != int(meta["pieces"]) + 1 or (len(offsets) and offsets[-1] != rows):
            return None

        files = (MappedFile(folder / "inputs.bin"), MappedFile(folder / "targets.bin"))

        def mapped(f: MappedFile, dtype: str, width: int) -> np.ndarray:
            if rows == 0:
                return np.zeros((0, width), dtype=dtype)
            return f.bytes.view(dtype)[:rows * width].reshape(rows, width)

        return Encoded(mapped(files[0], meta["x_dtype"], cols), mapped(files[1], meta["y_dtype"], heads), offsets,
                       files)
    except (OSError, ValueError, KeyError, TypeError):
        return None


class WindowSource:
    """The training windows of an encoding, drawn by index: the same windows as families.windows makes, never
    all in memory. every_step: chunks of seq_length rows (every seq_length // 2 rows) predicting the next row at
    each position, a piece's last chunk padded and weighted 0 there; else one left-padded window per target.

    moves: (semitones, each piece's (lowest, highest) move (Family.move_bounds), the family's transpose_rows for
    this encoding): after the pieces as they are, each moved by -semitones..+semitones within its bounds, in that
    order (the windows of the moved pieces' encodings, made batch by batch from the pieces' own)."""

    def __init__(self, data: Encoded, seq_length: int, every_step: bool, moves=None):
        self.data, self.seq_length, self.every_step = data, seq_length, every_step
        self.hop = max(1, seq_length // 2)
        n = np.diff(data.offsets)
        if every_step:
            counts = np.where(n >= 2, 1 + np.maximum(0, -(-(n - 1 - seq_length) // self.hop)), 0)
        else:
            counts = np.maximum(n - 1, 0)
        self.piece = np.arange(len(n), dtype=np.int64)  # the stored piece of each piece drawn from, and its move
        self.shift = np.zeros(len(n), np.int64)
        self.transpose = None
        if moves is not None and moves[0]:
            semitones, bounds, self.transpose = moves
            bounds = np.asarray(bounds, np.int64).reshape(-1, 2)
            for s in (s for s in range(-semitones, semitones + 1) if s):
                fits = np.flatnonzero((bounds[:, 0] <= s) & (s <= bounds[:, 1]))
                self.piece = np.concatenate([self.piece, fits])
                self.shift = np.concatenate([self.shift, np.full(len(fits), s)])
        # first window of each piece drawn from
        self.first = np.concatenate([[0], np.cumsum(counts[self.piece])]).astype(np.int64)
        self.taken = 0  # calls of take since the pages read were last handed back

    def __len__(self) -> int:
        return int(self.first[-1])

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(inputs, targets, weights or None) of the windows numbered idx, shape=(len(idx), seq_length, ...)."""
        out = self._gather(np.asarray(idx, np.int64))
        self.taken += 1
        if self.taken >= RELEASE_EVERY:  # the windows are copies: the pages they came from can go
            self.taken = 0
            self.data.release()
        return out

    def _gather(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        drawn = np.searchsorted(self.first, idx, side="right") - 1
        local = idx - self.first[drawn]
        piece, shift = self.piece[drawn], self.shift[drawn]
        p0, p1 = self.data.offsets[piece], self.data.offsets[piece + 1]
        steps = np.arange(self.seq_length)
        pad = np.zeros(self.data.inputs.shape[1], self.data.inputs.dtype)
        if self.every_step:
            start = p0 + local * self.hop
            rows = start[:, None] + steps[None, :]  # inputs; targets one row later
            valid = rows + 1 < p1[:, None]
            x = np.where(valid[..., None], self.data.inputs[np.where(valid, rows, p0[:, None])], pad)
            y = np.where(valid[..., None], self.data.targets[np.where(valid, rows + 1, p0[:, None])], 0)
            x, y = self._moved(x, y.astype(self.data.targets.dtype), shift, valid & (rows > p0[:, None]), valid)
            return x, y, valid.astype(np.float32)
        target = p0 + local + 1
        rows = target[:, None] - self.seq_length + steps[None, :]
        valid = rows >= p0[:, None]
        x = np.where(valid[..., None], self.data.inputs[np.where(valid, rows, p0[:, None])], pad)
        x, y = self._moved(x, np.asarray(self.data.targets[target]), shift, valid & (rows > p0[:, None]),
                           np.ones(len(idx), bool))
        return x, y, None

    def _moved(self, x, y, shift, x_events, y_events):
        """The windows of moved pieces, moved (the family's transpose_rows, one call per distinct move)."""
        for s in np.unique(shift[shift != 0]).tolist():
            k = shift == s
            x[k], y[k] = self.transpose(x[k], y[k], s, x_events[k], y_events[k])
        return x, y

    def all(self) -> Windows:
        x, y, w = self.take(np.arange(len(self)))
        return Windows(x, y, w)
