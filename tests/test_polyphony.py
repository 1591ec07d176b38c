"""The polyphony family: voices on a beat grid, new and held notes, bar positions, key normalization,
free generation that is always valid, and harmonizing a melody note for note."""

import numpy as np
import pytest

from musicgen.config import ModelConfig, SampleConfig
from musicgen.families import build_encoding, encode, get
from musicgen.families.polyphony import STEP, new
from musicgen.music.grid import bar_positions, key_shift, sonorities
from musicgen.music.notes import Notes, TempoMap
from musicgen.learn.sample import StepModel, harmonize, top_line
from musicgen.data import datasets
from musicgen.data import imports
from musicgen.learn import sample

POLY = ModelConfig(family="polyphony", seq_length=16, units=(12,), embedding=6)


def chorale(bars: int = 2, meter=((0.0, 4, 4),), keys=()) -> Notes:
    """Four voices in quarter notes (the soprano holds a half note in each bar), beats as given."""
    rows = []
    for b in range(bars):
        t = 4.0 * b
        rows += [(72, t, t + 2), (74, t + 2, t + 3), (72, t + 3, t + 4)]  # soprano
        rows += [(67, t + i, t + i + 1, 1) for i in range(4)]  # alto
        rows += [(64, t, t + 2, 2), (65, t + 2, t + 4, 2)]  # tenor
        rows += [(48, t, t + 1, 3), (55, t + 1, t + 2, 3), (53, t + 2, t + 3, 3), (48, t + 3, t + 4, 3)]  # bass
    rows = [r if len(r) == 4 else r + (0,) for r in rows]
    arr = np.array(rows, np.float64)
    return Notes.from_beats(arr[:, 0], arr[:, 1], arr[:, 2], voice=arr[:, 3], tempo_map=TempoMap.constant(90),
                            meter=meter, keys=keys)


def test_tokens_go_from_the_top_down_new_then_held():
    piece = chorale(1)
    enc = build_encoding(POLY, [piece])
    steps = sonorities(piece, 4)
    assert len(steps) == 16  # a 4/4 bar of sixteenths
    assert steps[0] == [(72, True), (67, True), (64, True), (48, True)]
    assert steps[1] == [(72, False), (67, False), (64, False), (48, False)]  # inside the first quarter
    assert steps[4] == [(72, False), (67, True), (64, False), (55, True)]
    inputs, targets = encode(enc, piece)
    tokens = [enc.tokens[i] for i in inputs[:, 0]]
    assert tokens[:6] == ["<start>", new(72), new(67), new(64), new(48), STEP]
    assert tokens[-1] == "<end>" and tokens.count(STEP) == 16
    assert (targets[:, 0] == inputs[:, 0]).all() and inputs.shape[1] == 2


def test_each_row_carries_the_bar_position_of_the_next_token():
    piece = chorale(2, meter=((0.0, 3, 4),))
    enc = build_encoding(POLY, [piece])
    inputs, _ = encode(enc, piece)
    step_rows = np.flatnonzero(inputs[:, 0] == enc.index[STEP])
    # after the k-th step token, the next token belongs to step k+1: its position within a 3/4 bar (12 steps)
    np.testing.assert_array_equal(inputs[step_rows[:-1], 1], (np.arange(1, len(step_rows)) % 12))
    assert inputs[0, 1] == 0  # the start row: the first step is a downbeat
    assert enc.positions == 12
    np.testing.assert_array_equal(bar_positions(8, 2, ((0.0, 2, 4), (2.0, 3, 4)), 12),
                                  [0, 1, 2, 3, 0, 1, 2, 3, 4])


def test_decode_gives_back_the_notes_with_voices_from_the_top():
    piece = chorale(2)
    enc = build_encoding(POLY, [piece])
    ids, steps = get("polyphony").tokens(enc, piece)
    back = get("polyphony").decode(enc, sonorities(piece, 4))
    order = np.lexsort((piece.pitch, piece.start_beat))
    assert back.pitch.tolist() == piece.pitch[order].tolist()
    np.testing.assert_allclose(back.start_beat, piece.start_beat[order])
    np.testing.assert_allclose(back.end_beat, piece.end_beat[order])
    soprano = back.take(back.voice == 0)
    assert soprano.pitch.tolist() == [72, 74, 72] * 2 and back.voices == 4


def test_key_normalization():
    assert key_shift(chorale(1, keys=((0.0, 0, False),)).transposed(2)) == -2  # D major -> C major
    assert key_shift(chorale(1, keys=((0.0, 0, True),)).transposed(5)) == -5  # D minor -> A minor
    assert key_shift(chorale(1).transposed(3)) == -3  # no signature: estimated (C major moved to Eb)
    enc = build_encoding(ModelConfig(family="polyphony", normalize_key=True), [chorale(1).transposed(2)])
    a, _ = encode(enc, chorale(1).transposed(2))
    b, _ = encode(enc, chorale(1))
    np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def step_model():
    from musicgen.learn.model import build, keras, numpy_weights

    keras.utils.set_random_seed(2)
    enc = build_encoding(POLY, [chorale(2)])
    return StepModel(numpy_weights(build(POLY, enc)), POLY, enc)


def test_step_model_equals_keras_model():
    from musicgen.learn.model import build, keras, numpy_weights

    keras.utils.set_random_seed(3)
    enc = build_encoding(POLY, [chorale(2)])
    net = build(POLY, enc)
    sm = StepModel(numpy_weights(net), POLY, enc)
    x, _ = encode(enc, chorale(1))
    x = x[:POLY.seq_length]
    expected = np.asarray(net.predict(x[None], verbose=0)["token"])[0]
    state = sm.zero_state()
    for t, row in enumerate(x):
        out, state = sm.step(row, state)
        np.testing.assert_allclose(out[0], expected[t], rtol=1e-4, atol=1e-5)


def _valid(notes_steps, voices):
    previous = set()
    for step in notes_steps:
        pitches = [p for p, _ in step]
        assert pitches == sorted(pitches, reverse=True) and len(set(pitches)) == len(pitches)
        assert len(step) <= voices
        assert all(is_new or p in previous for p, is_new in step)  # held only what sounded
        previous = set(pitches)


def test_free_generation_is_always_valid_and_seeded(step_model):
    from musicgen.learn.sample import run

    fam = get("polyphony")
    for seed in range(3):
        sampler = fam.sampler(step_model.enc, SampleConfig(length=24, temperature=1.5, seed=seed, voices=4), None)
        g = run(step_model, sampler, seed)
        _valid(sampler.steps, 4)
        assert len(g.notes) > 0 and g.notes.voices <= 4
    a = run(step_model, fam.sampler(step_model.enc, SampleConfig(length=24, seed=5), None), 5)
    b = run(step_model, fam.sampler(step_model.enc, SampleConfig(length=24, seed=5), None), 5)
    np.testing.assert_array_equal(a.notes.pitch, b.notes.pitch)
    np.testing.assert_array_equal(a.notes.start_beat, b.notes.start_beat)


def melody() -> Notes:
    """A folk-like line with a held note and a rest, in 3/4."""
    rows = [(67, 0, 1), (69, 1, 2), (71, 2, 3), (72, 3, 5), (71, 5, 6), (69, 6, 7), (67, 8, 9)]
    arr = np.array(rows, np.float64)
    return Notes.from_beats(arr[:, 0], arr[:, 1], arr[:, 2], meter=((0.0, 3, 4),))


def test_harmonize_keeps_the_melody_on_top_note_for_note(step_model):
    tune = melody()
    g = harmonize(step_model, tune, SampleConfig(seed=1, voices=4, temperature=1.0))
    assert g.note is None
    top = g.notes.take(g.notes.voice == 0)
    assert top.pitch.tolist() == tune.pitch.tolist()
    np.testing.assert_allclose(top.start_beat, tune.start_beat)
    np.testing.assert_allclose(top.end_beat, tune.end_beat)
    for t in np.unique(g.notes.start_beat):  # the melody is the highest sounding note at every onset
        sounding = (g.notes.start_beat <= t) & (g.notes.end_beat > t)
        m = (top.start_beat <= t) & (top.end_beat > t)
        if m.any():
            assert g.notes.pitch[sounding].max() == top.pitch[m][0]
    under = [((g.notes.start_beat <= t) & (g.notes.end_beat > t)).sum() for t in tune.start_beat]
    assert np.mean(np.array(under) == 4) > 0.5  # four voices where the range allows
    assert g.notes.meter == tune.meter
    again = harmonize(step_model, tune, SampleConfig(seed=1, voices=4, temperature=1.0))
    np.testing.assert_array_equal(again.notes.pitch, g.notes.pitch)


def test_harmonize_takes_the_top_line_of_a_polyphonic_input_and_says_so(step_model):
    g = harmonize(step_model, chorale(1), SampleConfig(seed=0, voices=3))
    assert "4 parts" in g.note and "top line" in g.note
    assert g.notes.take(g.notes.voice == 0).pitch.tolist() == [72, 74, 72]


def test_top_line():
    line, note = top_line(chorale(1))
    assert line.pitch.tolist() == [72, 74, 72] and note
    line, note = top_line(melody())
    assert note is None and len(line) == len(melody())
    from musicgen.errors import MidiError

    with pytest.raises(MidiError, match="no melody"):
        top_line(Notes.empty())


def test_only_polyphony_models_harmonize():
    from musicgen.errors import ModelError
    from musicgen.learn.model import build, numpy_weights

    config = ModelConfig(family="pitch-step-duration", seq_length=4, units=(4,))
    enc = build_encoding(config, [])
    sm = StepModel(numpy_weights(build(config, enc)), config, enc)
    with pytest.raises(ModelError, match="cannot harmonize"):
        harmonize(sm, melody(), SampleConfig())


def test_sampled_voices_make_no_parallel_fifths_or_octaves(step_model):
    from musicgen.analysis.metrics import four_part_statistics
    from musicgen.learn.sample import generate

    for seed in range(3):
        g = generate(step_model, SampleConfig(length=40, temperature=1.5, seed=seed))
        assert four_part_statistics(g.notes)["parallels"] == 0
    h = harmonize(step_model, melody(), SampleConfig(seed=4, temperature=1.5))
    assert four_part_statistics(h.notes)["parallels"] == 0


def test_evaluate_checks_that_melodies_stay_on_top(step_model):
    from musicgen.analysis.metrics import harmony_report, melody_kept

    report = harmony_report(step_model, {"c": chorale(2)}, [melody(), chorale(1)], temperature=1.0)
    assert report.kept == 2 and len(report.pieces) == 2 and report.voices_under > 1
    assert not melody_kept(chorale(1), melody())


def test_voice_assignment_never_doubles_a_voice():
    from musicgen.families.polyphony import VOICE_HOMES, assign_voices

    assert assign_voices([72, 67, 60, 48], {}, list(VOICE_HOMES)) == [0, 1, 2, 3]
    assert assign_voices([67, 48], {}, list(VOICE_HOMES)) == [0, 3]  # the inner voices rest
    voices = assign_voices([71, 67], {1: 0}, list(VOICE_HOMES))  # a new note above a held soprano
    assert len(set(voices)) == 2 and voices[1] == 0


def test_a_continuation_goes_on_where_the_primer_stopped_in_the_bar(step_model):
    from musicgen.learn.sample import generate

    primer = chorale(1, meter=((0.0, 3, 4),)).head(9)  # ends inside a 3/4 bar
    g = generate(step_model, SampleConfig(length=8, seed=2), primer)
    ids, steps = get("polyphony").tokens(step_model.enc, primer)
    lead = (steps[-1] + 1) % 12 / 4  # beats into the bar where the primer stopped
    assert g.notes.start_beat.min() >= lead - 1e-9 and g.events < 8 * 40
    assert g.notes.meter == ((0.0, 3, 4),)


def test_transposing_moves_the_key_signature():
    moved = chorale(1, keys=((0.0, 0, False),)).transposed(2).transposed(-2)
    assert moved.keys == ((0.0, 0, False),) and key_shift(moved) == 0
    assert chorale(1, keys=((0.0, 0, True),)).transposed(1).keys == ((0.0, -5, True),)  # A minor -> Bb minor


def test_bach_voices_harmonizes_folk_songs_it_never_heard(small_builtins):
    from pathlib import Path

    from musicgen.analysis.metrics import melody_kept

    model = sample.load_step_model(Path(__file__).resolve().parents[1] / "models" / "bach-voices")
    for piece in datasets.open_dataset("essen-folk", root=small_builtins).pieces[:3]:
        g = harmonize(model, piece.notes, SampleConfig(seed=0, temperature=0.7))
        line, _ = top_line(piece.notes)
        assert melody_kept(g.notes, line), piece.name
        n = g.notes
        under = [((n.start_beat <= t + 1e-6) & (n.end_beat > t + 1e-6)).sum() - 1 for t in line.start_beat]
        assert np.mean(np.array(under) >= 3) > 0.8, piece.name  # three voices under it, nearly always
        assert g.notes.keys == piece.notes.keys and g.notes.voices == 4


def test_free_generation_keeps_clear_of_quoting_its_training_music(step_model):
    from musicgen.music.copies import COPY_LIMIT, Quotes, longest_copy
    from musicgen.learn.sample import generate

    settings = SampleConfig(length=60, temperature=0.3, seed=4, voices=4)
    first = generate(step_model, settings).notes
    assert longest_copy(first, {"first": first}).notes > COPY_LIMIT  # the same seed would quote it all
    again = generate(step_model, settings, quotes=Quotes([first])).notes
    assert len(again) > COPY_LIMIT and longest_copy(again, {"first": first}).notes <= COPY_LIMIT
    np.testing.assert_array_equal(again.pitch, generate(step_model, settings, quotes=Quotes([first])).notes.pitch)


def test_a_rewind_gives_back_the_state_before_the_rows_taken_back(step_model):
    from musicgen.families.base import Rewind, Sampler
    from musicgen.learn.sample import run

    class Script(Sampler):
        def __init__(self, script):
            self.script, self.seen = list(script), []

        def rows(self):
            return [np.array([1, 0], np.int32)]

        def next(self, outputs, rng):
            self.seen.append(outputs[0].copy())
            if not self.script:
                return None
            item = self.script.pop(0)
            return item if isinstance(item, Rewind) else np.array([item, 1], np.int32)

        def result(self):
            return None

    straight, detour = Script([5, 6, 7]), Script([5, 9, 8, Rewind(2), 6, 7])
    run(step_model, straight, 0)
    run(step_model, detour, 0)
    # seen: at the start, after 5, after 9, after 8, after the rewind (after 5 again), after 6, after 7
    assert len(detour.seen) == 7 and len(straight.seen) == 4
    for d, s in ((0, 0), (1, 1), (4, 1), (5, 2), (6, 3)):
        np.testing.assert_allclose(detour.seen[d], straight.seen[s], rtol=1e-6)
    assert not np.allclose(detour.seen[2], straight.seen[2])  # the detour did go elsewhere


def test_a_free_piece_begins_in_its_first_bar_and_ends_where_a_bar_does(step_model):
    """Ended by the model or by the length asked, a piece stops on a bar line or where in the bar it began
    (its last bar completes the pickup, as the chorales do), never half-way; no whole bar of silence opens it."""
    from musicgen.learn.sample import generate

    for seed in range(8):
        g = generate(step_model, SampleConfig(length=16, temperature=1.5, seed=seed), None)
        first, end = float(g.notes.start_beat.min()), float(g.notes.end_beat.max())
        assert first < 4.0, seed
        assert end % 4.0 in (0.0, first % 4.0), (seed, first, end)


def test_a_tune_in_half_or_whole_notes_is_harmonized_as_the_same_tune_in_quarters(step_model):
    """4/2 or 3/1 (most of the Essen songs): the voices move with the tune's own beat, as under the same tune
    written in quarters, and are written back in its note values."""
    tune = melody()  # 3/4
    in_quarters = harmonize(step_model, tune, SampleConfig(seed=4, voices=4)).notes
    for factor, meter in ((2, (0.0, 3, 2)), (4, (0.0, 3, 1))):
        long = tune.rescaled(factor)
        assert long.meter == (meter,) and np.allclose(long.start, tune.start)  # the same tune, sounding the same
        got = harmonize(step_model, long, SampleConfig(seed=4, voices=4)).notes
        assert got.meter == (meter,)
        np.testing.assert_array_equal(got.pitch, in_quarters.pitch)
        np.testing.assert_allclose(got.start_beat, in_quarters.start_beat * factor)
        np.testing.assert_allclose(got.end_beat, in_quarters.end_beat * factor)
        np.testing.assert_allclose(got.start, in_quarters.start)


def test_what_the_model_hears_names_notes_in_the_primers_key():
    """A G-minor primer: the chart's likeliest first note is the note the piece then plays (almost no
    temperature), not that note in the model's C major / A minor; time moving on is said apart, not as a note."""
    from pathlib import Path

    from musicgen.learn.sample import generate, next_choices

    model = sample.load_step_model(Path(__file__).resolve().parents[1] / "models" / "bach-voices")
    primer = chorale(2, keys=((0.0, 0, False),)).transposed(-5).replace(keys=((0.0, -2, True),))  # G minor
    assert key_shift(primer) != 0
    heard = next_choices(model, primer, (0.05, 1.0))
    assert heard.wait is not None and all(0 <= w <= 1 for w in heard.wait)
    assert not any("time moves on" in c.name for c in heard.choices)
    assert abs(sum(c.chances[1] for c in heard.choices) - 1) < 0.2  # the notes' chances, among notes alone
    g = generate(model, SampleConfig(length=4, temperature=0.05, seed=0), primer)
    first = g.notes.take(g.notes.start_beat == g.notes.start_beat.min())
    from musicgen.music.theory import note_name

    top = heard.choices[0].name.split()[0]
    assert top == note_name(int(first.pitch.max())), (heard.choices[0], first.pitch)


def test_voices_keep_their_ranges_in_long_pieces():
    """The ranges learnt from the training pieces (lowest, highest, widest span in a piece, per voice): in
    long pieces of the committed model no voice of a full step leaves them, so the voices do not drift apart."""
    from pathlib import Path

    from musicgen.families.polyphony import voice_ranges
    from musicgen.learn.sample import generate

    assert voice_ranges([sonorities(chorale(2), 4)]) == ((72, 74, 2), (67, 67, 0), (64, 65, 1), (48, 55, 7))
    model = sample.load_step_model(Path(__file__).resolve().parents[1] / "models" / "bach-voices")
    ranges = model.enc.ranges
    assert len(ranges) == 4
    for seed in range(3):
        g = generate(model, SampleConfig(length=200, temperature=1.0, seed=seed))
        full = [s for s in sonorities(g.notes, 4) if len(s) == 4]
        pitches = np.array([[p for p, _ in s] for s in full])
        assert len(pitches) > 100
        for v, (low, high, span) in enumerate(ranges):
            assert low <= pitches[:, v].min() and pitches[:, v].max() <= high, (seed, v)
            assert np.ptp(pitches[:, v]) <= span, (seed, v)


def test_fermatas_round_trip_through_tokens_midi_and_the_parse_cache(tmp_path):
    """A fermata is a token at the start of each step under it (from its beat to the end of the longest note
    starting there); decoding gives the fermata back at the same beat, and MIDI keeps it as a marker."""
    from musicgen.families.polyphony import FERMATA, fermata_steps
    from musicgen.music.midi import read_midi, write_midi

    piece = chorale(2).replace(fermatas=(2.0, 6.0))  # on the soprano's half notes
    assert fermata_steps(piece, 4) == set(range(8, 12)) | set(range(24, 28))
    enc = build_encoding(POLY, [piece])
    assert FERMATA in enc.tokens
    fam = get("polyphony")
    ids, _ = fam.tokens(enc, piece)
    words = [enc.tokens[i] for i in ids]
    assert words.count(FERMATA) == 8
    first = words.index(FERMATA)
    assert words[first - 1] == STEP and words[first + 1].startswith(("new", "held"))  # it opens its step
    steps, marked, current, fermata = [], set(), [], False  # tokens -> steps, as the sampler reads them
    for w in words:
        if w == FERMATA:
            fermata = True
        elif w == STEP:
            marked.update([len(steps)] if fermata else [])
            steps.append(current)
            current, fermata = [], False
        else:
            kind, p = w.split()
            current.append((int(p), kind == "new"))
    back = fam.decode(enc, steps, fermatas=frozenset(marked))
    assert back.fermatas == (2.0, 6.0)
    again = read_midi(write_midi(back))
    assert again.fermatas == (2.0, 6.0)
    from musicgen.render.notation import musicxml

    xml = musicxml(back, "fermatas").decode()  # over each voice: above the upper voice of a staff, under the lower
    assert xml.count('<fermata type="upright"') == 4 and xml.count('<fermata type="inverted"') == 4
    folder = tmp_path / "datasets"
    imports.import_files("with fermatas", [("f.mid", write_midi(piece))], root=folder)
    assert datasets.open_dataset("with fermatas", root=folder).pieces[0].notes.fermatas == (2.0, 6.0)
    old = build_encoding(POLY, [chorale(2)])  # a model that never saw one skips them
    assert FERMATA not in old.tokens and STEP in [old.tokens[i] for i in fam.tokens(old, piece)[0]]


def test_sampled_and_harmonized_fermatas_come_out_as_fermatas():
    """Free generation may open a step with a fermata and gets it back in its notes; a harmonization
    keeps the melody's fermatas where the melody has them."""
    from musicgen.learn.model import build, keras, numpy_weights
    from musicgen.learn.sample import generate

    keras.utils.set_random_seed(4)
    enc = build_encoding(POLY, [chorale(2).replace(fermatas=(2.0,))])
    model = StepModel(numpy_weights(build(POLY, enc)), POLY, enc)
    tune = melody().replace(fermatas=(3.0, 8.0))
    g = harmonize(model, tune, SampleConfig(seed=1, voices=4, temperature=1.0))
    assert g.notes.fermatas == (3.0, 8.0)
    found = [generate(model, SampleConfig(length=40, temperature=2.0, seed=s)).notes.fermatas for s in range(4)]
    assert any(found)


def test_training_copies_move_into_the_keys_the_voices_can_sing():
    """Transposed training copies of four-part music (DeepBach's augmentation): each piece moves only as far as
    keeps every voice between the lowest and highest notes that voice has in the training pieces."""
    from musicgen.learn.train import transposed

    low, high = chorale(1), chorale(1).transposed(5)
    fam = get("polyphony")
    bounds = fam.move_bounds([low, high])
    assert bounds == [(0, 5), (-5, 0)]
    moved = list(transposed([low, high], 6, bounds))
    assert sorted(int(n.pitch.max()) for n in moved) == sorted([74 + s for s in range(6)] + [79 - s for s in range(6)])
    single = Notes.from_beats([60, 62], [0, 1], [1, 2])  # no four-part steps: the piano's bounds
    assert fam.move_bounds([single]) == get("pitch-step-duration").move_bounds([single])


def test_a_free_piece_pauses_only_after_its_first_bar():
    """No chorale has a fermata on its first chord; the sampler opens a fermata only a bar after the first
    note (the committed model put one on the first chord at temperature 1.0, seed 0)."""
    from pathlib import Path

    from musicgen.learn import sample
    from musicgen.learn.sample import generate

    model = sample.load_step_model(Path(__file__).resolve().parents[1] / "models" / "bach-voices")
    for seed in range(4):
        g = generate(model, SampleConfig(length=120, temperature=1.0, seed=seed))
        assert g.notes.fermatas, seed
        assert g.notes.fermatas[0] >= g.notes.start_beat.min() + g.notes.bar_length() - 1e-6, seed
