"""Music literals for tests: notes([(pitch, start, end), ...]) and MIDI bytes built by hand."""

import io

import mido

from musicgen.music.notes import Notes
from musicgen.music.midi import write_midi


def notes(rows, tempo=120.0) -> Notes:
    """A note table from (pitch, start, end[, velocity[, program]]) rows, seconds."""
    return Notes.from_rows(rows, tempo=tempo)


def midi_bytes(rows, tempo=120.0) -> bytes:
    return write_midi(notes(rows, tempo))


def scale(start_pitch=60, count=8, step=0.25) -> list[tuple]:
    """A rising run of `count` notes, each `step` seconds long."""
    return [(start_pitch + i, i * step, (i + 1) * step) for i in range(count)]


def raw_midi(tracks: list[list[mido.Message]], ticks_per_beat=96) -> bytes:
    """A MIDI file from mido messages, for files pretty_midi would never write."""
    mf = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    for msgs in tracks:
        mf.tracks.append(mido.MidiTrack(msgs))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()
