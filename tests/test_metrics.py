"""Each statistic on a hand-made piece whose answer is known."""

import math

import numpy as np
import pytest
from helpers import notes

from musicgen.analysis.metrics import compare, length_histogram, pitch_class_entropy, scale_consistency, statistics
from musicgen.music.copies import longest_copy

# at 60 bpm a beat is a second
C_MAJOR_SCALE = notes([(p, i, i + 1) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])], tempo=60)


def test_pitch_class_entropy():
    assert pitch_class_entropy(notes([(60, 0, 1), (72, 1, 2)])) == 0.0  # one pitch class
    assert pitch_class_entropy(notes([(60, 0, 1), (67, 1, 2)])) == pytest.approx(1.0)  # two, equally
    chromatic = notes([(60 + i, i, i + 1) for i in range(12)])
    assert pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))


def test_scale_consistency():
    assert scale_consistency(C_MAJOR_SCALE) == 1.0
    assert scale_consistency(notes([(60, 0, 1), (61, 1, 2), (62, 2, 3), (63, 3, 4)])) == 0.75
    a_minor = notes([(p, i, i + 1) for i, p in enumerate([57, 59, 60, 62, 64, 65, 67])])
    assert scale_consistency(a_minor) == 1.0


def test_statistics_of_a_scale():
    s = statistics(C_MAJOR_SCALE)
    assert s["pitch_range"] == 12
    assert s["mean_ioi"] == pytest.approx(1.0)
    assert s["polyphony"] == 1.0
    assert s["repeated_onsets"] == 0.0
    assert s["mean_note_length"] == pytest.approx(1.0)


def test_polyphony_and_repeats():
    # a C major triad struck three times, then one G: onsets (CEG)(CEG)(CEG)(G)
    rows = [(p, t, t + 0.5) for t in (0.0, 0.5, 1.0) for p in (60, 64, 67)] + [(67, 1.5, 2.0)]
    s = statistics(notes(rows, tempo=120))
    assert s["polyphony"] == pytest.approx(10 / 4)
    assert s["repeated_onsets"] == pytest.approx(2 / 3)  # two of the three changes repeat the onset before
    assert s["mean_ioi"] == pytest.approx(1.0)  # half a second at 120 bpm is one beat
    assert s["mean_note_length"] == pytest.approx(1.0)


def test_length_histogram():
    n = notes([(60, 0, 0.25), (60, 1, 1.5), (60, 2, 3), (60, 3, 5), (60, 5, 10)], tempo=60)
    assert length_histogram(n).tolist() == [0.2, 0.2, 0.2, 0.2, 0.2]


def test_copy_detector_finds_a_transposed_quotation():
    theme = [60, 62, 64, 65, 67, 65, 64, 62, 60, 59]
    training = {
        "theme.mid": notes([(p, i, i + 1) for i, p in enumerate([50, 52] + theme + [40])]),
        "other.mid": notes([(p, i, i + 1) for i, p in enumerate([70, 71, 70, 71, 70])]),
    }
    generated = notes([(p + 5, i, i + 1) for i, p in enumerate([30, 80] + theme + [20, 90])])  # up a fourth
    copy = longest_copy(generated, training)
    assert copy.notes == len(theme) and copy.piece == "theme.mid"


def test_copy_detector_with_nothing_shared():
    copy = longest_copy(notes([(60, 0, 1), (61, 1, 2), (63, 2, 3)]), {"x": notes([(60, 0, 1), (70, 1, 2)])})
    assert copy.notes == 1 and copy.piece is None


def test_compare_says_inside_or_outside_the_band():
    corpus = [notes([(p + k, i, i + 1) for i, p in enumerate([60, 62, 64, 65, 67])]) for k in range(5)]
    rows = {r.name: r for r in compare(corpus, corpus[:2])}
    assert rows["scale_consistency"].inside and rows["scale_consistency"].corpus_sd == 0.0
    wild = [notes([(60 + 7 * i % 12 + 48 * (i % 2), i, i + 1) for i in range(12)])]
    rows = {r.name: r for r in compare(corpus, wild)}
    assert not rows["pitch_range"].inside and not rows["pitch_class_entropy"].inside
    assert np.isfinite([r.generated_mean for r in rows.values()]).all()


def _chords(*sonorities, length=1.0):
    """Block chords, one per beat at 60 bpm (a beat is a second)."""
    rows = [(p, i * length, (i + 1) * length) for i, chord in enumerate(sonorities) for p in chord]
    return notes(rows, tempo=60)


def test_four_part_statistics_find_parallels_chords_and_spacing():
    from musicgen.analysis.metrics import four_part_statistics

    good = _chords((72, 67, 64, 48), (71, 67, 62, 55), (72, 67, 64, 48), (74, 67, 59, 43))  # I V I V
    s = four_part_statistics(good)
    assert s["parallels"] == 0 and s["triads_sevenths"] == 1.0 and s["four_voices"] == 1.0
    assert s["wide_spacing"] == 0.0
    fifths = _chords((67, 60, 52, 48), (69, 62, 53, 50))  # C-G to D-A in S-A and S-B, C-C to D-D in A-B
    f = four_part_statistics(fifths)
    assert f["parallels"] == 300.0  # S-A and S-B fifths, A-B octaves, in one change of sonority
    wide = _chords((84, 67, 60, 48), (76, 72, 55, 48))
    assert four_part_statistics(wide)["wide_spacing"] == 1.0
    cluster = _chords((62, 61, 60))
    assert four_part_statistics(cluster)["triads_sevenths"] == 0.0 and four_part_statistics(cluster)["four_voices"] == 0


def test_compare_judges_four_part_statistics_by_the_percentile_band():
    from musicgen.analysis.metrics import compare

    corpus = [_chords((72, 67, 64, 48), (72, 65, 60, 53)) for _ in range(5)]
    rows = {r.name: r for r in compare(corpus, corpus)}
    assert rows["four_voices"].band == "10th-90th percentile" and rows["four_voices"].inside
    assert rows["pitch_range"].band == "mean +- 2 sd" and rows["pitch_range"].inside


def test_compare_without_pieces_is_a_sentence():
    from musicgen.errors import MusicgenError
    from musicgen.analysis.metrics import compare

    with pytest.raises(MusicgenError, match="nothing to compare"):
        compare([], [_chords((60, 64, 67))])


def test_quotes_know_every_run_just_over_the_limit_transposed_too():
    from musicgen.music.copies import COPY_LIMIT, Quotes

    tune = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 59, 57, 55, 57, 59]
    q = Quotes([notes([(p, i, i + 1) for i, p in enumerate(tune)])])
    run = tune[2:2 + COPY_LIMIT + 1]
    assert q.quotes([40, 90] + run) and q.quotes([p + 7 for p in run])  # up a fifth: the same intervals
    assert not q.quotes(run[:-1])  # COPY_LIMIT notes are allowed
    assert not q.quotes(run[:-1] + [run[-1] + 1])
    assert not Quotes([]).quotes(run)


def test_chords_are_named_by_root_and_quality():
    from musicgen.music.theory import chord_of

    assert chord_of([48, 64, 67, 72]) == (0, "major")
    assert chord_of([57, 60, 64]) == (9, "minor")
    assert chord_of([59, 62, 65, 69]) == (11, "half-diminished seventh")
    assert chord_of([55, 59, 62, 65]) == (7, "dominant seventh")
    assert chord_of([60, 64]) is None and chord_of([60, 61, 62]) is None


def test_agreement_with_the_original_beat_by_beat():
    import numpy as np

    from musicgen.analysis.metrics import agreement
    from musicgen.music.notes import Notes

    def chords(rows):  # one chord a beat
        out = [(p, b, b + 1) for b, chord in enumerate(rows) for p in chord]
        a = np.array(out, np.float64)
        return Notes.from_beats(a[:, 0], a[:, 1], a[:, 2])

    bach = chords([(48, 64, 67, 72), (53, 65, 69, 72), (55, 62, 67, 71), (48, 64, 67, 72)])  # I IV V I
    same = agreement(bach, bach)
    assert (same.beats, same.bass, same.chords, same.chord) == (4, 1.0, 4, 1.0)
    other = chords([(48, 64, 67, 72), (57, 64, 69, 72), (55, 62, 67, 71), (52, 60, 67, 72)])  # I vi V I6
    a = agreement(other, bach)
    assert a.bass == 0.5 and a.chord == 0.75
