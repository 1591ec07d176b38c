import numpy as np
from helpers import notes

from musicgen.music.notes import clock
from musicgen.analysis.explore import histograms, note_rows
from musicgen.music.theory import note_name
from musicgen.music.notes import summarize


def test_note_names():
    assert [note_name(p) for p in (60, 61, 69, 21, 108)] == ["C4", "C#4", "A4", "A0", "C8"]


def test_clock():
    assert clock(59.6) == "1:00"
    assert clock(3725) == "1:02:05"


def test_summary_of_one_piece():
    s = summarize(notes([(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 1.0, 2.5)], tempo=90))
    assert (s.pieces, s.notes, s.seconds, s.pitch_min, s.pitch_max, s.tempo) == (1, 3, 2.5, 60, 67, 90)
    assert s.text() == "3 notes, 0:02, pitch C4-G4, 90 bpm"


def test_summary_of_a_dataset():
    a = notes([(50, 0.0, 1.0)], tempo=80)
    b = notes([(70, 0.0, 3.0), (72, 3.0, 4.0)], tempo=120)
    s = summarize([a, b])
    assert (s.pieces, s.notes, s.seconds, s.pitch_min, s.pitch_max, s.tempo) == (2, 3, 5.0, 50, 72, 100)
    assert s.text().startswith("2 pieces, 3 notes")


def test_summary_of_nothing():
    assert summarize([]).text() == "no notes"


def test_histograms_count_every_note():
    n = notes([(60, 0.0, 0.5), (60, 0.5, 1.0), (64, 1.0, 1.25), (67, 1.0, 9.0)])
    h = histograms(n)
    assert h["pitch"].counts[60] == 2 and h["pitch"].counts[64] == 1 and h["pitch"].counts.sum() == 4
    assert h["step"].counts.sum() == 3  # the first note has no step
    assert h["step"].counts[np.searchsorted(h["step"].edges, 0.0, side="right") - 1] == 1  # the chord's zero step
    assert h["duration"].counts.sum() == 3 and h["duration"].overflow == 1  # the 8 s note: past the last bin
    assert h["duration"].overflow_label == ">= 3 s" and h["step"].overflow == 0


def test_histograms_over_several_tables():
    a, b = notes([(60, 0, 1)]), notes([(62, 0, 1), (62, 1, 2)])
    assert histograms([a, b])["pitch"].counts[[60, 62]].tolist() == [1, 2]


def test_note_rows():
    rows = note_rows(notes([(60, 0.0, 0.5, 90), (64, 0.5, 1.0)]), limit=1)
    assert rows == {"pitch": [60], "name": ["C4"], "start": [0.0], "end": [0.5], "step": [0.0],
                    "duration": [0.5], "velocity": [90], "program": [0]}
