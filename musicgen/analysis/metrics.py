"""Objective music statistics of note tables, generated against a corpus, and reports of sampled and
harmonized pieces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicgen.music.copies import COPY_LIMIT, Copy, Quotes, longest_copy
from musicgen.music.notes import Notes
from musicgen.music.grid import onset_beats, onsets, sonorities
from musicgen.music.theory import MAJOR, MINOR, chord_of, is_chord, parallel

LENGTH_EDGES = (0.0, 0.375, 0.75, 1.5, 3.0, np.inf)  # beats: sixteenth-ish, eighth, quarter, half, longer
LENGTH_LABELS = ("< 3/8", "3/8-3/4", "3/4-3/2", "3/2-3", ">= 3")

# name: (unit, what it says); the order is the order of every table
STATISTICS = {
    "pitch_class_entropy": ("bits", "how evenly the 12 pitch classes are used (0 to 3.58)"),
    "scale_consistency": ("fraction", "notes inside the best-fitting major or minor scale"),
    "pitch_range": ("semitones", "highest minus lowest pitch"),
    "mean_ioi": ("beats", "mean time between onsets"),
    "polyphony": ("notes", "notes starting together, on average"),
    "repeated_onsets": ("fraction", "onsets that repeat the previous one exactly"),
    "mean_note_length": ("beats", "mean note length"),
}


def pitch_class_entropy(notes: Notes) -> float:
    counts = np.bincount(notes.pitch % 12, minlength=12).astype(float)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def scale_consistency(notes: Notes) -> float:
    """Largest fraction of notes inside one of the 24 major and natural-minor scales."""
    counts = np.bincount(notes.pitch % 12, minlength=12)
    best = max(counts[[(tonic + step) % 12 for step in scale]].sum()
               for tonic in range(12) for scale in (MAJOR, MINOR))
    return float(best / counts.sum())


def statistics(notes: Notes) -> dict[str, float]:
    """Every statistic of STATISTICS for one piece (times in beats from the piece's tempo map)."""
    if not len(notes):
        raise ValueError("a piece without notes has no statistics")
    groups = onsets(notes)
    starts = onset_beats(notes)
    same = [np.array_equal(a, b) for a, b in zip(groups[1:], groups[:-1])]
    return {
        "pitch_class_entropy": pitch_class_entropy(notes),
        "scale_consistency": scale_consistency(notes),
        "pitch_range": float(notes.pitch.max() - notes.pitch.min()),
        "mean_ioi": float(np.diff(starts).mean()) if len(starts) > 1 else 0.0,
        "polyphony": float(np.mean([len(o) for o in groups])),
        "repeated_onsets": float(np.mean(same)) if same else 0.0,
        "mean_note_length": float(notes.duration_beats.mean()),
    }


# ---------------------------------------------------------------- four-part writing

GRID = 4  # steps per quarter note: voices are read on a sixteenth grid
# name: (unit, what it says); each is judged against the corpus' 10th-90th percentile band
FOUR_PART = {
    "parallels": ("per 100", "parallel perfect fifths or octaves per 100 changes of sonority"),
    "triads_sevenths": ("fraction", "changes of sonority that are triads or seventh chords"),
    "four_voices": ("fraction", "grid steps with exactly four notes sounding"),
    "wide_spacing": ("fraction", "four-note sonorities with soprano-alto or alto-tenor over an octave"),
}


def four_part_statistics(notes: Notes) -> dict[str, float]:
    """The four-part writing statistics of FOUR_PART, voices taken by register on a sixteenth grid."""
    steps = [tuple(p for p, _ in s) for s in sonorities(notes, GRID)]  # pitches from the top, per step
    changes = [b for a, b in zip([()] + steps[:-1], steps) if b and b != a]
    parallels = 0
    for a, b in zip(changes[:-1], changes[1:]):
        if len(a) != len(b) or len(a) < 2:
            continue
        for i in range(len(a)):
            for j in range(i + 1, len(a)):
                parallels += parallel((a[i], b[i]), (a[j], b[j]))
    four = [s for s in steps if len(s) == 4]
    return {
        "parallels": 100.0 * parallels / max(len(changes) - 1, 1),
        "triads_sevenths": float(np.mean([is_chord(c) for c in changes])) if changes else 0.0,
        "four_voices": len(four) / max(len(steps), 1),
        "wide_spacing": float(np.mean([s[0] - s[1] > 12 or s[1] - s[2] > 12 for s in four])) if four else 0.0,
    }


def length_histogram(notes: Notes) -> np.ndarray:
    """Fractions of notes per length class (LENGTH_LABELS), in beats."""
    counts = np.histogram(notes.duration_beats, LENGTH_EDGES)[0]
    return counts / max(counts.sum(), 1)


# ---------------------------------------------------------------- copies


# ---------------------------------------------------------------- comparing sets of pieces

@dataclass(frozen=True)
class Row:
    name: str
    corpus_mean: float
    corpus_sd: float
    generated_mean: float
    low: float  # the corpus band the generated mean should lie in: mean +- 2 sd, or the 10th-90th percentile
    high: float

    @property
    def inside(self) -> bool:
        return self.low <= self.generated_mean <= self.high

    @property
    def band(self) -> str:
        return "10th-90th percentile" if self.name in FOUR_PART else "mean +- 2 sd"


def all_statistics(notes: Notes) -> dict[str, float]:
    """STATISTICS and FOUR_PART of one piece."""
    return {**statistics(notes), **four_part_statistics(notes)}


def compare(corpus: list[Notes], generated: list[Notes]) -> list[Row]:
    """Per statistic: the corpus pieces' mean, sd and band, the generated pieces' mean."""
    c = [all_statistics(n) for n in corpus if len(n)]
    g = [all_statistics(n) for n in generated if len(n)]
    if not c or not g:
        from musicgen.errors import MusicgenError

        raise MusicgenError("There is nothing to compare: " + ("the training pieces are not on this computer."
                                                               if not c else "no piece came out."))
    rows = []
    for k in (*STATISTICS, *FOUR_PART):
        values = np.array([x[k] for x in c])
        mean, sd = float(values.mean()), float(values.std())
        low, high = (np.percentile(values, [10, 90]).tolist() if k in FOUR_PART else (mean - 2 * sd, mean + 2 * sd))
        rows.append(Row(k, mean, sd, float(np.mean([x[k] for x in g])), float(low), float(high)))
    return rows


@dataclass(frozen=True)
class SampleReport:
    rows: list[Row]
    copies: list[Copy]  # one per generated piece
    pieces: list[Notes]  # the generated pieces

    @property
    def longest(self) -> Copy:
        return max(self.copies, key=lambda c: c.notes)


def sample_report(step_model, training: dict[str, Notes], samples: int, length: int, temperature: float,
                  seed: int = 0) -> SampleReport:
    """Generate `samples` pieces (seeds seed, seed+1, ...) and compare them with the training pieces."""
    from musicgen.config import SampleConfig
    from musicgen.learn.sample import generate

    quotes = Quotes(training.values())
    pieces = [generate(step_model, SampleConfig(length=length, temperature=temperature, seed=seed + i),
                       quotes=quotes).notes for i in range(samples)]
    pieces = [p for p in pieces if len(p)]
    return SampleReport(compare(list(training.values()), pieces), [longest_copy(p, training) for p in pieces],
                        pieces)


def melody_kept(result: Notes, melody: Notes, steps_per_beat: int = GRID) -> bool:
    """Whether every note of the melody (on the grid) starts in the result at the same onset with the same
    pitch, and nothing sounds above it there."""
    on = np.rint(result.start_beat * steps_per_beat)
    off = np.maximum(on + 1, np.rint(result.end_beat * steps_per_beat))
    for p, s in zip(melody.pitch.tolist(), np.rint(melody.start_beat * steps_per_beat).tolist()):
        sounding = (on <= s) & (off > s)
        if not ((on == s) & (result.pitch == p)).any() or result.pitch[sounding].max() != p:
            return False
    return True


@dataclass(frozen=True)
class HarmonyReport:
    rows: list[Row]
    kept: int  # melodies kept note for note as the top voice (of all given, harmonized or not)
    voices_under: float  # mean number of notes sounding under the melody at its onsets
    pieces: list[Notes]
    notes: list[str]  # what harmonize said about an input, if anything


def harmony_report(step_model, training: dict[str, Notes], melodies: list[Notes], temperature: float,
                   voices: int = 4, seed: int = 0) -> HarmonyReport:
    """Harmonize each melody (seeds seed, seed+1, ...), compare the results with the training pieces and
    check that each melody stayed on top, note for note."""
    from musicgen.config import SampleConfig
    from musicgen.errors import MidiError
    from musicgen.learn.sample import harmonize, top_line

    pieces, kept, under, notes = [], 0, [], []
    for i, melody in enumerate(melodies):
        line, _ = top_line(melody)
        try:
            result = harmonize(step_model, melody, SampleConfig(temperature=temperature, seed=seed + i,
                                                                voices=voices))
        except MidiError as e:  # e.g. a melody beyond the model's range: said, not counted as kept
            notes.append(str(e))
            continue
        pieces.append(result.notes)
        notes += [result.note] if result.note else []
        kept += melody_kept(result.notes, line)
        r = result.notes
        under += [int(((r.start_beat <= t + 1e-6) & (r.end_beat > t + 1e-6)).sum()) - 1 for t in line.start_beat]
    return HarmonyReport(compare(list(training.values()), pieces), kept, float(np.mean(under)), pieces, notes)


@dataclass(frozen=True)
class Agreement:
    beats: int  # beats where both pieces sound
    bass: float  # of those, the share where the lowest notes have the same pitch class
    chords: int  # beats where the original sounds a triad or seventh chord (chord_of)
    chord: float  # of those, the share where the other sounds the same chord (root and quality)


def agreement(other: Notes, original: Notes) -> Agreement:
    """How often `other` (a harmonization of the original's melody) has the original's bass and chord on
    each beat, the sonorities read at the beat's onset."""
    beats = same_bass = chords = same_chord = 0
    for t in np.arange(0.0, np.floor(original.beats) + 1e-9):
        a = other.pitch[(other.start_beat <= t + 1e-6) & (other.end_beat > t + 1e-6)]
        b = original.pitch[(original.start_beat <= t + 1e-6) & (original.end_beat > t + 1e-6)]
        if not len(a) or not len(b):
            continue
        beats += 1
        same_bass += int(a.min() % 12 == b.min() % 12)
        theirs = chord_of(b)
        if theirs is not None:
            chords += 1
            same_chord += int(chord_of(a) == theirs)
    return Agreement(beats, same_bass / max(beats, 1), chords, same_chord / max(chords, 1))


# ---------------------------------------------------------------- the same tune


def corpus_statistics(tables: list[Notes]) -> dict[str, np.ndarray]:
    """Each statistic (STATISTICS and FOUR_PART) over every piece: name -> values, shape=(pieces,)."""
    rows = [all_statistics(n) for n in tables if len(n)]
    return {k: np.array([r[k] for r in rows]) for k in (*STATISTICS, *FOUR_PART)}


def copy_verdict(copy: Copy) -> str:
    if copy.notes > COPY_LIMIT:
        return (f"{copy.notes} notes in a row are the same (as intervals) as in {copy.piece}: "
                f"this passage is copied from the training music.")
    where = f" (with {copy.piece})" if copy.piece else ""
    return f"No copying: the longest run shared with the training music is {copy.notes} notes{where}."
