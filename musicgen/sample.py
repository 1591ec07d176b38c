"""Fast step-by-step generation in numpy with the trained weights: no TensorFlow, one LSTM cell step per note.

The recurrent state is carried from note to note, so a note costs one step, not a pass over a whole window.
Every random choice comes from a seeded numpy Generator: the same seed gives the same piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import ModelConfig, SampleConfig
from .encoding import (END, END_ALLOWED_AFTER, PAD, START, UNK, Encoding, decode, encode, head_names, input_row,
                       start_row)
from .midi_io import Notes

PRIMER_EVENTS = 64  # a primer's last events fed in to set the state; older ones barely change it


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # same values, no overflow warnings


class StepModel:
    """The trained network as numpy arrays, run one event at a time with its LSTM state carried."""

    def __init__(self, weights: dict[str, np.ndarray], config: ModelConfig, enc: Encoding):
        self.config, self.enc = config, enc
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.lstms = [(w[f"lstm_{i}/kernel"], w[f"lstm_{i}/recurrent_kernel"], w[f"lstm_{i}/bias"])
                      for i in range(len(config.units))]
        self.tables = None
        if config.family == "notes-and-chords":
            # embedding -> first LSTM kernel folded into one table per input: a lookup instead of a matmul
            kernel, at = self.lstms[0][0], 0
            self.tables = []
            for n in ("token", "step", "duration"):
                e = w[f"embed_{n}/embeddings"]
                self.tables.append(e @ kernel[at:at + e.shape[1]])
                at += e.shape[1]
        self.dense = (w["dense/kernel"], w["dense/bias"]) if config.dense else None
        self.heads = [(w[f"{n}/kernel"], w[f"{n}/bias"]) for n in head_names(config.family)]

    def zero_state(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.zeros(k.shape[1] // 4, np.float32), np.zeros(k.shape[1] // 4, np.float32))
                for k, _, _ in self.lstms]

    def step(self, row: np.ndarray, state: list) -> tuple[list[np.ndarray], list]:
        """Feed one input row (shape=(3,)); returns the three heads' outputs and the new state."""
        x = np.asarray(row, dtype=np.float32)
        new_state = []
        for layer, ((kernel, recurrent, bias), (h, c)) in enumerate(zip(self.lstms, state)):
            if layer == 0 and self.tables is not None:
                t, s, d = (int(v) for v in row)
                z = self.tables[0][t] + self.tables[1][s] + self.tables[2][d] + h @ recurrent + bias
            else:
                z = x @ kernel + h @ recurrent + bias
            u = len(h)
            i, f, g, o = _sigmoid(z[:u]), _sigmoid(z[u:2 * u]), np.tanh(z[2 * u:3 * u]), _sigmoid(z[3 * u:])
            c = f * c + i * g
            h = o * np.tanh(c)
            new_state.append((h, c))
            x = h
        if self.dense is not None:
            x = np.maximum(x @ self.dense[0] + self.dense[1], 0.0)
        return [x @ k + b for k, b in self.heads], new_state


def pick(logits: np.ndarray, temperature: float, rng: np.random.Generator, banned=()) -> int:
    """A class drawn from softmax(logits / temperature), never one of `banned`."""
    z = logits.astype(np.float64) / max(temperature, 1e-3)
    if len(banned):
        z[list(banned)] = -np.inf
    z -= z.max()
    p = np.exp(z)
    return int(min(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"), len(p) - 1))


@dataclass(frozen=True)
class Generated:
    notes: Notes  # the new music, starting at 0 s
    events: int  # notes (or onsets, for notes-and-chords) generated
    ended: bool  # the model chose to end the piece before the asked length


def generate(step_model: StepModel, sampling: SampleConfig, primer: Notes | None = None) -> Generated:
    """Sample `sampling.length` events after the primer (or from a piece's start when there is none)."""
    enc, rng = step_model.enc, np.random.default_rng(sampling.seed)
    nc = enc.family == "notes-and-chords"
    state = step_model.zero_state()
    rows = [start_row(enc)]
    if primer is not None and len(primer):
        inputs, _ = encode(enc, primer)
        body = inputs[1:-1] if nc else inputs[1:]  # without the start (and end) rows
        rows += list(body[-PRIMER_EVENTS:])
    out = None
    for row in rows:
        out, state = step_model.step(row, state)
    banned = [enc.index[t] for t in (PAD, START, UNK)] if nc else []
    end_id = enc.index[END] if nc else None
    values, ended = [], False
    for k in range(sampling.length):
        ban = banned + ([end_id] if nc and k < END_ALLOWED_AFTER * sampling.length else [])
        first = pick(out[0], sampling.temperature, rng, ban)
        if nc and first == end_id:
            ended = True
            break
        if enc.time_heads == "regression":
            head = (first, max(0.0, float(out[1][0])), max(0.0, float(out[2][0])))  # as the tutorial clamps
        else:
            head = (first, pick(out[1], sampling.temperature, rng), pick(out[2], sampling.temperature, rng))
        values.append(head)
        out, state = step_model.step(input_row(enc, head), state)
    return Generated(decode(enc, np.array(values, dtype=np.float64).reshape(-1, 3)), len(values), ended)
