"""Note tables <-> model arrays, for both families.

Each piece becomes rows of three numbers, one row per event, after a start row:
- pitch-step-duration: one event per note: (pitch / 128, step seconds, duration seconds), float32.
- notes-and-chords: one event per onset, a single note or a chord with octaves kept:
  (token id, step bin, duration bin), int32, times on a grid of beat fractions from the file's tempo.
Targets are (pitch or token, step, duration) per event: class indices, or seconds for the tutorial's regression heads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from .config import DEFAULT_TEMPO_QPM, ModelConfig
from .errors import ModelError
from .midi_io import Notes

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)  # ids 0..3 in every vocabulary

# pitch-step-duration time bins (seconds): a zero step for chords, then geometric steps
STEP_BINS = tuple([0.0] + np.round(np.geomspace(0.04, 3.0, 23), 4).tolist())
DURATION_BINS = tuple(np.round(np.geomspace(0.04, 4.0, 24), 4).tolist())
# notes-and-chords time grid (beats): the usual note values, triplets and dotted ones included
BEAT_GRID = (0.0, 1 / 8, 1 / 6, 1 / 4, 1 / 3, 3 / 8, 1 / 2, 2 / 3, 3 / 4, 1.0, 5 / 4, 4 / 3, 3 / 2, 7 / 4, 2.0,
             5 / 2, 3.0, 7 / 2, 4.0, 5.0, 6.0, 8.0)
CHORD_TOLERANCE_BEATS = 1 / 24  # onsets closer than this sound as one chord
END_ALLOWED_AFTER = 0.5  # fraction of the asked length before a model may end a piece on its own


@dataclass(frozen=True)
class Encoding:
    """What maps music to numbers for one model; saved as vocab.json so a model folder is self-describing."""

    family: str
    time_heads: str = "categorical"
    tokens: tuple[str, ...] = ()  # notes-and-chords vocabulary, SPECIALS first
    step_bins: tuple[float, ...] = ()  # class centers: seconds (pitch-step-duration) or beats (notes-and-chords)
    duration_bins: tuple[float, ...] = ()
    tempo: float = DEFAULT_TEMPO_QPM  # median tempo of the training pieces, used for generated music

    @property
    def head_sizes(self) -> tuple[int, int, int]:
        """Classes per head (1 for a regression head): pitch or token, step, duration."""
        if self.family == "notes-and-chords":
            return len(self.tokens), len(self.step_bins), len(self.duration_bins)
        if self.time_heads == "regression":
            return 128, 1, 1
        return 128, len(self.step_bins), len(self.duration_bins)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Encoding:
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except TypeError as e:
            raise ModelError(f"The model's vocab.json is not one this version understands ({e}).") from None

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}


def head_names(family: str) -> tuple[str, str, str]:
    """The model's three outputs: what comes next, when, and for how long."""
    return ("token" if family == "notes-and-chords" else "pitch", "step", "duration")


def nearest_bin(values: np.ndarray, centers, log: bool = False) -> np.ndarray:
    """Index of the closest center for each value (closest in ratio when log, zero-aware)."""
    c = np.asarray(centers, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if log:
        floor = c[c > 0].min() / 2
        c_, v_ = np.log(np.maximum(c, floor)), np.log(np.maximum(v, floor))
    else:
        c_, v_ = c, v
    return np.abs(v_[:, None] - c_[None, :]).argmin(axis=1).astype(np.int32)


# ---------------------------------------------------------------- notes-and-chords events

def events(notes: Notes) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Group a note table into onsets: (tokens, step beats, duration beats), one per note or chord.

    A chord's token lists its pitches low to high ('60.64.67'); its duration is its longest note's.
    """
    if not len(notes):
        return [], np.zeros(0), np.zeros(0)
    onset, length = notes.start_beat, notes.duration_beats
    group = np.cumsum(np.diff(onset, prepend=-np.inf) >= CHORD_TOLERANCE_BEATS) - 1  # near onsets join a chord
    tokens, starts, durations = [], [], []
    for g in range(group[-1] + 1):
        members = np.flatnonzero(group == g)
        pitches = sorted(set(notes.pitch[members].tolist()))
        tokens.append(".".join(map(str, pitches)))
        starts.append(onset[members[0]])
        durations.append(length[members].max())
    starts = np.asarray(starts)
    return tokens, np.diff(starts, prepend=starts[0]), np.asarray(durations)


def _split_token(token: str) -> list[int]:
    return [int(p) for p in token.split(".")]


# ---------------------------------------------------------------- building an encoding

def build_encoding(config: ModelConfig, pieces: list[Notes]) -> Encoding:
    """The encoding for a model of this config, learnt from the training pieces (vocabulary, tempo)."""
    tempo = float(np.median([p.tempo for p in pieces])) if pieces else DEFAULT_TEMPO_QPM
    if config.family == "notes-and-chords":
        counts = Counter(t for p in pieces for t in events(p)[0])
        kept = sorted((t for t, c in counts.items() if c >= config.min_count),
                      key=lambda t: (len(t.split(".")), _split_token(t)))
        return Encoding(config.family, "categorical", SPECIALS + tuple(kept), BEAT_GRID, BEAT_GRID[1:], tempo)
    return Encoding(config.family, config.time_heads, (), STEP_BINS, DURATION_BINS, tempo)


# ---------------------------------------------------------------- piece <-> rows

def encode(enc: Encoding, notes: Notes) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of one piece, a start row first (and an end row last for notes-and-chords).

    inputs: shape=(n, 3), float32 or int32; targets: shape=(n, 3), class indices as float32, or seconds
    for regression heads. Row j's target is what row j holds; a model predicts row j+1 from rows <= j.
    """
    if enc.family == "notes-and-chords":
        tokens, step, dur = events(notes)
        index = enc.index
        ids = [index[START]] + [index.get(t, index[UNK]) for t in tokens] + [index[END]]
        step_bins = np.concatenate([[0], nearest_bin(step, enc.step_bins), [0]])
        dur_bins = np.concatenate([[0], nearest_bin(dur, enc.duration_bins), [0]])
        rows = np.stack([ids, step_bins, dur_bins], axis=1).astype(np.int32)
        return rows, rows.astype(np.float32)
    feats = np.zeros((len(notes) + 1, 3), dtype=np.float32)  # row 0, all zeros, is the start row
    feats[1:, 0] = notes.pitch / 128.0
    feats[1:, 1] = notes.step
    feats[1:, 2] = notes.duration
    targets = np.zeros_like(feats)
    targets[1:, 0] = notes.pitch
    if enc.time_heads == "regression":
        targets[1:, 1:] = feats[1:, 1:]
    else:
        targets[1:, 1] = nearest_bin(notes.step, enc.step_bins, log=True)
        targets[1:, 2] = nearest_bin(notes.duration, enc.duration_bins, log=True)
    return feats, targets


def input_row(enc: Encoding, head_values: tuple) -> np.ndarray:
    """The input row for one generated event (pitch or token, step, duration as heads give them)."""
    a, b, c = head_values
    if enc.family == "notes-and-chords":
        return np.array([a, b, c], dtype=np.int32)
    if enc.time_heads == "regression":
        return np.array([a / 128.0, b, c], dtype=np.float32)
    return np.array([a / 128.0, enc.step_bins[int(b)], enc.duration_bins[int(c)]], dtype=np.float32)


def start_row(enc: Encoding) -> np.ndarray:
    if enc.family == "notes-and-chords":
        return np.array([enc.index[START], 0, 0], dtype=np.int32)
    return np.zeros(3, dtype=np.float32)


def decode(enc: Encoding, values: np.ndarray, after: float | None = None, velocity: int = 80) -> Notes:
    """Generated head values, shape=(n, 3), back to a note table.

    after: the start (seconds) of the note before the first one, e.g. a primer's last note; None starts at 0.
    """
    values = np.asarray(values)
    if not len(values):
        return Notes.build([], [], [])
    if enc.family == "notes-and-chords":
        sec_per_beat = 60.0 / enc.tempo
        steps = np.array([enc.step_bins[int(s)] for s in values[:, 1]]) * sec_per_beat
        onset = _onsets(steps, after)
        rows = []
        for (tok, _, dur), t in zip(values.astype(int), onset):
            token = enc.tokens[tok]
            if token in SPECIALS:
                continue
            length = enc.duration_bins[dur] * sec_per_beat
            rows += [(p, t, t + length, velocity) for p in _split_token(token)]
        if not rows:
            return Notes.build([], [], [], tempo=enc.tempo)
        arr = np.array(rows, dtype=np.float64)
        return Notes.build(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], tempo=enc.tempo)
    if enc.time_heads == "regression":
        step, dur = np.maximum(values[:, 1], 0.0), np.maximum(values[:, 2], 0.0)
    else:
        step = np.asarray(enc.step_bins)[values[:, 1].astype(int)]
        dur = np.asarray(enc.duration_bins)[values[:, 2].astype(int)]
    start = _onsets(step, after)
    return Notes.build(values[:, 0], start, start + dur, velocity, tempo=enc.tempo)


def _onsets(steps: np.ndarray, after: float | None) -> np.ndarray:
    return np.cumsum(steps) + (after if after is not None else -steps[0])


# ---------------------------------------------------------------- training windows

@dataclass
class Windows:
    x: np.ndarray  # inputs, shape=(n, seq_length, 3)
    y: np.ndarray  # targets, shape=(n, seq_length, 3) when every_step, else (n, 3)
    weight: np.ndarray | None = field(default=None)  # shape=(n, seq_length): 0 where a window is padded


def windows(enc: Encoding, encoded: list[tuple[np.ndarray, np.ndarray]], seq_length: int,
            every_step: bool) -> Windows:
    """Training windows that never cross pieces.

    every_step: chunks of seq_length rows (half-overlapping) predicting the next row at each position;
    a piece's last chunk is padded on the right and weighted 0 there.
    Otherwise one window per target, left-padded at a piece's start, predicting only the next row.
    """
    xs, ys, ws = [], [], []
    pad = np.zeros(3, dtype=encoded[0][0].dtype) if encoded else np.zeros(3)
    for inputs, targets in encoded:
        n = len(inputs)
        if n < 2:
            continue
        if every_step:
            for s in range(0, n - 1, max(1, seq_length // 2)):
                x = inputs[s:s + seq_length]
                y = targets[s + 1:s + seq_length + 1]
                m = len(y)
                x = x[:m]
                w = np.zeros(seq_length, dtype=np.float32)
                w[:m] = 1.0
                if m < seq_length:
                    x = np.concatenate([x, np.tile(pad, (seq_length - m, 1))])
                    y = np.concatenate([y, np.zeros((seq_length - m, 3), dtype=y.dtype)])
                xs.append(x)
                ys.append(y)
                ws.append(w)
                if s + seq_length >= n - 1:
                    break  # this chunk reached the piece's last target
        else:
            padded = np.concatenate([np.tile(pad, (seq_length - 1, 1)), inputs]).astype(inputs.dtype)
            idx = np.arange(1, n)[:, None] + np.arange(seq_length)[None, :] - 1  # window ending at row j-1
            xs.append(padded[idx])
            ys.append(targets[1:])
    if not xs:
        return Windows(np.zeros((0, seq_length, 3)), np.zeros((0, 3)))
    if every_step:
        return Windows(np.stack(xs), np.stack(ys), np.stack(ws))
    return Windows(np.concatenate(xs), np.concatenate(ys))
