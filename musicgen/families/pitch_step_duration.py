"""pitch-step-duration: TensorFlow's music-generation tutorial. One event per note:
(pitch / 128, step seconds, duration seconds); heads for pitch, step and duration (time bins or values)."""

from __future__ import annotations

import numpy as np

from musicgen.config import ModelConfig
from musicgen.families.base import Column, Encoding, EventSampler, Family, Head, nearest_bin, pick, tempo_of
from musicgen.music.notes import Notes

# time bins (seconds): a zero step for chords, then geometric steps
STEP_BINS = tuple([0.0] + np.round(np.geomspace(0.04, 3.0, 23), 4).tolist())
DURATION_BINS = tuple(np.round(np.geomspace(0.04, 4.0, 24), 4).tolist())
PRIMER_EVENTS = 64  # a primer's last notes fed in to set the state; older ones barely change it


class PitchStepDuration(Family):
    name = "pitch-step-duration"
    help = "one note at a time: pitch, time since the last note, length (TensorFlow's tutorial)"
    input_name = "notes"
    unit = "seconds"
    presets = {
        # TensorFlow's music-generation tutorial, faithfully: LSTM 128, regression time heads, Adam 0.005.
        "tutorial": ({"seq_length": 25, "units": (128,), "time_heads": "regression", "every_step": False},
                     {"learning_rate": 0.005, "batch_size": 64, "loss_weights": (0.05, 1.0, 1.0)}),
        "default": ({"seq_length": 32, "units": (256,), "dropout": 0.2, "time_heads": "categorical"},
                    {"learning_rate": 0.002, "batch_size": 64}),
    }

    def build_encoding(self, config: ModelConfig, pieces: list[Notes]) -> Encoding:
        return Encoding(self.name, config.time_heads, (), STEP_BINS, DURATION_BINS, tempo_of(pieces))

    def columns(self, config, enc):
        return (Column("pitch"), Column("step"), Column("duration"))

    def heads(self, enc):
        if enc.time_heads == "regression":
            return (Head("pitch", 128), Head("step", 1, True), Head("duration", 1, True))
        return (Head("pitch", 128), Head("step", len(enc.step_bins), centers=enc.step_bins),
                Head("duration", len(enc.duration_bins), centers=enc.duration_bins))

    def encode(self, enc, notes):
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

    def input_row(self, enc: Encoding, pitch: int, step, duration) -> np.ndarray:
        """The row of one generated note (step and duration as the heads give them: classes or seconds)."""
        if enc.time_heads == "regression":
            return np.array([pitch / 128.0, step, duration], dtype=np.float32)
        return np.array([pitch / 128.0, enc.step_bins[int(step)], enc.duration_bins[int(duration)]], np.float32)

    def decode(self, enc: Encoding, values: np.ndarray) -> Notes:
        """Generated (pitch, step, duration) head values, shape=(n, 3), as a note table starting at 0."""
        values = np.asarray(values, np.float64).reshape(-1, 3)
        if enc.time_heads == "regression":
            step, dur = np.maximum(values[:, 1], 0.0), np.maximum(values[:, 2], 0.0)
        else:
            step = np.asarray(enc.step_bins)[values[:, 1].astype(int)]
            dur = np.asarray(enc.duration_bins)[values[:, 2].astype(int)]
        start = np.cumsum(step) - (step[0] if len(step) else 0.0)
        return Notes.build(values[:, 0], start, start + dur, tempo=enc.tempo)

    def transpose_rows(self, enc, x, y, semitones, x_events, y_events):
        x, y = x.copy(), y.copy()  # exact: pitch / 128 and semitones / 128 are short binary fractions
        x[..., 0] += np.where(x_events, semitones / 128.0, 0.0).astype(x.dtype)
        y[..., 0] += np.where(y_events, semitones, 0).astype(y.dtype)
        return x, y

    def step_of(self, enc, row):
        return max(float(row[1]), 0.0) if enc.time_heads == "regression" else float(enc.step_bins[int(row[1])])

    def sampler(self, enc, sampling, primer):
        return _Sampler(self, enc, sampling, primer)


class _Sampler(EventSampler):
    def rows(self):
        return self.primer_rows(True, PRIMER_EVENTS)

    def next(self, outputs, rng):
        if len(self.values) >= self.sampling.length:
            return None
        t = self.sampling.temperature
        pitch = pick(outputs[0], t, rng)
        if self.enc.time_heads == "regression":  # clamped as the tutorial does
            head = (pitch, max(0.0, float(outputs[1][0])), max(0.0, float(outputs[2][0])))
        else:
            head = (pitch, pick(outputs[1], t, rng), pick(outputs[2], t, rng))
        self.values.append(head)
        return self.family.input_row(self.enc, *head)
