"""Sound: a note table played through FluidSynth with a General MIDI SoundFont, as WAV and Ogg."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.music.midi import pretty_midi, write_midi
from musicgen.music.notes import Notes

SAMPLE_RATE = 44100  # Hz


SOUNDFONTS = (  # best first; Debian's fluid-soundfont-gm, then timgm6mb-soundfont, then pretty_midi's own
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)


NO_FLUIDSYNTH = ("Real instrument sound needs the FluidSynth library, which is not installed, so this is a "
                 "plain synthesizer. To fix: sudo apt-get install libfluidsynth3 fluid-soundfont-gm")


def soundfont() -> Path:
    """The best General MIDI SoundFont on this machine."""
    for path in SOUNDFONTS:
        if path.exists():
            return path
    return Path(pretty_midi().__file__).parent / "TimGM6mb.sf2"


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 mono, -1..1, shape=(n,)
    sample_rate: int  # Hz
    note: str | None  # a sentence for the user when the sound is not what it should be
    start: float = 0.0  # seconds of the piece where the sound begins: its first note (a pickup's rests are silent)

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def wav(self) -> bytes:
        """16-bit mono WAV: exact, and about 5 MB a minute."""
        pcm = (np.clip(self.samples, -1, 1) * 32767).astype("<i2")
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.sample_rate)
            w.writeframes(pcm.tobytes())
        return buf.getvalue()

    @property
    def ogg(self) -> bytes:
        """Ogg Vorbis: what the page plays, about 1/20 of the WAV."""
        import soundfile

        buf = io.BytesIO()
        with soundfile.SoundFile(buf, "w", self.sample_rate, 1, format="OGG", subtype="VORBIS") as f:
            for i in range(0, len(self.samples), OGG_BLOCK):  # one large write crashes libsndfile's encoder
                f.write(self.samples[i:i + OGG_BLOCK])
        return buf.getvalue()


OGG_BLOCK = 8192  # frames per write


RELEASE_S = 1.0  # seconds of sound after the last note ends: the release and the reverb


def _fluidsynth(notes: Notes, sample_rate: int, sf2: Path) -> np.ndarray:
    """The notes through one FluidSynth synthesizer, one channel per program (never the drum channel 10),
    event by event: mono float samples. (pretty_midi's own loads the SoundFont once per instrument.)"""
    pretty_midi()  # imports pyfluidsynth quietly (it prints to stdout when CI is set)
    import fluidsynth  # raises ImportError without the C library

    synth = fluidsynth.Synth(samplerate=float(sample_rate))
    try:
        synth.setting("synth.dynamic-sample-loading", 1)  # only the samples played: 0.2 s less for FluidR3
        font = synth.sfload(str(sf2))
        if font < 0:
            raise OSError(f"FluidSynth could not load {sf2}")
        programs = sorted(set(notes.program.tolist()))
        channel = {p: c for p, c in zip(programs, [c for c in range(16) if c != 9])}
        for p, c in channel.items():
            synth.program_select(c, font, 0, p)
        chans = [channel.get(p, 0) for p in notes.program.tolist()]  # past 15 programs: the first channel
        events = sorted([(float(t), 1, c, int(k), int(v)) for t, k, v, c in
                         zip(notes.start, notes.pitch, notes.velocity, chans)]
                        + [(float(t), 0, c, int(k), 0) for t, k, c in
                           zip(notes.end, notes.pitch, chans)])  # at one time, offs first
        chunks, at = [], 0
        for t, on, c, k, v in events:
            frame = int(round(t * sample_rate))
            if frame > at:
                chunks.append(synth.get_samples(frame - at))
                at = frame
            if on:
                synth.noteon(c, k, v)
            else:
                synth.noteoff(c, k)
        chunks.append(synth.get_samples(int(RELEASE_S * sample_rate)))
    finally:
        synth.delete()
    stereo = np.concatenate(chunks).astype(np.float32).reshape(-1, 2)
    return stereo.mean(axis=1) / 32768.0


def audio(notes: Notes, program: int | None = 0, sample_rate: int = SAMPLE_RATE) -> Audio:
    """The notes played by a General MIDI instrument (program 0 = piano; None keeps each note's own), from the
    first note on: the rests before it (a pickup's, a harmonized tune's) are not played as silence."""
    start = float(notes.start.min()) if len(notes) else 0.0
    notes = notes.shifted(-start) if start > 0 else notes
    if program is not None:
        notes = notes.replace(program=np.full(len(notes), int(np.clip(program, 0, 127)), dtype=np.int16))
    note = None
    try:
        samples = _fluidsynth(notes, sample_rate, soundfont())
    except (ImportError, OSError):
        note = NO_FLUIDSYNTH
        samples = pretty_midi().PrettyMIDI(io.BytesIO(write_midi(notes))).synthesize(fs=sample_rate)
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    if peak > 0:
        samples = samples / peak * 0.89  # -1 dBFS: loud, never clipped
    return Audio(np.asarray(samples, np.float32), sample_rate, note, start)
