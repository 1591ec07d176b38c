"""The only code that reads or writes MIDI: bytes or a path <-> the note table.

Every problem with a file becomes a MidiError whose message names the file and says what is wrong.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import (
    DEFAULT_TEMPO_QPM,
    DEFAULT_VELOCITY,
    MAX_MIDI_BYTES,
    MAX_NOTES,
    MAX_PIECE_SECONDS,
    MIN_DURATION_S,
    PITCH_MAX,
    PITCH_MIN,
    VELOCITY_MAX,
    VELOCITY_MIN,
)
from .errors import MidiError


@dataclass(frozen=True, eq=False)
class Notes:
    """A note table: one row per note, sorted by start then pitch; times in seconds.

    Build it with Notes.build (or from_rows), which clamps values into valid MIDI.
    """

    pitch: np.ndarray  # int16, shape=(n,), 0..127
    start: np.ndarray  # float64 seconds, shape=(n,)
    end: np.ndarray  # float64 seconds, always > start
    velocity: np.ndarray  # int16, 1..127
    program: np.ndarray  # int16 General MIDI program, 0..127
    tempo: float = DEFAULT_TEMPO_QPM  # the file's first tempo, quarter notes per minute

    @classmethod
    def build(cls, pitch, start, end, velocity=None, program=None, tempo=DEFAULT_TEMPO_QPM) -> Notes:
        """Clamp to valid MIDI, drop rows with non-finite or negative times, sort by (start, pitch)."""
        start = np.asarray(start, dtype=np.float64).reshape(-1)
        n = len(start)
        end = np.asarray(end, dtype=np.float64).reshape(-1)
        pitch = np.asarray(pitch, dtype=np.float64).reshape(-1)
        velocity = np.full(n, DEFAULT_VELOCITY) if velocity is None else np.asarray(velocity, dtype=np.float64)
        program = np.zeros(n) if program is None else np.broadcast_to(np.asarray(program, dtype=np.float64), (n,))
        velocity = np.broadcast_to(velocity, (n,))
        if not (len(end) == len(pitch) == n):
            raise ValueError("pitch, start and end must have the same length")
        keep = np.isfinite(start) & np.isfinite(end) & np.isfinite(pitch) & (start >= 0)
        start, end, pitch, velocity, program = start[keep], end[keep], pitch[keep], velocity[keep], program[keep]
        end = np.maximum(end, start + MIN_DURATION_S)
        pitch = np.clip(np.rint(pitch), PITCH_MIN, PITCH_MAX).astype(np.int16)
        velocity = np.clip(np.rint(np.nan_to_num(velocity, nan=DEFAULT_VELOCITY)), VELOCITY_MIN, VELOCITY_MAX)
        program = np.clip(np.rint(np.nan_to_num(program)), 0, 127)
        order = np.lexsort((pitch, start))
        tempo = float(tempo) if np.isfinite(tempo) and tempo > 0 else DEFAULT_TEMPO_QPM
        return cls(
            pitch=pitch[order],
            start=start[order],
            end=end[order],
            velocity=velocity[order].astype(np.int16),
            program=program[order].astype(np.int16),
            tempo=tempo,
        )

    @classmethod
    def from_rows(cls, rows, tempo=DEFAULT_TEMPO_QPM) -> Notes:
        """rows: (pitch, start, end[, velocity[, program]]) tuples, times in seconds."""
        rows = [tuple(r) + (DEFAULT_VELOCITY, 0)[len(r) - 3 :] for r in rows]
        arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
        return cls.build(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], tempo=tempo)

    @classmethod
    def concat(cls, parts: list[Notes]) -> Notes:
        """Merge several tables (e.g. instruments) into one, keeping the first one's tempo."""
        if not parts:
            return cls.build([], [], [])
        return cls.build(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("pitch", "start", "end", "velocity", "program")),
            tempo=parts[0].tempo,
        )

    def __len__(self) -> int:
        return len(self.pitch)

    @property
    def step(self) -> np.ndarray:
        """Seconds from the previous note's start (0 for the first), shape=(n,)."""
        return np.diff(self.start, prepend=self.start[:1]) if len(self) else np.zeros(0)

    @property
    def duration(self) -> np.ndarray:
        """Seconds each note sounds, shape=(n,)."""
        return self.end - self.start

    @property
    def seconds(self) -> float:
        """Time from 0 to the last note's end."""
        return float(self.end.max()) if len(self) else 0.0

    def take(self, index) -> Notes:
        """The rows selected by a slice, boolean mask or index array (still sorted)."""
        return Notes(self.pitch[index], self.start[index], self.end[index], self.velocity[index],
                     self.program[index], self.tempo)

    def head(self, n: int) -> Notes:
        return self.take(slice(0, max(0, int(n))))

    def window(self, t0: float, t1: float) -> Notes:
        """Notes that start in [t0, t1) seconds."""
        return self.take((self.start >= t0) & (self.start < t1))

    def shifted(self, seconds: float) -> Notes:
        """The same notes moved in time, e.g. to start at 0."""
        return Notes(self.pitch, self.start + seconds, self.end + seconds, self.velocity, self.program, self.tempo)


@dataclass(frozen=True)
class Part:
    """One non-drum instrument of a MIDI file."""

    name: str
    program: int
    notes: Notes


def _label(source) -> str:
    return "file" if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).name


def load_bytes(source: str | os.PathLike | bytes, name: str | None = None) -> tuple[bytes, str]:
    """Read a path (or take bytes) and check size and the MIDI header; returns (data, label)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), name or _label(source)
    else:
        path = Path(source)
        label = name or _label(source)
        try:
            size = path.stat().st_size
            if size > MAX_MIDI_BYTES:
                raise MidiError(f"{label}: the file is too large ({size / 2**20:.1f} MB; "
                                f"the limit is {MAX_MIDI_BYTES // 2**20} MB).")
            data = path.read_bytes()
        except FileNotFoundError:
            raise MidiError(f"{label}: there is no such file.") from None
        except IsADirectoryError:
            raise MidiError(f"{label}: this is a folder, not a MIDI file.") from None
        except OSError as e:
            raise MidiError(f"{label}: the file cannot be read ({e.strerror or e}).") from None
    check_header(data, label)
    return _unwrap_rmid(data), label


def check_header(data: bytes, label: str = "file") -> None:
    """Raise MidiError unless data looks like a Standard MIDI File of acceptable size."""
    if len(data) == 0:
        raise MidiError(f"{label}: the file is empty (0 bytes).")
    if len(data) > MAX_MIDI_BYTES:
        raise MidiError(f"{label}: the file is too large ({len(data) / 2**20:.1f} MB; "
                        f"the limit is {MAX_MIDI_BYTES // 2**20} MB).")
    body = _unwrap_rmid(data)
    if not body.startswith(b"MThd"):
        if data.startswith(b"PK"):
            raise MidiError(f"{label}: this is a zip archive, not a MIDI file.")
        raise MidiError(f"{label}: this is not a MIDI file (MIDI files begin with 'MThd').")
    if len(body) < 14:
        raise MidiError(f"{label}: the MIDI file is truncated (it ends inside its header).")
    if int.from_bytes(body[10:12], "big") == 0:
        raise MidiError(f"{label}: the MIDI file has no tracks.")


def _unwrap_rmid(data: bytes) -> bytes:
    """RIFF-wrapped MIDI (.rmi) carries a standard MIDI file inside its 'data' chunk."""
    if data[:4] == b"RIFF" and data[8:12] == b"RMID":
        at = data.find(b"MThd", 12)
        if at >= 0:
            return data[at:]
    return data


def _parse_pretty_midi(data: bytes, label: str):
    import pretty_midi

    with warnings.catch_warnings():
        # pretty_midi warns about tempo events on later tracks; the timing it computes is still the best we have.
        warnings.simplefilter("ignore")
        try:
            return pretty_midi.PrettyMIDI(io.BytesIO(data))
        except EOFError:
            raise MidiError(f"{label}: the MIDI file is truncated or corrupt (it ends in the middle of a track).") from None
        except Exception as first:  # mido and pretty_midi raise many kinds for bad bytes
            if "largest tick" in str(first):
                raise MidiError(f"{label}: the MIDI file's timing is broken (its events lie absurdly far apart).") from None
            try:
                return pretty_midi.PrettyMIDI(io.BytesIO(_clip_data_bytes(data)))
            except Exception:
                raise MidiError(f"{label}: the MIDI file is corrupt ({_short(first)}).") from None


def _clip_data_bytes(data: bytes) -> bytes:
    """Rewrite a slightly corrupt file with out-of-range data bytes clipped to 0..127 (mido can)."""
    import mido

    out = io.BytesIO()
    mido.MidiFile(file=io.BytesIO(data), clip=True).save(file=out)
    return out.getvalue()


def _short(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def read_parts(source: str | os.PathLike | bytes, name: str | None = None) -> list[Part]:
    """Every non-drum instrument that has notes, in file order. Raises MidiError if there is none."""
    data, label = load_bytes(source, name)
    pm = _parse_pretty_midi(data, label)
    try:
        tempo = round(float(pm.get_tempo_changes()[1][0]), 2)  # MIDI stores microseconds per beat
    except (IndexError, ValueError):
        tempo = DEFAULT_TEMPO_QPM
    parts, drum_notes, total = [], 0, 0
    for inst in pm.instruments:
        total += len(inst.notes)
        if total > MAX_NOTES:
            raise MidiError(f"{label}: the MIDI file has too many notes (over {MAX_NOTES:,}).")
        if inst.is_drum:
            drum_notes += len(inst.notes)
            continue
        if not inst.notes:
            continue
        arr = np.array([(n.pitch, n.start, n.end, n.velocity) for n in inst.notes], dtype=np.float64)
        notes = Notes.build(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], inst.program, tempo=tempo)
        if len(notes):
            parts.append(Part(inst.name.strip() or _program_name(inst.program), int(inst.program), notes))
    if not parts:
        if drum_notes:
            raise MidiError(f"{label}: the MIDI file has only drum notes, and drums are not used.")
        if not pm.instruments:
            raise MidiError(f"{label}: the MIDI file has no notes (its tracks hold no instruments).")
        raise MidiError(f"{label}: the MIDI file has no notes.")
    longest = max(p.notes.seconds for p in parts)
    if longest > MAX_PIECE_SECONDS:
        raise MidiError(f"{label}: the MIDI file's timing is broken (it would last {longest / 3600:.0f} hours).")
    return parts


def read_midi(source: str | os.PathLike | bytes, name: str | None = None, instrument: int | None = None) -> Notes:
    """A MIDI file as one note table: all non-drum instruments merged, or the one at index `instrument`."""
    parts = read_parts(source, name)
    if instrument is None:
        return Notes.concat([p.notes for p in parts])
    if not 0 <= instrument < len(parts):
        label = name or _label(source)
        raise MidiError(f"{label}: the MIDI file has {len(parts)} instrument(s) with notes; "
                        f"there is no instrument number {instrument}.")
    return parts[instrument].notes


def _program_name(program: int) -> str:
    import pretty_midi

    return pretty_midi.program_to_instrument_name(int(program))


def write_midi(notes: Notes | list[Part], path: str | os.PathLike | None = None) -> bytes:
    """A note table (one track per program) or named parts as Standard MIDI File bytes; also saved to path if given.

    Writing to path is atomic: a reader never sees half a file.
    """
    import pretty_midi

    parts = notes if isinstance(notes, list) else [
        Part(_program_name(p), int(p), notes.take(notes.program == p)) for p in np.unique(notes.program)
    ]
    tempo = parts[0].notes.tempo if parts else DEFAULT_TEMPO_QPM
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=tempo)
    for part in parts:
        inst = pretty_midi.Instrument(program=int(np.clip(part.program, 0, 127)), name=part.name)
        n = part.notes
        for p, s, e, v in zip(n.pitch.tolist(), n.start.tolist(), n.end.tolist(), n.velocity.tolist()):
            inst.notes.append(pretty_midi.Note(velocity=v, pitch=p, start=s, end=e))
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    data = buf.getvalue()
    if path is not None:
        write_atomic(Path(path), data)
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside path, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
