"""Music theory, once, on plain numbers (no note tables, no I/O): note names, scales, keys and their
signatures, spelling, chords and parallel perfect intervals. Families, analysis, render and data all ask here."""

from __future__ import annotations

import numpy as np

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
LETTERS = "CDEFGAB"
MAJOR = (0, 2, 4, 5, 7, 9, 11)  # semitones of the major scale above its tonic
MINOR = (0, 2, 3, 5, 7, 8, 10)  # natural minor
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])  # Krumhansl
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
SIGNATURE_MISFIT = 0.15  # a stated key signature is kept unless another fits this much more of the music
CHORD_TOLERANCE_BEATS = 1 / 24  # onsets closer than this sound as one chord
CHORDS = {  # quality: semitones above the root
    "major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8),
    "dominant seventh": (0, 4, 7, 10), "major seventh": (0, 4, 7, 11), "minor seventh": (0, 3, 7, 10),
    "half-diminished seventh": (0, 3, 6, 10), "diminished seventh": (0, 3, 6, 9),
}
_SHAPES = {frozenset(v): k for k, v in CHORDS.items()}
# A note outside the key is spelled as the degree it usually is, in semitones above the tonic: in major a
# raised 1, 4 and 5 and a lowered 3 and 7 (C#, F#, G#, Eb, Bb in C major); in minor a lowered 2 and a raised
# 3, 4, 6 and 7 (Bb, C#, D#, F#, G# in A minor). Value: the degree, counted from the tonic's letter.
CHROMATIC_DEGREES = {"major": {1: 0, 3: 2, 6: 3, 8: 4, 10: 6}, "minor": {1: 1, 4: 2, 6: 3, 9: 5, 11: 6}}


def note_name(pitch: int) -> str:
    """MIDI note number as scientific pitch, e.g. 60 -> 'C4'."""
    return f"{NOTE_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


# ---------------------------------------------------------------- keys

def estimate_key(hist: np.ndarray, stated: tuple[int, bool] | None = None) -> tuple[int, bool]:
    """(sharps, minor) of music whose pitch classes sound `hist` long (shape=(12,)): the stated signature unless
    the music plainly contradicts it (Essen's K: field names only the tonic: K:A over an A-minor tune), else the
    fewest accidentals that fit, the Krumhansl profiles deciding between near-equal ones and the mode."""
    total = float(hist.sum())
    if not total:
        return stated or (0, False)

    def fit(sharps: int) -> float:  # share of the music inside the signature's scale
        return float(hist[[(sharps * 7 + d) % 12 for d in MAJOR]].sum()) / total

    fits = {s: fit(s) for s in range(-6, 7)}
    best = max(fits.values())
    if stated and fit(stated[0]) >= best - SIGNATURE_MISFIT:
        return stated
    options = [(np.corrcoef(np.roll(profile, (s * 7 + home) % 12), hist)[0, 1], s, home == 9)
               for s, f in fits.items() if f >= best - 0.02
               for profile, home in ((MAJOR_PROFILE, 0), (MINOR_PROFILE, 9))]
    _, sharps, minor = max(options, key=lambda o: o[0] if np.isfinite(o[0]) else -np.inf)
    return int(sharps), bool(minor)


def sharps_moved(sharps: int, semitones: int) -> int:
    """The key signature (sharps > 0, flats < 0) of a key moved by `semitones`: -5 flats to 6 sharps."""
    s = ((sharps * 7 + semitones) * 7) % 12  # the major tonic moves; 7 is its own inverse mod 12
    return s if s <= 6 else s - 12


def shift_to_c(sharps: int) -> int:
    """Semitones (-6..5) that move a key with this signature to C major, or its relative minor to A minor."""
    return int(((-sharps * 7) + 6) % 12 - 6)


def spelled_letter(pitch_class: int, tonic_class: int, tonic_letter: str, minor: bool,
                   in_key: dict[int, str]) -> str | None:
    """The letter a pitch class is written with in a key: as the signature has it (in_key: pitch class -> note
    name of the scale), else by its usual chromatic degree (CHROMATIC_DEGREES); None when neither says."""
    if pitch_class in in_key:
        return in_key[pitch_class][0]
    degrees = CHROMATIC_DEGREES["minor" if minor else "major"]
    above = (pitch_class - tonic_class) % 12
    if above in degrees:
        return LETTERS[(LETTERS.index(tonic_letter) + degrees[above]) % 7]
    return None


# ---------------------------------------------------------------- chords and voice leading

def chord_of(pitches) -> tuple[int, str] | None:
    """(root pitch class, quality) of the pitches when their pitch classes make a triad or seventh chord of
    CHORDS, else None (a diminished seventh is named from its lowest pitch class: it has no one root)."""
    pcs = sorted({int(p) % 12 for p in pitches})
    for root in pcs:
        quality = _SHAPES.get(frozenset((q - root) % 12 for q in pcs))
        if quality:
            return root, quality
    return None


def is_chord(pitches) -> bool:
    return chord_of(pitches) is not None


def parallel(upper: tuple[int, int], lower: tuple[int, int]) -> bool:
    """Whether two voices, each (pitch before, pitch after), move in parallel perfect fifths or octaves:
    both move, and they stand the same fifth or octave (unison) apart before and after."""
    before, after = (upper[0] - lower[0]) % 12, (upper[1] - lower[1]) % 12
    return upper[0] != upper[1] and lower[0] != lower[1] and before == after and before in (0, 7)
