"""The only code that reads or writes MIDI: bytes or a path <-> the note table (symusic reads, pretty_midi writes).

Every problem with a file becomes a MidiError whose message names the file and says what is wrong.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.config import MAX_MIDI_BYTES, MAX_NOTES, MAX_PIECE_BEATS, MAX_PIECE_SECONDS, MAX_TEMPO_CHANGES
from musicgen.errors import MidiError
from musicgen.infra.files import write_atomic
from musicgen.music.notes import Keys, Meter, Notes, Part, TempoMap, _moved

VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")  # track names of a piece written by voices
FERMATA = "fermata"  # the text of the MIDI marker that places a fermata
MAX_MARKERS = 10_000  # markers of one file looked at


# ---------------------------------------------------------------- time: seconds <-> beats


# ---------------------------------------------------------------- reading

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
    if int.from_bytes(body[12:14], "big") == 0:
        raise MidiError(f"{label}: the MIDI file's header is broken (it says a beat has 0 ticks).")


def _unwrap_rmid(data: bytes) -> bytes:
    """RIFF-wrapped MIDI (.rmi) carries a standard MIDI file inside its 'data' chunk."""
    if data[:4] == b"RIFF" and data[8:12] == b"RMID":
        at = data.find(b"MThd", 12)
        if at >= 0:
            return data[at:]
    return data


def _smpte_as_ticks(data: bytes) -> bytes:
    """symusic reads only ticks per quarter note: SMPTE timing (frames x ticks per second) becomes the
    equivalent at MIDI's default 120 quarter notes per minute."""
    division = int.from_bytes(data[12:14], "big")
    if not division & 0x8000:
        return data
    per_second = (256 - (division >> 8)) * (division & 0xFF)
    ppq = int(np.clip(round(per_second / 2), 1, 0x7FFF))
    return data[:12] + ppq.to_bytes(2, "big") + data[14:]


def _score(data: bytes, label: str):
    import symusic

    try:
        # sanitize_data clamps data bytes over 127 (slightly corrupt files) instead of refusing them
        return symusic.Score.from_midi(_smpte_as_ticks(data), sanitize_data=True)
    except (RuntimeError, ValueError, IndexError) as e:
        text = str(e).lower()
        what = "truncated or corrupt (it ends in the middle of a track)" if ("eof" in text or "length" in text
                                                                           or "size" in text) else "corrupt"
        raise MidiError(f"{label}: the MIDI file is {what}.") from None


def sustained(start: np.ndarray, end: np.ndarray, pitch: np.ndarray, down: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Note ends (beats) with the sustain pedal applied: a note let go while the pedal is down sounds until
    the pedal comes up, or until its key is struck again, whichever is first."""
    if not len(down) or not len(end):
        return end
    order = np.argsort(down)
    down, up = down[order], up[order]
    i = np.searchsorted(down, end, side="right") - 1  # the last pedal pressed before each note ends
    held = (i >= 0) & (end < up[np.maximum(i, 0)])
    out = np.where(held, up[np.maximum(i, 0)], end)
    for p in np.unique(pitch):  # never past the next stroke of the same key
        sel = np.flatnonzero(pitch == p)
        sel = sel[np.argsort(start[sel], kind="stable")]
        nxt = np.append(start[sel][1:], np.inf)
        out[sel] = np.maximum(end[sel], np.minimum(out[sel], nxt))
    return out


@dataclass(frozen=True)
class _Read:
    """A MIDI file's non-drum instruments with notes, in file order, as columns in beats (not tables yet)."""

    label: str
    tracks: list[tuple]  # (name, program, start, end, pitch, velocity) per instrument
    tempo_map: TempoMap
    meter: Meter
    keys: Keys
    fermatas: tuple[float, ...]

    def table(self, which: list[int], voices: list[int]) -> Notes:
        """The instruments `which` in one table, each with its voice number, made in one go."""
        chosen = [self.tracks[k] for k in which]
        sizes = [len(t[2]) for t in chosen]
        start, end, pitch, velocity = (np.concatenate(c) for c in zip(*[t[2:] for t in chosen]))
        return Notes.from_beats(pitch.astype(np.int64) % 128, start, end, velocity.astype(np.int64) % 128,
                                np.repeat([t[1] for t in chosen], sizes), np.repeat(voices, sizes),
                                self.tempo_map, self.meter, self.keys).replace(fermatas=self.fermatas)


def _read_instruments(source, name, pedal: bool = False) -> _Read:
    """The non-drum instruments with notes, in file order."""
    data, label = load_bytes(source, name)
    sc = _score(data, label)
    if sc.note_num() > MAX_NOTES:
        raise MidiError(f"{label}: the MIDI file has too many notes (over {MAX_NOTES:,}).")
    tpq = float(sc.ticks_per_quarter)
    tempos = sc.tempos.numpy()
    if len(tempos["time"]) > MAX_TEMPO_CHANGES:
        changes = np.count_nonzero(np.diff(tempos["mspq"])) + 1
        if changes > MAX_TEMPO_CHANGES:
            raise MidiError(f"{label}: the MIDI file has too many tempo changes ({changes:,}; "
                            f"the limit is {MAX_TEMPO_CHANGES:,}).")
    tempo_map = TempoMap.from_changes(tempos["time"] / tpq, 6e7 / np.maximum(tempos["mspq"], 1))
    ts = sc.time_signatures.numpy()
    meter = tuple((float(t / tpq), int(n), int(d)) for t, n, d in
                  zip(ts["time"][:256], ts["numerator"][:256], ts["denominator"][:256]) if n > 0 and d > 0)
    ks = sc.key_signatures.numpy()
    keys = tuple((float(t / tpq), int(np.clip(k, -7, 7)), bool(m)) for t, k, m in
                 zip(ks["time"][:256], ks["key"][:256], ks["tonality"][:256]))
    fermatas = sorted({float(m.time / tpq) for m in sc.markers[:MAX_MARKERS] if m.text.strip().lower() == FERMATA})
    pad = pickup_rest(meter)
    if pad:  # rests before the pickup, so beat 0 is a bar line as everywhere else
        tempo_map = tempo_map.shifted(pad)
        meter = ((0.0, *meter[1][1:]),) + _moved(meter[2:], pad)
        keys = tuple((b + pad if b > 0 else 0.0, k, m) for b, k, m in keys)
        fermatas = [b + pad for b in fermatas]
    parts, drums = [], 0
    for track in sc.tracks:
        cols = track.notes.numpy()
        if not len(cols["time"]):
            continue
        if track.is_drum:
            drums += len(cols["time"])
            continue
        start = cols["time"].astype(np.float64) / tpq
        end = start + cols["duration"].astype(np.float64) / tpq
        sounding = cols["duration"] > 0  # an on and off at one tick is no note (pretty_midi drops it too)
        start, end, pitch = start[sounding], end[sounding], cols["pitch"][sounding]
        if pedal:
            pedals = track.pedals.numpy()
            end = sustained(start, end, pitch, pedals["time"] / tpq, (pedals["time"] + pedals["duration"]) / tpq)
        parts.append((track.name, int(track.program), start, end, pitch, cols["velocity"][sounding]))
    parts = [p for p in parts if len(p[2])]
    if pad:
        parts = [(name, program, start + pad, end + pad, pitch, velocity)
                 for name, program, start, end, pitch, velocity in parts]
    if not parts:
        raise MidiError(f"{label}: the MIDI file has only drum notes, and drums are not used." if drums
                        else f"{label}: the MIDI file has no notes.")
    last_beat = max(float(p[3].max()) for p in parts)
    longest = float(tempo_map.seconds(last_beat))
    if longest > MAX_PIECE_SECONDS or last_beat > MAX_PIECE_BEATS:
        raise MidiError(f"{label}: the MIDI file's timing is broken (it would last {longest / 3600:.0f} hours, "
                        f"{last_beat:,.0f} beats).")
    # tempo changes after the music are not its own
    return _Read(label, parts, tempo_map.cut(last_beat), meter, keys, tuple(fermatas))


def pickup_rest(meter: Meter) -> float:
    """Beats of rest before a pickup bar written as a short first bar (1/4 then 4/4, as notation programs and
    write_midi write it): the full bar's length less the pickup's; 0 when the first bar is not one."""
    if len(meter) < 2 or meter[0][0] > 1e-9:
        return 0.0
    short, full = meter[0][1] * 4.0 / meter[0][2], meter[1][1] * 4.0 / meter[1][2]
    return full - short if abs(meter[1][0] - short) < 1e-6 and short < full - 1e-6 else 0.0


def read_parts(source: str | os.PathLike | bytes, name: str | None = None, pedal: bool = False) -> list[Part]:
    """Every non-drum instrument that has notes, in file order. Raises MidiError if there is none.

    pedal: apply the sustain pedal to note lengths (for piano performances, whose notes are short keystrokes).
    """
    read = _read_instruments(source, name, pedal)
    return [Part(t[0].strip() or _program_name(t[1]), t[1], read.table([k], [k])) for k, t in enumerate(read.tracks)]


def read_midi(source: str | os.PathLike | bytes, name: str | None = None, instrument: int | None = None,
              pedal: bool = False) -> Notes:
    """A MIDI file as one note table: all non-drum instruments merged (each its own voice), or the one at
    index `instrument`."""
    read = _read_instruments(source, name, pedal)
    if instrument is None:
        return read.table(list(range(len(read.tracks))), list(range(len(read.tracks))))  # each its own voice
    if not 0 <= instrument < len(read.tracks):
        raise MidiError(f"{read.label}: the MIDI file has {len(read.tracks)} instrument(s) with notes; "
                        f"there is no instrument number {instrument}.")
    return read.table([instrument], [0])


def pretty_midi():
    """The pretty_midi module, imported without letting pyfluidsynth (which it loads) print to stdout: it does
    when the environment has CI set, and stdout is the CLI's output."""
    import sys

    if "pretty_midi" not in sys.modules:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            import pretty_midi  # noqa: F401
    return sys.modules["pretty_midi"]


def _program_name(program: int) -> str:
    return pretty_midi().program_to_instrument_name(int(program))


# ---------------------------------------------------------------- writing

def split_tracks(notes: Notes) -> list[Part]:
    """One Part per (voice, program): a piece written by voices keeps its parts (Soprano, Alto, ...)."""
    keys = sorted(set(zip(notes.voice.tolist(), notes.program.tolist())))
    voiced = len({v for v, _ in keys}) > 1
    parts = []
    for voice, program in keys:
        name = (VOICE_NAMES[voice] if len(keys) <= len(VOICE_NAMES) and voice < len(VOICE_NAMES)
                else f"Voice {voice + 1}") if voiced else _program_name(program)
        parts.append(Part(name, program, notes.take((notes.voice == voice) & (notes.program == program))))
    return parts


def write_midi(notes: Notes | list[Part], path: str | os.PathLike | None = None, title: str | None = None) -> bytes:
    """A note table (one track per voice and program) or named parts as Standard MIDI File bytes, with the
    tempo map, time and key signatures, and the title as the sequence name; also saved to path if given.
    Writing to path is atomic."""
    lib = pretty_midi()

    parts = notes if isinstance(notes, list) else split_tracks(notes)
    parts, meter = _from_first_note(parts)
    first = parts[0].notes if parts else Notes.empty()
    resolution = 960
    pm = lib.PrettyMIDI(resolution=resolution, initial_tempo=first.tempo)
    end = max([p.notes.beats for p in parts] + [0.0])
    tm = first.tempo_map.cut(end)
    # pretty_midi keeps its tempo map as (tick, seconds per tick); set it to ours so every change is written
    pm._tick_scales = [(int(round(b * resolution)), 60.0 / (q * resolution)) for b, q in zip(tm.beat, tm.qpm)]
    last_tick = int(round(end * resolution)) + resolution
    pm._update_tick_to_time(last_tick)
    pm.time_signature_changes = [lib.TimeSignature(n, d, float(tm.seconds(b))) for b, n, d in meter]
    pm.key_signature_changes = [lib.KeySignature(_key_number(s, m), float(tm.seconds(b)))
                                for b, s, m in first.keys]
    for part in parts:
        inst = lib.Instrument(program=int(np.clip(part.program, 0, 127)), name=part.name)
        n = part.notes
        for p, s, e, v in zip(n.pitch.tolist(), n.start.tolist(), n.end.tolist(), n.velocity.tolist()):
            inst.notes.append(lib.Note(velocity=v, pitch=p, start=s, end=e))
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    data = _with_markers(buf.getvalue(), [int(round(b * resolution)) for b in first.fermatas], FERMATA)
    data = _with_title(data, title) if title else data
    if path is not None:
        write_atomic(Path(path), data)
    return data


PICKUP_DENOMINATORS = (4, 8, 16, 32)  # a pickup bar's time signature: the first that writes its length exactly


def pickup_signature(quarters: float) -> tuple[int, int] | None:
    """The time signature of a bar `quarters` long (1 -> 1/4, 1.5 -> 3/8), or None if none writes it."""
    for den in PICKUP_DENOMINATORS:
        num = quarters * den / 4
        if abs(num - round(num)) < 1e-6 and 1 <= round(num) <= 255:
            return int(round(num)), den
    return None


def _from_first_note(parts: list[Part]) -> tuple[list[Part], Meter]:
    """The parts moved to begin at their first note, and the time signatures to write: MIDI has no pickup bar,
    so rests before the first note become a first bar as long as the pickup (3 beats of rest in 4/4: a 1/4 bar,
    then 4/4), as notation programs write it and read_midi reads it back. Whole bars of rest are left out."""
    first = parts[0].notes if parts else Notes.empty()
    starts = [float(p.notes.start_beat.min()) for p in parts if len(p.notes)]
    lead = min(starts, default=0.0)
    if lead <= 1e-9 or any(0 < b <= lead for b, _, _ in first.meter):
        return parts, first.meter
    bar = first.bar_length()
    into = lead - np.floor(lead / bar + 1e-9) * bar  # beats of rest in the pickup's bar
    sig = pickup_signature(bar - into) if into > 1e-9 else None
    if into > 1e-9 and sig is None:
        lead -= into  # a pickup no signature writes (a triplet's): its rests stay
    if lead <= 1e-9:
        return parts, first.meter
    seconds = float(first.tempo_map.seconds(lead))
    moved = [Part(p.name, p.program, p.notes.shifted(-seconds)) for p in parts]
    meter = _moved(first.meter or ((0.0, 4, 4),), -lead)
    if sig is not None:
        meter = ((0.0, *sig), (bar - into, *meter[0][1:])) + meter[1:]
    elif not first.meter:
        meter = ()
    return moved, meter


def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def _with_markers(data: bytes, ticks: list[int], text: str) -> bytes:
    """The file with a marker (meta event 6) named `text` at each tick, in its first track (the conductor
    track pretty_midi writes), where notation programs and symusic read them."""
    if not ticks:
        return data
    import mido  # pretty_midi's own MIDI writer

    midi = mido.MidiFile(file=io.BytesIO(data))
    events, at = [], 0
    for msg in midi.tracks[0]:
        at += msg.time
        events.append((at, 1 if msg.type == "end_of_track" else 0, msg))
    events += [(t, 0, mido.MetaMessage("marker", text=text)) for t in ticks]
    events.sort(key=lambda e: e[:2])
    track, last = mido.MidiTrack(), 0
    for t, _, msg in events:
        track.append(msg.copy(time=t - last))
        last = t
    midi.tracks[0] = track
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def _with_title(data: bytes, title: str) -> bytes:
    """The file with a sequence name (meta event 3) at the start of its first track, the conductor track
    pretty_midi writes: where MIDI keeps a piece's title."""
    text = title.encode("utf-8")[:MAX_TITLE_BYTES]
    at = 8 + int.from_bytes(data[4:8], "big")  # the first track chunk, after the header chunk
    size = int.from_bytes(data[at + 4:at + 8], "big")
    event = b"\x00\xff\x03" + _varlen(len(text)) + text
    return data[:at + 4] + (size + len(event)).to_bytes(4, "big") + event + data[at + 8:]


MAX_TITLE_BYTES = 200
_TITLE_SCAN_EVENTS = 2000  # events of the first track looked at for a title (a conductor track has few)


def midi_title(data: bytes) -> str | None:
    """A piece's title as its MIDI file gives it: the name of the first track when that track holds no notes
    (the conductor track of a multi-track file) or is the only track. None when there is none; never an error."""
    try:
        body = _unwrap_rmid(data)
        if not body.startswith(b"MThd"):
            return None
        tracks = int.from_bytes(body[10:12], "big")
        at = 8 + int.from_bytes(body[4:8], "big")
        if body[at:at + 4] != b"MTrk":
            return None
        end = min(len(body), at + 8 + int.from_bytes(body[at + 4:at + 8], "big"))
        i, name, status = at + 8, None, 0
        for _ in range(_TITLE_SCAN_EVENTS):
            if i >= end:
                break
            for _k in range(4):  # delta time: at most 4 bytes
                i += 1
                if body[i - 1] < 0x80:
                    break
            b = body[i]
            if b == 0xFF:  # meta event: type, length, data
                kind, i = body[i + 1], i + 2
                length = 0
                for _k in range(4):
                    length, i = (length << 7) | (body[i] & 0x7F), i + 1
                    if body[i - 1] < 0x80:
                        break
                if kind == 0x03 and name is None:
                    name = body[i:i + min(length, MAX_TITLE_BYTES)]
                if kind == 0x2F:
                    break
                i += length
            elif b in (0xF0, 0xF7):  # sysex: length, data
                i += 1
                length = 0
                for _k in range(4):
                    length, i = (length << 7) | (body[i] & 0x7F), i + 1
                    if body[i - 1] < 0x80:
                        break
                i += length
            else:
                if b & 0x80:
                    status, i = b, i + 1
                if status >> 4 == 0x9 and tracks > 1:
                    return None  # a track with notes: its name is the instrument's, not the piece's
                i += 1 if status >> 4 in (0xC, 0xD) else 2
        if not name:
            return None
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError:
            text = name.decode("latin-1")
        text = " ".join(text.split())
        return text or None
    except IndexError:
        return None


def _key_number(sharps: int, minor: bool) -> int:
    """pretty_midi's key number (0-11 major C..B, 12-23 minor) from sharps and mode."""
    tonic = (sharps * 7 + (9 if minor else 0)) % 12
    return tonic + (12 if minor else 0)


