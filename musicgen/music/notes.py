"""The note table (Notes) and its tempo map: times in seconds and in beats, voices, time and key signatures,
fermatas; and a summary of one or many tables."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from musicgen.config import (
    DEFAULT_TEMPO_QPM,
    DEFAULT_VELOCITY,
    MIN_DURATION_S,
    PITCH_MAX,
    PITCH_MIN,
    VELOCITY_MAX,
    VELOCITY_MIN,
)
from musicgen.music.theory import estimate_key, note_name, sharps_moved


@dataclass(frozen=True, eq=False)
class TempoMap:
    """Tempo changes: from beat[i] (quarter notes) on, the tempo is qpm[i]. beat[0] is 0."""

    beat: np.ndarray  # float64, shape=(k,), increasing
    qpm: np.ndarray  # float64 quarter notes per minute, shape=(k,)

    @classmethod
    def constant(cls, qpm: float = DEFAULT_TEMPO_QPM) -> TempoMap:
        qpm = float(qpm) if np.isfinite(qpm) and qpm > 0 else DEFAULT_TEMPO_QPM
        return cls(np.zeros(1), np.array([qpm]))

    @classmethod
    def from_changes(cls, beats, qpms) -> TempoMap:
        """From (beat, qpm) changes in any order; the last change at a beat wins, repeats are dropped."""
        beats, qpms = np.asarray(beats, np.float64).reshape(-1), np.asarray(qpms, np.float64).reshape(-1)
        ok = np.isfinite(beats) & np.isfinite(qpms) & (qpms > 0) & (beats >= 0)
        beats, qpms = beats[ok], qpms[ok]
        if not len(beats):
            return cls.constant(120.0)  # MIDI's tempo when a file states none
        order = np.argsort(beats, kind="stable")
        beats, qpms = beats[order], qpms[order]
        last = np.append(beats[1:] != beats[:-1], True)  # the last change at each beat
        beats, qpms = beats[last], qpms[last]
        if beats[0] > 0:  # before the first change MIDI plays at 120
            beats, qpms = np.concatenate([[0.0], beats]), np.concatenate([[120.0], qpms])
        keep = np.concatenate([[True], qpms[1:] != qpms[:-1]])
        return cls(beats[keep], qpms[keep])

    @property
    def first(self) -> float:
        """The first tempo, rounded: MIDI stores whole microseconds, so 90 qpm reads back as 90.0001."""
        return round(float(self.qpm[0]), 3)

    def _at(self) -> np.ndarray:
        """Seconds at each change."""
        return np.concatenate([[0.0], np.cumsum(np.diff(self.beat) * 60.0 / self.qpm[:-1])])

    def seconds(self, beats) -> np.ndarray:
        b = np.asarray(beats, np.float64)
        i = np.clip(np.searchsorted(self.beat, b, side="right") - 1, 0, None)
        return self._at()[i] + (b - self.beat[i]) * 60.0 / self.qpm[i]

    def beats(self, seconds) -> np.ndarray:
        s = np.asarray(seconds, np.float64)
        at = self._at()
        i = np.clip(np.searchsorted(at, s, side="right") - 1, 0, None)
        return self.beat[i] + (s - at[i]) * self.qpm[i] / 60.0

    def shifted(self, beats: float) -> TempoMap:
        """The map moved by `beats` (negative: the music moved earlier), cut at 0."""
        b = self.beat + beats
        if beats < 0:
            k = max(0, int(np.searchsorted(b, 0.0, side="right")) - 1)
            b, q = np.concatenate([[0.0], b[k + 1:]]), self.qpm[k:]
            return TempoMap(b, q)
        return TempoMap(np.concatenate([[0.0], b]), np.concatenate([[self.qpm[0]], self.qpm]))

    def cut(self, beat: float) -> TempoMap:
        """Without the changes after `beat` (the end of the music)."""
        keep = self.beat <= beat
        keep[0] = True
        return self if keep.all() else TempoMap(self.beat[keep], self.qpm[keep])

    def to_json(self) -> list:
        return [[round(float(b), 6), round(float(q), 4)] for b, q in zip(self.beat, self.qpm)]

    @classmethod
    def from_json(cls, rows) -> TempoMap:
        if len(rows) == 1 and rows[0][0] == 0 and rows[0][1] > 0:  # one tempo: most files, and fast to reopen
            return cls(np.zeros(1), np.array([float(rows[0][1])]))
        rows = np.asarray(rows, np.float64).reshape(-1, 2)
        return cls.from_changes(rows[:, 0], rows[:, 1])


# (beat, numerator, denominator) and (beat, sharps, minor): where the file states them
Meter = tuple[tuple[float, int, int], ...]


Keys = tuple[tuple[float, int, bool], ...]


@dataclass(frozen=True, eq=False, slots=True)
class Notes:
    """A note table: one row per note, sorted by start then pitch; times in seconds and in beats (quarter notes).

    Build it with Notes.build (or from_rows, from_beats), which clamps values into valid MIDI.
    The tempo map turns beats into seconds; meter and keys are the file's time and key signatures;
    fermatas the beats where a held chord ends a phrase (MIDI markers named 'fermata').
    """

    pitch: np.ndarray  # int16, shape=(n,), 0..127
    start: np.ndarray  # float64 seconds, shape=(n,)
    end: np.ndarray  # float64 seconds, always > start
    velocity: np.ndarray  # int16, 1..127
    program: np.ndarray  # int16 General MIDI program, 0..127
    start_beat: np.ndarray  # float64 quarter notes from the piece's start
    end_beat: np.ndarray  # float64 quarter notes
    voice: np.ndarray  # int16: the part (track) a note belongs to, 0..; a polyphony model's voice from the top
    tempo_map: TempoMap
    meter: Meter = ()
    keys: Keys = ()
    fermatas: tuple[float, ...] = ()  # beats, sorted

    @classmethod
    def build(cls, pitch, start, end, velocity=None, program=None, tempo=DEFAULT_TEMPO_QPM, voice=None,
              tempo_map: TempoMap | None = None, meter: Meter = (), keys: Keys = ()) -> Notes:
        """From seconds: clamp to valid MIDI, drop rows with non-finite or negative times, sort by (start, pitch).

        Beats come from tempo_map, or from one constant `tempo` (quarter notes per minute).
        """
        tempo_map = tempo_map or TempoMap.constant(tempo)
        start = np.asarray(start, dtype=np.float64).reshape(-1)
        end = np.asarray(end, dtype=np.float64).reshape(-1)
        start_beat = tempo_map.beats(np.where(np.isfinite(start), start, 0.0))
        end_beat = tempo_map.beats(np.where(np.isfinite(end), end, 0.0))
        return cls._make(pitch, start, end, start_beat, end_beat, velocity, program, voice, tempo_map, meter, keys)

    @classmethod
    def from_beats(cls, pitch, start_beat, end_beat, velocity=None, program=None, voice=None,
                   tempo_map: TempoMap | None = None, meter: Meter = (), keys: Keys = ()) -> Notes:
        """From beats (quarter notes): seconds come from the tempo map (a constant default tempo without one)."""
        tempo_map = tempo_map or TempoMap.constant()
        start_beat = np.asarray(start_beat, dtype=np.float64).reshape(-1)
        end_beat = np.asarray(end_beat, dtype=np.float64).reshape(-1)
        start = tempo_map.seconds(np.where(np.isfinite(start_beat), start_beat, 0.0))
        end = tempo_map.seconds(np.where(np.isfinite(end_beat), end_beat, 0.0))
        start = np.where(np.isfinite(start_beat), start, np.nan)
        return cls._make(pitch, start, end, start_beat, end_beat, velocity, program, voice, tempo_map, meter, keys)

    @classmethod
    def _make(cls, pitch, start, end, start_beat, end_beat, velocity, program, voice, tempo_map, meter, keys):
        n = len(start)
        pitch = np.asarray(pitch, dtype=np.float64).reshape(-1)
        if not (len(end) == len(pitch) == n):
            raise ValueError("pitch, start and end must have the same length")

        def column(values, default):
            values = np.full(n, default) if values is None else np.asarray(values, dtype=np.float64)
            return np.broadcast_to(values, (n,))

        velocity, program, voice = column(velocity, DEFAULT_VELOCITY), column(program, 0), column(voice, 0)
        keep = np.isfinite(start) & np.isfinite(end) & np.isfinite(pitch) & (start >= 0) & np.isfinite(end_beat)
        start, end, pitch = start[keep], end[keep], pitch[keep]
        start_beat, end_beat = start_beat[keep], end_beat[keep]
        velocity, program, voice = velocity[keep], program[keep], voice[keep]
        short = end < start + MIN_DURATION_S
        end = np.where(short, start + MIN_DURATION_S, end)
        end_beat = np.where(short, tempo_map.beats(end), np.maximum(end_beat, start_beat))
        pitch = np.clip(np.rint(pitch), PITCH_MIN, PITCH_MAX).astype(np.int16)
        velocity = np.clip(np.rint(np.nan_to_num(velocity, nan=DEFAULT_VELOCITY)), VELOCITY_MIN, VELOCITY_MAX)
        program = np.clip(np.rint(np.nan_to_num(program)), 0, 127)
        voice = np.clip(np.rint(np.nan_to_num(voice)), 0, 127)
        order = np.lexsort((pitch, start))
        return cls(pitch=pitch[order], start=start[order], end=end[order],
                   velocity=velocity[order].astype(np.int16), program=program[order].astype(np.int16),
                   start_beat=start_beat[order], end_beat=end_beat[order], voice=voice[order].astype(np.int16),
                   tempo_map=tempo_map, meter=tuple(meter), keys=tuple(keys))

    @classmethod
    def from_rows(cls, rows, tempo=DEFAULT_TEMPO_QPM) -> Notes:
        """rows: (pitch, start, end[, velocity[, program]]) tuples, times in seconds."""
        rows = [tuple(r) + (DEFAULT_VELOCITY, 0)[len(r) - 3 :] for r in rows]
        arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
        return cls.build(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], tempo=tempo)

    @classmethod
    def empty(cls, tempo: float = DEFAULT_TEMPO_QPM) -> Notes:
        return cls.build([], [], [], tempo=tempo)

    @classmethod
    def concat(cls, parts: list[Notes]) -> Notes:
        """Merge several tables (e.g. instruments) into one, keeping the first one's tempo map and signatures."""
        if not parts:
            return cls.empty()
        first = parts[0]
        cols = {f: np.concatenate([getattr(p, f) for p in parts])
                for f in ("pitch", "start", "end", "start_beat", "end_beat", "velocity", "program", "voice")}
        merged = cls._make(cols["pitch"], cols["start"], cols["end"], cols["start_beat"], cols["end_beat"],
                           cols["velocity"], cols["program"], cols["voice"], first.tempo_map, first.meter, first.keys)
        return merged.replace(fermatas=tuple(sorted({b for p in parts for b in p.fermatas})))

    def __len__(self) -> int:
        return len(self.pitch)

    @property
    def tempo(self) -> float:
        """The first tempo, quarter notes per minute."""
        return self.tempo_map.first

    @property
    def step(self) -> np.ndarray:
        """Seconds from the previous note's start (0 for the first), shape=(n,)."""
        return np.diff(self.start, prepend=self.start[:1]) if len(self) else np.zeros(0)

    @property
    def duration(self) -> np.ndarray:
        """Seconds each note sounds, shape=(n,)."""
        return self.end - self.start

    @property
    def duration_beats(self) -> np.ndarray:
        """Quarter notes each note sounds, shape=(n,)."""
        return self.end_beat - self.start_beat

    @property
    def seconds(self) -> float:
        """Time from 0 to the last note's end."""
        return float(self.end.max()) if len(self) else 0.0

    @property
    def beats(self) -> float:
        """Quarter notes from 0 to the last note's end."""
        return float(self.end_beat.max()) if len(self) else 0.0

    @property
    def voices(self) -> int:
        """How many parts the notes are in."""
        return len(np.unique(self.voice)) if len(self) else 0

    def bar_length(self) -> float:
        """Quarter notes per bar of the first time signature (4 when the file states none)."""
        if not self.meter:
            return 4.0
        _, num, den = self.meter[0]
        return num * 4.0 / den

    def replace(self, **changes) -> Notes:
        """The same table with some columns or attributes replaced (columns keep their order)."""
        return dataclasses.replace(self, **changes)

    def take(self, index) -> Notes:
        """The rows selected by a slice, boolean mask or index array (still sorted)."""
        return self.replace(**{f: getattr(self, f)[index] for f in _COLUMNS})

    def head(self, n: int) -> Notes:
        return self.take(slice(0, max(0, int(n))))

    def window(self, t0: float, t1: float) -> Notes:
        """Notes that start in [t0, t1) seconds."""
        return self.take((self.start >= t0) & (self.start < t1))

    def shifted(self, seconds: float) -> Notes:
        """The same notes moved in time, e.g. a window moved to start at 0 (the tempo map, time and key
        signatures move along; the one in force at the new start begins there)."""
        if seconds < 0:  # the music from -seconds on becomes the start
            beats = -float(self.tempo_map.beats(-seconds))
        else:  # silence at the first tempo before it
            beats = seconds * self.tempo / 60.0
        return self.replace(start=self.start + seconds, end=self.end + seconds, start_beat=self.start_beat + beats,
                            end_beat=self.end_beat + beats, tempo_map=self.tempo_map.shifted(beats),
                            meter=_moved(self.meter, beats), keys=_moved(self.keys, beats),
                            fermatas=tuple(b + beats for b in self.fermatas if b + beats >= -1e-9))

    def rescaled(self, factor: float) -> Notes:
        """The same music written in note values `factor` times as long, sounding at the same times: 4/2 with
        factor 1/2 becomes 4/4, its half notes quarters (time signatures and tempo in quarters follow)."""
        meter = tuple((b * factor, n, int(round(d / factor))) for b, n, d in self.meter)
        tempo_map = TempoMap(self.tempo_map.beat * factor, self.tempo_map.qpm * factor)
        return self.replace(start_beat=self.start_beat * factor, end_beat=self.end_beat * factor,
                            tempo_map=tempo_map, meter=meter, keys=tuple((b * factor, k, m) for b, k, m in self.keys),
                            fermatas=tuple(b * factor for b in self.fermatas))

    def bar_start(self, seconds: float) -> float:
        """Seconds at the start of the bar that holds `seconds` (the first time signature's bars)."""
        beat = float(self.tempo_map.beats(max(0.0, seconds)))
        at = self.meter[0][0] if self.meter else 0.0
        bar = self.bar_length()
        start = at + np.floor(max(0.0, beat - at) / bar) * bar if beat >= at else 0.0
        return float(self.tempo_map.seconds(start))

    def excerpt(self, first: int, count: int) -> Notes:
        """Notes first .. first + count - 1, moved so that the bar holding the first starts at 0."""
        part = self.take(slice(max(0, int(first)), max(0, int(first)) + max(0, int(count))))
        if not len(part):
            return part
        return part.shifted(-self.bar_start(float(part.start[0])))

    def joined(self, after: Notes, at_beat: float) -> Notes:
        """These notes, then `after` (its beat 0 at `at_beat` of these), on this table's tempo map and
        signatures: a primer and its continuation as one piece."""
        start = np.concatenate([self.start_beat, after.start_beat + at_beat])
        end = np.concatenate([self.end_beat, after.end_beat + at_beat])
        cols = {c: np.concatenate([getattr(self, c), getattr(after, c)]) for c in ("pitch", "velocity", "program",
                                                                                  "voice")}
        return Notes.from_beats(cols["pitch"], start, end, cols["velocity"], cols["program"], cols["voice"],
                                self.tempo_map, self.meter, self.keys).replace(
            fermatas=tuple(sorted({*self.fermatas, *(b + at_beat for b in after.fermatas)})))

    def key_signature(self) -> tuple[int, bool]:
        """(sharps, minor): the first key signature of the file, else estimated from the notes; also estimated
        where the notes plainly contradict it (Essen's K: field names only the tonic: K:A over an A-minor tune)."""
        hist = np.bincount(self.pitch % 12, weights=self.duration_beats, minlength=12)
        return estimate_key(hist, (self.keys[0][1], self.keys[0][2]) if self.keys else None)

    def transposed(self, semitones: int) -> Notes:
        """Moved by `semitones`, the key signatures with it."""
        keys = tuple((b, sharps_moved(s, semitones), m) for b, s, m in self.keys)
        return self.replace(pitch=np.clip(self.pitch + semitones, PITCH_MIN, PITCH_MAX).astype(np.int16), keys=keys)


def _moved(rows: tuple, beats: float) -> tuple:
    """(beat, ...) signature rows moved by `beats`; of those that fall before 0 the last one starts at 0."""
    moved = [(b + beats, *rest) for b, *rest in rows]
    before = [r for r in moved if r[0] <= 0]
    return tuple(([(0.0, *before[-1][1:])] if before else []) + [r for r in moved if r[0] > 0])


_COLUMNS = ("pitch", "start", "end", "velocity", "program", "start_beat", "end_beat", "voice")


@dataclass(frozen=True)
class Part:
    """One non-drum instrument of a MIDI file."""

    name: str
    program: int
    notes: Notes


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


def clock(seconds: float) -> str:
    """Seconds as m:ss or h:mm:ss."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
