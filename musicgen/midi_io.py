"""The only code that reads or writes MIDI: bytes or a path <-> the note table.

Every problem with a file becomes a MidiError whose message names the file and says what is wrong.
"""

from __future__ import annotations

import io
import json
import os
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


@dataclass(frozen=True, eq=False, slots=True)
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
        """The same notes moved in time, e.g. a window moved to start at 0."""
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
                raise MidiError(too_large(label, size, MAX_MIDI_BYTES))
            data = path.read_bytes()
        except FileNotFoundError:
            raise MidiError(f"{label}: there is no such file.") from None
        except IsADirectoryError:
            raise MidiError(f"{label}: this is a folder, not a MIDI file.") from None
        except OSError as e:
            raise MidiError(f"{label}: the file cannot be read ({e.strerror or e}).") from None
    check_header(data, label)
    return _unwrap_rmid(data), label


def too_large(label: str, size: int, limit: int) -> str:
    return f"{label}: the file is too large ({size / 2**20:.1f} MB; the limit is {limit // 2**20} MB)."


def check_header(data: bytes, label: str = "file") -> None:
    """Raise MidiError unless data looks like a Standard MIDI File of acceptable size."""
    if len(data) == 0:
        raise MidiError(f"{label}: the file is empty (0 bytes).")
    if len(data) > MAX_MIDI_BYTES:
        raise MidiError(too_large(label, len(data), MAX_MIDI_BYTES))
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


class _Truncated(Exception):
    pass


class _TooMany(Exception):
    pass


def _varlen(data: bytes, i: int) -> tuple[int, int]:
    value = 0
    while True:
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, i


_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_BYTES = {0xF1: 1, 0xF2: 2, 0xF3: 1}  # other 0xF1-0xFE messages carry no data


def _decode_track(data: bytes, i: int, end: int, track: int, notes: list, tempos: list) -> str:
    """Append (tick, track, channel, program, pitch, velocity or 0 for off) events; returns the track's name.

    A hand-written decoder: this loop is where ingest time goes, and mido's message objects cost 4x more.
    Out-of-range data bytes (slightly corrupt files) are clipped to 127 rather than refused.
    """
    tick = status = 0
    programs = [0] * 16
    name = ""
    while i < end:
        delta, i = _varlen(data, i)
        tick += delta
        b = data[i]
        if b & 0x80:
            status = b
            i += 1
        elif not 0x80 <= status < 0xF0:
            raise ValueError(f"a data byte without a status byte at offset {i}")
        kind = status & 0xF0
        if kind == 0x90 or kind == 0x80:
            ch = status & 0x0F
            velocity = min(data[i + 1], 127) if kind == 0x90 else 0
            notes.append((tick, track, ch, programs[ch], min(data[i], 127), velocity))
            i += 2
            if len(notes) > 2 * MAX_NOTES:  # on and off events; stop before memory runs away
                raise _TooMany
        elif kind == 0xC0:
            programs[status & 0x0F] = min(data[i], 127)
            i += 1
        elif kind < 0xF0:
            i += _DATA_BYTES[kind]
        elif status == 0xFF:
            meta = data[i]
            length, i = _varlen(data, i + 1)
            if meta == 0x51 and length == 3:
                tempos.append((tick, int.from_bytes(data[i:i + 3], "big")))
            elif meta == 0x03 and not name:
                name = data[i:i + length].decode("latin-1").strip()
            elif meta == 0x2F:
                break
            i += length
            status = 0  # meta events cancel running status
        elif status in (0xF0, 0xF7):
            length, i = _varlen(data, i)
            i += length
            status = 0
        else:
            i += _SYSTEM_BYTES.get(status, 0)
            status = 0
        if i > end:
            raise _Truncated
    return name


def _decode(data: bytes, label: str) -> tuple[float, list[tuple[str, int, bool, np.ndarray]]]:
    """Standard MIDI File bytes -> (tempo at the first note, [(name, program, is_drum, rows)]).

    rows: float64, shape=(n, 4): pitch, start, end (seconds), velocity. One entry per (track, channel, program),
    the way pretty_midi splits instruments. A note-off ends every open note of its pitch that began earlier.
    """
    header_len = int.from_bytes(data[4:8], "big")
    n_tracks, division = int.from_bytes(data[10:12], "big"), int.from_bytes(data[12:14], "big")
    events, tempos, names = [], [], []
    pos = 8 + header_len
    try:
        while len(names) < n_tracks:
            if pos + 8 > len(data):
                raise _Truncated
            length = int.from_bytes(data[pos + 4:pos + 8], "big")
            start, pos = pos + 8, pos + 8 + length
            if data[start - 8:start - 4] != b"MTrk":
                continue  # chunks of unknown type are skipped, as the standard says
            if pos > len(data):
                raise _Truncated
            names.append(_decode_track(data, start, pos, len(names), events, tempos))
    except (_Truncated, IndexError):
        raise MidiError(f"{label}: the MIDI file is truncated or corrupt (it ends in the middle of a track).") \
            from None
    except _TooMany:
        raise MidiError(f"{label}: the MIDI file has too many notes (over {MAX_NOTES:,}).") from None
    except (ValueError, KeyError) as e:
        raise MidiError(f"{label}: the MIDI file is corrupt ({e}).") from None
    if not events:
        raise MidiError(f"{label}: the MIDI file has no notes.")

    ev = np.array(events, dtype=np.int64)  # tick, track, channel, program, pitch, velocity
    seconds = _tick_seconds(ev[:, 0], division, tempos)
    first_tempo = _tempo_at(int(ev[ev[:, 5] > 0, 0].min()) if (ev[:, 5] > 0).any() else 0, division, tempos)

    open_notes: dict[tuple, list] = {}
    found: dict[tuple, list] = {}
    for k, (tick, track, ch, program, pitch, velocity) in enumerate(events):
        key = (track, ch, pitch)
        if velocity:
            open_notes.setdefault(key, []).append((tick, k, velocity, program))
            continue
        waiting = open_notes.get(key)
        if not waiting:
            continue
        closed = [w for w in waiting if w[0] != tick]
        for start_tick, start_k, vel, prog in closed:
            found.setdefault((track, ch, prog), []).append((pitch, seconds[start_k], seconds[k], vel))
        still = [w for w in waiting if w[0] == tick]
        if closed and still:
            open_notes[key] = still  # began at this very tick, after the closed ones: its off comes later
        else:
            del open_notes[key]  # alone, an on and off at one tick is a zero-length note: dropped, as pretty_midi does
    out = []
    for (track, ch, program), rows in sorted(found.items()):
        out.append((names[track], program, ch == 9, np.array(rows, dtype=np.float64)))
    return first_tempo, out


def _tempo_map(division: int, tempos: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ticks where a tempo starts, seconds at those ticks, seconds per tick from there on)."""
    if division & 0x8000:  # SMPTE timing: frames per second and ticks per frame, no tempo
        fps, per_frame = 256 - (division >> 8), division & 0xFF
        return np.zeros(1, np.int64), np.zeros(1), np.array([1.0 / max(fps * per_frame, 1)])
    ppq = max(division, 1)
    changes = sorted({t: us for t, us in sorted(tempos, key=lambda x: x[0])}.items())  # last change at a tick wins
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, 500_000))  # 120 quarter notes per minute until told otherwise
    ticks = np.array([t for t, _ in changes], dtype=np.int64)
    per_tick = np.array([max(us, 1) / 1e6 / ppq for _, us in changes])
    at = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * per_tick[:-1])])
    return ticks, at, per_tick


def _tick_seconds(ticks: np.ndarray, division: int, tempos: list) -> list[float]:
    starts, at, per_tick = _tempo_map(division, tempos)
    seg = np.searchsorted(starts, ticks, side="right") - 1
    return (at[seg] + (ticks - starts[seg]) * per_tick[seg]).tolist()


def _tempo_at(tick: int, division: int, tempos: list) -> float:
    """Quarter notes per minute in force at tick."""
    starts, _, per_tick = _tempo_map(division, tempos)
    if division & 0x8000:
        return DEFAULT_TEMPO_QPM
    spq = per_tick[np.searchsorted(starts, tick, side="right") - 1] * max(division, 1)
    return round(60.0 / spq, 2)


def _read_instruments(source, name) -> tuple[str, float, list[tuple[str, int, np.ndarray]]]:
    """(label, tempo, [(name, program, rows of pitch/start/end/velocity)]) of the non-drum instruments with notes."""
    data, label = load_bytes(source, name)
    tempo, instruments = _decode(data, label)
    if sum(len(rows) for *_, rows in instruments) > MAX_NOTES:
        raise MidiError(f"{label}: the MIDI file has too many notes (over {MAX_NOTES:,}).")
    found = [(n or _program_name(program), program, rows) for n, program, drum, rows in instruments if not drum]
    if not found:
        if instruments:
            raise MidiError(f"{label}: the MIDI file has only drum notes, and drums are not used.")
        raise MidiError(f"{label}: the MIDI file has no notes.")
    longest = max(float(rows[:, 2].max()) for _, _, rows in found)
    if longest > MAX_PIECE_SECONDS:
        raise MidiError(f"{label}: the MIDI file's timing is broken (it would last {longest / 3600:.0f} hours).")
    return label, tempo, found


def _notes(rows: np.ndarray, program, tempo: float) -> Notes:
    return Notes.build(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], program, tempo=tempo)


def read_parts(source: str | os.PathLike | bytes, name: str | None = None) -> list[Part]:
    """Every non-drum instrument that has notes, in file order. Raises MidiError if there is none."""
    _, tempo, found = _read_instruments(source, name)
    return [Part(n, program, _notes(rows, program, tempo)) for n, program, rows in found]


def read_midi(source: str | os.PathLike | bytes, name: str | None = None, instrument: int | None = None) -> Notes:
    """A MIDI file as one note table: all non-drum instruments merged, or the one at index `instrument`."""
    label, tempo, found = _read_instruments(source, name)
    if instrument is None:
        programs = np.concatenate([np.full(len(rows), program) for _, program, rows in found])
        return _notes(np.concatenate([rows for _, _, rows in found]), programs, tempo)
    if not 0 <= instrument < len(found):
        raise MidiError(f"{label}: the MIDI file has {len(found)} instrument(s) with notes; "
                        f"there is no instrument number {instrument}.")
    _, program, rows = found[instrument]
    return _notes(rows, program, tempo)


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


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=1).encode())


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside path, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
