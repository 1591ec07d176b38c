import numpy as np
from helpers import notes

from musicgen.config import ModelConfig
from musicgen.families import build_encoding, encode, get, windows
from musicgen.families.base import END, START, UNK, nearest_bin
from musicgen.families.notes_and_chords import events


def decode(enc, values):
    return get(enc.family).decode(enc, values)


NC = ModelConfig(family="notes-and-chords", min_count=1, seq_length=4)
PSD = ModelConfig(family="pitch-step-duration", seq_length=4)


def test_events_group_chords_and_keep_octaves():
    # at 60 bpm a beat is a second
    piece = notes([(60, 0.0, 1.0), (72, 0.0, 0.5), (64, 0.01, 1.0), (67, 1.0, 2.0), (55, 1.5, 3.5)], tempo=60)
    tokens, step, duration = events(piece)
    assert tokens == ["60.64.72", "67", "55"]
    np.testing.assert_allclose(step, [0.0, 1.0, 0.5])
    np.testing.assert_allclose(duration, [1.0, 1.0, 2.0], atol=0.02)


def test_notes_and_chords_round_trip_on_the_grid():
    piece = notes([(60, 0.0, 0.5), (64, 0.0, 0.5), (67, 0.5, 1.0), (72, 1.0, 2.0), (71, 2.0, 2.25)], tempo=120)
    enc = build_encoding(NC, [piece])
    assert enc.tokens[:4] == ("<pad>", START, END, UNK)
    assert enc.tempo == 120
    inputs, targets = encode(enc, piece)
    assert enc.tokens[inputs[0, 0]] == START and enc.tokens[inputs[-1, 0]] == END
    back = decode(enc, targets[1:-1])
    np.testing.assert_array_equal(back.pitch, piece.pitch)
    np.testing.assert_allclose(back.start, piece.start)
    np.testing.assert_allclose(back.end, piece.end)


def test_rare_tokens_become_unknown():
    common = notes([(60, i * 0.5, i * 0.5 + 0.5) for i in range(4)] + [(61, 2.0, 2.5)])
    enc = build_encoding(ModelConfig(family="notes-and-chords", min_count=2), [common])
    assert "60" in enc.tokens and "61" not in enc.tokens
    inputs, _ = encode(enc, common)
    assert enc.tokens[inputs[-2, 0]] == UNK


def test_pitch_step_duration_round_trip_on_the_bins():
    enc = build_encoding(PSD, [])
    s, d = enc.step_bins, enc.duration_bins
    starts = np.cumsum([0, s[5], s[0], s[9]])
    piece = notes([(60, starts[0], starts[0] + d[3]), (62, starts[1], starts[1] + d[7]),
                   (65, starts[2], starts[2] + d[7]), (67, starts[3], starts[3] + d[12])])
    inputs, targets = encode(enc, piece)
    assert inputs.shape == (5, 3) and (inputs[0] == 0).all()  # a start row, then one row per note
    np.testing.assert_allclose(inputs[1:, 0], piece.pitch / 128)
    back = decode(enc, targets[1:])
    np.testing.assert_array_equal(back.pitch, piece.pitch)
    np.testing.assert_allclose(back.start, piece.start, atol=1e-4)
    np.testing.assert_allclose(back.end, piece.end, atol=1e-4)


def test_regression_targets_are_seconds():
    enc = build_encoding(ModelConfig(time_heads="regression"), [])
    _, targets = encode(enc, notes([(60, 0.0, 0.3), (62, 0.7, 1.0)]))
    np.testing.assert_allclose(targets[1:, 1:], [[0.0, 0.3], [0.7, 0.3]], atol=1e-6)


def test_nearest_bin():
    assert nearest_bin(np.array([0.0, 0.26, 0.9]), [0.0, 0.25, 0.5, 1.0]).tolist() == [0, 1, 3]
    assert nearest_bin(np.array([0.001, 0.69, 0.72]), [0.0, 0.5, 1.0], log=True).tolist() == [0, 1, 2]


def test_every_step_windows_cover_every_target_once_or_more():
    rows = np.arange(11 * 3, dtype=np.float32).reshape(11, 3)  # 10 targets after the start row
    w = windows([(rows, rows)], seq_length=4, every_step=True)
    assert w.x.shape[1:] == (4, 3) and w.y.shape[1:] == (4, 3) and w.weight.shape[1:] == (4,)
    seen = {int(t) for y, wt in zip(w.y, w.weight) for t, keep in zip(y[:, 0], wt) if keep}
    assert seen == set(rows[1:, 0].astype(int).tolist())
    for x, y, wt in zip(w.x, w.y, w.weight):
        for k in range(4):
            if wt[k]:
                assert y[k, 0] == x[k, 0] + 3  # the target is the next row


def test_one_target_windows_are_left_padded():
    rows = np.arange(1, 6 * 3 + 1, dtype=np.float32).reshape(6, 3)
    w = windows([(rows, rows)], seq_length=4, every_step=False)
    assert w.x.shape == (5, 4, 3) and w.y.shape == (5, 3) and w.weight is None
    assert (w.x[0, :3] == 0).all() and (w.x[0, 3] == rows[0]).all()
    assert (w.y[0] == rows[1]).all() and (w.x[-1] == rows[1:5]).all() and (w.y[-1] == rows[5]).all()


def test_windows_never_cross_pieces():
    a = np.full((5, 3), 1.0, dtype=np.float32)
    b = np.full((5, 3), 2.0, dtype=np.float32)
    w = windows([(a, a), (b, b)], seq_length=3, every_step=False)
    for x, y in zip(w.x, w.y):
        assert set(np.unique(x[x != 0])) | {y[0]} in ({1.0}, {2.0})
