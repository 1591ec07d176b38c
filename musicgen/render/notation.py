"""Sheet music of a note table: a music21 score (voices, two to a staff, or chords), MusicXML, and SVG through
verovio, a section of bars at a time, with the cues a player follows."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import numpy as np

from musicgen.music.notes import Notes
from musicgen.music.theory import spelled_letter

# ---------------------------------------------------------------- audio


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


def _spell(part, found_key) -> None:
    """Notes spelled as theory.spelled_letter says, so a G major tune's B-flat is written B-flat, not A-sharp:
    no needless accidentals."""
    tonic, minor = found_key.tonic, found_key.mode == "minor"
    in_key = {p.pitchClass: p.name for p in found_key.pitches}
    for n in part.recurse().notes:
        for p in n.pitches:
            if p.accidental is not None and p.accidental.alter == 0:
                p.accidental = None  # music21 marks MIDI-made white keys 'natural', which would be printed
            letter = spelled_letter(p.pitchClass, tonic.pitchClass, tonic.step, minor, in_key)
            if letter is not None and p.step != letter:
                for other in p.getAllCommonEnharmonics(alterLimit=2):
                    if other.step == letter:
                        p.step, p.accidental, p.octave = other.step, other.accidental, other.octave
                        break


def musicxml(notes: Notes, title: str = "musicgen", seam: float | None = None, first_bar: int = 1) -> bytes:
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from musicgen.errors import MusicgenError

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

    from musicgen.errors import MusicgenError

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


# is drawn at the size it is read (a larger figure is shrunk into the column, with it its labels)


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
