"""Figures: piano rolls, histograms, the statistics of generated against real music, and the next-note
probabilities, as matplotlib figures and PNG bytes."""

from __future__ import annotations

import io

import numpy as np

from musicgen.analysis.explore import Histogram
from musicgen.music.notes import Notes
from musicgen.music.theory import note_name
from musicgen.render.notation import SEAM_TEXT


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: its global state is not thread-safe under Streamlit

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def piano_roll(notes: Notes, first: int | None = None, window: tuple[float, float] | None = None,
               title: str | None = None, seam: float | None = None):
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
        _bars(ax, notes.pitch, notes.start, notes.end, 0.85, colors, 1)
        lo, hi = int(notes.pitch.min()) - 2, int(notes.pitch.max()) + 2
        ax.set_ylim(lo - 0.5, hi + 0.5)
        c_notes = [p for p in range(lo, hi + 1) if p % 12 == 0] or [lo, hi]
        ax.set_yticks(c_notes, [note_name(p) for p in c_notes])
        ax.set_xlim(float(notes.start.min()), float(notes.end.max()))
        black = [p for p in range(lo, hi + 1) if p % 12 in (1, 3, 6, 8, 10)]  # shaded, as on a piano roll
        t0, t1 = float(notes.start.min()), float(notes.end.max())
        _bars(ax, np.array(black, np.float64), np.full(len(black), t0), np.full(len(black), t1), 1.0, "0.94", 0)
    else:
        ax.text(0.5, 0.5, "no notes", ha="center", va="center", transform=ax.transAxes)
    if seam is not None:  # seconds: where the model's continuation leaves its primer
        ax.axvline(seam, color="#c0392b", linewidth=1.5)
        ax.annotate(SEAM_TEXT, (seam, 1.0), xycoords=("data", "axes fraction"), xytext=(4, -12),
                    textcoords="offset points", color="#c0392b", fontsize=9, style="italic")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pitch")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def _bars(ax, y, x0, x1, height: float, colors, zorder: int) -> None:
    """Horizontal bars as one collection (ax.barh makes an artist per bar: most of a piano roll's time)."""
    y0, y1 = np.asarray(y, np.float64) - height / 2, np.asarray(y, np.float64) + height / 2
    corners = np.stack([np.stack(c, -1) for c in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))], 1)
    from matplotlib.collections import PolyCollection

    ax.add_collection(PolyCollection(corners, facecolors=colors, edgecolors="none", zorder=zorder),
                      autolim=False)


HISTOGRAM_SIZE = (4.2, 2.6)  # inches at 100 dpi: the width of one of three columns on a wide page, so type


def histogram_figure(hist: Histogram, title: str):
    """A bar chart of one Histogram; pitch axes get note names; values past the last edge are a bar of their
    own, in another colour, labelled (e.g. '>= 2 s')."""
    fig, ax = _figure(*HISTOGRAM_SIZE)
    widths = np.diff(hist.edges)
    ax.bar(hist.edges[:-1], hist.counts, width=widths, align="edge", color="#4c72b0", edgecolor="none")
    if hist.unit == "MIDI pitch":
        used = np.nonzero(hist.counts)[0]
        if len(used):
            ax.set_xlim(used.min() - 2, used.max() + 2)
            ticks = [p for p in range(int(used.min()) - 2, int(used.max()) + 3) if p % 12 == 0]
            ax.set_xticks(ticks, [note_name(p) for p in ticks])
    elif hist.overflow:
        gap, width = widths[-1], 4 * widths[-1]
        at = hist.edges[-1] + gap
        ax.bar([at], [hist.overflow], width=width, align="edge", color="#dd8452", edgecolor="none")
        span = hist.edges[-1] - hist.edges[0]  # no tick so near the overflow bar that the labels collide
        ticks = [t for t in ax.get_xticks() if hist.edges[0] <= t <= hist.edges[-1] - 0.12 * span]
        ax.set_xticks(ticks + [at + width / 2], [f"{t:g}" for t in ticks] + [hist.overflow_label])
        ax.set_xlim(hist.edges[0], at + width + gap)
    ax.set_xlabel(hist.unit, fontsize=9)
    ax.set_ylabel("notes", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def png(fig, dpi: int = 100) -> bytes:
    """A matplotlib Figure as PNG bytes (cacheable, unlike the figure)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def statistics_figure(corpus: dict[str, np.ndarray], piece: dict[str, float]):
    """One small histogram per statistic of the corpus pieces, the piece marked by a red line."""
    from matplotlib.figure import Figure

    from musicgen.analysis.metrics import FOUR_PART, STATISTICS

    fig = Figure(figsize=(12, 6.3), dpi=100, layout="constrained")
    axes = fig.subplots(3, 4).ravel()
    for ax, (name, (unit, _)) in zip(axes, {**STATISTICS, **FOUR_PART}.items()):
        ax.hist(corpus[name], bins=20, color="#9db4d8")
        ax.axvline(piece[name], color="#c0392b", linewidth=2)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].axis("off")
    axes[-1].text(0.0, 0.5, "bars: the training pieces\nred line: this piece", fontsize=9, va="center")
    return fig


def choices_figure(choices, temperatures: tuple[float, ...]):
    """The model's likeliest next choices as horizontal bars, one colour per temperature, likeliest on top."""
    fig, ax = _figure(6.4, 0.32 * len(choices) + 1.0)
    y = np.arange(len(choices))[::-1]
    height = 0.8 / len(temperatures)
    for j, (t, color) in enumerate(zip(temperatures, ("#4c72b0", "#dd8452", "#55a868"))):
        ax.barh(y + (len(temperatures) / 2 - j - 0.5) * height, [100 * c.chances[j] for c in choices], height,
                color=color, label=f"temperature {t:g}")
    ax.set_yticks(y, [c.name for c in choices], fontsize=9)
    ax.set_xlabel("chance of being chosen next (%)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8, loc="lower right")
    return fig
