"""Numbers and tables for exploring a piece or a dataset: summaries, histogram data, the notes table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .midi_io import Notes

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def note_name(pitch: int) -> str:
    """MIDI note number as scientific pitch, e.g. 60 -> 'C4'."""
    return f"{NOTE_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def clock(seconds: float) -> str:
    """Seconds as m:ss or h:mm:ss."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


@dataclass(frozen=True)
class Summary:
    pieces: int
    notes: int
    seconds: float  # total playing time, summed over pieces
    pitch_min: int | None
    pitch_max: int | None
    tempo: float | None  # median first tempo over pieces, quarter notes per minute

    def text(self) -> str:
        if not self.notes:
            return "no notes"
        lead = f"{self.pieces:,} pieces, " if self.pieces != 1 else ""
        return (f"{lead}{self.notes} notes, {clock(self.seconds)}, "
                f"pitch {note_name(self.pitch_min)}-{note_name(self.pitch_max)}, {self.tempo:.0f} bpm")


def summarize(tables: Notes | list[Notes]) -> Summary:
    """Counts, length, pitch range and tempo of one note table or several (a dataset)."""
    tables = [tables] if isinstance(tables, Notes) else list(tables)
    filled = [t for t in tables if len(t)]
    if not filled:
        return Summary(len(tables), 0, 0.0, None, None, None)
    return Summary(
        pieces=len(tables),
        notes=sum(len(t) for t in filled),
        seconds=float(sum(t.seconds for t in filled)),
        pitch_min=int(min(t.pitch.min() for t in filled)),
        pitch_max=int(max(t.pitch.max() for t in filled)),
        tempo=float(np.median([t.tempo for t in filled])),
    )


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
