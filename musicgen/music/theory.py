"""TODO: what theory.py owns."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from musicgen.music.notes import Notes

DIATONIC = (0, 2, 4, 5, 7, 9, 11)  # semitones of the major scale above its tonic


MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])  # Krumhansl


MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


SIGNATURE_MISFIT = 0.15  # a stated key signature is kept unless another fits this much more of the music


def _sharps_moved(sharps: int, semitones: int) -> int:
    """The key signature (sharps > 0, flats < 0) of a key moved by `semitones`: -5 flats to 6 sharps."""
    s = ((sharps * 7 + semitones) * 7) % 12  # the major tonic moves; 7 is its own inverse mod 12
    return s if s <= 6 else s - 12


NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def note_name(pitch: int) -> str:
    """MIDI note number as scientific pitch, e.g. 60 -> 'C4'."""
    return f"{NOTE_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


MAJOR = (0, 2, 4, 5, 7, 9, 11)


MINOR = (0, 2, 3, 5, 7, 8, 10)  # natural minor


def _onsets(notes: Notes) -> list[np.ndarray]:
    """Pitch sets of the onsets, in order (notes within the chord tolerance start together)."""
    group = np.cumsum(np.diff(notes.start_beat, prepend=-np.inf) >= CHORD_TOLERANCE_BEATS) - 1
    return [np.unique(notes.pitch[group == g]) for g in range(group[-1] + 1)] if len(notes) else []


CHORDS = {  # quality: semitones above the root
    "major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8),
    "dominant seventh": (0, 4, 7, 10), "major seventh": (0, 4, 7, 11), "minor seventh": (0, 3, 7, 10),
    "half-diminished seventh": (0, 3, 6, 10), "diminished seventh": (0, 3, 6, 9),
}


_SHAPES = {frozenset(v): k for k, v in CHORDS.items()}


def chord_of(pitches) -> tuple[int, str] | None:
    """(root pitch class, quality) of the pitches when their pitch classes make a triad or seventh chord of
    CHORDS, else None (a diminished seventh is named from its lowest pitch class: it has no one root)."""
    pcs = sorted({int(p) % 12 for p in pitches})
    for root in pcs:
        quality = _SHAPES.get(frozenset((q - root) % 12 for q in pcs))
        if quality:
            return root, quality
    return None


def _is_chord(pitches: tuple[int, ...]) -> bool:
    return chord_of(pitches) is not None


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


def key_shift(notes: Notes) -> int:
    """Semitones that move the piece to C major or A minor (-6..5), by its key signature (stated or estimated)."""
    sharps, _ = notes.key_signature()
    return int(((-sharps * 7) + 6) % 12 - 6)  # the same shift for a major key and its relative minor


# A note outside the key is spelled as the degree it usually is, in semitones above the tonic: in major a
# raised 1, 4 and 5 and a lowered 3 and 7 (C#, F#, G#, Eb, Bb in C major); in minor a lowered 2 and a raised
# 3, 4, 6 and 7 (Bb, C#, D#, F#, G# in A minor). Value: the degree, counted from the tonic's letter.
CHROMATIC_DEGREES = {"major": {1: 0, 3: 2, 6: 3, 8: 4, 10: 6}, "minor": {1: 1, 4: 2, 6: 3, 9: 5, 11: 6}}


LETTERS = "CDEFGAB"


def intervals(notes: Notes) -> np.ndarray:
    """The notes in order (by onset, then pitch) as the intervals between neighbours: transposition-free."""
    return np.diff(notes.pitch.astype(np.int64))


CHORD_TOLERANCE_BEATS = 1 / 24  # onsets closer than this sound as one chord
