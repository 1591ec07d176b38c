"""Quotation: the longest run of notes a piece shares (as intervals) with its training music, and an index of
every run long enough to be a quotation, for the sampler to keep clear of."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicgen.music.notes import Notes
from musicgen.music.grid import intervals

COPY_LIMIT = 16  # notes: a longer shared run is a quotation, not style


@dataclass(frozen=True)
class Copy:
    notes: int  # length of the longest run of consecutive notes shared with a training piece
    piece: str | None  # the training piece it is shared with


def longest_copy(generated: Notes, training: dict[str, Notes]) -> Copy:
    """The longest run of consecutive notes (compared as intervals) that also stands in a training piece."""
    gen = intervals(generated)
    train = {name: intervals(n) for name, n in training.items()}

    def shared(length: int) -> str | None:
        if length == 0:
            return next(iter(train), None)
        wanted = {tuple(gen[i:i + length]) for i in range(len(gen) - length + 1)}
        for name, seq in train.items():
            for i in range(len(seq) - length + 1):
                if tuple(seq[i:i + length]) in wanted:
                    return name
        return None

    lo, hi, where = 0, len(gen), shared(0)  # lo intervals are shared; more than hi cannot be
    while lo < hi:
        mid = (lo + hi + 1) // 2
        found = shared(mid)
        if found is not None:
            lo, where = mid, found
        else:
            hi = mid - 1
    return Copy(lo + 1 if len(generated) else 0, where if lo else None)


class Quotes:
    """Every run of COPY_LIMIT + 1 consecutive notes (as intervals) of some pieces, to tell a sampler which
    continuations would quote them: 8 bytes per note of the pieces."""

    def __init__(self, pieces):
        keys = [self._keys(intervals(n)) for n in pieces]
        self.keys = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.uint64)

    @staticmethod
    def _keys(iv: np.ndarray) -> np.ndarray:
        if len(iv) < COPY_LIMIT:
            return np.zeros(0, np.uint64)
        windows = np.lib.stride_tricks.sliding_window_view((iv + 128).astype(np.uint64), COPY_LIMIT)
        key = np.zeros(len(windows), np.uint64)
        with np.errstate(over="ignore"):  # a polynomial hash, wrapping at 2**64
            for j in range(COPY_LIMIT):
                key = key * np.uint64(1_000_003) + windows[:, j]
        return key

    def quotes(self, pitches: list[int]) -> bool:
        """Whether the last COPY_LIMIT + 1 of these pitches (in the order of a note table) stand in a piece."""
        if len(pitches) <= COPY_LIMIT or not len(self.keys):
            return False
        key = self._keys(np.diff(np.array(pitches[-COPY_LIMIT - 1:], np.int64)))[0]
        i = int(np.searchsorted(self.keys, key))
        return i < len(self.keys) and self.keys[i] == key
