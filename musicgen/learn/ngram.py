"""Token n-gram models with interpolated Witten-Bell smoothing: the baseline a network's held-out loss is judged
against (BachBot's order-5 and order-10 n-grams), fitted on the very token sequences the network learns from.

Contexts are hashed to 64 bits (a collision among a few million contexts is a chance of about 1e-7), so an
order-10 model of the chorales fits and scores in a few seconds with numpy alone.
"""

from __future__ import annotations

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)  # a large odd multiplier: contexts of different lengths spread apart


def _contexts(seq: np.ndarray, order: int) -> list[np.ndarray]:
    """For k = 0 .. order-1, the hash of the k tokens before each position (shorter at a sequence's start:
    the positions before it count as a token of their own), shape=(len(seq),) each."""
    n = len(seq)
    h = np.zeros(n, np.uint64)
    out = [h.copy()]
    ids = seq.astype(np.uint64) + np.uint64(1)  # 0 stands for 'before the start'
    with np.errstate(over="ignore"):
        for k in range(1, order):
            before = np.zeros(n, np.uint64)
            before[k:] = ids[:-k] if k < n else before[k:]
            h = h * _MIX + before + np.uint64(k)
            out.append(h.copy())
    return out


def _pair(context: np.ndarray, token: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return context * _MIX + token.astype(np.uint64) + np.uint64(0x51ED27)


class NGram:
    """P(token | the order-1 tokens before it), each order interpolated with the one below (Witten-Bell):
    P_k(w|h) = (c(h, w) + T(h) P_{k-1}(w|h')) / (c(h) + T(h)), T(h) the tokens seen after h; P_0 is uniform."""

    def __init__(self, sequences: list[np.ndarray], order: int, vocabulary: int):
        if order < 1:
            raise ValueError("an n-gram's order is at least 1")
        self.order, self.vocabulary = order, vocabulary
        contexts = [[] for _ in range(order)]
        tokens = []
        for seq in sequences:
            seq = np.asarray(seq, np.int64)
            if len(seq) < 2:
                continue
            for k, h in enumerate(_contexts(seq, order)):
                contexts[k].append(h[1:])  # every token after the first is predicted, as by the network
            tokens.append(seq[1:])
        token = np.concatenate(tokens) if tokens else np.zeros(0, np.int64)
        self.tables = []
        for k in range(order):
            h = np.concatenate(contexts[k]) if tokens else np.zeros(0, np.uint64)
            pairs, first, counts = np.unique(_pair(h, token), return_index=True, return_counts=True)
            ctx, totals = np.unique(h, return_counts=True)
            _, followers = np.unique(h[first], return_counts=True)  # distinct tokens after each h, in ctx's order
            self.tables.append((pairs, counts, ctx, totals, followers))

    def log_probs(self, seq: np.ndarray) -> np.ndarray:
        """Natural log P of each token of `seq` after its first, from the tokens before it, shape=(len(seq)-1,)."""
        seq = np.asarray(seq, np.int64)
        if len(seq) < 2:
            return np.zeros(0)
        token = seq[1:]
        p = np.full(len(token), 1.0 / self.vocabulary)
        for k, h in enumerate(_contexts(seq, self.order)):
            h = h[1:]
            pairs, counts, ctx, totals, followers = self.tables[k]
            c = _lookup(pairs, counts, _pair(h, token))
            i = np.clip(np.searchsorted(ctx, h), 0, max(len(ctx) - 1, 0))
            seen = (ctx[i] == h) if len(ctx) else np.zeros(len(h), bool)
            total = np.where(seen, totals[i] if len(ctx) else 0, 0).astype(np.float64)
            types = np.where(seen, followers[i] if len(ctx) else 0, 0).astype(np.float64)
            p = np.where(seen, (c + types * p) / np.maximum(total + types, 1), p)
        return np.log(p)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[keys == q] for each q (0 where q is not a key); keys sorted."""
    if not len(keys):
        return np.zeros(len(query))
    i = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[i] == query, values[i], 0).astype(np.float64)
