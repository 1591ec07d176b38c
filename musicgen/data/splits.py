"""Which pieces train, which validate: the split a dataset states, else one made by tune, so that two versions
of one tune never sit on both sides."""

from __future__ import annotations

import zlib

import numpy as np

from musicgen.data.datasets import Dataset, Piece
from musicgen.music.notes import Notes

TUNE_GRAM = 4  # beat-to-beat intervals of the top line compared four at a time


SAME_TUNE = 0.5  # share of those shared (Jaccard) from which two pieces are the same tune


MAX_TUNE_PIECES = 1000  # past this many pieces, comparing every pair (a second here) would take too long


def beat_line(notes: Notes) -> np.ndarray:
    """The highest pitch sounding on each beat, repeats merged: a tune without its passing notes, so two
    harmonizations of one chorale melody give the same line."""
    if not len(notes):
        return np.zeros(0, np.int64)
    beats = np.arange(0.0, np.floor(notes.beats) + 1e-9)
    i = np.searchsorted(beats, notes.start_beat - 1e-6)  # first beat at or after each onset
    j = np.searchsorted(beats, notes.end_beat - 1e-6)  # first beat at or after each end
    top = np.full(len(beats), -1, np.int64)
    for p, a, b in zip(notes.pitch.tolist(), i.tolist(), j.tolist()):
        top[a:b] = np.maximum(top[a:b], p)
    top = top[top >= 0]
    return top[np.r_[True, top[1:] != top[:-1]]] if len(top) else top


def same_tunes(tables: list[Notes]) -> list[int]:
    """A group number per piece: pieces whose beat lines share at least SAME_TUNE of their runs of
    TUNE_GRAM intervals (transposition-free) are one tune, with every piece linked to them (a duplicate
    harmonization under another number, or another setting of one chorale melody). Each piece is its own
    group past MAX_TUNE_PIECES pieces."""
    n = len(tables)
    group = list(range(n))
    if n > MAX_TUNE_PIECES:
        return group
    grams = []
    for notes in tables:
        iv = np.diff(beat_line(notes)).tolist()
        grams.append({tuple(iv[k:k + TUNE_GRAM]) for k in range(len(iv) - TUNE_GRAM + 1)})

    def root(k: int) -> int:
        while group[k] != k:
            group[k] = group[group[k]]
            k = group[k]
        return k

    for a in range(n):
        for b in range(a + 1, n):
            shared = len(grams[a] & grams[b])
            if shared and shared >= SAME_TUNE * len(grams[a] | grams[b]):
                group[root(a)] = root(b)
    return [root(k) for k in range(n)]


def split_pieces(data: Dataset, validation_fraction: float, seed: int,
                 validation_names: list[str] | None = None) -> dict[str, list[Piece]]:
    """train / validation / test, always by piece: the dataset's own split if it has one, else a seeded draw."""
    if validation_names is not None:  # resuming: the same split as before
        chosen = set(validation_names)
        return {"train": [p for p in data.pieces if p.name not in chosen and p.split != "test"],
                "validation": [p for p in data.pieces if p.name in chosen],
                "test": [p for p in data.pieces if p.split == "test"]}
    parts = {s: [p for p in data.pieces if p.split == s] for s in ("train", "validation", "test")}
    parts["train"] += [p for p in data.pieces if p.split not in ("train", "validation", "test")]
    if not parts["validation"] and len(parts["train"]) >= 2:
        pieces = parts["train"]
        k = min(len(pieces) - 1, max(1, round(validation_fraction * len(pieces))))
        # one tune (a duplicate harmonization, another setting of a chorale melody) stays on one side
        tunes: dict[int, list[Piece]] = {}
        for piece, tune in zip(pieces, same_tunes([p.notes for p in pieces])):
            tunes.setdefault(tune, []).append(piece)
        ranked = sorted(tunes.values(), key=lambda g: zlib.crc32(f"{seed}:{min(p.name for p in g)}".encode()))
        chosen: set[str] = set()
        for tune in ranked:
            if len(chosen) + len(tune) <= k:
                chosen.update(p.name for p in tune)
            if len(chosen) >= k:
                break
        if not chosen:  # every tune is larger than the validation share: the smallest one
            chosen = {p.name for p in min(ranked, key=len)} if len(ranked) > 1 else {ranked[0][0].name}
        parts["validation"] = [p for p in pieces if p.name in chosen]
        parts["train"] = [p for p in pieces if p.name not in chosen]
    return parts
