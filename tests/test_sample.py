"""The numpy step-wise sampler: it must compute exactly what the Keras model computes, one step at a time."""

import numpy as np
import pytest
from helpers import notes, scale

from musicgen.config import ModelConfig, SampleConfig
from musicgen.families import build_encoding, encode
from musicgen.families.base import END, PAD, START, UNK
from musicgen.families.base import pick
from musicgen.learn.sample import StepModel, generate

PIECE = notes(scale(count=10) + [(48, 0.0, 1.0), (52, 0.0, 1.0), (55, 1.0, 2.0)], tempo=120)
CONFIGS = [
    ModelConfig(family="pitch-step-duration", seq_length=6, units=(8, 6), dropout=0.1),
    ModelConfig(family="pitch-step-duration", seq_length=6, units=(8,), time_heads="regression"),
    ModelConfig(family="notes-and-chords", seq_length=6, units=(8, 6), embedding=5, dense=7, min_count=1),
]


def keras_and_step_model(config):
    from musicgen.learn.model import build, keras, numpy_weights

    keras.utils.set_random_seed(1)
    enc = build_encoding(config, [PIECE])
    net = build(config, enc)
    return net, StepModel(numpy_weights(net), config, enc), enc


@pytest.mark.parametrize("config", CONFIGS, ids=["psd", "psd-regression", "nc-dense"])
def test_step_model_equals_keras_model(config):
    net, step_model, enc = keras_and_step_model(config)
    inputs, _ = encode(enc, PIECE)
    x = inputs[:config.seq_length]
    expected = net.predict(x[None], verbose=0)
    state = step_model.zero_state()
    for t, row in enumerate(x):
        out, state = step_model.step(row, state)
        for k, name in enumerate(expected):
            np.testing.assert_allclose(out[k], np.asarray(expected[name])[0, t], rtol=1e-4, atol=1e-5)


def test_pick_is_seeded_and_obeys_bans_and_temperature():
    logits = np.array([0.0, 1.0, 5.0, 0.5])
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    a = [pick(logits, 1.0, rng_a) for _ in range(50)]
    assert a == [pick(logits, 1.0, rng_b) for _ in range(50)]
    rng = np.random.default_rng(0)
    assert all(pick(logits, 1.0, rng, banned=[2]) != 2 for _ in range(200))
    assert {pick(logits, 0.1, rng) for _ in range(100)} == {2}
    assert len({pick(logits, 2.0, rng) for _ in range(300)}) == 4


def test_pick_among_allowed_draws_as_the_masked_softmax():
    logits = np.random.default_rng(1).normal(size=40) * 3
    allowed, banned = [31, 2, 17, 5, 9, 38], [17]

    def masked(rng):  # the plain way: every other class masked out of the full softmax
        z = logits.astype(np.float32) * np.float32(1 / 0.8)
        mask = np.full(len(z), -np.inf, np.float32)
        mask[[a for a in allowed if a not in banned]] = 0.0
        z = z + mask - (z + mask).max()
        p = np.exp(z).cumsum()
        return int(np.searchsorted(p, rng.random() * p[-1], side="right"))

    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    drawn = [pick(logits, 0.8, rng_a, banned=banned, allowed=allowed) for _ in range(300)]
    assert drawn == [masked(rng_b) for _ in range(300)]
    assert set(drawn) <= {2, 5, 9, 31, 38} and len(set(drawn)) >= 3


def test_same_seed_same_piece_and_valid_midi():
    _, step_model, _ = keras_and_step_model(CONFIGS[0])
    a = generate(step_model, SampleConfig(length=40, temperature=1.2, seed=7))
    b = generate(step_model, SampleConfig(length=40, temperature=1.2, seed=7))
    c = generate(step_model, SampleConfig(length=40, temperature=1.2, seed=8))
    assert a.events == 40 and len(a.notes) == 40
    np.testing.assert_array_equal(a.notes.pitch, b.notes.pitch)
    np.testing.assert_array_equal(a.notes.start, b.notes.start)
    assert not np.array_equal(a.notes.pitch, c.notes.pitch)
    assert a.notes.start[0] == 0 and (a.notes.duration > 0).all()
    assert a.notes.pitch.min() >= 0 and a.notes.pitch.max() <= 127


def test_notes_and_chords_never_emits_special_tokens():
    _, step_model, enc = keras_and_step_model(CONFIGS[2])
    specials = {enc.index[t] for t in (PAD, START, UNK)}
    for seed in range(5):
        g = generate(step_model, SampleConfig(length=30, temperature=2.0, seed=seed))
        assert len(g.notes) >= 1
        assert g.ended or g.events == 30
        assert g.events >= 15  # the end token is refused for the first half
    assert END in enc.tokens and specials


def test_primer_changes_the_continuation():
    _, step_model, _ = keras_and_step_model(CONFIGS[0])
    # near-greedy: an untrained model's differences show only in which class is largest
    plain = generate(step_model, SampleConfig(length=20, temperature=0.1, seed=1))
    primed = generate(step_model, SampleConfig(length=20, temperature=0.1, seed=1), primer=PIECE)
    assert not np.array_equal(plain.notes.pitch, primed.notes.pitch)


@pytest.mark.parametrize("name", ["bach-chords", "bach-notes", "bach-voices"])
def test_committed_models_generate(name):
    from pathlib import Path

    from musicgen.learn import sample
    from musicgen.runs import store

    folder = Path(__file__).resolve().parents[1] / "models" / name
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 10 * 2**20
    assert store.default_temperature(folder) == (1.0 if name == "bach-voices" else 0.5)  # chosen in README
    g = generate(sample.load_step_model(folder), SampleConfig(length=64, seed=0))
    assert g.events >= 32 and len(g.notes) > 0
    assert 21 <= g.notes.pitch.min() and g.notes.pitch.max() <= 108  # a piano's range, as in the chorales


def test_sampler_runs_on_one_blas_thread():
    from threadpoolctl import threadpool_info

    from musicgen.learn.sample import run

    _, step_model, enc = keras_and_step_model(CONFIGS[0])
    seen = []

    class Watching:
        def __init__(self, inner):
            self.inner = inner

        def rows(self):
            return self.inner.rows()

        def next(self, outputs, rng):
            seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
            return self.inner.next(outputs, rng)

        def result(self):
            return self.inner.result()

    run(step_model, Watching(step_model.family.sampler(enc, SampleConfig(length=3), None)), 0)
    assert seen and set(seen) == {1}
