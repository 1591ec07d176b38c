"""Numbers and tables for exploring a piece or a dataset: histogram data and the notes table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicgen.music.notes import Notes
from musicgen.music.theory import note_name


@dataclass(frozen=True)
class Histogram:
    counts: np.ndarray  # shape=(bins,)
    edges: np.ndarray  # shape=(bins + 1,), in `unit`
    unit: str  # 'MIDI pitch' or 'seconds'
    overflow: int = 0  # values at or above edges[-1], drawn as their own labelled bar

    @property
    def overflow_label(self) -> str:
        return f">= {self.edges[-1]:g} s" if self.unit == "seconds" else f">= {self.edges[-1]:g}"


STEP_EDGES = np.linspace(0.0, 2.0, 41)  # seconds; longer values are counted apart, in `overflow`
DURATION_EDGES = np.linspace(0.0, 3.0, 61)


def histograms(tables: Notes | list[Notes]) -> dict[str, Histogram]:
    """Counts of pitch (one bin per MIDI note), step and duration (seconds) over one or several tables."""
    tables = [tables] if isinstance(tables, Notes) else list(tables)
    pitch = np.concatenate([t.pitch for t in tables] or [np.zeros(0)])
    step = np.concatenate([t.step[1:] for t in tables] or [np.zeros(0)])  # the first note has no step
    duration = np.concatenate([t.duration for t in tables] or [np.zeros(0)])

    def seconds(values, edges) -> Histogram:
        inside = values < edges[-1]
        return Histogram(np.histogram(values[inside], edges)[0], edges, "seconds", int((~inside).sum()))

    return {
        "pitch": Histogram(np.bincount(pitch.astype(np.int64), minlength=128)[:128], np.arange(129) - 0.5,
                           "MIDI pitch"),
        "step": seconds(step, STEP_EDGES),
        "duration": seconds(duration, DURATION_EDGES),
    }


def note_rows(notes: Notes, limit: int | None = None) -> dict[str, list]:
    """The notes table as columns (for st.dataframe or CSV): pitch, name, start, end, step, duration, velocity,
    program."""
    n = notes.head(limit) if limit is not None else notes
    return {
        "pitch": n.pitch.tolist(),
        "name": [note_name(p) for p in n.pitch],
        "start": np.round(n.start, 3).tolist(),
        "end": np.round(n.end, 3).tolist(),
        "step": np.round(n.step, 3).tolist(),
        "duration": np.round(n.duration, 3).tolist(),
        "velocity": n.velocity.tolist(),
        "program": n.program.tolist(),
    }
