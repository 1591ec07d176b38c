"""Pictures and sound of a note table: piano roll and histogram figures (matplotlib, no pyplot)."""

from __future__ import annotations

import numpy as np

from .explore import Histogram, note_name
from .midi_io import Notes


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: its global state is not thread-safe under Streamlit

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def piano_roll(notes: Notes, first: int | None = None, window: tuple[float, float] | None = None,
               title: str | None = None):
    """A matplotlib Figure of the notes as bars (time in seconds, pitch with note names), shaded by velocity.

    first: only the first N notes; window: only notes starting in [t0, t1) seconds.
    """
    if window is not None:
        notes = notes.window(*window)
    if first is not None:
        notes = notes.head(first)
    fig, ax = _figure(10, 3.6)
    if len(notes):
        from matplotlib import colormaps

        colors = colormaps["viridis"](0.25 + 0.65 * (notes.velocity / 127.0))
        ax.barh(notes.pitch, notes.duration, left=notes.start, height=0.85, color=colors, edgecolor="none")
        lo, hi = int(notes.pitch.min()) - 2, int(notes.pitch.max()) + 2
        ax.set_ylim(lo - 0.5, hi + 0.5)
        c_notes = [p for p in range(lo, hi + 1) if p % 12 == 0] or [lo, hi]
        ax.set_yticks(c_notes, [note_name(p) for p in c_notes])
        ax.set_xlim(float(notes.start.min()), float(notes.end.max()))
        for p in range(lo, hi + 1):
            if p % 12 in (1, 3, 6, 8, 10):  # shade the black keys' rows, as a piano roll does
                ax.axhspan(p - 0.5, p + 0.5, color="0.94", zorder=0)
    else:
        ax.text(0.5, 0.5, "no notes", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pitch")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def histogram_figure(hist: Histogram, title: str):
    """A bar chart of one Histogram; pitch axes get note names."""
    fig, ax = _figure(5, 2.6)
    widths = np.diff(hist.edges)
    ax.bar(hist.edges[:-1], hist.counts, width=widths, align="edge", color="#4c72b0", edgecolor="none")
    if hist.unit == "MIDI pitch":
        used = np.nonzero(hist.counts)[0]
        if len(used):
            ax.set_xlim(used.min() - 2, used.max() + 2)
            ticks = [p for p in range(int(used.min()) - 2, int(used.max()) + 3) if p % 12 == 0]
            ax.set_xticks(ticks, [note_name(p) for p in ticks])
    ax.set_xlabel(hist.unit)
    ax.set_ylabel("notes")
    ax.set_title(title)
    return fig
