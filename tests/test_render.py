import numpy as np
import pytest
from helpers import notes, scale

from musicgen.analysis.explore import histograms
from musicgen.render.audio import RELEASE_S, audio
from musicgen.render.figures import histogram_figure, piano_roll


def bars(fig):
    """The note bars' corners (one collection of bars for the notes, drawn over one for the black keys)."""
    from matplotlib.collections import PolyCollection

    notes = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection) and c.get_zorder() == 1]
    return [path.vertices for path in notes[0].get_paths()] if notes else []


def test_piano_roll_draws_one_bar_per_note():
    n = notes(scale(count=12))
    fig = piano_roll(n)
    assert len(bars(fig)) == 12
    spans = [(c[:, 0].min(), c[:, 0].max(), (c[:, 1].min() + c[:, 1].max()) / 2) for c in bars(fig)]
    np.testing.assert_allclose(spans, np.c_[n.start, n.end, n.pitch])  # each bar: its note's time, its pitch
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "C4" in labels


def test_piano_roll_first_and_window():
    n = notes(scale(count=12, step=1.0))
    assert len(bars(piano_roll(n, first=5))) == 5
    assert len(bars(piano_roll(n, window=(2.0, 4.0)))) == 2


def test_piano_roll_of_nothing_says_so():
    fig = piano_roll(notes([]))
    assert "no notes" in [t.get_text() for t in fig.axes[0].texts]


def test_histogram_figure_renders_to_png():
    import io

    fig = histogram_figure(histograms(notes(scale()))["pitch"], "Pitch")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.axes[0].get_title() == "Pitch"


def wav_samples(data: bytes):
    import io
    import wave

    import numpy as np

    with wave.open(io.BytesIO(data)) as w:
        assert w.getframerate() == 44100 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0


def test_audio_is_real_sound_of_the_right_length():
    import numpy as np

    from musicgen.render.audio import audio

    n = notes([(60, 0.0, 1.0), (64, 1.0, 2.0), (67, 2.0, 3.0)])
    sound = audio(n)
    assert sound.note is None  # FluidSynth and a SoundFont are installed by the setup
    x = wav_samples(sound.wav)
    assert 3.0 <= len(x) / 44100 <= 6.0  # the notes plus the instrument's release
    assert 0.5 < np.abs(x).max() <= 0.9
    loud = np.sqrt((x[: 3 * 44100].reshape(30, -1) ** 2).mean(1))
    assert (loud > 0.01).all()  # sound all the way through the three notes
    spectrum = np.abs(np.fft.rfft(x[:44100]))
    assert abs(np.fft.rfftfreq(44100, 1 / 44100)[spectrum.argmax()] - 261.6) < 3  # C4 is heard first


def test_audio_without_fluidsynth_says_why(monkeypatch):
    import sys

    from musicgen.render.audio import audio

    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # as on a machine without libfluidsynth
    sound = audio(notes([(69, 0.0, 0.5)]))
    assert "FluidSynth" in sound.note and "apt-get install" in sound.note
    assert wav_samples(sound.wav).std() > 0.01


def test_sheet_music_reads_like_sheet_music():
    from music21 import converter

    from musicgen.render.notation import musicxml, sheet_music_svg

    g_major = [(p, i * 0.6, (i + 1) * 0.6) for i, p in enumerate([67, 69, 71, 72, 74, 76, 78, 79])]
    bass = [(43, 0.0, 2.4), (50, 2.4, 4.8)]
    n = notes(g_major + bass, tempo=100)  # 0.6 s is a quarter note at 100 bpm
    score = converter.parse(musicxml(n, "G major"))
    assert len(score.parts) == 2  # treble and bass staves
    assert score.parts[0].recurse().getElementsByClass("KeySignature")[0].sharps == 1
    treble = [p for el in score.parts[0].recurse().notes for p in el.pitches]
    assert [p.nameWithOctave for p in treble] == ["G4", "A4", "B4", "C5", "D5", "E5", "F#5", "G5"]
    assert all(p.accidental is None or p.accidental.displayStatus is False for p in treble)  # F# is in the key
    assert {el.quarterLength for el in score.parts[0].recurse().notes} == {1.0}
    assert [el.quarterLength for el in score.parts[1].recurse().notes] == [4.0, 4.0]
    svg = sheet_music_svg(n, "G major")
    assert svg.startswith("<svg") or "<svg" in svg[:500]
    assert svg.count('class="staff"') >= 2 and 'class="keySig"' in svg


def test_one_staff_for_a_melody_and_systems_for_a_long_piece():
    from music21 import converter

    from musicgen.render.notation import musicxml, sheet_music_svg

    melody = notes([(72 + i % 5, i * 0.3, i * 0.3 + 0.3) for i in range(200)], tempo=100)
    assert len(converter.parse(musicxml(melody)).parts) == 1
    assert sheet_music_svg(melody).count('class="system"') >= 3


def test_ogg_is_the_same_sound_much_smaller():
    import io

    import soundfile

    sound = audio(notes([(60 + i % 12, i * 0.25, i * 0.25 + 0.5) for i in range(40)]))
    ogg = sound.ogg
    back, rate = soundfile.read(io.BytesIO(ogg))
    assert rate == sound.sample_rate and abs(len(back) - len(sound.samples)) < rate * 0.1
    assert back.std() > 0.01 and len(ogg) < len(sound.wav) / 5


def test_a_long_score_comes_in_sections_of_bars():
    from musicgen.music.notes import Notes
    from musicgen.render.notation import SECTION_BARS, section, section_bars, section_title, sections

    beats = np.arange(0, 4 * (2 * SECTION_BARS + 3), 1.0)  # 2 sections and 3 bars of quarter notes in 4/4
    n = Notes.from_beats(60 + beats % 12, beats, beats + 1.5, meter=((0.0, 4, 4),))
    assert sections(n) == 3
    second = section(n, 1)
    assert len(second) == 4 * SECTION_BARS and second.start_beat[0] == 0.0
    assert second.end_beat.max() <= 4 * SECTION_BARS  # the last note is cut at the section's end
    last = 2 * SECTION_BARS + 4  # the last note sounds on into one more bar
    assert section_title("x", n, 2) == f"x (bars {2 * SECTION_BARS + 1}-{last} of {last})"
    assert section_bars(n, 2) == (2 * SECTION_BARS + 1, last, last)  # what the page's Bars slider says
    assert sections(n.head(4)) == 1 and section_title("x", n.head(4), 0) == "x"


def test_render_all_plays_the_same_sound_made_beside_the_score():
    from musicgen.render.bundle import PAGE_SAMPLE_RATE, render_all

    n = notes([(60, 0, 0.5), (64, 0.5, 1.0), (67, 1.0, 2.0)])
    r = render_all(n, "t")
    import io

    import soundfile

    back, rate = soundfile.read(io.BytesIO(r.ogg))
    here, _ = soundfile.read(io.BytesIO(audio(n, 0, PAGE_SAMPLE_RATE).ogg))
    assert rate == PAGE_SAMPLE_RATE and len(back) == len(here)
    np.testing.assert_allclose(back, here, atol=1e-3)


def test_histograms_are_drawn_at_display_size_with_a_labelled_overflow_bar():
    from musicgen.render.figures import png

    h = histograms(notes([(60, 0.0, 0.5), (62, 0.5, 9.0)]))["duration"]
    fig = histogram_figure(h, "Note length (s)")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[-1] == ">= 3 s" and len(fig.axes[0].patches) == len(h.counts) + 1
    import io

    from matplotlib.image import imread

    assert imread(io.BytesIO(png(fig))).shape[1] == 420  # pixels: one column's width, not shrunk into it


def test_the_cursor_knows_when_each_engraved_note_sounds():
    """Cues: every note of the score with its onset and end in the piece's beats, for any section, with a
    pickup and a tempo change; the follow-along block holds them, the sound and the roll's axes."""
    from musicgen.music.notes import Notes, TempoMap
    from musicgen.render.notation import SECTION_BARS, sheet
    from widgets import follow_html
    from musicgen.render.bundle import render_all

    beats = np.arange(3.0, 3.0 + 4 * (SECTION_BARS + 2), 1.0)  # a one-beat pickup, then quarter notes in 4/4
    n = Notes.from_beats(60 + beats % 7, beats, beats + 1.0, meter=((0.0, 4, 4),),
                         tempo_map=TempoMap.from_changes([0.0, 40.0], [100.0, 60.0]))
    for k in (0, 1):
        cues = sheet(n, "t", k).cues
        first = n.start_beat[n.start_beat >= 4 * SECTION_BARS * k].min()
        onsets = sorted({round(on, 6) for _, on, _ in cues})
        assert len(cues) == sum((n.start_beat >= 4 * SECTION_BARS * k) & (n.start_beat < 4 * SECTION_BARS * (k + 1)))
        assert onsets[0] == first and all(off > on for _, on, off in cues)
        np.testing.assert_allclose(np.diff(onsets), 1.0)
    r = render_all(n.head(12), "t")
    x0, x1, t0, t1 = r.roll_axes
    assert 0 < x0 < x1 < 1 and t0 == n.start[0] and t1 == n.head(12).end.max()
    html = follow_html(r, r.sheet)
    assert all(f'id="{i}"' in html for i, _, _ in r.sheet.cues) and "data:audio/ogg;base64," in html


def test_rests_are_written_by_the_beat():
    """A voice's silence as a score writes it: half, quarter and eighth, not one double-dotted half hiding the
    middle of the bar; a silent short last bar is one whole-bar rest."""
    from music21 import converter

    from musicgen.music.notes import Notes
    from musicgen.render.notation import musicxml

    rows = [(72, 0.0, 4.0, 0), (74, 4.0, 7.0, 0),  # soprano: a whole note, then three beats (the last bar)
            (48, 3.5, 4.0, 1), (50, 4.0, 7.0, 1)]  # bass: silent for three and a half beats, then an eighth
    arr = np.array(rows, np.float64)
    n = Notes.from_beats(arr[:, 0], arr[:, 1], arr[:, 2], voice=arr[:, 3], meter=((0.0, 4, 4),))
    bass = converter.parse(musicxml(n)).parts[1].getElementsByClass("Measure")[0]
    assert [(r.offset, r.quarterLength) for r in bass.recurse().notesAndRests if r.isRest] == \
        [(0.0, 2.0), (2.0, 1.0), (3.0, 0.5)]
    silent = Notes.from_beats(arr[:2, 0], arr[:2, 1], arr[:2, 2], voice=[0, 0], meter=((0.0, 4, 4),))
    both = silent.joined(Notes.from_beats([48], [0.0], [1.0], voice=[1]), 0.0)  # a bass only in the first beat
    xml = musicxml(both).decode()
    assert xml.count('<rest measure="yes"') == 1  # its silent last bar (three beats) is a whole-bar rest


def test_a_long_title_is_engraved_up_to_its_first_comma_and_kept_whole_in_the_musicxml():
    from musicgen.render.notation import sheet

    title = "a folk song harmonized by bach-voices, 4 voices, temperature 0.7, seed 123456, church organ"
    s = sheet(notes(scale()), title)
    assert "a folk song harmonized by bach-voices" in s.svg and "church organ" not in s.svg  # one line that fits
    assert f"<work-title>{title}</work-title>".encode() in s.musicxml


def test_a_later_section_goes_on_counting_bars_and_has_no_pickup():
    import re

    from musicgen.music.notes import Notes
    from musicgen.render.notation import SECTION_BARS, sheet

    # two voices in 4/4 that rest through the first half of bar 33, where the second section begins
    beats = np.concatenate([np.arange(0, 4 * SECTION_BARS, 2.0), np.arange(4 * SECTION_BARS + 2, 4 * 40, 2.0)])
    n = Notes.from_beats(np.r_[72 + beats % 5, 55 + beats % 5], np.r_[beats, beats], np.r_[beats, beats] + 2,
                         voice=np.r_[np.zeros(len(beats)), np.ones(len(beats))], meter=((0.0, 4, 4),))
    numbers = [re.findall(rb'<measure[^>]* number="(\d+)"', sheet(n, "t", k).musicxml) for k in (0, 1)]
    assert numbers[0][0] == b"1" and numbers[0][-1] == str(SECTION_BARS).encode()
    assert numbers[1][0] == str(SECTION_BARS + 1).encode() and b"0" not in numbers[1]  # bar 33, not a pickup
    assert numbers[1][-1] == b"40"


def test_notes_outside_the_key_are_spelled_by_their_degree():
    from musicgen.music.notes import Notes
    from musicgen.render.notation import score

    def spelled(pitches, sharps, minor):
        b = np.arange(len(pitches), dtype=float)
        n = Notes.from_beats(np.array(pitches), b, b + 1, meter=((0.0, 4, 4),), keys=((0.0, sharps, minor),))
        return [p.name for x in score(n).parts[0].recurse().notes for p in x.pitches]

    # each key's scale, then notes outside it: a folk song's lowered third in G major is B-flat, not A-sharp
    g, a, e_flat = [67, 69, 71, 72, 74, 76, 78], [69, 71, 72, 74, 76, 77, 79], [63, 65, 67, 68, 70, 72, 74]
    assert spelled(g + [70, 73, 75, 65], 1, False)[7:] == ["B-", "C#", "D#", "F"]
    assert spelled(a + [70, 73, 78, 80], 0, True)[7:] == ["B-", "C#", "F#", "G#"]
    assert spelled(e_flat + [66, 61, 71], -3, False)[7:] == ["G-", "D-", "B"]


def test_sound_begins_at_the_first_note():
    """A pickup's rests (or a harmonized tune's) are not played as seconds of silence; the follow view knows."""
    from musicgen.music.notes import Notes, TempoMap

    n = Notes.from_beats([67, 72], [3.0, 4.0], [4.0, 6.0], tempo_map=TempoMap.constant(100), meter=((0.0, 4, 4),))
    a = audio(n)
    assert a.start == pytest.approx(1.8)
    loud = np.flatnonzero(np.abs(a.samples) > 0.01)
    assert loud[0] / a.sample_rate < 0.05  # sound within 50 ms
    assert a.seconds == pytest.approx(3 * 0.6 + RELEASE_S, abs=0.05)  # 3 beats of notes, then the release
