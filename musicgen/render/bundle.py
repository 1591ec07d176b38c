"""Everything a page shows of one piece, made at once: the sound, the first section's score and the piano
roll, the sound rendered beside the score in a helper process."""

from __future__ import annotations

from dataclasses import dataclass

from musicgen.infra.processes import _beside
from musicgen.music.midi import write_midi
from musicgen.music.notes import Notes
from musicgen.render.audio import audio
from musicgen.render.figures import piano_roll, png
from musicgen.render.notation import Sheet, sheet


@dataclass(frozen=True)
class Rendered:
    """A piece in every form the app shows or offers for download."""

    title: str
    notes: Notes
    midi: bytes
    ogg: bytes  # what the page plays and offers: about 1/20 of a WAV
    sound_note: str | None  # why the sound is plain, when FluidSynth is missing
    sheet: Sheet  # the first section of the score; sections(notes) says how many there are
    piano_roll_png: bytes
    seam: float | None = None  # beat where the model's music begins after a primer (marked in score and roll)
    roll_axes: tuple = ()  # (left, right) of the roll's plot as fractions of the picture's width, (t0, t1) seconds
    sound_start: float = 0.0  # seconds of the piece where the sound begins (its first note)


PAGE_SAMPLE_RATE = 32000  # Hz: the page's sound (all a General MIDI piano has), a third less work than 44.1 kHz


def render_all(notes: Notes, title: str, program: int = 0, progress=None, seam: float | None = None) -> Rendered:
    """Sound, score (first section), piano roll and MIDI; the sound is made beside the score and the roll where
    it can be (a forked process), so a 2-core machine renders in about the time of the score alone."""
    say = progress or (lambda fraction, stage: None)
    say(0.0, "playing and engraving")

    def sound():
        played = audio(notes, program, PAGE_SAMPLE_RATE)
        return played.ogg, played.note, played.start

    beside = _beside(sound)
    first = sheet(notes, title, 0, seam)
    roll, axes = _roll(notes, title, None if seam is None else float(notes.tempo_map.seconds(seam)))
    say(0.8, "playing")
    ogg, note, start = beside()
    return Rendered(title, notes, write_midi(notes, title=title), ogg, note, first, roll, seam, axes, start)


def _roll(notes: Notes, title: str, seam_s: float | None) -> tuple[bytes, tuple]:
    """The piano roll as PNG, and where its plot lies: (left, right) fractions of the width, (t0, t1) seconds."""
    fig = piano_roll(notes, title=title, seam=seam_s)
    picture = png(fig)
    box, ax = fig.axes[0].get_position(), fig.axes[0]  # after drawing: where constrained layout put the plot
    return picture, (float(box.x0), float(box.x1), *map(float, ax.get_xlim()))
