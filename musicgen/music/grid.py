"""A note table read as music: onsets and their pitch sets, the intervals of a line, sonorities on a beat
grid and each step's place in its bar, and the shift that moves a piece to C major or A minor."""

from __future__ import annotations

import numpy as np

from musicgen.music.notes import Notes
from musicgen.music.theory import CHORD_TOLERANCE_BEATS, shift_to_c


def onsets(notes: Notes) -> list[np.ndarray]:
    """Pitch sets of the onsets, in order (notes within the chord tolerance start together)."""
    group = np.cumsum(np.diff(notes.start_beat, prepend=-np.inf) >= CHORD_TOLERANCE_BEATS) - 1
    return [np.unique(notes.pitch[group == g]) for g in range(group[-1] + 1)] if len(notes) else []


def onset_beats(notes: Notes) -> np.ndarray:
    """The distinct onset times, beats, on the chord tolerance's grid, sorted."""
    return np.unique(np.round(notes.start_beat / CHORD_TOLERANCE_BEATS)) * CHORD_TOLERANCE_BEATS


def intervals(notes: Notes) -> np.ndarray:
    """The notes in order (by onset, then pitch) as the intervals between neighbours: transposition-free."""
    return np.diff(notes.pitch.astype(np.int64))


def key_shift(notes: Notes) -> int:
    """Semitones that move the piece to C major or A minor (-6..5), by its key signature (stated or estimated)."""
    return shift_to_c(notes.key_signature()[0])


def grid_steps(notes: Notes, steps_per_beat: int) -> tuple[np.ndarray, np.ndarray]:
    """Each note's first grid step and the step after its last, shape=(n,) each; every note lasts >= 1 step."""
    on = np.rint(notes.start_beat * steps_per_beat).astype(np.int64)
    off = np.maximum(on + 1, np.rint(notes.end_beat * steps_per_beat).astype(np.int64))
    return on, off


def sonorities(notes: Notes, steps_per_beat: int) -> list[list[tuple[int, bool]]]:
    """Per grid step, the sounding (pitch, is new) from the highest down; a pitch sounds once per step."""
    if not len(notes):
        return []
    on, off = grid_steps(notes, steps_per_beat)
    steps: list[dict[int, bool]] = [dict() for _ in range(int(off.max()))]
    for p, a, b in zip(notes.pitch.tolist(), on.tolist(), off.tolist()):
        for s in range(a, b):
            steps[s][p] = steps[s].get(p, False) or s == a
    return [sorted(step.items(), reverse=True) for step in steps]


def bar_positions(n_steps: int, steps_per_beat: int, meter, positions: int) -> np.ndarray:
    """Position of each grid step within its bar (0 = downbeat), following the file's time signatures."""
    beats = np.arange(n_steps + 1) / steps_per_beat
    pos = beats * steps_per_beat % (4 * steps_per_beat)
    for at, num, den in meter or ():
        bar = num * 4.0 / den * steps_per_beat
        later = beats >= at
        pos[later] = (beats[later] - at) * steps_per_beat % bar
    return np.minimum(np.rint(pos), positions - 1).astype(np.int32)
