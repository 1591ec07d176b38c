"""Sound, notation and pictures of a note table: WAV through FluidSynth, sheet music as SVG through
music21 -> MusicXML -> verovio, and piano roll and histogram figures (matplotlib, no pyplot)."""

from __future__ import annotations

import importlib.resources
import io
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .explore import Histogram, note_name
from .midi_io import Notes, pretty_midi, write_midi

SAMPLE_RATE = 44100  # Hz
SOUNDFONTS = (  # best first; Debian's fluid-soundfont-gm, then timgm6mb-soundfont, then pretty_midi's own
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
NO_FLUIDSYNTH = ("Real instrument sound needs the FluidSynth library, which is not installed, so this is a "
                 "plain synthesizer. To fix: sudo apt-get install libfluidsynth3 fluid-soundfont-gm")


# ---------------------------------------------------------------- audio

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


# ---------------------------------------------------------------- sheet music

SPLIT_PITCH = 60  # middle C: notes below go to the bass staff
TRIPLETS_IF_BETTER = 0.5  # use a triplet grid only when it halves the timing error of sixteenths


MAX_ENGRAVED_VOICES = 4  # more parts than this are drawn as chords on a grand staff


SEAM_TEXT = "the model from here"  # written over the staff where a continuation leaves its primer


TITLE_CHARS = 72  # about the longest title an engraved page shows whole


def score(notes: Notes, title: str = "musicgen", seam: float | None = None, first_bar: int = 1):
    """A music21 Score that reads like sheet music: the file's (or an estimated) key and time signature,
    quantized rhythm, treble and bass staves. Up to four voices are drawn as voices, two per staff
    (stems up and down); other textures are chordified. seam: the beat where the model's music begins
    after a primer, marked over the top staff. first_bar: the number of the notes' first bar (a later
    section of a long piece goes on counting, and never begins with a pickup)."""
    from music21 import layout, metadata, stream, tempo

    grid = _grid(np.concatenate([notes.start_beat, notes.end_beat]))
    sc = stream.Score()
    # verovio draws the movement title on one line, however wide: a long one is drawn up to its first comma
    # (the model or the melody) with its section's bars, and the whole title stays the work's in the MusicXML
    bars = title[title.rfind(" (bars "):] if title.endswith(")") and " (bars " in title else ""
    shown = title.partition(", ")[0].removesuffix(bars) + bars if len(title) > TITLE_CHARS else None
    sc.metadata = metadata.Metadata(title=title, movementName=shown, composer="musicgen")
    found = _key(notes)
    voiced = 1 < notes.voices <= MAX_ENGRAVED_VOICES
    for staff in _voice_staves(notes, grid, found, first_bar == 1) if voiced else _chord_staves(notes, grid, found):
        sc.insert(0, staff)
    for part in sc.parts:
        _spell(part, found)
    mark = tempo.MetronomeMark(number=round(notes.tempo))
    if len(sc.parts) == 2:
        sc.insert(0, layout.StaffGroup(list(sc.parts), symbol="brace"))
    if not voiced:
        sc.parts[0].insert(0, mark)
        sc = sc.makeNotation()
    else:
        sc.parts[0].getElementsByClass("Measure")[0].insert(0, mark)
        for part in sc.parts:
            part.makeAccidentals(inPlace=True)
    if seam is not None:
        _mark_seam(sc.parts[0], seam)
    if first_bar != 1:
        for part in sc.parts:
            for m in part.getElementsByClass("Measure"):
                m.number += first_bar - 1
    return sc


def _mark_seam(part, beat: float) -> None:
    from music21 import expressions

    at = 0.0  # measures in order, their lengths summed (voice staves do not keep measure offsets)
    for measure in part.getElementsByClass("Measure"):
        length = float(measure.duration.quarterLength)
        if at <= beat + 1e-6 < at + length:
            text = expressions.TextExpression(SEAM_TEXT)
            text.style.fontStyle = "italic"
            text.placement = "above"
            measure.insert(max(0.0, beat - at), text)
            return
        at += length


def _key(notes: Notes):
    """The key: the file's signature, else (or where the notes contradict it) estimated from the notes."""
    from music21 import key

    sharps, minor = notes.key_signature()
    return key.KeySignature(sharps).asKey("minor" if minor else "major")


def _signature(notes: Notes) -> str:
    if notes.meter:
        _, num, den = notes.meter[0]
        return f"{num}/{den}"
    return "4/4"


def _staff(which: str, notes: Notes, found_key):
    """A Part with its clef, key and time signature, ready for measures."""
    from music21 import clef, key, meter, stream

    part = stream.Part()
    part.insert(0, clef.TrebleClef() if which == "treble" else clef.BassClef())
    part.insert(0, key.KeySignature(found_key.sharps))
    part.insert(0, meter.TimeSignature(_signature(notes)))
    return part


def _chord_staves(notes: Notes, grid: int, found) -> list:
    """Piano textures: notes below middle C on the bass staff, each staff chordified."""
    from music21 import note

    low = notes.pitch < SPLIT_PITCH
    staves = [("treble", ~low), ("bass", low)] if low.any() and (~low).any() else \
        [("bass" if low.all() else "treble", np.ones(len(notes), bool))]
    out = []
    for which, mask in staves:
        part = _staff(which, notes, found)
        for p, s, e in zip(notes.pitch[mask].tolist(), notes.start_beat[mask].tolist(),
                           notes.end_beat[mask].tolist()):
            n = note.Note(p)
            start = _snap(s, grid)
            n.quarterLength = max(_snap(e, grid) - start, 1 / grid)
            part.insert(start, n)
        part = part.chordify() if len(part.notes) else part
        for el in part.notes:
            _mark_fermata(el, float(el.offset), notes, grid)
        out.append(part)
    return out


def _mark_fermata(el, at: float, notes: Notes, grid: int) -> None:
    """A fermata over the note or chord at `at` quarter notes where the piece has one."""
    from music21 import expressions

    if any(abs(_snap(f, grid) - at) < 1e-6 for f in notes.fermatas):
        mark = expressions.Fermata()
        mark.type = "upright"  # drawn above (music21's own default is 'inverted', below)
        el.expressions.append(mark)


def _voice_line(notes: Notes, grid: int, total: float):
    """One voice as a flat Part of notes (same-onset notes as a chord) and rests, each note cut at the
    next onset so the voice stays a single line, padded with rests to `total` quarter notes."""
    from music21 import chord, note, stream

    line = stream.Part()
    starts = np.array([_snap(s, grid) for s in notes.start_beat.tolist()])
    onsets = np.unique(starts)
    at_end = 0.0  # where the line's last note or rest ends: a gap before the next onset is a rest
    for k, at in enumerate(onsets):
        here = np.isclose(starts, at)
        end = max(_snap(e, grid) for e in notes.end_beat[here].tolist())
        if k + 1 < len(onsets):
            end = min(end, onsets[k + 1])
        length = max(end - at, 1 / grid)
        for rest_at, rest in _rests(at_end, float(at), notes):
            line.insert(rest_at, note.Rest(quarterLength=rest))
        pitches = sorted(set(notes.pitch[here].tolist()))
        el = note.Note(pitches[0]) if len(pitches) == 1 else chord.Chord(pitches)
        el.quarterLength = length
        _mark_fermata(el, float(at), notes, grid)
        line.insert(float(at), el)
        at_end = float(at) + float(el.quarterLength)
    for rest_at, rest in _rests(at_end, float(total), notes):
        line.insert(rest_at, note.Rest(quarterLength=rest))
    return line


def _rests(start: float, end: float, notes: Notes) -> list[tuple[float, float]]:
    """(offset, length) of the rests that fill start..end as a score writes them in a simple meter: a whole
    bar, else up to the next beat, then whole beats (two from the middle or the start of a 4/4 bar as a half);
    never a double-dotted rest that hides the middle of the bar. Compound meters get one rest a bar."""
    bar = notes.bar_length()
    num, den = (notes.meter[0][1], notes.meter[0][2]) if notes.meter else (4, 4)
    beat = 4.0 / den if num in (2, 3, 4) else bar
    out, t = [], start
    while t < end - 1e-9:
        into = t % bar
        bar_end = t - into + bar
        if into < 1e-9 and end >= bar_end - 1e-9:
            stop = bar_end  # a whole bar
        elif into % beat > 1e-9:
            stop = min(end, t - into % beat + beat)  # off the beat: up to the next one
        else:
            beats = int((min(end, bar_end) - t + 1e-9) // beat)
            two = beats >= 2 and num == 4 and (into / beat) % 2 < 1e-9
            stop = t + (2 if two else 1) * beat if beats else min(end, bar_end)
        out.append((t, stop - t))
        t = stop
    return out


def _voice_staves(notes: Notes, grid: int, found, pickup_allowed: bool = True) -> list:
    """Voices from the top (by mean pitch): the upper two on the treble staff, the lower two on the bass,
    two per staff with stems up and down; a piece that begins part way through its first bar begins with a
    pickup bar (where pickup_allowed: not in a later section)."""
    from music21 import meter, stream

    ids = sorted(np.unique(notes.voice).tolist(), key=lambda v: -notes.pitch[notes.voice == v].mean())
    bar = notes.bar_length()
    total = max(bar, np.ceil(_snap(notes.beats, grid) / bar) * bar)
    if len(ids) == 2:
        groups = [[ids[0]], [ids[1]]]
    else:
        groups = [ids[:2], ids[2:]]
    out = []
    for g, members in enumerate(groups):
        which = "treble" if g == 0 else "bass"
        staff = _staff(which, notes, found)
        lines = []
        for v in members:
            line = _voice_line(notes.take(notes.voice == v), grid, total)
            line.insert(0, meter.TimeSignature(_signature(notes)))
            lines.append(line.makeMeasures())
        measures = [list(m.getElementsByClass("Measure")) for m in lines]
        for i in range(max(len(m) for m in measures)):
            bar_m = stream.Measure(number=i + 1)
            for k, ms in enumerate(measures):
                if i >= len(ms):
                    continue
                if len(lines) == 1:
                    for el in ms[i].notesAndRests:
                        bar_m.insert(el.offset, el)
                    continue
                voice = stream.Voice(id=str(k + 1))
                for el in ms[i].notesAndRests:
                    if el.isNote or el.isChord:
                        el.stemDirection = "up" if k == 0 else "down"
                        for mark in el.expressions:  # the lower voice's fermata is drawn under it
                            if k and type(mark).__name__ == "Fermata":
                                mark.type = "inverted"
                    voice.insert(el.offset, el)
                bar_m.insert(0, voice)
            if i == 0:
                for el in staff.getElementsByClass(["Clef", "KeySignature", "TimeSignature"]):
                    bar_m.insert(0, el)
            staff.append(bar_m)
        for el in list(staff.getElementsByClass(["Clef", "KeySignature", "TimeSignature"])):
            staff.remove(el)
        staff.makeTies(inPlace=True)
        staff.makeBeams(inPlace=True)
        out.append(staff)
    pickup = _snap(float(notes.start_beat.min()), grid) if len(notes) and pickup_allowed else 0.0
    ending = total - _snap(notes.beats, grid)  # silence after the last note, in the last bar
    for staff in out:
        measures = staff.getElementsByClass("Measure")
        if 0 < ending < bar and len(measures) > 1:
            _cut_ending(measures[-1], bar - ending)
        if 0 < pickup < bar:
            _as_pickup(measures[0], pickup)
    return out


def _cut_ending(measure, length: float) -> None:
    """A last bar whose every voice rests after `length` quarter notes ends there (as a pickup's complement)."""
    for holder in list(measure.voices) or [measure]:
        for el in list(holder.notesAndRests):
            if el.isRest and el.offset >= length - 1e-6:
                holder.remove(el)
            elif el.isRest and el.offset + el.quarterLength > length + 1e-6:
                el.quarterLength = length - el.offset  # a rest that runs past the end ends there
        left = list(holder.notesAndRests)
        if len(left) == 1 and left[0].isRest:  # silent all through the short last bar: a whole-bar rest
            left[0].fullMeasure = True


def _as_pickup(measure, rest: float) -> None:
    """A first bar that begins with `rest` quarter notes of silence in every voice becomes a pickup bar."""
    for holder in list(measure.voices) or [measure]:
        for el in list(holder.notesAndRests):
            if el.isRest and el.offset + el.quarterLength <= rest + 1e-6:
                holder.remove(el)
            elif el.isRest and el.offset < rest - 1e-6:  # a voice that enters later: its rest starts at the pickup
                el.quarterLength = el.offset + el.quarterLength - rest
                holder.coreSetElementOffset(el, rest)
        for el in holder.notesAndRests:
            holder.coreSetElementOffset(el, max(0.0, el.offset - rest))
        holder.coreElementsChanged()
    measure.paddingLeft = rest
    measure.number = 0


def _grid(quarters: np.ndarray) -> int:
    """Divisions of a quarter note for the whole piece: 4 (sixteenths), or 6 when triplets fit far better.

    One grid per piece: mixing grids note by note scatters triplet brackets over music that has none.
    """
    if not len(quarters):
        return 4
    error = {d: np.abs(quarters * d - np.rint(quarters * d)).mean() / d for d in (4, 6)}
    return 6 if error[6] < TRIPLETS_IF_BETTER * error[4] else 4


def _snap(quarters: float, grid: int) -> float:
    return round(quarters * grid) / grid


# A note outside the key is spelled as the degree it usually is, in semitones above the tonic: in major a
# raised 1, 4 and 5 and a lowered 3 and 7 (C#, F#, G#, Eb, Bb in C major); in minor a lowered 2 and a raised
# 3, 4, 6 and 7 (Bb, C#, D#, F#, G# in A minor). Value: the degree, counted from the tonic's letter.
CHROMATIC_DEGREES = {"major": {1: 0, 3: 2, 6: 3, 8: 4, 10: 6}, "minor": {1: 1, 4: 2, 6: 3, 9: 5, 11: 6}}
LETTERS = "CDEFGAB"


def _spell(part, found_key) -> None:
    """Notes of the key as the key signature has them; the others by their degree (CHROMATIC_DEGREES),
    so a G major tune's B-flat is written B-flat, not A-sharp: no needless accidentals."""
    tonic = found_key.tonic
    degrees = CHROMATIC_DEGREES["minor" if found_key.mode == "minor" else "major"]
    in_key = {p.pitchClass: p.name for p in found_key.pitches}
    for n in part.recurse().notes:
        for p in n.pitches:
            if p.accidental is not None and p.accidental.alter == 0:
                p.accidental = None  # music21 marks MIDI-made white keys 'natural', which would be printed
            letter = None
            if p.pitchClass in in_key:
                letter = in_key[p.pitchClass][0]
            elif (p.pitchClass - tonic.pitchClass) % 12 in degrees:
                letter = LETTERS[(LETTERS.index(tonic.step) + degrees[(p.pitchClass - tonic.pitchClass) % 12]) % 7]
            if letter is not None and p.step != letter:
                for other in p.getAllCommonEnharmonics(alterLimit=2):
                    if other.step == letter:
                        p.step, p.accidental, p.octave = other.step, other.accidental, other.octave
                        break


def musicxml(notes: Notes, title: str = "musicgen", seam: float | None = None, first_bar: int = 1) -> bytes:
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from .errors import MusicgenError

    try:  # what GeneralObjectExporter.parse does, on our own score rather than on a deep copy of it
        sc = score(notes, title, seam, first_bar)
        sc.makeRests(refStreamOrTimeRange=[0.0, sc.highestTime], fillGaps=True, inPlace=True, hideRests=True,
                     timeRangeFromBarDuration=True)
        exporter = GeneralObjectExporter()
        return exporter.parseWellformedObject(exporter.fromScore(sc))
    except Exception as e:  # music21 raises many kinds; the page and the CLI need a sentence
        raise MusicgenError(f"The sheet music could not be written ({type(e).__name__}: {e}).") from None


def sheet_music_svg(notes: Notes, title: str = "musicgen", width: int = 2100) -> str:
    """Engraved sheet music as one SVG, as many systems as the piece needs (no MuseScore or LilyPond)."""
    return engrave(musicxml(notes, title), width)


def engrave(xml: bytes, width: int = 2100) -> str:
    """The MusicXML engraved as one SVG."""
    return _engraved(xml, width)[0]


def _engraved(xml: bytes, width: int = 2100) -> tuple[str, list[tuple[str, float, float]]]:
    """(SVG, cues): each cue is (the SVG id of a note, its onset, its end) in quarter notes from the score's
    first onset, from verovio's timemap, for a cursor that follows the sound."""
    import verovio

    from .errors import MusicgenError

    # toolkit(False) and an explicit resource path: Streamlit runs pages in threads, where verovio's
    # default font path is not set
    tk = verovio.toolkit(False)
    tk.setResourcePath(str(importlib.resources.files("verovio") / "data"))
    tk.setOptions({"pageWidth": width, "pageHeight": 60000, "adjustPageHeight": True, "scale": 45,
                   "breaks": "auto", "footer": "none", "header": "auto"})
    if not tk.loadData(xml.decode("utf-8")):
        raise MusicgenError("The sheet music could not be engraved (verovio could not read the MusicXML).")
    svg = tk.renderToSVG(1)
    onsets, cues = {}, []
    try:
        timemap = tk.renderToTimemap({})
    except Exception:  # a cursor is a nicety; the score stands without one
        timemap = []
    first = min((float(e["qstamp"]) for e in timemap if e.get("on")), default=0.0)
    for e in timemap:
        q = float(e.get("qstamp", 0.0)) - first
        for i in e.get("on", []):
            onsets[i] = q
        for i in e.get("off", []):
            if i in onsets:
                cues.append((i, onsets.pop(i), q))
    return svg, cues


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: its global state is not thread-safe under Streamlit

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def piano_roll(notes: Notes, first: int | None = None, window: tuple[float, float] | None = None,
               title: str | None = None, seam: float | None = None):
    """A matplotlib Figure of the notes as bars (time in seconds, pitch with note names), shaded by velocity.

    first: only the first N notes; window: only notes starting in [t0, t1) seconds.
    """
    if window is not None:
        notes = notes.window(*window)
    if first is not None:
        notes = notes.head(first)
    fig, ax = _figure(10, 3.6)
    if len(notes):
        from matplotlib import colormaps

        colors = colormaps["viridis"](0.25 + 0.65 * (notes.velocity / 127.0))
        _bars(ax, notes.pitch, notes.start, notes.end, 0.85, colors, 1)
        lo, hi = int(notes.pitch.min()) - 2, int(notes.pitch.max()) + 2
        ax.set_ylim(lo - 0.5, hi + 0.5)
        c_notes = [p for p in range(lo, hi + 1) if p % 12 == 0] or [lo, hi]
        ax.set_yticks(c_notes, [note_name(p) for p in c_notes])
        ax.set_xlim(float(notes.start.min()), float(notes.end.max()))
        black = [p for p in range(lo, hi + 1) if p % 12 in (1, 3, 6, 8, 10)]  # shaded, as on a piano roll
        t0, t1 = float(notes.start.min()), float(notes.end.max())
        _bars(ax, np.array(black, np.float64), np.full(len(black), t0), np.full(len(black), t1), 1.0, "0.94", 0)
    else:
        ax.text(0.5, 0.5, "no notes", ha="center", va="center", transform=ax.transAxes)
    if seam is not None:  # seconds: where the model's continuation leaves its primer
        ax.axvline(seam, color="#c0392b", linewidth=1.5)
        ax.annotate(SEAM_TEXT, (seam, 1.0), xycoords=("data", "axes fraction"), xytext=(4, -12),
                    textcoords="offset points", color="#c0392b", fontsize=9, style="italic")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pitch")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def _bars(ax, y, x0, x1, height: float, colors, zorder: int) -> None:
    """Horizontal bars as one collection (ax.barh makes an artist per bar: most of a piano roll's time)."""
    y0, y1 = np.asarray(y, np.float64) - height / 2, np.asarray(y, np.float64) + height / 2
    corners = np.stack([np.stack(c, -1) for c in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))], 1)
    from matplotlib.collections import PolyCollection

    ax.add_collection(PolyCollection(corners, facecolors=colors, edgecolors="none", zorder=zorder),
                      autolim=False)


HISTOGRAM_SIZE = (4.2, 2.6)  # inches at 100 dpi: the width of one of three columns on a wide page, so type
# is drawn at the size it is read (a larger figure is shrunk into the column, with it its labels)


def histogram_figure(hist: Histogram, title: str):
    """A bar chart of one Histogram; pitch axes get note names; values past the last edge are a bar of their
    own, in another colour, labelled (e.g. '>= 2 s')."""
    fig, ax = _figure(*HISTOGRAM_SIZE)
    widths = np.diff(hist.edges)
    ax.bar(hist.edges[:-1], hist.counts, width=widths, align="edge", color="#4c72b0", edgecolor="none")
    if hist.unit == "MIDI pitch":
        used = np.nonzero(hist.counts)[0]
        if len(used):
            ax.set_xlim(used.min() - 2, used.max() + 2)
            ticks = [p for p in range(int(used.min()) - 2, int(used.max()) + 3) if p % 12 == 0]
            ax.set_xticks(ticks, [note_name(p) for p in ticks])
    elif hist.overflow:
        gap, width = widths[-1], 4 * widths[-1]
        at = hist.edges[-1] + gap
        ax.bar([at], [hist.overflow], width=width, align="edge", color="#dd8452", edgecolor="none")
        span = hist.edges[-1] - hist.edges[0]  # no tick so near the overflow bar that the labels collide
        ticks = [t for t in ax.get_xticks() if hist.edges[0] <= t <= hist.edges[-1] - 0.12 * span]
        ax.set_xticks(ticks + [at + width / 2], [f"{t:g}" for t in ticks] + [hist.overflow_label])
        ax.set_xlim(hist.edges[0], at + width + gap)
    ax.set_xlabel(hist.unit, fontsize=9)
    ax.set_ylabel("notes", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def png(fig, dpi: int = 100) -> bytes:
    """A matplotlib Figure as PNG bytes (cacheable, unlike the figure)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


SECTION_BARS = 32  # bars engraved at a time: a long piece's score comes a section at a time


def sections(notes: Notes) -> int:
    """How many SECTION_BARS sections the score of the notes has."""
    if not len(notes):
        return 1
    bars = float(notes.end_beat.max()) / notes.bar_length()
    return max(1, int(np.ceil(bars / SECTION_BARS - 1e-9)))


def section(notes: Notes, k: int) -> Notes:
    """Section k (from 0) of the notes: those starting in its bars, cut at its end, moved to start at 0."""
    length = SECTION_BARS * notes.bar_length()
    b0, b1 = k * length, (k + 1) * length
    part = notes.take((notes.start_beat >= b0 - 1e-6) & (notes.start_beat < b1 - 1e-6))
    end_beat = np.minimum(part.end_beat, b1)
    part = part.replace(end_beat=end_beat, end=part.tempo_map.seconds(end_beat))
    return part.shifted(-float(notes.tempo_map.seconds(b0))) if k else part


def section_bars(notes: Notes, k: int) -> tuple[int, int, int]:
    """(first bar, last bar) of section k, and the piece's last bar, counted from 1."""
    last = int(np.ceil(float(notes.end_beat.max()) / notes.bar_length() - 1e-9)) if len(notes) else 1
    return k * SECTION_BARS + 1, min((k + 1) * SECTION_BARS, last), last


def section_title(title: str, notes: Notes, k: int) -> str:
    if sections(notes) == 1:
        return title
    first, end, last = section_bars(notes, k)
    return f"{title} (bars {first}-{end} of {last})"


@dataclass(frozen=True)
class Sheet:
    """One section of a piece's score."""

    index: int  # the section, from 0
    musicxml: bytes
    svg: str
    cues: tuple = ()  # (SVG id of a note, onset, end) in the piece's beats: what sounds when


def sheet(notes: Notes, title: str, k: int = 0, seam: float | None = None) -> Sheet:
    at = None if seam is None else seam - k * SECTION_BARS * notes.bar_length()
    part = section(notes, k)
    xml = musicxml(part, section_title(title, notes, k),
                   at if at is not None and 0 <= at < SECTION_BARS * notes.bar_length() else None,
                   section_bars(notes, k)[0])
    svg, cues = _engraved(xml)
    # the score's first onset is the section's first note, at this beat of the whole piece
    first = float(part.start_beat.min()) + (k * SECTION_BARS * notes.bar_length() if k else 0.0) if len(part) else 0.0
    return Sheet(k, xml, svg, tuple((i, first + on, first + off) for i, on, off in cues))


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


BESIDE_TIMEOUT_S = 300  # a forked helper that has not answered by then is stopped, and the work done here


def _one_thread() -> bool:
    """Whether this process runs a single thread, native ones (BLAS, TensorFlow) counted: only then is a
    fork safe (a lock held by another thread would stay locked in the child for ever)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _beside(work):
    """Start work() in a forked child when this process has one thread (the app's job processes), else run
    it here; returns a function that gives its result."""
    import multiprocessing

    if not _one_thread() or "fork" not in multiprocessing.get_all_start_methods():
        value = work()
        return lambda: value
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_send_result, args=(send, work), daemon=True)
    child.start()
    send.close()

    def result():
        try:
            if not receive.poll(BESIDE_TIMEOUT_S):
                raise EOFError
            value = receive.recv()
        except EOFError:  # the child died or hangs (a crash in a C library): do it here instead
            child.kill()
            value = work()
        child.join()
        if isinstance(value, Exception):
            raise value
        return value

    return result


def _send_result(send, work) -> None:
    try:  # Linux: end with the job that forked us, however it ends
        import ctypes

        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass
    try:
        send.send(work())
    except Exception as e:  # noqa: BLE001  (raised again in the parent)
        send.send(e)


def statistics_figure(corpus: dict[str, np.ndarray], piece: dict[str, float]):
    """One small histogram per statistic of the corpus pieces, the piece marked by a red line."""
    from matplotlib.figure import Figure

    from .metrics import FOUR_PART, STATISTICS

    fig = Figure(figsize=(12, 6.3), dpi=100, layout="constrained")
    axes = fig.subplots(3, 4).ravel()
    for ax, (name, (unit, _)) in zip(axes, {**STATISTICS, **FOUR_PART}.items()):
        ax.hist(corpus[name], bins=20, color="#9db4d8")
        ax.axvline(piece[name], color="#c0392b", linewidth=2)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].axis("off")
    axes[-1].text(0.0, 0.5, "bars: the training pieces\nred line: this piece", fontsize=9, va="center")
    return fig


def choices_figure(choices, temperatures: tuple[float, ...]):
    """The model's likeliest next choices as horizontal bars, one colour per temperature, likeliest on top."""
    fig, ax = _figure(6.4, 0.32 * len(choices) + 1.0)
    y = np.arange(len(choices))[::-1]
    height = 0.8 / len(temperatures)
    for j, (t, color) in enumerate(zip(temperatures, ("#4c72b0", "#dd8452", "#55a868"))):
        ax.barh(y + (len(temperatures) / 2 - j - 0.5) * height, [100 * c.chances[j] for c in choices], height,
                color=color, label=f"temperature {t:g}")
    ax.set_yticks(y, [c.name for c in choices], fontsize=9)
    ax.set_xlabel("chance of being chosen next (%)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8, loc="lower right")
    return fig


FOLLOW_SCORE_PX = 520  # the score's box in the follow-along view; it scrolls to what is playing


def follow_html(r: Rendered, sheet: Sheet) -> str:
    """One HTML block for the page: the sound's player, the score whose sounding notes light up and the piano
    roll with a line at the playing time; both follow the player (beats from the piece's own tempo map)."""
    import base64
    import json

    tm = r.notes.tempo_map
    tempo = [[float(b), float(tm.seconds(b)), float(q)] for b, q in zip(tm.beat, tm.qpm)]
    ogg = base64.b64encode(r.ogg).decode()
    roll = base64.b64encode(r.piano_roll_png).decode()
    data = json.dumps({"cues": [list(c) for c in sheet.cues], "tempo": tempo, "axes": list(r.roll_axes),
                       "start": r.sound_start})
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; font-family: sans-serif; }}
audio {{ width: 100%; }}
#score {{ max-height: {FOLLOW_SCORE_PX}px; overflow-y: auto; border: 1px solid #ddd; border-radius: 6px; }}
#score svg {{ width: 100%; height: auto; }}
#score g.playing, #score g.playing * {{ fill: #c0392b; stroke: #c0392b; }}
#roll {{ position: relative; margin-top: 8px; }}
#roll img {{ width: 100%; display: block; }}
#line {{ position: absolute; top: 0; bottom: 0; width: 2px; background: #c0392b; display: none; }}
</style></head><body>
<audio id="player" controls preload="auto" src="data:audio/ogg;base64,{ogg}"></audio>
<div id="score">{sheet.svg}</div>
<div id="roll"><img alt="piano roll" src="data:image/png;base64,{roll}"><div id="line"></div></div>
<script>
const D = {data};
const player = document.getElementById("player"), box = document.getElementById("score");
const line = document.getElementById("line");
const svg = box.querySelector("svg");
if (svg) {{  // scale to the box: the engraved size becomes the picture's own coordinates
  const w = parseFloat(svg.getAttribute("width")), h = parseFloat(svg.getAttribute("height"));
  if (w && h) svg.setAttribute("viewBox", `0 0 ${{w}} ${{h}}`);
  svg.removeAttribute("width"); svg.removeAttribute("height");
}}
const notes = D.cues.map(c => [document.getElementById(c[0]), c[1], c[2]]).filter(c => c[0]);
function beatAt(t) {{  // the tempo map: from beat b (at second s) on, q quarter notes a minute
  let k = 0;
  while (k + 1 < D.tempo.length && D.tempo[k + 1][1] <= t) k++;
  const [b, s, q] = D.tempo[k];
  return b + (t - s) * q / 60;
}}
let shown = null;
function follow() {{
  const t = player.currentTime + D.start, beat = beatAt(t);  // the sound begins at the first note
  let first = null;
  for (const [el, on, off] of notes) {{
    const now = on <= beat + 1e-6 && beat < off;
    el.classList.toggle("playing", now);
    if (now && !first) first = el;
  }}
  if (first && first !== shown) {{  // keep the sounding system in view
    shown = first;
    const a = first.getBoundingClientRect(), c = box.getBoundingClientRect();
    if (a.top < c.top || a.bottom > c.bottom) box.scrollTop += a.top - c.top - c.height / 3;
  }}
  const [x0, x1, t0, t1] = D.axes;
  if (D.axes.length === 4 && t1 > t0) {{
    const f = Math.min(Math.max((t - t0) / (t1 - t0), 0), 1);
    line.style.left = (100 * (x0 + f * (x1 - x0))) + "%";
    line.style.display = "block";
  }}
  document.body.dataset.beat = beat.toFixed(3);
  document.body.dataset.playing = String(notes.filter(n => n[0].classList.contains("playing")).length);
}}
function loop() {{ follow(); if (!player.paused) requestAnimationFrame(loop); }}
player.addEventListener("play", loop);
player.addEventListener("timeupdate", follow);
player.addEventListener("seeked", follow);
</script></body></html>"""

