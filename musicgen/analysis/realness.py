"""Can a plain classifier tell generated pieces from real ones? Musical features of a piece and a k-fold
logistic regression (numpy alone: about 40 features and a hundred pieces need no library).

An accuracy near 50% means the features do not give the generated music away; real against real is the floor
that the same pieces' variety allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicgen.analysis.metrics import all_statistics
from musicgen.learn.sample import top_line
from musicgen.music.notes import Notes
from musicgen.music.grid import key_shift, onset_beats
from musicgen.music.theory import CHORD_TOLERANCE_BEATS

IOI_EDGES = (0.0, 0.375, 0.625, 0.875, 1.25, 1.75, 2.5, np.inf)  # quarter notes: 16th, 8th, dotted 8th, 4th, ...
IOI_LABELS = ("sixteenth", "eighth", "dotted eighth", "quarter", "dotted quarter", "half", "longer")
INTERVALS = 7  # the top voice's steps from -7 to +7 semitones, the rest gathered as leaps down or up


def onset_count(notes: Notes) -> int:
    """Onsets of the piece, notes starting together counted once."""
    return len(onset_beats(notes))


def openings(notes: Notes, onsets: int) -> Notes:
    """The piece's first `onsets` onsets (notes starting together count once): a real piece cut to the length
    of a generated one."""
    starts = onset_beats(notes)
    if len(starts) <= onsets:
        return notes
    return notes.take(notes.start_beat < starts[onsets] - CHORD_TOLERANCE_BEATS / 2)


def features(notes: Notes) -> dict[str, float]:
    """Key-normalised pitch classes (by duration), the top voice's intervals, the time between onsets (in
    quarter notes), and the general and four-part statistics (metrics.all_statistics): name -> value."""
    out: dict[str, float] = {}
    pcs = np.bincount((notes.pitch.astype(np.int64) + key_shift(notes)) % 12, weights=notes.duration_beats,
                      minlength=12)
    for k, v in enumerate(pcs / max(pcs.sum(), 1e-9)):
        out[f"pitch class {k}"] = float(v)
    steps = np.clip(np.diff(top_line(notes)[0].pitch.astype(np.int64)), -INTERVALS - 1, INTERVALS + 1)
    counts = np.bincount(steps + INTERVALS + 1, minlength=2 * INTERVALS + 3)
    for k, v in enumerate(counts / max(counts.sum(), 1)):
        out[f"top voice {k - INTERVALS - 1:+d}"] = float(v)
    starts = onset_beats(notes)
    gaps = np.histogram(np.diff(starts), IOI_EDGES)[0]
    for label, v in zip(IOI_LABELS, gaps / max(gaps.sum(), 1)):
        out[f"{label} between onsets"] = float(v)
    out.update(all_statistics(notes))
    return out


def feature_matrix(pieces: list[Notes]) -> np.ndarray:
    rows = [features(p) for p in pieces if len(p)]
    return np.array([list(r.values()) for r in rows], np.float64).reshape(len(rows), -1)


def _fit(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 25) -> np.ndarray:
    """Logistic regression by Newton's method with an L2 penalty (the intercept unpenalised): weights, the
    intercept last."""
    a = np.c_[x, np.ones(len(x))]
    w = np.zeros(a.shape[1])
    penalty = np.full(a.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(a @ w, -30, 30)))
        gradient = a.T @ (p - y) + penalty * w
        hessian = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


@dataclass(frozen=True)
class Verdict:
    accuracy: float  # mean held-out accuracy over the folds and repeats (0.5: no better than a coin)
    spread: float  # standard deviation of the repeats' accuracies
    pieces: tuple[int, int]  # of each kind
    telling: tuple[tuple[str, float], ...]  # the features that weigh most (standardised weight), strongest first


def tell_apart(a: list[Notes], b: list[Notes], folds: int = 5, repeats: int = 5, l2: float = 1.0,
               seed: int = 0) -> Verdict:
    """How often a logistic regression on `features` tells a piece of `a` from one of `b`, held out by k-fold
    cross-validation (features standardised on each training fold), averaged over `repeats` shuffles."""
    xa, xb = feature_matrix(a), feature_matrix(b)
    if min(len(xa), len(xb)) < folds:
        raise ValueError(f"at least {folds} pieces of each kind are needed")
    x = np.vstack([xa, xb])
    y = np.r_[np.zeros(len(xa)), np.ones(len(xb))]
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(repeats):
        fold = np.empty(len(y), np.int64)
        for label in (0, 1):  # stratified: each fold holds both kinds in proportion
            where = rng.permutation(np.flatnonzero(y == label))
            fold[where] = np.arange(len(where)) % folds
        right = 0
        for k in range(folds):
            train, test = fold != k, fold == k
            mean, sd = x[train].mean(0), x[train].std(0) + 1e-9
            w = _fit((x[train] - mean) / sd, y[train], l2)
            guess = np.c_[(x[test] - mean) / sd, np.ones(test.sum())] @ w > 0
            right += int((guess == (y[test] > 0.5)).sum())
        scores.append(right / len(y))
    mean, sd = x.mean(0), x.std(0) + 1e-9
    w = _fit((x - mean) / sd, y, l2)[:-1]
    names = list(features(next(p for p in a if len(p))).keys())
    order = np.argsort(-np.abs(w))[:5]
    return Verdict(float(np.mean(scores)), float(np.std(scores)), (len(xa), len(xb)),
                   tuple((names[i], float(w[i])) for i in order))
