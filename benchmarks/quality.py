"""Music a listener takes for the style it learned, measured for any polyphony model, each figure beside its
baseline in the same run:

1. held-out cross-entropy (nats and bits, per token and per sixteenth-note grid step) on the model's validation
   pieces, against n-gram models of order 5 and 10 (Witten-Bell) fitted on its training pieces, on the very
   same tokens;
2. real against generated: a k-fold logistic regression on musical features (musicgen.realness) telling real
   chorale openings from generated pieces of the same number of onsets, at the model's temperature and at
   1.0, beside real against real;
3. the general and four-part statistics, and each voice's range, of generated pieces of 120 and 256 events
   against the chorales' bands;
4. harmonization against Bach: the validation chorales' sopranos harmonized, how often the bass and the
   chord (root and quality) on each beat are Bach's own, and the four-part statistics of the results.

Run: .venv/bin/python benchmarks/quality.py [--model models/bach-voices] [--pieces 40]
"""

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicgen.analysis import metrics
from musicgen.analysis.realness import onset_count, openings, tell_apart
from musicgen.config import SampleConfig  # noqa: E402
from musicgen.learn import sample
from musicgen.learn.evaluate import NGRAM_ORDERS, evaluate
from musicgen.learn.sample import generate, harmonize
from musicgen.music.notes import Notes
from musicgen.runs import provenance, store

LN2 = np.log(2)
BACHBOT_NATS = 0.477 * LN2  # BachBot's held-out loss with this encoding and 3 x 256 LSTM (bits a token, in nats)


def held_out(folder: Path) -> None:
    r = evaluate(folder, baselines=NGRAM_ORDERS)
    token, step = r["loss"]["token"], r.get("loss_per_step")
    print(f"1. held-out cross-entropy: {r['pieces']} validation pieces, {r['events']} tokens, {r.get('steps')} steps")
    print(f"   {'':14s} {'nats/token':>10s} {'bits/token':>10s} {'nats/step':>10s}  against the model")
    print(f"   {'the model':14s} {token:10.4f} {token / LN2:10.4f} {step:10.4f}")
    for order, g in r["ngram"].items():
        print(f"   {order + '-gram':14s} {g['loss']:10.4f} {g['loss'] / LN2:10.4f} {g['loss_per_step']:10.4f}  "
              f"the model's is {token / g['loss']:.2f}x the n-gram's")
    print(f"   BachBot (3 x 256, its paper) {BACHBOT_NATS:.4f} nats a token: the model's is {token / BACHBOT_NATS:.2f}x;"
          f" goal <= 0.40 nats a token and below the 10-gram")


@functools.cache
def model_and_quotes(folder: Path):
    """The step model and its training music's runs, loaded once: pieces are made as the app makes them,
    clear of quoting the training music."""
    return sample.load_step_model(folder), provenance.model_quotes(folder)


def pieces_of(folder: Path, count: int, events: int, temperature: float, seed: int = 1) -> list[Notes]:
    model, quotes = model_and_quotes(folder)
    out = []
    for s in range(seed, seed + count):
        g = generate(model, SampleConfig(length=events, temperature=temperature, seed=s), quotes=quotes)
        if len(g.notes):
            out.append(g.notes)
    return out


def realness(folder: Path, real: list[Notes], count: int, temperature: float) -> dict:
    rng = np.random.default_rng(0)
    order = rng.permutation(len(real))
    a, b = [real[i] for i in order[:count]], [real[i] for i in order[count:2 * count]]
    made = {t: pieces_of(folder, count, 120, t) for t in dict.fromkeys((temperature, 1.0))}
    length = int(np.median([onset_count(p) for p in made[temperature]]))
    a, b = [openings(p, length) for p in a], [openings(p, length) for p in b]
    floor = tell_apart(a, b)
    print(f"2. real against generated: {count} pieces each, real openings cut to the generated pieces' "
          f"{length} onsets (median); 5-fold logistic regression, 5 shuffles")
    print(f"   real against real              {100 * floor.accuracy:5.1f}% +- {100 * floor.spread:.1f}  (baseline)")
    for t, pieces in made.items():
        v = tell_apart(a, pieces)
        print(f"   real against temperature {t:<4g}  {100 * v.accuracy:5.1f}% +- {100 * v.spread:.1f}  "
              f"{v.accuracy / floor.accuracy:.2f}x the baseline; goal <= 65%; gives it away most: "
              + ", ".join(f"{name} ({w:+.2f})" for name, w in v.telling[:3]))
    return made


def part_ranges(notes: Notes) -> list[float]:
    """Semitones each of the four parts (the voice column: a chorale's tracks) spans."""
    return [float(np.ptp(notes.pitch[notes.voice == v])) if (notes.voice == v).any() else np.nan for v in range(4)]


def statistics(folder: Path, training: list[Notes], made: dict, temperature: float, count: int) -> None:
    print("3. statistics of generated pieces against the training chorales' bands "
          "(general: mean +- 2 sd; four-part: 10th-90th percentile)")
    long = pieces_of(folder, max(count // 2, 5), 256, temperature, seed=101)
    real_ranges = np.array([part_ranges(p) for p in training])
    for events, pieces in ((120, made[temperature]), (256, long)):
        rows = metrics.compare(training, pieces)
        inside = sum(r.inside for r in rows)
        print(f"   {events} events, temperature {temperature:g}, {len(pieces)} pieces: {inside} of {len(rows)} "
              f"statistics in band")
        for r in rows:
            print(f"     {r.name:20s} chorales {r.corpus_mean:7.3f} (band {r.low:7.3f} - {r.high:7.3f})  "
                  f"generated {r.generated_mean:7.3f}  {'in' if r.inside else 'OUT'}")
        ranges = np.array([part_ranges(p) for p in pieces])
        for v, name in enumerate(("soprano", "alto", "tenor", "bass")):
            mean, sd = np.nanmean(real_ranges[:, v]), np.nanstd(real_ranges[:, v])
            got = np.nanmean(ranges[:, v])
            print(f"     {name + ' range':20s} chorales {mean:7.3f} (band {mean - 2 * sd:7.3f} - {mean + 2 * sd:7.3f})"
                  f"  generated {got:7.3f}  {'in' if abs(got - mean) <= 2 * sd else 'OUT'}  (semitones)")


def harmonizations(folder: Path, validation: list[Notes], training: list[Notes], temperature: float) -> None:
    model, _ = model_and_quotes(folder)
    results, agreements = [], []
    for i, piece in enumerate(validation):
        soprano = piece.take(piece.voice == 0)
        if not len(soprano):
            continue
        g = harmonize(model, soprano, SampleConfig(temperature=temperature, seed=i, voices=4))
        results.append(g.notes)
        agreements.append(metrics.agreement(g.notes, piece))
    beats = sum(a.beats for a in agreements)
    bass = sum(a.bass * a.beats for a in agreements) / max(beats, 1)
    chords = sum(a.chords for a in agreements)
    chord = sum(a.chord * a.chords for a in agreements) / max(chords, 1)
    rows = metrics.compare(training, results)
    print(f"4. harmonizing the {len(results)} validation chorales' sopranos (temperature {temperature:g}) "
          f"against Bach's own, beat by beat")
    print(f"   the bass is Bach's (pitch class) on {100 * bass:.1f}% of {beats} beats; the chord (root and quality) "
          f"on {100 * chord:.1f}% of {chords} beats where Bach's is a triad or seventh")
    for r in rows:
        if r.name in metrics.FOUR_PART:
            print(f"     {r.name:20s} chorales {r.corpus_mean:7.3f} (band {r.low:7.3f} - {r.high:7.3f})  "
                  f"harmonized {r.generated_mean:7.3f}  {'in' if r.inside else 'OUT'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="bach-voices")
    ap.add_argument("--pieces", type=int, default=40, help="generated and real pieces for the classifier")
    ap.add_argument("--temperature", type=float, help="the model's own (sampling.json) unless given")
    args = ap.parse_args()
    folder = store.check_model(args.model)
    config, _, _ = store.read_configs(folder)
    if config.family != "polyphony":
        sys.exit(f"{folder.name} is a {config.family} model; this benchmark is for polyphony models")
    temperature = args.temperature or store.default_temperature(folder)
    started = time.perf_counter()
    training = list(provenance.model_pieces(folder, "train").values())
    validation = list(provenance.model_pieces(folder, "validation").values())
    print(f"{folder.name}: {len(training)} training and {len(validation)} validation pieces, "
          f"temperature {temperature:g}")
    held_out(folder)
    made = realness(folder, training + validation, args.pieces, temperature)
    statistics(folder, training, made, temperature, args.pieces)
    harmonizations(folder, validation, training, temperature)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
