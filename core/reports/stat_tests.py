"""Statistical building blocks with one definition each: intervals, exact and anytime-valid tests,
the score. The unit of inference is the prompt (docs/statistics.md gives every definition)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

BOOTSTRAP_SAMPLES = 2000
TARGET_WIN_RATE = 0.6
ALPHA = 0.05
# An e-value of 1/alpha or more rejects "no preference" at level alpha, however often someone
# looks (Ville's inequality): the verdict stays valid while votes arrive.
E_VALUE_THRESHOLD = 1 / ALPHA

# Each vote's value for the tuned model. Tie and both-bad favour neither model, so both count ½;
# the score, its interval, the per-prompt outcome and Bradley–Terry all use this one table.
SCORE_DEFINITION = ("the mean over prompts of each prompt's mean vote value, where tuned better counts 1, "
                    "tie and both-bad ½, base better 0")


def outcome_value(preferred: str) -> float:
    return {"tuned": 1.0, "base": 0.0, "tie": 0.5, "both_bad": 0.5}[preferred]


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    """Wilson score interval (95 %) for a proportion (Wilson 1927; Newcombe 1998, method 3)."""
    from statsmodels.stats.proportion import proportion_confint

    if trials == 0:
        return None
    low, high = proportion_confint(successes, trials, alpha=ALPHA, method="wilson")
    return float(low), float(high)


def sign_test(wins: int, losses: int) -> float | None:
    """Exact two-sided binomial test of wins against losses at ½ (ties left out)."""
    from scipy.stats import binomtest

    if wins + losses == 0:
        return None
    return float(binomtest(wins, wins + losses, 0.5, alternative="two-sided").pvalue)


def e_value(wins: int, losses: int) -> float:
    """Anytime-valid evidence against "no preference" (p = ½) from decisive prompts.

    The mixture likelihood ratio with a uniform prior on the win probability p,
    ∫ p^W (1−p)^L dp / ½^(W+L) = B(W+1, L+1) · 2^(W+L), is a test martingale under p = ½ (Robbins
    1970; Ramdas et al. 2023). By Ville's inequality it ever reaches 1/α with probability ≤ α, so a
    lead may look after every vote and stop when it crosses 20.
    """
    from scipy.special import betaln

    return float(np.exp(betaln(wins + 1, losses + 1) + (wins + losses) * np.log(2)))


@lru_cache(maxsize=4)
def prompts_needed(target: float = TARGET_WIN_RATE, power: float = 0.8, limit: int = 1500,
                   simulations: int = 4000, seed: int = 0) -> int:
    """Decisive prompts after which the anytime-valid test has declared a `target` win rate with
    probability `power` (simulated: the e-value has no closed-form power)."""
    from scipy.special import betaln

    rng = np.random.default_rng(seed)
    wins = np.cumsum(rng.random((simulations, limit)) < target, axis=1, dtype=np.int32)
    n = np.arange(1, limit + 1)
    crossed = betaln(wins + 1, n - wins + 1) + n * np.log(2) >= np.log(E_VALUE_THRESHOLD)
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1, limit + 1)
    return int(np.sort(first)[int(np.ceil(power * simulations)) - 1])


def prompt_means(by_prompt: dict[int, list[float]]) -> dict[int, float]:
    """Each prompt's mean vote value: several raters on one prompt make one observation."""
    return {p: float(np.mean(v)) for p, v in by_prompt.items() if v}


def bootstrap_score(by_prompt: dict[int, list[float]], seed: int = 0) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of the score, resampling prompts (each with its votes)."""
    from scipy.stats import bootstrap

    means = np.array(list(prompt_means(by_prompt).values()))
    if len(means) < 2:
        return None
    if np.all(means == means[0]):
        return float(means[0]), float(means[0])
    result = bootstrap((means,), np.mean, n_resamples=BOOTSTRAP_SAMPLES, method="percentile",
                       rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_ci(values: Sequence[float]) -> tuple[float | None, tuple[float, float] | None]:
    """Mean with a 95 % t interval."""
    from scipy import stats as st

    if not values:
        return None, None
    mean = float(np.mean(values))
    if len(values) < 2 or np.std(values) == 0:
        return mean, (mean, mean)
    low, high = st.t.interval(1 - ALPHA, len(values) - 1, loc=mean, scale=st.sem(values))
    return mean, (float(low), float(high))


def wilcoxon_p(differences: Sequence[float]) -> float | None:
    """Wilcoxon signed-rank test (two-sided) of paired differences; None without a non-zero one."""
    from scipy.stats import wilcoxon

    if not any(d != 0 for d in differences):
        return None
    return float(wilcoxon(differences, zero_method="wilcox", alternative="two-sided").pvalue)
