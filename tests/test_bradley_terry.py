"""Bradley–Terry on real pairwise comparisons (issue 28): known maximum-likelihood values worked by hand."""

import math

import pytest

from core.reports import bradley_terry
from core.reports.bradley_terry import Comparison


def games(first: str, second: str, won: int, lost: int, tied: int = 0, start: int = 0) -> list[Comparison]:
    """`first` against `second` on won + lost + tied prompts, each prompt its own name."""
    values = [1.0] * won + [0.0] * lost + [0.5] * tied
    return [Comparison(f"{first}-{second}-{start + i}", first, second, v) for i, v in enumerate(values)]


def test_three_models_with_a_cycle_of_comparisons_hit_the_hand_solved_mle():
    """A beats B 2 of 3, A beats C 4 of 5, B beats C 2 of 3. With strengths p = (4, 2, 1) each model's
    expected wins equal its observed wins (the likelihood equations W_i = Σ_j n_ij p_i / (p_i + p_j)):
    A: 3·4/6 + 5·4/5 = 6, B: 3·2/6 + 3·2/3 = 3, C: 5·1/5 + 3·1/3 = 2. The log-likelihood is strictly
    concave here, so that is the MLE: θ = log p, B − C = A − B = log 2."""
    data = games("A", "B", 2, 1) + games("A", "C", 4, 1) + games("B", "C", 2, 1)
    theta = bradley_terry.fit(data, anchor="C")
    assert theta == pytest.approx({"A": math.log(4), "B": math.log(2), "C": 0.0}, abs=1e-9)


def test_ties_count_half_a_win_each():
    """A and B: 1 win each and 2 ties is 2 : 2, equal strengths; 3 wins, 1 loss, 2 ties is 4 : 2,
    so θ_A − θ_B = log 2 (two models: the MLE is the log of the win ratio)."""
    assert bradley_terry.fit(games("A", "B", 1, 1, tied=2), anchor="B") == pytest.approx({"A": 0.0, "B": 0.0})
    assert bradley_terry.fit(games("A", "B", 3, 1, tied=2), anchor="B") == pytest.approx(
        {"A": math.log(2), "B": 0.0}, abs=1e-9)


def test_a_model_that_never_lost_has_no_finite_strength():
    assert bradley_terry.fit(games("A", "B", 3, 0) + games("B", "C", 2, 1)) is None


def test_prompt_bootstrap_interval_covers_the_fit_and_is_none_when_too_thin():
    data = games("A", "B", 30, 10) + games("B", "C", 25, 15) + games("A", "C", 30, 10)
    theta = bradley_terry.fit(data, anchor="C")
    assert theta is not None
    intervals = bradley_terry.bootstrap(data, anchor="C", resamples=200)
    assert intervals is not None and intervals["C"] == (0.0, 0.0)
    for model in ("A", "B"):
        low, high = intervals[model]
        assert low < theta[model] < high
    # 3 prompts: most resamples lose a side's every loss, so no finite fit and no interval.
    assert bradley_terry.bootstrap(games("A", "B", 2, 1), resamples=200) is None


def test_a_resample_without_the_anchor_does_not_widen_the_intervals():
    """Run 1 ties the base on two prompts; run 2 beats run 1 by 0.75 on eight others. Every resample
    that keeps all three models gives exactly run 1 = 0 and run 2 = log 3 (each link's win ratio), so
    the intervals are points; resamples that lost the base are on another scale and must not count."""
    data = ([Comparison(f"t{i}", "run 1", "base", 0.5) for i in range(2)]
            + [Comparison(f"w{i}", "run 2", "run 1", 0.75) for i in range(8)])
    intervals = bradley_terry.bootstrap(data, anchor="base")
    assert intervals is not None
    assert intervals["run 1"] == pytest.approx((0.0, 0.0), abs=1e-6)
    assert intervals["run 2"] == pytest.approx((math.log(3), math.log(3)), abs=1e-6)
