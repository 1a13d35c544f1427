"""Statistics against published worked examples and properties, never against their own formula."""

from __future__ import annotations

import numpy as np
import pytest

from core.reports import agreement, stat_tests


def test_wilson_interval_matches_newcombe_1998():
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3: 81/263 -> 0.2553 to 0.3662.
    low, high = stat_tests.wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_sign_test_is_the_exact_binomial_tail():
    # 9 wins of 10: P = 2 * (C(10,9) + C(10,10)) / 2^10 = 22 / 1024, worked by hand.
    assert stat_tests.sign_test(9, 1) == pytest.approx(22 / 1024)
    assert stat_tests.sign_test(5, 5) == pytest.approx(1.0)


def test_score_definition_counts_both_bad_as_half():
    # 34 W / 31 L / 11 T / 12 both-bad (the run in issue 13): (34 + ½·23) / 88 = 0.5170…
    values = [1.0] * 34 + [0.0] * 31 + [stat_tests.outcome_value("tie")] * 11 + [stat_tests.outcome_value("both_bad")] * 12
    assert float(np.mean(values)) == pytest.approx((34 + 0.5 * 23) / 88)


def test_the_score_lies_inside_its_own_interval_for_random_vote_tables():
    rng = np.random.default_rng(7)
    for _ in range(60):
        prompts = int(rng.integers(2, 25))
        by_prompt = {p: [stat_tests.outcome_value(v) for v in rng.choice(["tuned", "base", "tie", "both_bad"],
                                                                     size=int(rng.integers(1, 4)))]
                     for p in range(prompts)}
        score = sum(map(sum, by_prompt.values())) / sum(map(len, by_prompt.values()))
        interval = stat_tests.bootstrap_score(by_prompt)
        assert interval is not None and interval[0] - 1e-9 <= score <= interval[1] + 1e-9


def _ratings(table: dict[int, dict[str, str]]) -> list:
    from core.rating.sessions import Rating

    return [Rating(1, position, rater, "base", "tie", preferred, {}, "", 0.0, "")
            for position, votes in table.items() for rater, preferred in votes.items()]


def test_fleiss_kappa_of_a_hand_computed_table():
    # 4 prompts x 3 raters. P_i = 1, 1/3, 1, 0 -> P-bar = 7/12; p_j = 6/12, 5/12, 1/12, 0 -> Pe = 62/144;
    # kappa = (84/144 - 62/144) / (82/144) = 22/82 = 11/41.
    table = {0: {"a": "tuned", "b": "tuned", "c": "tuned"}, 1: {"a": "tuned", "b": "tuned", "c": "base"},
             2: {"a": "base", "b": "base", "c": "base"}, 3: {"a": "tuned", "b": "base", "c": "tie"}}
    result = agreement.agreement(_ratings(table), calibration={0, 1, 2, 3})
    assert result["fleiss_kappa"] == pytest.approx(11 / 41)
    assert result["percent_agreement"] == pytest.approx(0.5)


def test_cohens_kappa_of_a_hand_computed_table():
    # 10 prompts: both say tuned 4, both base 3, a tuned/b base 2, a base/b tuned 1.
    # po = 0.7; pe = 0.6*0.5 + 0.4*0.5 = 0.5; kappa = 0.4.
    pattern = [("tuned", "tuned")] * 4 + [("base", "base")] * 3 + [("tuned", "base")] * 2 + [("base", "tuned")]
    table = {i: {"a": x, "b": y} for i, (x, y) in enumerate(pattern)}
    result = agreement.agreement(_ratings(table), calibration=set(range(10)))
    assert result["cohens_kappa"] == pytest.approx(0.4)
    low, high = result["cohens_kappa_ci"]
    assert low < 0.4 < high


def test_agreement_says_why_it_cannot_be_computed():
    one_rater = agreement.agreement(_ratings({0: {"a": "tuned"}, 1: {"a": "base"}}), calibration={0, 1})
    assert "needs two raters" in one_rater["not_computable"] and "cohens_kappa" not in one_rater


def test_e_value_known_values():
    # B(10, 2) * 2^10 = (9! 1! / 11!) * 1024 = 1024 / 110.
    assert stat_tests.e_value(9, 1) == pytest.approx(1024 / 110)
    assert stat_tests.e_value(0, 0) == pytest.approx(1.0)


def test_wilcoxon_known_value():
    # Five positive differences: the exact two-sided p is 2 / 2^5.
    assert stat_tests.wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(0.0625)
    assert stat_tests.wilcoxon_p([0, 0]) is None


def test_peeking_after_every_vote_keeps_false_positives_at_or_below_five_percent():
    """10,000 experiments with no true preference, 200 decisive prompts each, a look after every
    one: the e-value verdict errs at most 5 % of the time; the naive sign test at p < 0.05 far more."""
    from scipy.special import betaln
    from scipy.stats import binom

    rng = np.random.default_rng(2026)
    experiments, looks = 10_000, 200
    wins = np.cumsum(rng.random((experiments, looks)) < 0.5, axis=1)
    n = np.arange(1, looks + 1)
    e_values = np.exp(betaln(wins + 1, n - wins + 1) + n * np.log(2))
    e_false_positives = float(np.mean((e_values >= stat_tests.E_VALUE_THRESHOLD).any(axis=1)))
    tail = np.minimum(binom.cdf(wins, n, 0.5), binom.sf(wins - 1, n, 0.5))
    naive_false_positives = float(np.mean((np.minimum(1, 2 * tail) < 0.05).any(axis=1)))
    assert e_false_positives <= 0.05
    assert naive_false_positives > 0.15  # why the page does not call a peeked sign test significant
