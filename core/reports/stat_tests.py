"""Statistical building blocks with one definition each: intervals, exact and anytime-valid tests,
their power, the score. The unit of inference is the prompt (docs/statistics.md gives every definition)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from core.rating.sessions import VOTE_VALUES

BOOTSTRAP_SAMPLES = 2000
TARGET_WIN_RATE = 0.6
TARGET_POWER = 0.8
ALPHA = 0.05
# An e-value of 1/alpha or more rejects "no preference" at level alpha, however often someone
# looks (Ville's inequality): the verdict stays valid while votes arrive.
E_VALUE_THRESHOLD = 1 / ALPHA
LOG_E_VALUE_THRESHOLD = math.log(E_VALUE_THRESHOLD)
POWER_LIMIT = 3000  # decisive prompts beyond which "prompts needed" says "more than this"

# {tuned}/{base}: the two models' names in the reports (summary.named).
SCORE_DEFINITION = ("the mean over prompts of each prompt's mean vote value, where {tuned} better counts 1, "
                    "tie and both-bad ½, {base} better 0")


def outcome_value(preferred: str) -> float:
    return VOTE_VALUES[preferred]


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    """Wilson score interval (95 %) for a proportion (Wilson 1927; Newcombe 1998, method 3).
    Valid for a number of prompts fixed in advance, not for one watched while votes arrive."""
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


def log_e_value(wins: int | np.ndarray, losses: int | np.ndarray) -> float | np.ndarray:
    """Natural log of the e-value: finite at any count (the e-value itself overflows past ~1,000 wins)."""
    from scipy.special import betaln

    return betaln(np.add(wins, 1), np.add(losses, 1)) + np.add(wins, losses) * math.log(2)


def e_value(wins: int, losses: int) -> float:
    """Anytime-valid evidence against "no preference" (p = ½) from decisive prompts.

    The mixture likelihood ratio with a uniform prior on the win probability p,
    ∫ p^W (1−p)^L dp / ½^(W+L) = B(W+1, L+1) · 2^(W+L), is a test martingale under p = ½ (Robbins
    1970; Ramdas et al. 2023). By Ville's inequality it ever reaches 1/α with probability ≤ α, so a
    lead may look after every vote and stop when it crosses 20. May be inf: use log_e_value.
    """
    log_e = float(log_e_value(wins, losses))
    return math.exp(log_e) if log_e < 709 else math.inf  # exp overflows a double just above 709


def confidence_sequence(wins: int, losses: int) -> tuple[float, float]:
    """Anytime-valid 95 % confidence sequence for the win rate, the dual of the e-value's mixture:
    every p whose mixture ratio B(W+1, L+1) / (p^W (1−p)^L) stays below 1/α (Robbins 1970; Howard
    et al. 2021). At p = ½ the ratio is the e-value, so ½ lies outside exactly when E ≥ 20."""
    from scipy.optimize import brentq
    from scipy.special import betaln, xlog1py, xlogy

    n = wins + losses
    floor = float(betaln(wins + 1, losses + 1)) - LOG_E_VALUE_THRESHOLD

    def margin(p: float) -> float:  # > 0 inside the sequence
        return float(xlogy(wins, p) + xlog1py(losses, -p) - floor)  # 0·log 0 = 0 at the ends

    centre = wins / n if n else 0.5
    low = 0.0 if wins == 0 else brentq(margin, 0.0, centre, xtol=1e-12)
    high = 1.0 if losses == 0 else brentq(margin, centre, 1.0, xtol=1e-12)
    return float(low), float(high)


def sequential_power(limit: int = POWER_LIMIT, target: float = TARGET_WIN_RATE, wins: int = 0,
                     losses: int = 0) -> np.ndarray:
    """Exact probability that the e-value has reached 20 within m more decisive prompts (m = 1 ..
    limit), starting from `wins` and `losses` in hand, if each prompt is won with probability
    `target`: a walk over the win count, absorbed when it crosses (either direction)."""
    alive = np.ones(1)
    crossed, power = 0.0, np.empty(limit)
    for m in range(1, limit + 1):
        step = np.zeros(m + 1)
        step[:m] += alive * (1 - target)
        step[1:] += alive * target
        w = wins + np.arange(m + 1)
        done = log_e_value(w, wins + losses + m - w) >= LOG_E_VALUE_THRESHOLD
        crossed += float(step[done].sum())
        step[done] = 0.0
        alive, power[m - 1] = step, crossed
    return power


@lru_cache(maxsize=64)
def prompts_needed(target: float = TARGET_WIN_RATE, power: float = TARGET_POWER, wins: int = 0,
                   losses: int = 0) -> int | None:
    """Decisive prompts (more, from the `wins` and `losses` in hand) after which the anytime-valid
    test has declared a `target` win rate with probability `power`, computed exactly; 0 if it has
    already; None if not within POWER_LIMIT. From nothing: 376 at 60 % and 80 % (361 has 78.1 %)."""
    if log_e_value(wins, losses) >= LOG_E_VALUE_THRESHOLD:
        return 0
    curve = sequential_power(POWER_LIMIT, target, wins, losses)
    reached = np.nonzero(curve >= power)[0]
    return int(reached[0]) + 1 if reached.size else None


@lru_cache(maxsize=8)
def fixed_n_needed(target: float = TARGET_WIN_RATE, power: float = TARGET_POWER) -> int:
    """Smallest number of decisive prompts, fixed in advance and looked at once, at which the exact
    two-sided sign test at 5 % has `power` against `target` (exact binomial sums: 199 at 60 %)."""
    from scipy.stats import binom

    for n in range(1, POWER_LIMIT + 1):
        w = np.arange(n + 1)
        p = np.minimum(1.0, 2 * np.minimum(binom.cdf(w, n, 0.5), binom.sf(w - 1, n, 0.5)))
        if binom.pmf(w, n, target)[p <= ALPHA].sum() >= power:
            return n
    raise ValueError(f"no sample size up to {POWER_LIMIT} reaches {power:.0%} power at {target:.0%}")


def fixed_n_needed_normal(target: float = TARGET_WIN_RATE, power: float = TARGET_POWER) -> int:
    """The textbook normal approximation of fixed_n_needed (194 at 60 %), for comparison only."""
    from scipy.stats import norm

    z = norm.ppf(1 - ALPHA / 2) * 0.5 + norm.ppf(power) * math.sqrt(target * (1 - target))
    return math.ceil((z / (target - 0.5)) ** 2)


def prompt_means(by_prompt: dict[int, list[float]]) -> dict[int, float]:
    """Each prompt's mean vote value, in position order: several raters on one prompt make one observation."""
    return {p: float(np.mean(v)) for p, v in sorted(by_prompt.items()) if v}


def bootstrap_mean(values: Sequence[float], seed: int = 0) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of a mean over prompts (values in position order); None
    with fewer than two prompts or when every prompt has the same value (no spread to resample)."""
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if len(data) < 2 or np.all(data == data[0]):
        return None
    result = bootstrap((data,), np.mean, n_resamples=BOOTSTRAP_SAMPLES, method="percentile",
                       rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_score(by_prompt: dict[int, list[float]], seed: int = 0) -> tuple[float, float] | None:
    """The score's interval: the bootstrap resamples prompts (each with its votes), never votes."""
    return bootstrap_mean(list(prompt_means(by_prompt).values()), seed)


def mean_ci(values: Sequence[float]) -> tuple[float | None, tuple[float, float] | None]:
    """Mean with a 95 % t interval; no interval with fewer than two values or no spread."""
    from scipy import stats as st

    if not len(values):
        return None, None
    mean = float(np.mean(values))
    if len(values) < 2 or np.std(values) == 0:
        return mean, None
    low, high = st.t.interval(1 - ALPHA, len(values) - 1, loc=mean, scale=st.sem(values))
    return mean, (float(low), float(high))


def wilcoxon_p(differences: Sequence[float]) -> float | None:
    """Wilcoxon signed-rank test (two-sided; scipy's choice: exact without ties or zeros up to 50
    values, an exact permutation test with ties up to 13, else the normal approximation) of paired
    differences; None without a non-zero one."""
    from scipy.stats import wilcoxon

    if not any(d != 0 for d in differences):
        return None
    return float(wilcoxon(differences, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment for testing several criteria at once (None stays None)."""
    from statsmodels.stats.multitest import multipletests

    present = [p for p in p_values if p is not None]
    if not present:
        return list(p_values)
    adjusted = iter(multipletests(present, alpha=ALPHA, method="holm")[1])
    return [None if p is None else float(next(adjusted)) for p in p_values]


def logit(share: float, n: int) -> float:
    """Log-odds of a share of n prompts, with the ½-count continuity correction (finite at 0 and 1)."""
    wins = share * n
    return math.log((wins + 0.5) / (n - wins + 0.5))


def prompt_outcome(preferred: Sequence[str]) -> str:
    """A prompt's outcome from its votes: 'won' when its mean vote value is above ½, 'lost' below;
    at ½ it is 'both_bad' when at least half of its votes say both answers were bad (neither model
    got it right), otherwise 'tied'."""
    mean = float(np.mean([outcome_value(p) for p in preferred]))
    if mean != 0.5:
        return "won" if mean > 0.5 else "lost"
    return "both_bad" if 2 * sum(p == "both_bad" for p in preferred) >= len(preferred) else "tied"
