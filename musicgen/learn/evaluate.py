"""A model's held-out figures: loss per token and per step against n-gram baselines on the same tokens."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from musicgen.data.datasets import Dataset, Piece
from musicgen.errors import TrainingError
from musicgen.families import Encoding, encode
from musicgen.runs.store import read_configs

NGRAM_ORDERS = (5, 10)  # the n-gram baselines evaluate measures beside a token model (BachBot's orders)


def evaluate(folder: str | os.PathLike, data: Dataset | None = None, pieces: list[Piece] | None = None,
             release=None, baselines: tuple[int, ...] = ()) -> dict:
    """Held-out figures of a saved model: loss per head, next-pitch (or next-token) accuracy, time errors;
    for a family whose tokens include one that moves time on a grid (polyphony), the first head's loss per
    grid step too (a step's tokens summed: encodings that add easy tokens compare fairly there).

    Each held-out piece is run from its start through the step-wise sampler's network, every note predicted
    once from all notes before it: the way music is generated, and no TensorFlow needed.
    On the model's own validation pieces unless data (every piece of it) or pieces are given; release: called
    now and then to hand back the pages of notes read (Dataset.release_pages). baselines: orders of n-gram
    models (ngram.NGram) fitted on the model's training pieces and scored on the very same tokens
    (token families only; needs the training dataset on this computer).
    """
    from musicgen.learn.sample import load_step_model
    from musicgen.runs.provenance import model_pieces

    folder = Path(folder)
    _, _, enc = read_configs(folder)
    if pieces is not None:
        tables = [p.notes for p in pieces]
    else:
        tables = [p.notes for p in data.pieces] if data else list(model_pieces(folder, "validation").values())
    step_model = load_step_model(folder)
    family = step_model.family
    heads = family.heads(enc)
    waits = np.array([family.waits(enc, k) for k in range(len(enc.tokens))], bool) if enc.tokens else None
    grams = _ngrams(folder, enc, baselines) if baselines and enc.tokens else {}
    # sums over the events, a piece at a time: a collection's held-out events never all in memory
    events, loss, correct, steps = 0, np.zeros(len(heads)), 0, 0
    gram_loss = dict.fromkeys(grams, 0.0)
    error, moments = np.zeros(len(heads)), np.zeros((len(heads), 4))  # |guess - truth|; sums of g, g^2, t, t^2
    for k, notes in enumerate(tables, 1):
        inputs, targets = encode(enc, notes)
        state = step_model.zero_state()
        outs = [[] for _ in heads]
        for j in range(len(inputs) - 1):
            out, state = step_model.step(inputs[j], state)
            for h in range(len(heads)):
                outs[h].append(out[h])
        if release is not None and k % 256 == 0:
            release()
        if len(inputs) < 2:
            continue
        events += len(inputs) - 1
        if waits is not None:
            steps += int(waits[targets[1:, 0].astype(np.int64)].sum())
        for order, gram in grams.items():
            gram_loss[order] -= float(gram.log_probs(targets[:, 0].astype(np.int64)).sum())
        for h, head in enumerate(heads):
            pred, t = np.array(outs[h], dtype=np.float64), targets[1:, h]
            loss[h] += float(head.numpy_loss(pred, t).sum())
            guess = head.guess(pred)
            if h == 0:
                correct += int((guess == t).sum())
            elif head.regression or head.centers:
                centers = np.asarray(head.centers)
                value, truth = (guess, t) if head.regression else (centers[guess], centers[t.astype(np.int64)])
                value, truth = np.asarray(value, np.float64), np.asarray(truth, np.float64)
                error[h] += float(np.abs(value - truth).sum())
                moments[h] += (value.sum(), (value ** 2).sum(), truth.sum(), (truth ** 2).sum())
    if not events:
        raise TrainingError("There is nothing to evaluate on: the pieces have no notes.")
    result = {"pieces": len(tables), "events": events, "loss": {}, "unit": family.unit}
    if steps:
        result["steps"] = steps
        result["loss_per_step"] = float(loss[0] / steps)
    if grams:
        result["ngram"] = {str(order): {"loss": total / events, **({"loss_per_step": total / steps} if steps else {})}
                           for order, total in gram_loss.items()}
    for h, head in enumerate(heads):
        result["loss"][head.name] = float(loss[h] / events)
        if h == 0:
            result["accuracy"] = correct / events
        elif head.regression or head.centers:
            g, g2, t, t2 = moments[h] / events
            result[f"{head.name}_mae"] = float(error[h] / events)
            result[f"{head.name}_spread"] = float(np.sqrt(max(g2 - g * g, 0.0)) / max(np.sqrt(max(t2 - t * t, 0.0)), 1e-9))
    return result


def _ngrams(folder: Path, enc: Encoding, orders: tuple[int, ...]) -> dict:
    """order -> an n-gram model of the first column of the model's training pieces' encoding."""
    from musicgen.learn.ngram import NGram
    from musicgen.runs.provenance import model_pieces

    sequences = [encode(enc, notes)[1][:, 0].astype(np.int64) for notes in model_pieces(folder, "train").values()]
    return {order: NGram(sequences, order, len(enc.tokens)) for order in orders}
