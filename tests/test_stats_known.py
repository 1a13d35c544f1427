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


def test_the_prompt_level_score_lies_inside_its_own_interval_for_random_vote_tables():
    rng = np.random.default_rng(7)
    for _ in range(60):
        prompts = int(rng.integers(2, 25))
        by_prompt = {p: [stat_tests.outcome_value(v) for v in rng.choice(["tuned", "base", "tie", "both_bad"],
                                                                     size=int(rng.integers(1, 4)))]
                     for p in range(prompts)}
        # The score is the mean of prompt means (a prompt with three votes weighs as much as one with one).
        score = sum(sum(v) / len(v) for v in by_prompt.values()) / prompts
        interval = stat_tests.bootstrap_score(by_prompt)
        if len({sum(v) / len(v) for v in by_prompt.values()}) == 1:
            assert interval is None  # no spread: no zero-width interval pretending to be one
        else:
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


def test_prompt_outcomes_name_both_bad_prompts():
    assert stat_tests.prompt_outcome(["both_bad"]) == "both_bad"
    assert stat_tests.prompt_outcome(["tie"]) == "tied"
    assert stat_tests.prompt_outcome(["tuned", "base"]) == "tied"
    assert stat_tests.prompt_outcome(["tuned", "base", "both_bad", "both_bad"]) == "both_bad"
    assert stat_tests.prompt_outcome(["tuned", "both_bad", "both_bad"]) == "won"  # mean 2/3


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


def test_two_raters_with_every_vote_in_one_category_are_not_computable_rather_than_nan():
    # po = pe = 1: κ = 0/0 (statsmodels printed "nan (95 % CI nan – nan)").
    result = agreement.agreement(_ratings({i: {"a": "tuned", "b": "tuned"} for i in range(6)}), set(range(6)))
    assert "not computable, because every vote on them is 'tuned'" in result["not_computable"]
    assert "cohens_kappa" not in result and "krippendorff_alpha" not in result
    import json

    json.dumps(result, allow_nan=False)


def test_krippendorff_alpha_of_a_hand_computed_table_with_a_missing_rating():
    # Units (a, b): (tuned, tuned), (base, base), (tuned, base), (-, base). The last has one value
    # and is not pairable. Coincidences: o_tt = 2, o_bb = 2, o_tb = o_bt = 1; n_t = n_b = 3, n = 6.
    # D_o = 2/6; D_e = 2·3·3 / (6·5) = 0.6; α = 1 − (1/3)/0.6 = 4/9.
    table = {0: {"a": "tuned", "b": "tuned"}, 1: {"a": "base", "b": "base"}, 2: {"a": "tuned", "b": "base"},
             3: {"b": "base"}}
    result = agreement.agreement(_ratings(table), calibration={0, 1, 2, 3})
    assert result["krippendorff_alpha"] == pytest.approx(4 / 9)
    assert result["krippendorff_alpha_ci"] is None  # 3 pairable prompts: too few for an interval


def test_one_rater_with_a_single_calibration_vote_does_not_hide_agreement():
    pattern = [("tuned", "tuned")] * 4 + [("base", "base")] * 3 + [("tuned", "base")] * 2 + [("base", "tuned")]
    table = {i: {"a": x, "b": y} for i, (x, y) in enumerate(pattern)}
    table[0]["late"] = "tuned"  # a third rater who has voted once
    result = agreement.agreement(_ratings(table), calibration=set(range(10)))
    assert "not_computable" not in result and -1 <= result["krippendorff_alpha"] <= 1
    assert "only" not in result.get("kappa_not_computable", "") and "1 calibration pairs" in result["kappa_not_computable"]
    low, high = result["krippendorff_alpha_ci"]
    assert -1 <= low <= result["krippendorff_alpha"] <= high <= 1


def test_kappa_intervals_stay_inside_minus_one_to_one_on_small_tables():
    rng = np.random.default_rng(3)
    for _ in range(15):
        n = int(rng.integers(5, 9))
        table = {i: {"a": str(rng.choice(["tuned", "base"])), "b": str(rng.choice(["tuned", "base", "tie"]))}
                 for i in range(n)}
        result = agreement.agreement(_ratings(table), calibration=set(range(n)))
        for key in ("cohens_kappa_ci", "krippendorff_alpha_ci"):
            if result.get(key):
                assert -1 <= result[key][0] <= result[key][1] <= 1


def test_e_value_known_values():
    # B(10, 2) * 2^10 = (9! 1! / 11!) * 1024 = 1024 / 110.
    assert stat_tests.e_value(9, 1) == pytest.approx(1024 / 110)
    assert stat_tests.e_value(0, 0) == pytest.approx(1.0)


def test_wilcoxon_known_value():
    # Five positive differences: the exact two-sided p is 2 / 2^5.
    assert stat_tests.wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(0.0625)
    assert stat_tests.wilcoxon_p([0, 0]) is None


def _scored(table: dict[int, dict[str, tuple[int, int]]]) -> list:
    from core.rating.sessions import Rating

    return [Rating(1, position, rater, "base", "tie", "tie", {"base": {"tone": b}, "tuned": {"tone": t}}, "", 0.0, "")
            for position, votes in table.items() for rater, (b, t) in votes.items()]


def test_per_criterion_tests_count_prompts_not_votes():
    """Five prompts whose differences are 1..5, each scored by three agreeing raters: the prompt is
    the unit, so n = 5 and the exact two-sided Wilcoxon p is 2/2^5 = 0.0625 (as with one rater);
    counting the 15 votes as observations would give p ≈ 0.0007."""
    from core.reports import summary

    one = summary.per_criterion(_scored({p: {"a": (1, 1 + p)} for p in range(1, 6)}))[0]
    three = summary.per_criterion(_scored({p: {r: (1, 1 + p) for r in "abc"} for p in range(1, 6)}))[0]
    assert one["n_prompts"] == three["n_prompts"] == 5
    assert three["wilcoxon_p"] == pytest.approx(0.0625) == one["wilcoxon_p"]
    assert three["difference"] == pytest.approx(3.0)
    # A prompt where raters disagree counts once, with its mean: (+2, 0, +1) -> +1.
    mixed = summary.per_criterion(_scored({1: {"a": (1, 3), "b": (2, 2), "c": (1, 2)}, 2: {"a": (1, 4)}}))[0]
    assert mixed["n_prompts"] == 2 and mixed["difference"] == pytest.approx((1 + 3) / 2)


def test_holm_adjustment_of_several_criteria():
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04; made monotone: 0.03, 0.06, 0.06.
    adjusted = stat_tests.holm([0.01, 0.04, 0.03, None])
    assert adjusted[3] is None and adjusted[:3] == pytest.approx([0.03, 0.06, 0.06])


def test_exact_power_figures():
    # From issue 26: 376 decisive prompts for 80 % power at a 60 % win rate (361 has 78.1 %); a
    # sign test fixed in advance needs 199 exactly, 194 by the normal approximation
    # ((1.95996·0.5 + 0.84162·√0.24) / 0.1)² = 193.8.
    assert stat_tests.prompts_needed() == 376
    assert round(float(stat_tests.sequential_power(361)[-1]), 3) == 0.781
    assert stat_tests.fixed_n_needed() == 199 and stat_tests.fixed_n_needed_normal() == 194
    # The first crossing needs 8 straight wins or losses (2^7/8 = 16 < 20 ≤ 2^8/9 = 28.4):
    # P = 0.6^8 + 0.4^8 = 0.01745152, and nothing before.
    curve = stat_tests.sequential_power(8)
    assert curve[6] == 0 and curve[7] == pytest.approx(0.6 ** 8 + 0.4 ** 8)


def test_prompts_needed_uses_the_data_in_hand():
    assert stat_tests.prompts_needed(wins=9, losses=0) == 0  # E = 2^9/10 = 51.2: settled
    assert stat_tests.prompts_needed(wins=216, losses=145) < 376 - 361  # 60 % in hand, past 361, no verdict yet
    assert 0 < stat_tests.prompts_needed(wins=7, losses=0) < stat_tests.prompts_needed(wins=0, losses=0)


def test_confidence_sequence_is_the_dual_of_the_e_value():
    # W = 9, L = 0: p^9 > B(10, 1)/20 = 1/200, so the lower end is 200^(-1/9) = 0.55505.
    low, high = stat_tests.confidence_sequence(9, 0)
    assert low == pytest.approx(200 ** (-1 / 9), abs=1e-9) and high == 1.0
    assert stat_tests.confidence_sequence(0, 0) == (0.0, 1.0)
    # Issue 26's contradiction: W = 30, L = 14. The fixed-n Wilson interval excludes 50 % but the
    # e-value is 3.4; the confidence sequence includes 50 %, as the e-value says.
    assert stat_tests.wilson(30, 44)[0] > 0.5 and stat_tests.e_value(30, 14) == pytest.approx(3.4, abs=0.01)
    assert stat_tests.confidence_sequence(30, 14)[0] < 0.5
    for w in range(0, 40):
        for lost in range(0, 40, 3):
            low, high = stat_tests.confidence_sequence(w, lost)
            assert (low < 0.5 < high) == (stat_tests.e_value(w, lost) < 20)


def test_extreme_counts_stay_finite_and_never_round_across_the_threshold():
    import math

    from core.reports import report_format

    assert stat_tests.e_value(1100, 0) == math.inf
    log10 = stat_tests.log_e_value(1100, 0) / math.log(10)
    assert math.isfinite(log10) and report_format.e_value(log10) == "> 10^6"
    text = report_format.e_value(math.log10(19.9946))
    assert float(text) < 20 and text != "20.0"
    assert report_format.e_value(math.log10(3.4)) == "3.4"
    assert float(report_format.p_value(0.0496)) < 0.05 and float(report_format.p_value(0.0504)) > 0.05
    assert report_format.ci((0.4996, 0.81)) == "49.9% – 81.0%"  # rounded outwards: never excludes 50 %


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


def _simulate_rating(rng: np.random.Generator, prompts: int, raters: int, k: int, calibration: int,
                     edit_rate: float) -> tuple[bool, bool]:
    """One run under "no preference", rated the studio's way: calibration prompts get every rater's
    vote, the others k votes; raters vote in their own random order, interleaved, and change some
    votes later (before their session completes). Returns whether the e-value ever reached 20 with
    the entry rule (a prompt enters at its k-th vote with the mean of its first k votes, fixed), and
    with the old rule (every prompt with k or more votes, at its current mean)."""
    values = np.array([1.0, 0.0, 0.5, 0.5])  # tuned, base, tie, both bad: symmetric under the null
    probabilities = [0.35, 0.35, 0.15, 0.15]
    events = [(p, r) for p in range(prompts) for r in range(raters if p < calibration else k)]
    events = [events[i] for i in rng.permutation(len(events))]
    edits = [e for e in events if rng.random() < edit_rate]
    events += [edits[i] for i in rng.permutation(len(edits))]  # second votes on the same (prompt, rater)
    drawn = values[rng.choice(4, size=len(events), p=probabilities)]
    counts = np.arange(prompts + 1)
    crosses = stat_tests.log_e_value(counts[:, None], counts[None, :]) >= stat_tests.LOG_E_VALUE_THRESHOLD
    current: dict[int, dict[int, float]] = {p: {} for p in range(prompts)}
    first: dict[int, list[int]] = {p: [] for p in range(prompts)}  # raters in time order of first vote
    entered: dict[int, float] = {}
    fixed_crossed = old_crossed = False
    for (p, r), value in zip(events, drawn):
        if r not in current[p]:
            first[p].append(r)
        current[p][r] = value
        if p not in entered and len(first[p]) == k:
            entered[p] = float(np.mean([current[p][x] for x in first[p][:k]]))
        w = sum(v > 0.5 for v in entered.values())
        lost = sum(v < 0.5 for v in entered.values())
        fixed_crossed |= bool(crosses[w, lost])
        means = [np.mean(list(v.values())) for v in current.values() if len(v) >= k]
        old_w, old_l = sum(m > 0.5 for m in means), sum(m < 0.5 for m in means)
        old_crossed |= bool(crosses[old_w, old_l])
    return fixed_crossed, old_crossed


def test_peeking_with_calibration_prompts_several_raters_and_edits_stays_at_or_below_five_percent():
    """Issue 26: with calibration prompts rated by every rater and votes edited, the entry rule keeps
    the e-value a test martingale: looking after every vote, false positives stay ≤ 5 %."""
    rng = np.random.default_rng(26)
    runs = [_simulate_rating(rng, prompts=60, raters=3, k=2, calibration=12, edit_rate=0.3) for _ in range(600)]
    fixed = float(np.mean([f for f, _ in runs]))
    assert fixed <= 0.05
