"""Real against generated: features, openings and the k-fold classifier."""

import numpy as np

from musicgen.music.notes import Notes
from musicgen.analysis.realness import features, openings, tell_apart
from musicgen.learn.sample import top_line


def piece(rng, step_choices, lengths) -> Notes:
    """A random four-voice piece: the top voice moves by the given steps, the voices under it in thirds and
    sixths, each onset's length drawn from `lengths` (beats)."""
    rows, t, top = [], 0.0, 72
    for _ in range(40):
        top = int(np.clip(top + rng.choice(step_choices), 64, 79))
        d = float(rng.choice(lengths))
        for v, below in enumerate((0, 4, 9, 16)):
            rows.append((top - below, t, t + d, v))
        t += d
    a = np.array(rows, np.float64)
    return Notes.from_beats(a[:, 0], a[:, 1], a[:, 2], voice=a[:, 3], meter=((0.0, 4, 4),))


def test_openings_keep_the_first_onsets():
    rng = np.random.default_rng(0)
    p = piece(rng, (-2, 2), (1.0,))
    cut = openings(p, 10)
    assert len(np.unique(cut.start_beat)) == 10 and len(cut) == 40
    assert openings(p, 1000) is p
    assert top_line(cut)[0].pitch.tolist() == top_line(p)[0].pitch[:10].tolist()


def test_the_classifier_tells_different_music_apart_and_not_the_same():
    rng = np.random.default_rng(1)
    steps = [piece(rng, (-2, -1, 1, 2), (0.5, 1.0)) for _ in range(20)]
    more_steps = [piece(rng, (-2, -1, 1, 2), (0.5, 1.0)) for _ in range(20)]
    leaps = [piece(rng, (-7, -5, 5, 7), (1.0, 2.0)) for _ in range(20)]
    assert tell_apart(steps, leaps).accuracy > 0.9
    same = tell_apart(steps, more_steps)
    assert same.accuracy < 0.75
    v = tell_apart(steps, leaps)
    assert len(v.telling) == 5 and v.pieces == (20, 20)
    assert set(features(steps[0])) >= {"pitch class 0", "top voice +2", "quarter between onsets", "parallels"}
