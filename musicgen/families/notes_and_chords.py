"""notes-and-chords: the classic music21 projects. One event per onset, a single note or a chord with
octaves kept: (token id, step bin, duration bin), times on a grid of beat fractions."""

from __future__ import annotations

from collections import Counter

import numpy as np

from musicgen.config import ModelConfig, SampleConfig
from musicgen.families.base import (END, PAD, SPECIALS, START, UNK, Column, Encoding, EventSampler, Family, Head,
    moved_token_rows, nearest_bin, pick, tempo_of)
from musicgen.music.notes import Notes, TempoMap
from musicgen.music.theory import CHORD_TOLERANCE_BEATS

# the time grid (beats): the usual note values, triplets and dotted ones included
BEAT_GRID = (0.0, 1 / 8, 1 / 6, 1 / 4, 1 / 3, 3 / 8, 1 / 2, 2 / 3, 3 / 4, 1.0, 5 / 4, 4 / 3, 3 / 2, 7 / 4, 2.0,
             5 / 2, 3.0, 7 / 2, 4.0, 5.0, 6.0, 8.0)
END_ALLOWED_AFTER = 0.5  # fraction of the asked length before a model may end a piece on its own
TIME_EMBEDDING = 16  # size of the step and duration embeddings
PRIMER_EVENTS = 64


def events(notes: Notes) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Group a note table into onsets: (tokens, step beats, duration beats), one per note or chord.

    A chord's token lists its pitches low to high ('60.64.67'); its duration is its longest note's.
    Linear in the number of notes: the table is sorted by start, so each onset is one run of rows.
    """
    if not len(notes):
        return [], np.zeros(0), np.zeros(0)
    onset, length = notes.start_beat, notes.duration_beats
    first = np.flatnonzero(np.diff(onset, prepend=-np.inf) >= CHORD_TOLERANCE_BEATS)  # near onsets join a chord
    bounds = np.append(first, len(notes))
    pitches = notes.pitch.tolist()
    tokens = [".".join(map(str, sorted(set(pitches[a:b])))) for a, b in zip(bounds[:-1], bounds[1:])]
    starts = onset[first]
    durations = np.maximum.reduceat(length, first)
    return tokens, np.diff(starts, prepend=starts[0]), durations


def _split_token(token: str) -> list[int]:
    return [int(p) for p in token.split(".")]


class NotesAndChords(Family):
    name = "notes-and-chords"
    help = "a vocabulary of notes and chords, with time to the next and length on a beat grid (music21 projects)"
    presets = {
        "default": ({"seq_length": 32, "units": (256, 256), "dropout": 0.2, "embedding": 64},
                    {"learning_rate": 0.002, "batch_size": 64}),
        # Chopin-style projects: LSTM 512 then 256 with dropout, Adamax.
        "chopin": ({"seq_length": 64, "units": (512, 256), "dropout": 0.3, "embedding": 96, "every_step": False},
                   {"optimizer": "adamax", "learning_rate": 0.002, "batch_size": 64}),
        # Skuldur's Classical-Piano-Composer: three LSTM 512, dropout 0.3, dense 256, RMSprop, 100 notes.
        "classical-piano-composer": ({"seq_length": 100, "units": (512, 512, 512), "dropout": 0.3, "dense": 256,
                                      "embedding": 96, "every_step": False},
                                     {"optimizer": "rmsprop", "learning_rate": 0.001, "batch_size": 64}),
    }

    def build_encoding(self, config: ModelConfig, pieces: list[Notes]) -> Encoding:
        counts = Counter(t for p in pieces for t in events(p)[0])
        kept = sorted((t for t, c in counts.items() if c >= config.min_count),
                      key=lambda t: (len(t.split(".")), _split_token(t)))
        return Encoding(self.name, "categorical", SPECIALS + tuple(kept), BEAT_GRID, BEAT_GRID[1:], tempo_of(pieces))

    def columns(self, config, enc):
        return (Column("token", len(enc.tokens), config.embedding),
                Column("step", len(enc.step_bins), TIME_EMBEDDING),
                Column("duration", len(enc.duration_bins), TIME_EMBEDDING))

    def heads(self, enc):
        return (Head("token", len(enc.tokens)), Head("step", len(enc.step_bins), centers=enc.step_bins),
                Head("duration", len(enc.duration_bins), centers=enc.duration_bins))

    def encode(self, enc, notes):
        """A start row, one row per onset, an end row; targets are the same class indices."""
        tokens, step, dur = events(notes)
        index = enc.index
        ids = [index[START]] + [index.get(t, index[UNK]) for t in tokens] + [index[END]]
        step_bins = np.concatenate([[0], nearest_bin(step, enc.step_bins), [0]])
        dur_bins = np.concatenate([[0], nearest_bin(dur, enc.duration_bins), [0]])
        rows = np.stack([ids, step_bins, dur_bins], axis=1).astype(np.int32)
        return rows, rows.astype(np.float32)

    def transpose_rows(self, enc, x, y, semitones, x_events, y_events):
        return moved_token_rows(enc, x, y, semitones, self.moved_token)

    @staticmethod
    def moved_token(token: str, semitones: int) -> str | None:
        pitches = [p + semitones for p in _split_token(token)]
        return ".".join(map(str, pitches)) if 0 <= min(pitches) and max(pitches) <= 127 else None

    def decode(self, enc: Encoding, values: np.ndarray, velocity: int = 80) -> Notes:
        """Generated (token, step bin, duration bin) rows as a note table starting at beat 0."""
        values = np.asarray(values).astype(int).reshape(-1, 3)
        steps = np.array([enc.step_bins[s] for s in values[:, 1]])
        onset = np.cumsum(steps) - (steps[0] if len(steps) else 0.0)
        rows = []
        for (tok, _, dur), t in zip(values, onset):
            token = enc.tokens[tok]
            if token not in SPECIALS:
                rows += [(p, t, t + enc.duration_bins[dur]) for p in _split_token(token)]
        arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
        return Notes.from_beats(arr[:, 0], arr[:, 1], arr[:, 2], velocity, tempo_map=TempoMap.constant(enc.tempo))

    def sampler(self, enc, sampling, primer):
        return _Sampler(self, enc, sampling, primer)


class _Sampler(EventSampler):
    def __init__(self, family: NotesAndChords, enc: Encoding, sampling: SampleConfig, primer: Notes | None):
        super().__init__(family, enc, sampling, primer)
        index = enc.index
        self.banned = [index[t] for t in (PAD, START, UNK)]
        self.end = index[END]

    def rows(self):
        return self.primer_rows(False, PRIMER_EVENTS)  # without the end row

    def next(self, outputs, rng):
        k = len(self.values)
        if k >= self.sampling.length:
            return None
        t = self.sampling.temperature
        early = k < END_ALLOWED_AFTER * self.sampling.length
        token = pick(outputs[0], t, rng, self.banned + ([self.end] if early else []))
        if token == self.end:
            self.ended = True
            return None
        row = (token, pick(outputs[1], t, rng), pick(outputs[2], t, rng))
        self.values.append(row)
        return np.array(row, dtype=np.int32)
