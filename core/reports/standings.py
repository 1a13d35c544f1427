"""Standings across runs of a dataset: each run's score against the base on one scale, and
Bradley–Terry strengths from the real pairwise comparisons (issue 28), for the runs a viewer may
see ranked. Split from summary (one run's evaluation)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import sqlite_utils

from core.platform import permissions
from core.rating import pairs as answer_pairs
from core.rating import sessions
from core.reports import bradley_terry, stat_tests
from core.reports.summary import prompt_votes
from core.training import runs as training


def run_score(prompt_values: list[float], seed: int = 0) -> dict[str, Any]:
    """One run's score against the base it was rated against, from its per-prompt outcome values
    (each prompt's mean vote value, identical pairs ½): the score with a prompt bootstrap interval,
    and the same on the log-odds scale. Reusable for any list of per-prompt outcomes."""
    n = len(prompt_values)
    score = float(np.mean(prompt_values)) if n else None
    interval = stat_tests.bootstrap_mean(prompt_values, seed)
    return {"prompts": n, "score": score, "score_ci": interval,
            "log_odds": None if score is None else stat_tests.logit(score, n),
            "log_odds_ci": None if interval is None else tuple(stat_tests.logit(x, n) for x in interval)}


def ranked_runs(db: sqlite_utils.Database, dataset_id: int, viewer: str) -> list[int]:
    """The runs the multi-run table may rank for this viewer: succeeded, rating closed (final votes;
    an open run's standing would be a look at its outcome), and allowed(viewer, "see_outcome")."""
    return [r.id for r in training.list_runs(db, dataset_id) if r.status == "succeeded"
            and sessions.rating_closed(db, r.id)
            and permissions.allowed(viewer, "see_outcome", run=permissions.Run(db, r.id))]



def scores_against_base(db: sqlite_utils.Database, dataset_id: int, viewer: str) -> list[dict[str, Any]]:
    """Every rated adapter of a dataset that the viewer may see ranked (ranked_runs) scored against the
    shared base model, on one scale. Not a Bradley-Terry fit: adapters were never compared with each
    other, each only with the base."""
    rows = []
    visible = set(ranked_runs(db, dataset_id, viewer))
    for run in training.list_runs(db, dataset_id):
        # Runs rated against another adapter (issue 28) are not on this scale: their votes are not against the base.
        if run.id not in visible or run.reference_run_id is not None:
            continue
        ratings = sessions.ratings_for_run(db, run.id)
        votes = prompt_votes(ratings, answer_pairs.pairs(db, run.id))
        if ratings:
            values = list(stat_tests.prompt_means({p: [stat_tests.outcome_value(v) for v in vs]
                                                   for p, vs in votes.items()}).values())
            rows.append({"run": run.id, **run_score(values)})
    return rows


def pairwise_comparisons(db: sqlite_utils.Database, dataset_id: int, viewer: str) -> list[bradley_terry.Comparison]:
    """Every prompt-level comparison of the dataset's runs that the viewer may see ranked
    (ranked_runs): the challenger (run N) against its reference, the base model or another run."""
    comparisons = []
    visible = set(ranked_runs(db, dataset_id, viewer))
    for run in training.list_runs(db, dataset_id):
        if run.id not in visible:
            continue
        reference = f"base model ({run.base_model})" if run.reference_run_id is None else f"run {run.reference_run_id}"
        pairs = {p.position: p for p in answer_pairs.pairs(db, run.id)}
        votes = prompt_votes(sessions.ratings_for_run(db, run.id), list(pairs.values()))
        means = stat_tests.prompt_means({p: [stat_tests.outcome_value(v) for v in vs] for p, vs in votes.items()})
        comparisons += [bradley_terry.Comparison(json.dumps(pairs[p].prompt, sort_keys=True), f"run {run.id}",
                                                 reference, value) for p, value in means.items() if p in pairs]
    return comparisons


def strengths(db: sqlite_utils.Database, dataset_id: int, viewer: str) -> list[dict[str, Any]]:
    """Bradley–Terry strength of every model rated on this dataset, from the real pairwise
    comparisons at the prompt level, with prompt-bootstrap intervals; the base model at 0 (log-odds
    of beating it). Empty when the fit has no finite solution (docs/statistics.md)."""
    comparisons = pairwise_comparisons(db, dataset_id, viewer)
    bases = sorted({c.second for c in comparisons if c.second.startswith("base model")})
    anchor = bases[0] if bases else None
    fitted = bradley_terry.fit(comparisons, anchor)
    if fitted is None:
        return []
    intervals = bradley_terry.bootstrap(comparisons, anchor) or {}
    prompts: dict[str, int] = Counter()
    for c in comparisons:
        prompts[c.first] += 1
        prompts[c.second] += 1
    return [{"model": model, "strength": value, "strength_ci": intervals.get(model), "compared_prompts": prompts[model]}
            for model, value in sorted(fitted.items(), key=lambda item: -item[1])]
