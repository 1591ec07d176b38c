"""The n-gram baseline: a proper distribution, Witten-Bell's interpolation, memory of what it saw."""

import numpy as np

from musicgen.learn.ngram import NGram


def test_probabilities_sum_to_one_after_any_context():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 6, 40) for _ in range(5)]
    for order in (1, 2, 5):
        gram = NGram(seqs, order, 6)
        for context in ([3], [1, 2, 3, 4], [5, 5, 5, 5, 5, 5], [0, 1]):  # seen and unseen contexts
            total = sum(np.exp(gram.log_probs(np.array(context + [w]))[-1]) for w in range(6))
            assert abs(total - 1) < 1e-9, (order, context)


def test_witten_bell_interpolates_with_the_order_below():
    """Order 1 after one sequence a a b: P(a) = (2 + 2 * 1/3) / (3 + 2) with 2 token types seen, 3 tokens."""
    gram = NGram([np.array([9, 0, 0, 1])], 1, 3)  # the first token is the start, never predicted
    lp = gram.log_probs(np.array([9, 0, 1, 2]))
    np.testing.assert_allclose(np.exp(lp), [(2 + 2 / 3) / 5, (1 + 2 / 3) / 5, (0 + 2 / 3) / 5])


def test_a_higher_order_remembers_a_repeated_phrase_and_an_unseen_one_costs_more():
    phrase = np.array([0, 1, 2, 3, 1, 2, 4, 3, 2, 1] * 3)
    low, high = NGram([phrase], 2, 5), NGram([phrase], 5, 5)
    assert -high.log_probs(phrase).mean() < -low.log_probs(phrase).mean()
    shuffled = np.random.default_rng(1).permutation(phrase)
    assert -high.log_probs(shuffled).mean() > -high.log_probs(phrase).mean()
    assert NGram([], 3, 4).log_probs(np.array([0, 1])).tolist() == [np.log(0.25)]  # nothing seen: uniform
