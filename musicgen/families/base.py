"""What every model family implements, and the pieces they share: the saved Encoding, input columns,
output heads with their losses, training windows and the seeded sampling step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from musicgen.config import DEFAULT_TEMPO_QPM, PIANO_HIGH, PIANO_LOW, ModelConfig, SampleConfig
from musicgen.errors import ModelError
from musicgen.music.notes import Notes
from musicgen.music.theory import note_name

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)  # ids 0..3 in every token vocabulary


@dataclass(frozen=True)
class Encoding:
    """What maps music to numbers for one model; saved as vocab.json so a model folder is self-describing.

    Each family uses the fields it needs; the others keep their defaults.
    """

    family: str
    time_heads: str = "categorical"
    tokens: tuple[str, ...] = ()  # token vocabulary, SPECIALS first
    step_bins: tuple[float, ...] = ()  # class centers: seconds (pitch-step-duration) or beats (notes-and-chords)
    duration_bins: tuple[float, ...] = ()
    tempo: float = DEFAULT_TEMPO_QPM  # median tempo of the training pieces, used for generated music
    steps_per_beat: int = 0  # polyphony: grid steps per quarter note
    positions: int = 0  # polyphony: grid steps per bar that the position input tells apart
    normalize_key: bool = False  # polyphony: pieces are moved to C major / A minor before encoding
    # polyphony: per voice from the top, (lowest, highest, widest span in one piece) of the training pieces
    ranges: tuple[tuple[int, int, int], ...] = ()

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data) -> Encoding:
        if not isinstance(data, dict):
            raise ModelError("vocab.json is not one this version understands (it holds no settings).")
        try:
            enc = cls(**{k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
                         for k, v in data.items()})
        except TypeError as e:
            raise ModelError(f"vocab.json is not one this version understands ({e}).") from None
        if not all(isinstance(r, tuple) and len(r) == 3 and all(isinstance(x, int) for x in r) for r in enc.ranges):
            raise ModelError("vocab.json is damaged: ranges must be (lowest, highest, span) whole numbers per voice.")
        return enc

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}


@dataclass(frozen=True)
class Column:
    """One input column of an event row: an id looked up in an embedding (size > 0), or a number fed as is."""

    name: str
    size: int = 0  # vocabulary size of an embedded column; 0 for a number
    dim: int = 0  # embedding size


@dataclass(frozen=True)
class Head:
    """One output of the network: classes with a cross-entropy loss, or a value with the tutorial's loss."""

    name: str
    size: int  # classes, or 1 for a regression head
    regression: bool = False
    centers: tuple[float, ...] = ()  # what each class stands for (time heads), for the mean error in evaluate

    def numpy_loss(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Per-event loss, the same learn.model.head_loss computes in TensorFlow. outputs shape=(n, size), targets shape=(n,)."""
        outputs = np.asarray(outputs, np.float64)
        if self.regression:
            p = outputs[:, 0]
            return (targets - p) ** 2 + 10 * np.maximum(-p, 0)
        logp = outputs - outputs.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        return -logp[np.arange(len(targets)), targets.astype(np.int64)]

    def guess(self, outputs: np.ndarray) -> np.ndarray:
        """The most likely class (or the value) per event."""
        outputs = np.asarray(outputs)
        return np.maximum(outputs[:, 0], 0) if self.regression else outputs.argmax(-1)


@dataclass(frozen=True)
class Generated:
    notes: Notes  # the new music, starting at 0 s
    events: int  # notes, onsets or grid steps generated
    ended: bool  # the model chose to end the piece before the asked length
    note: str | None = None  # a sentence for the user, e.g. which line of a polyphonic melody was kept
    after: float | None = None  # beats of the primer's timeline where `notes` (from 0) begins, after a primer


def pick(logits: np.ndarray, temperature: float, rng: np.random.Generator, banned=(), allowed=None) -> int:
    """A class drawn from softmax(logits / temperature), never one of `banned`, only one of `allowed` if given.
    In float32, as the network's outputs are: a few thousand classes are drawn from thrice per note."""
    if allowed is None:
        ids, z = None, np.multiply(logits, np.float32(1 / max(temperature, 1e-3)), dtype=np.float32)
        if len(banned):
            z[list(banned)] = -np.inf
    else:  # the softmax over the allowed classes alone: the same draw as masking the rest, a fraction of the work
        ids = np.array(sorted(set(allowed).difference(banned)), np.int64)
        if not len(ids):
            raise ValueError("no class may be chosen")
        z = np.multiply(np.asarray(logits)[ids], np.float32(1 / max(temperature, 1e-3)), dtype=np.float32)
    z -= z.max()
    cumulative = np.exp(z, out=z).cumsum()
    k = int(min(cumulative.searchsorted(rng.random() * cumulative[-1], side="right"), len(z) - 1))
    return k if ids is None else int(ids[k])


@dataclass(frozen=True)
class Rewind:
    """What a sampler's `next` returns to take back its last `rows` events (at most REWIND_LIMIT) and choose
    again from the network's state before them."""

    rows: int


REWIND_LIMIT = 16


def log_probability(logits: np.ndarray, allowed, token: int) -> float:
    """log P(token) under the network's softmax restricted to `allowed` (no temperature): how likely the
    model finds a choice, for comparing choices."""
    z = np.asarray(logits, np.float64)[list(allowed)]
    top = z.max()
    return float(logits[token] - top - np.log(np.exp(z - top).sum()))


class Sampler(ABC):
    """One generation: the rows that set the network's state, then one event per call of `next`.

    quotes: runs of the training music (metrics.Quotes) a sampler keeps from quoting, where it can.
    """

    quotes = None

    @abstractmethod
    def rows(self) -> list[np.ndarray]:
        """The start row and the primer's rows, fed before anything is sampled."""

    @abstractmethod
    def next(self, outputs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray | Rewind | None:
        """Choose the next event from the heads' outputs; its input row, or None when the piece is complete."""

    @abstractmethod
    def result(self) -> Generated:
        """The generated music."""

    def progress(self) -> float:
        """The fraction of the piece made so far (0..1)."""
        return 0.0

    def allowed(self) -> list[int] | None:
        """The classes of the first head that may come next; None: any."""
        return None

    def to_key(self) -> int:
        """Semitones that move the model's pitches into the music's own key (the primer's or the melody's):
        what the result is moved by, and what names the model's choices, so both say the same notes."""
        return 0


class EventSampler(Sampler):
    """A sampler that collects one row of head values per event and hands them to its family's decode."""

    def __init__(self, family, enc: Encoding, sampling: SampleConfig, primer: Notes | None):
        self.family, self.enc, self.sampling, self.primer = family, enc, sampling, primer
        self.values: list[tuple] = []
        self.ended = False

    def primer_rows(self, keep_last: bool, events: int) -> list[np.ndarray]:
        """The start row and the primer's last `events` rows (its end row too when keep_last)."""
        inputs, _ = self.family.encode(self.enc, self.primer if self.primer is not None else Notes.empty())
        body = inputs[1:] if keep_last else inputs[1:-1]
        return [inputs[0]] + list(body[-events:])

    def result(self) -> Generated:
        after = None
        if self.primer is not None and len(self.primer) and self.values:
            # the first new event comes one sampled step after the primer's last onset
            first = self.family.step_of(self.enc, self.values[0])
            if self.family.unit == "seconds":
                after = float(self.primer.tempo_map.beats(float(self.primer.start.max()) + first))
            else:
                after = float(self.primer.start_beat.max()) + first
        return Generated(self.family.decode(self.enc, np.array(self.values)), len(self.values), self.ended,
                         after=after)

    def progress(self) -> float:
        return min(1.0, len(self.values) / max(self.sampling.length, 1))


class Family(ABC):
    """A way to turn music into event rows and back; one module per family, registered by name."""

    name: str = ""
    help: str = ""  # one line for the Train page
    input_name: str = "events"
    unit: str = "beats"  # of the time heads' errors in evaluate
    presets: dict[str, tuple[dict, dict]] = {}  # name: (ModelConfig changes, TrainConfig changes)

    @abstractmethod
    def build_encoding(self, config: ModelConfig, pieces: list[Notes]) -> Encoding:
        """The encoding of a model of this config, learnt from the training pieces (vocabulary, tempo)."""

    @abstractmethod
    def columns(self, config: ModelConfig, enc: Encoding) -> tuple[Column, ...]:
        """The input columns of an event row."""

    @abstractmethod
    def heads(self, enc: Encoding) -> tuple[Head, ...]:
        """The network's outputs, in the order of the targets' columns."""

    @abstractmethod
    def encode(self, enc: Encoding, notes: Notes) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of one piece, a start row first. Row j's target is what row j holds; a model
        predicts row j+1 from rows <= j. inputs shape=(n, columns), targets shape=(n, heads)."""

    @abstractmethod
    def sampler(self, enc: Encoding, sampling: SampleConfig, primer: Notes | None) -> Sampler:
        """A new generation with these settings, after the primer if there is one."""

    @abstractmethod
    def transpose_rows(self, enc: Encoding, x: np.ndarray, y: np.ndarray, semitones: int, x_events: np.ndarray,
                       y_events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Encoded rows (inputs x, targets y, of windows) as the rows the same music moved by `semitones` encodes
        to; x_events and y_events mark the rows that hold a piece's events (not its start row or padding).
        Training moves its windows batch by batch this way, so transposed copies are never stored."""


    def move_bounds(self, pieces: Iterable[Notes]) -> list[tuple[int, int]]:
        """Per piece, the (lowest, highest) semitones it may be moved by for a transposed training copy: while it
        stays on a piano's keys; (1, 0) for an empty piece (no move). One pass over the pieces."""
        return [piano_bounds(n) for n in pieces]

    def step_of(self, enc: Encoding, row) -> float:
        """The time from the previous onset that a sampled row of head values stands for, in `unit`."""
        return float(enc.step_bins[int(row[1])])

    def choice_name(self, enc: Encoding, k: int, semitones: int = 0) -> str | None:
        """Class k of the first head in words (a note, a chord, 'the end'), its pitches moved by `semitones`
        (a sampler's to_key); None for one never sampled."""
        if not enc.tokens:
            return note_name(k + semitones)
        token = enc.tokens[k]
        if token == END:
            return "the end"
        if token in SPECIALS:
            return None
        try:
            return "-".join(note_name(int(p) + semitones) for p in token.split("."))
        except ValueError:
            return token

    def waits(self, enc: Encoding, k: int) -> bool:
        """Whether class k of the first head only lets time move on (no note starts or holds)."""
        return False


def moved_token_rows(enc: Encoding, x: np.ndarray, y: np.ndarray, semitones: int, move) -> tuple[np.ndarray, np.ndarray]:
    """transpose_rows of a token vocabulary: the token column (the first) of inputs and targets, each token
    through move(token, semitones)."""
    ids = moved_ids(enc.tokens, semitones, move)
    x, y = x.copy(), y.copy()
    x[..., 0] = ids[x[..., 0].astype(np.int64)]
    y[..., 0] = ids[y[..., 0].astype(np.int64)]
    return x, y


@lru_cache(maxsize=64)
def moved_ids(tokens: tuple[str, ...], semitones: int, move) -> np.ndarray:
    """For each token id, the id of the token `move(token, semitones)` names (None or one not in the vocabulary:
    <unk>); the special tokens stay as they are."""
    index = {t: i for i, t in enumerate(tokens)}
    out = np.arange(len(tokens))
    for i, t in enumerate(tokens):
        if t not in SPECIALS:
            moved = move(t, semitones)
            out[i] = index.get(moved, index[UNK]) if moved is not None else index[UNK]
    return out


def piano_bounds(notes: Notes) -> tuple[int, int]:
    """The (lowest, highest) semitones the notes may move by and stay on a piano's keys; (1, 0) when empty."""
    return (PIANO_LOW - int(notes.pitch.min()), PIANO_HIGH - int(notes.pitch.max())) if len(notes) else (1, 0)


def tempo_of(pieces: list[Notes]) -> float:
    return float(np.median([p.tempo for p in pieces])) if pieces else DEFAULT_TEMPO_QPM


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


# ---------------------------------------------------------------- training windows

@dataclass
class Windows:
    x: np.ndarray  # inputs, shape=(n, seq_length, columns)
    y: np.ndarray  # targets, shape=(n, seq_length, heads) when every_step, else (n, heads)
    weight: np.ndarray | None = field(default=None)  # shape=(n, seq_length): 0 where a window is padded


def windows(encoded: list[tuple[np.ndarray, np.ndarray]], seq_length: int, every_step: bool) -> Windows:
    """Training windows that never cross pieces.

    every_step: chunks of seq_length rows (half-overlapping) predicting the next row at each position;
    a piece's last chunk is padded on the right and weighted 0 there.
    Otherwise one window per target, left-padded at a piece's start, predicting only the next row.
    """
    xs, ys, ws = [], [], []
    cols = encoded[0][0].shape[1] if encoded else 3
    heads = encoded[0][1].shape[1] if encoded else 3
    pad = np.zeros(cols, dtype=encoded[0][0].dtype) if encoded else np.zeros(cols)
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
                    y = np.concatenate([y, np.zeros((seq_length - m, heads), dtype=y.dtype)])
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
        return Windows(np.zeros((0, seq_length, cols)), np.zeros((0, heads)))
    if every_step:
        return Windows(np.stack(xs), np.stack(ys), np.stack(ws))
    return Windows(np.concatenate(xs), np.concatenate(ys))
