"""Fast step-by-step generation in numpy with the trained weights: no TensorFlow, one LSTM cell step per event.

The recurrent state is carried from event to event, so an event costs one step, not a pass over a whole window.
What an event is, and which ones may come next, is the family's sampler; every random choice comes from a
seeded numpy Generator: the same seed gives the same piece.
"""

from __future__ import annotations

import os
import zipfile
from collections import deque
from dataclasses import dataclass

import numpy as np

from musicgen import families
from musicgen.config import ModelConfig, SampleConfig
from musicgen.errors import MidiError, ModelError
from musicgen.families.base import REWIND_LIMIT, Encoding, Generated, Rewind
from musicgen.music.notes import Notes
from musicgen.runs.store import check_model, read_configs


class StepModel:
    """The trained network as numpy arrays, run one event at a time with its LSTM state carried."""

    def __init__(self, weights: dict[str, np.ndarray], config: ModelConfig, enc: Encoding):
        self.config, self.enc = config, enc
        self.family = families.get(config.family)
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.lstms = [self._gates_for_one_tanh(w[f"lstm_{i}/kernel"], w[f"lstm_{i}/recurrent_kernel"],
                                               w[f"lstm_{i}/bias"]) for i in range(len(config.units))]
        columns = self.family.columns(config, enc)
        self.tables = None
        if all(c.size for c in columns):
            # embedding -> first LSTM kernel folded into one table per input column: a lookup, not a matmul
            kernel, at = self.lstms[0][0], 0
            self.tables = []
            for c in columns:
                e = w[f"embed_{c.name}/embeddings"]
                self.tables.append(e @ kernel[at:at + e.shape[1]])
                at += e.shape[1]
        # [x, h] @ [kernel; recurrent]: one product per layer and step instead of two
        self.stacked = [np.vstack([k, r]) for k, r, _ in self.lstms]
        self.dense = (w["dense/kernel"], w["dense/bias"]) if config.dense else None
        self.heads = [(w[f"{h.name}/kernel"], w[f"{h.name}/bias"]) for h in self.family.heads(enc)]
        for (kernel, _), h in zip(self.heads, self.family.heads(enc)):
            if kernel.shape[1] != h.size:
                raise ModelError(f"the weights do not fit the model's vocabulary ({h.name}: {kernel.shape[1]} "
                                 f"classes stored, {h.size} expected).")

    @staticmethod
    def _gates_for_one_tanh(kernel, recurrent, bias):
        """Keras' gate order (input, forget, cell, output) becomes (input, forget, output, cell), and the three
        sigmoid gates' columns are halved: sigmoid(z) = (tanh(z / 2) + 1) / 2, so one tanh over all four gates
        serves (halving is exact in floating point: the same values as before)."""
        u = kernel.shape[1] // 4
        order = np.r_[0:2 * u, 3 * u:4 * u, 2 * u:3 * u]
        scale = np.r_[np.full(3 * u, 0.5, np.float32), np.ones(u, np.float32)]
        return kernel[:, order] * scale, recurrent[:, order] * scale, bias[order] * scale

    def zero_state(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.zeros(k.shape[1] // 4, np.float32), np.zeros(k.shape[1] // 4, np.float32))
                for k, _, _ in self.lstms]

    def step(self, row: np.ndarray, state: list) -> tuple[list[np.ndarray], list]:
        """Feed one input row (shape=(columns,)); returns each head's output and the new state (the old one is
        left as it was: a sampler may go back to it)."""
        x = np.asarray(row, dtype=np.float32)
        new_state = []
        for layer, ((kernel, recurrent, bias), (h, c)) in enumerate(zip(self.lstms, state)):
            if layer == 0 and self.tables is not None:
                z = h @ recurrent
                for table, v in zip(self.tables, row):
                    z += table[int(v)]
            else:
                z = np.concatenate([x, h]) @ self.stacked[layer]
            z += bias
            u = len(h)
            np.tanh(z, out=z)
            sig = z[:3 * u]  # input, forget and output gates: (tanh + 1) / 2
            sig *= 0.5
            sig += 0.5
            c = z[u:2 * u] * c
            c += z[:u] * z[3 * u:]
            h = np.tanh(c)
            h *= z[2 * u:3 * u]
            new_state.append((h, c))
            x = h
        if self.dense is not None:
            x = np.maximum(x @ self.dense[0] + self.dense[1], 0.0)
        return [x @ k + b for k, b in self.heads], new_state


PROGRESS_EVERY = 256  # rows between calls of a progress callback


def run(step_model: StepModel, sampler, seed: int, progress=None) -> Generated:
    """Feed the sampler's rows, then let it choose event after event until it says the piece is complete.

    progress: called now and then with the fraction done (0..1).
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    # one BLAS thread: on (256,) x (256, 1024) products more threads only fight, above all beside training
    with threadpool_limits(limits=1, user_api="blas"):
        state = step_model.zero_state()
        out = None
        for row in sampler.rows():
            out, state = step_model.step(row, state)
        before = deque(maxlen=REWIND_LIMIT)  # (outputs, state) before each of the last sampled rows
        fed = 0
        while (row := sampler.next(out, rng)) is not None:
            if isinstance(row, Rewind):
                for _ in range(row.rows):
                    out, state = before.pop()
                continue
            before.append((out, state))
            out, state = step_model.step(row, state)
            fed += 1
            if progress is not None and fed % PROGRESS_EVERY == 0:
                progress(sampler.progress())
        return sampler.result()


def generate(step_model: StepModel, sampling: SampleConfig, primer: Notes | None = None,
             quotes=None, progress=None) -> Generated:
    """Sample `sampling.length` events after the primer (or from a piece's start when there is none).

    quotes: the training music's runs (metrics.Quotes) the family's sampler steers clear of, where it can.
    """
    sampler = step_model.family.sampler(step_model.enc, sampling, primer)
    sampler.quotes = quotes
    return run(step_model, sampler, sampling.seed, progress)


def harmonize(step_model: StepModel, melody: Notes, sampling: SampleConfig, progress=None) -> Generated:
    """The melody as the top voice, note for note, with sampled voices under it (`sampling.voices` in all).

    A polyphonic input gives its top line (and the result says so); no notes at all is a MidiError.
    """
    maker = getattr(step_model.family, "harmonizer", None)
    if maker is None:
        raise ModelError(f"A {step_model.config.family} model cannot harmonize a melody; "
                         f"choose a polyphony model (such as bach-voices).")
    line, note = top_line(melody)
    # a tune written in half or whole notes (4/2, 3/1: most of the Essen songs) is harmonized as the same tune in
    # quarters, the beat the models learned, and written back in its own values: voices that move with its beat
    beat = {1: 4, 2: 2}.get(line.meter[0][2], 1) if line.meter else 1
    result = run(step_model, maker(step_model.enc, sampling, line.rescaled(1 / beat)), sampling.seed, progress)
    return Generated(result.notes.rescaled(beat), result.events, result.ended, note)


def top_line(notes: Notes) -> tuple[Notes, str | None]:
    """The highest note at each moment, as a one-voice melody, and a sentence when the input had more.

    At each onset the highest note is the melody's; a lower one under a sounding melody note is left out,
    a higher one takes over (the note under it is cut there).
    """
    if not len(notes):
        raise MidiError("There is no melody to harmonize: the file has no notes.")
    order = np.lexsort((-notes.pitch, notes.start_beat))  # by onset, highest first
    kept: list[int] = []
    end = notes.end_beat.copy()
    for i in order.tolist():
        if kept:
            last = kept[-1]
            if notes.start_beat[i] - notes.start_beat[last] < 1e-6:
                continue  # under the melody note that starts with it
            if end[last] > notes.start_beat[i] + 1e-6:
                if notes.pitch[i] <= notes.pitch[last]:
                    continue  # under a sounding melody note
                end[last] = notes.start_beat[i]
        kept.append(i)
    k = np.array(kept)
    line = Notes.from_beats(notes.pitch[k], notes.start_beat[k], end[k], notes.velocity[k], notes.program[k], 0,
                            notes.tempo_map, notes.meter, notes.keys).replace(fermatas=notes.fermatas)
    if len(line) == len(notes) and np.allclose(end[k], notes.end_beat[k]) and notes.voices <= 1:
        return line, None
    parts = f"{notes.voices} parts" if notes.voices > 1 else "notes sounding together"
    return line, f"The file has {parts}; its top line ({len(line)} of {len(notes)} notes) is the melody."


@dataclass(frozen=True)
class Choice:
    name: str  # in words: a note, a chord, 'the end'
    chances: tuple[float, ...]  # probability at each temperature asked, given that a note or chord comes now


@dataclass(frozen=True)
class Heard:
    """What the model hears: its likeliest notes or chords next, and how often it would let time move on first."""

    choices: list[Choice]
    wait: tuple[float, ...] | None  # chance at each temperature that no note comes yet (time moves on); None: none


def next_choices(step_model: StepModel, primer: Notes | None, temperatures: tuple[float, ...],
                 top: int = 10) -> Heard:
    """The model's likeliest first choices after the primer (or at a piece's start), with their probabilities at
    each temperature (the first decides the order), named in the primer's key as the piece will be."""
    family, enc = step_model.family, step_model.enc
    sampler = family.sampler(enc, SampleConfig(), primer)
    state, out = step_model.zero_state(), None
    for row in sampler.rows():
        out, state = step_model.step(row, state)
    logits = np.asarray(out[0], np.float64)
    allowed = sampler.allowed()
    allowed = set(range(len(logits)) if allowed is None else allowed)
    names = {k: family.choice_name(enc, k, sampler.to_key()) for k in allowed}
    valid = np.array(sorted(k for k, n in names.items() if n is not None))
    waits = np.array([family.waits(enc, int(k)) for k in valid], bool)
    chances, wait = [], []
    for t in temperatures:
        z = logits[valid] / max(t, 1e-3)
        p = np.exp(z - z.max())
        p /= p.sum()
        wait.append(float(p[waits].sum()))
        notes = np.where(waits, 0.0, p)
        chances.append(notes / notes.sum() if notes.sum() > 0 else notes)
    order = [i for i in np.argsort(-chances[0]) if not waits[i]][:top]
    return Heard([Choice(names[int(valid[i])], tuple(float(c[i]) for c in chances)) for i in order],
                 tuple(wait) if waits.any() else None)


def load_step_model(name_or_path: str | os.PathLike):
    """The model's StepModel for generating (numpy only, no TensorFlow); a ModelError says what is wrong."""
    from musicgen.learn.sample import StepModel

    folder = check_model(name_or_path)
    model, _, enc = read_configs(folder)
    try:
        with np.load(folder / "weights.npz") as weights:
            return StepModel(dict(weights), model, enc)
    except ModelError as e:
        raise ModelError(f"{folder.name}: {e} Train it again or delete it.") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, IndexError) as e:
        raise ModelError(f"{folder.name}: the model's weights are damaged or do not fit its settings "
                         f"({type(e).__name__}); train it again or delete it.") from None
