"""Bradley–Terry strengths of every rated model from the real pairwise comparisons, per prompt, with a
prompt bootstrap (issue 28).

Each rated run compared two models (an adapter with the base model, or with another adapter) on
held-out prompts; each prompt is one comparison whose outcome is its mean vote value (the challenger
better 1, the reference better 0, tie and both-bad ½, as in the score). P(i beats j) =
1 / (1 + exp(θ_j − θ_i)); strengths are log-odds, the base model at 0 when it was rated.

The fit is Hunter's (2004) MM iteration, a dozen lines: `choix` (the maintained Luce-model
library) is not in our environment, and a tie counted as half a win each needs fractional win
counts, which this iteration takes as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_ITERATIONS = 10_000
TOLERANCE = 1e-12
BOOTSTRAP_RESAMPLES = 1000
MIN_FINITE_SHARE = 0.9  # resamples with a finite fit needed before an interval is shown


@dataclass(frozen=True)
class Comparison:
    """One prompt on which two models were compared: `value` is the first one's share of the win."""
    prompt: str
    first: str
    second: str
    value: float


def fit(comparisons: Sequence[Comparison], anchor: str | None = None) -> dict[str, float] | None:
    """Maximum-likelihood log-strengths, `anchor` at 0 (else centred on their mean). None when the
    MLE is not finite: some group of models never lost to the rest (Ford's condition fails)."""
    wins: dict[str, float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)
    beat: dict[str, set[str]] = defaultdict(set)
    models = sorted({c.first for c in comparisons} | {c.second for c in comparisons})
    for c in comparisons:
        wins[c.first] += c.value
        wins[c.second] += 1 - c.value
        games[(c.first, c.second)] += 1
        games[(c.second, c.first)] += 1
        if c.value > 0:
            beat[c.first].add(c.second)
        if c.value < 1:
            beat[c.second].add(c.first)
    if len(models) < 2 or not _strongly_connected(models, beat):
        return None
    index = {m: i for i, m in enumerate(models)}
    n = np.zeros((len(models), len(models)))
    for (a, b), count in games.items():
        n[index[a], index[b]] = count
    w = np.array([wins[m] for m in models])
    p = np.ones(len(models))
    for _ in range(MAX_ITERATIONS):
        denominator = (n / (p[:, None] + p[None, :])).sum(axis=1)
        updated = w / denominator
        updated /= np.exp(np.mean(np.log(updated)))
        done = np.max(np.abs(updated - p)) < TOLERANCE
        p = updated
        if done:
            break
    theta = np.log(p)
    theta -= theta[index[anchor]] if anchor in index else theta.mean()
    return {m: float(theta[index[m]]) for m in models}


def _strongly_connected(models: list[str], beat: dict[str, set[str]]) -> bool:
    """Every model reaches every other through "beat at least partly" links, both ways."""
    def reach(start: str, links: dict[str, set[str]]) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in links.get(todo.pop(), set()) - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    lost_to: dict[str, set[str]] = defaultdict(set)
    for a, beaten in beat.items():
        for b in beaten:
            lost_to[b].add(a)
    everyone = set(models)
    return reach(models[0], beat) == everyone and reach(models[0], lost_to) == everyone


def bootstrap(comparisons: Sequence[Comparison], anchor: str | None = None, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = 0) -> dict[str, tuple[float, float]] | None:
    """95 % percentile intervals from resampling prompts with replacement (each drawn prompt brings
    every comparison made on it). None when fewer than MIN_FINITE_SHARE of the resamples have a
    finite fit: the data are too thin to bound the strengths."""
    by_prompt: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        by_prompt[c.prompt].append(c)
    prompts = sorted(by_prompt)
    if len(prompts) < 2:
        return None
    everyone = {m for c in comparisons for m in (c.first, c.second)}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = defaultdict(list)
    finite = 0
    for _ in range(resamples):
        chosen = rng.integers(0, len(prompts), len(prompts))
        strengths = fit([c for i in chosen for c in by_prompt[prompts[i]]], anchor)
        # A resample that lost a model (or the anchor) is on another scale, centred on the mean:
        # mixing it in would widen the intervals with a different quantity. It counts as no fit.
        if strengths is None or set(strengths) != everyone:
            continue
        finite += 1
        for model, value in strengths.items():
            draws[model].append(value)
    if finite < MIN_FINITE_SHARE * resamples:
        return None
    return {m: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for m, v in draws.items()}
