"""Statistics against published worked examples and properties, never against their own formula."""

from __future__ import annotations

import numpy as np
import pytest

from core import stats


def test_wilson_interval_matches_newcombe_1998():
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3: 81/263 -> 0.2553 to 0.3662.
    low, high = stats.wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_sign_test_is_the_exact_binomial_tail():
    # 9 wins of 10: P = 2 * (C(10,9) + C(10,10)) / 2^10 = 22 / 1024, worked by hand.
    assert stats.sign_test(9, 1) == pytest.approx(22 / 1024)
    assert stats.sign_test(5, 5) == pytest.approx(1.0)


def test_score_definition_counts_both_bad_as_half():
    # 34 W / 31 L / 11 T / 12 both-bad (the run in issue 13): (34 + ½·23) / 88 = 0.5170…
    values = [1.0] * 34 + [0.0] * 31 + [stats.outcome_value("tie")] * 11 + [stats.outcome_value("both_bad")] * 12
    assert float(np.mean(values)) == pytest.approx((34 + 0.5 * 23) / 88)


def test_the_score_lies_inside_its_own_interval_for_random_vote_tables():
    rng = np.random.default_rng(7)
    for _ in range(60):
        prompts = int(rng.integers(2, 25))
        by_prompt = {p: [stats.outcome_value(v) for v in rng.choice(["tuned", "base", "tie", "both_bad"],
                                                                     size=int(rng.integers(1, 4)))]
                     for p in range(prompts)}
        score = sum(map(sum, by_prompt.values())) / sum(map(len, by_prompt.values()))
        interval = stats.bootstrap_score(by_prompt)
        assert interval is not None and interval[0] - 1e-9 <= score <= interval[1] + 1e-9
