"""Evaluation statistics: outcomes, intervals, tests, per-criterion and per-rater views, agreement,
automatic checks and Bradley-Terry strengths. statsmodels/scipy do the statistics."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import sqlite_utils

from core import answer_pairs, datasets, rating, training, versions
from core.store import change_count

BOOTSTRAP_SAMPLES = 2000
TARGET_WIN_RATE = 0.6


@dataclass(frozen=True)
class Outcomes:
    wins: int
    losses: int
    ties: int
    both_bad: int
    automatic_ties: int

    @property
    def total(self) -> int:
        return self.wins + self.losses + self.ties + self.both_bad


@dataclass
class Summary:
    run_id: int
    lineage: dict[str, Any]
    outcomes: Outcomes
    tie_rate: float
    both_bad_rate: float
    win_rate: float | None
    win_rate_ci: tuple[float, float] | None
    sign_test_p: float | None
    score: float | None
    score_ci: tuple[float, float] | None
    ratings_needed_for_60: int
    per_criterion: list[dict[str, Any]] = field(default_factory=list)
    per_rater: list[dict[str, Any]] = field(default_factory=list)
    agreement: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    verdict_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcomes"]["total"] = self.outcomes.total
        return data


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    from statsmodels.stats.proportion import proportion_confint

    if trials == 0:
        return None
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    return float(low), float(high)


def sign_test(wins: int, losses: int) -> float | None:
    from scipy.stats import binomtest

    if wins + losses == 0:
        return None
    return float(binomtest(wins, wins + losses, 0.5, alternative="two-sided").pvalue)


def ratings_needed(target: float = TARGET_WIN_RATE, alpha: float = 0.05, power: float = 0.8) -> int:
    """Decisive (non-tie) votes needed to detect `target` win rate against 50 % (two-sided)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = proportion_effectsize(target, 0.5)
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=0, alternative="two-sided")
    return int(np.ceil(n))


# The score's one definition (issue 13): tuned better 1, base better 0, tie and both-bad ½ —
# both-bad favours neither model. The estimate, its bootstrap interval and Bradley–Terry all use it.
SCORE_DEFINITION = "(W + ½·(T + B))/N: tuned better counts 1, tie and both-bad ½, base better 0"


def outcome_value(preferred: str) -> float:
    return {"tuned": 1.0, "base": 0.0, "tie": 0.5, "both_bad": 0.5}[preferred]


def bootstrap_score(by_prompt: dict[int, list[float]], seed: int = 0) -> tuple[float, float] | None:
    """The score (SCORE_DEFINITION) with a percentile bootstrap that resamples prompts, keeping each prompt's votes
    together (clustered), since several raters' votes on one prompt are not independent."""
    from scipy.stats import bootstrap

    clusters = list(by_prompt.values())
    if len(clusters) < 2:
        return None
    sums = np.array([sum(c) for c in clusters])
    counts = np.array([len(c) for c in clusters])
    index = np.arange(len(clusters))

    def ratio(idx: np.ndarray) -> float:
        idx = idx.astype(int)
        return float(sums[idx].sum() / counts[idx].sum())

    if np.all(sums / counts == sums[0] / counts[0]):
        value = float(sums[0] / counts[0])
        return value, value
    result = bootstrap((index,), ratio, n_resamples=BOOTSTRAP_SAMPLES, method="percentile",
                       rng=np.random.default_rng(seed), vectorized=False)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_ci(values: Sequence[float]) -> tuple[float | None, tuple[float, float] | None]:
    from scipy import stats as st

    if not values:
        return None, None
    mean = float(np.mean(values))
    if len(values) < 2 or np.std(values) == 0:
        return mean, (mean, mean)
    low, high = st.t.interval(0.95, len(values) - 1, loc=mean, scale=st.sem(values))
    return mean, (float(low), float(high))


def ratings_signature(db: sqlite_utils.Database, run_id: int | None = None) -> tuple:
    """Changes whenever ratings, answers or closure (of one run, or of any run) or runs change:
    the cache key for summaries (counters bumped by triggers, see store.change_triggers)."""
    if run_id is not None:
        return change_count(db, f"run:{run_id}", "runs")
    total = db.execute("SELECT coalesce(sum(value), 0) FROM change_counters WHERE scope LIKE 'run:%'").fetchone()[0]
    return (int(total),) + change_count(db, "runs")


def summarize(db: sqlite_utils.Database, run_id: int) -> Summary:
    run = training.get_run(db, run_id)
    ratings = rating.ratings_for_run(db, run_id)
    pairs = answer_pairs.pairs(db, run_id)
    automatic = sum(p.identical for p in pairs)
    counts = Counter(r.preferred for r in ratings)
    outcomes = Outcomes(counts["tuned"], counts["base"], counts["tie"] + automatic, counts["both_bad"], automatic)
    n = outcomes.total
    decisive = outcomes.wins + outcomes.losses
    by_prompt: dict[int, list[float]] = defaultdict(list)
    for r in ratings:
        by_prompt[r.position].append(outcome_value(r.preferred))
    for p in pairs:
        if p.identical:
            by_prompt[p.position].append(0.5)
    score = (outcomes.wins + 0.5 * (outcomes.ties + outcomes.both_bad)) / n if n else None
    summary = Summary(
        run_id=run_id, lineage=lineage(db, run), outcomes=outcomes,
        tie_rate=outcomes.ties / n if n else 0.0, both_bad_rate=outcomes.both_bad / n if n else 0.0,
        win_rate=outcomes.wins / decisive if decisive else None, win_rate_ci=wilson(outcomes.wins, decisive),
        sign_test_p=sign_test(outcomes.wins, outcomes.losses), score=score,
        score_ci=bootstrap_score(by_prompt), ratings_needed_for_60=ratings_needed())
    summary.per_criterion = per_criterion(ratings)
    summary.per_rater = per_rater(ratings)
    summary.agreement = agreement(ratings)
    summary.checks = automatic_checks(db, run, pairs)
    summary.verdict_text = verdict_text(summary)
    return summary


def verdict_text(s: Summary) -> str:
    decisive = s.outcomes.wins + s.outcomes.losses
    if decisive == 0:
        return "No decisive votes yet."
    lead = f"Tuned preferred in {s.outcomes.wins} of {decisive} decisive votes"
    if s.win_rate_ci:
        lead += f" (win rate {s.win_rate:.0%}, 95 % CI {s.win_rate_ci[0]:.0%}–{s.win_rate_ci[1]:.0%})"
    if s.sign_test_p is not None and s.sign_test_p < 0.05:
        return lead + f"; the difference is significant (sign test p = {s.sign_test_p:.3g})."
    more = max(0, s.ratings_needed_for_60 - decisive)
    return lead + (f"; not yet conclusive (p = {s.sign_test_p:.2g}). About {more} more decisive votes are "
                   f"needed to detect a 60 % win rate with 80 % power.")


def per_criterion(ratings: list[rating.Rating]) -> list[dict[str, Any]]:
    criteria = sorted({c for r in ratings for side in r.scores.values() for c in side})
    rows = []
    for criterion in criteria:
        base = [r.scores["base"][criterion] for r in ratings if criterion in r.scores.get("base", {})]
        tuned = [r.scores["tuned"][criterion] for r in ratings if criterion in r.scores.get("tuned", {})]
        paired = [r.scores["tuned"][criterion] - r.scores["base"][criterion] for r in ratings
                  if criterion in r.scores.get("base", {}) and criterion in r.scores.get("tuned", {})]
        base_mean, base_ci = mean_ci(base)
        tuned_mean, tuned_ci = mean_ci(tuned)
        diff_mean, diff_ci = mean_ci(paired)
        rows.append({"criterion": criterion, "n_pairs": len(paired), "base_mean": base_mean, "base_ci": base_ci,
                     "tuned_mean": tuned_mean, "tuned_ci": tuned_ci, "difference": diff_mean, "difference_ci": diff_ci})
    return rows


def per_rater(ratings: list[rating.Rating]) -> list[dict[str, Any]]:
    from scipy.stats import binomtest

    rows = []
    for rater in sorted({r.rater for r in ratings}):
        mine = [r for r in ratings if r.rater == rater]
        c = Counter(r.preferred for r in mine)
        decisive = c["tuned"] + c["base"]
        left_picks = sum(1 for r in mine if r.verdict == "A")
        side_votes = sum(1 for r in mine if r.verdict in ("A", "B"))
        rows.append({
            "rater": rater, "ratings": len(mine), "wins": c["tuned"], "losses": c["base"], "ties": c["tie"],
            "both_bad": c["both_bad"], "win_rate": c["tuned"] / decisive if decisive else None,
            "left_pick_rate": left_picks / side_votes if side_votes else None,
            "position_bias_p": float(binomtest(left_picks, side_votes, 0.5).pvalue) if side_votes else None,
            "median_seconds": float(np.median([r.seconds_spent for r in mine])) if mine else None})
    return rows


def agreement(ratings: list[rating.Rating]) -> dict[str, Any]:
    """Agreement on model identity (which model was better), not on screen side."""
    from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

    raters = sorted({r.rater for r in ratings})
    by_prompt: dict[int, dict[str, str]] = defaultdict(dict)
    for r in ratings:
        by_prompt[r.position][r.rater] = r.preferred
    shared = {p: v for p, v in by_prompt.items() if len(v) >= 2}
    result: dict[str, Any] = {"raters": raters, "prompts_with_several_raters": len(shared)}
    if not shared:
        return result
    agree = [len(set(v.values())) == 1 for v in shared.values()]
    result["percent_agreement"] = float(np.mean(agree))
    no_ties = [v for v in shared.values() if all(x in ("tuned", "base") for x in v.values())]
    result["percent_agreement_without_ties"] = float(np.mean([len(set(v.values())) == 1 for v in no_ties])) if no_ties else None
    categories = ["tuned", "base", "tie", "both_bad"]
    if len(raters) == 2:
        a, b = raters
        both = [v for v in shared.values() if a in v and b in v]
        table = np.zeros((4, 4))
        for v in both:
            table[categories.index(v[a]), categories.index(v[b])] += 1
        used = [i for i in range(4) if table[i].sum() or table[:, i].sum()]
        table = table[np.ix_(used, used)]
        result["cohens_kappa"] = float(cohens_kappa(table).kappa) if len(used) > 1 else None
    complete = [v for v in shared.values() if len(v) == len(raters)]
    if len(raters) >= 3 and complete:
        data = np.array([[categories.index(v[r]) for r in raters] for v in complete])
        table, _ = aggregate_raters(data, n_cat=4)
        result["fleiss_kappa"] = float(fleiss_kappa(table))
    # Matrix of pairwise agreement for the heatmap.
    matrix = []
    for a in raters:
        row = []
        for b in raters:
            common = [v for v in shared.values() if a in v and b in v]
            row.append(float(np.mean([v[a] == v[b] for v in common])) if common else None)
        matrix.append(row)
    result["pairwise"] = matrix
    return result


def convention_ok(pattern: str, text: str) -> bool:
    return bool(pattern) and re.fullmatch(pattern, text.strip()) is not None


def automatic_checks(db: sqlite_utils.Database, run: training.TrainingRun, pairs: list[answer_pairs.Pair]) -> dict[str, Any]:
    version = versions.version_by_id(db, run.dataset_version_id)
    dataset = datasets.get_dataset(db, version.dataset_id)
    checks: dict[str, Any] = {"pairs": len(pairs)}
    if dataset.convention_regex and pairs:
        checks["convention"] = dataset.convention_regex
        checks["convention_base"] = sum(convention_ok(dataset.convention_regex, p.base_text) for p in pairs)
        checks["convention_tuned"] = sum(convention_ok(dataset.convention_regex, p.tuned_text) for p in pairs)
    if dataset.glossary and pairs:
        terms = [t.lower() for t in dataset.glossary]
        checks["glossary_terms_base"] = sum(sum(t in p.base_text.lower() for t in terms) for p in pairs)
        checks["glossary_terms_tuned"] = sum(sum(t in p.tuned_text.lower() for t in terms) for p in pairs)
    if pairs:
        checks["mean_words_base"] = float(np.mean([len(p.base_text.split()) for p in pairs]))
        checks["mean_words_tuned"] = float(np.mean([len(p.tuned_text.split()) for p in pairs]))
        checks["mean_words_reference"] = float(np.mean([len(p.reference.split()) for p in pairs]))
    for key in ("heldout_loss_base", "heldout_loss_tuned", "general_loss_base", "general_loss_tuned"):
        if key in run.metrics:
            checks[key] = run.metrics[key]
            checks[key.replace("loss", "perplexity")] = float(np.exp(run.metrics[key]))
    return checks


def lineage(db: sqlite_utils.Database, run: training.TrainingRun) -> dict[str, Any]:
    version = versions.version_by_id(db, run.dataset_version_id)
    dataset = datasets.get_dataset(db, version.dataset_id)
    dates = db.execute("SELECT min(created_at), max(created_at), group_concat(DISTINCT rater) FROM ratings "
                       "WHERE run_id = ?", [run.id]).fetchone()
    return {"dataset": dataset.name, "dataset_version": version.number, "dataset_version_sha256": version.content_hash,
            "adapter_sha256": run.adapter_sha256, "base_model": run.base_model, "preset": run.preset,
            "run_config": json.loads(run.config.to_json()), "raters": sorted((dates[2] or "").split(",")) if dates[2] else [],
            "first_rating": dates[0], "last_rating": dates[1], "pii_override": version.pii_override_reason}


def bradley_terry(db: sqlite_utils.Database, dataset_id: int, *, seed: int = 0,
                  samples: int = 200) -> list[dict[str, Any]]:
    """Strengths (log-odds vs the base model) of every rated adapter of a dataset, with bootstrap
    intervals, fitted as a logistic regression on pairwise outcomes (as Chatbot Arena does)."""
    import statsmodels.api as sm

    runs = [r for r in training.list_runs(db, dataset_id) if r.status == "succeeded"]
    battles: list[tuple[int, float]] = []  # (run index, outcome for tuned: 1, 0 or 0.5)
    names = []
    for run in runs:
        votes = [outcome_value(r.preferred) for r in rating.ratings_for_run(db, run.id)]
        if votes:
            names.append(run.id)
            battles.extend((len(names) - 1, v) for v in votes)
    if not battles:
        return []

    def fit(sample: list[tuple[int, float]]) -> np.ndarray:
        X = np.zeros((len(sample) * 2, len(names)))
        y = np.zeros(len(sample) * 2)
        w = np.zeros(len(sample) * 2)
        for i, (k, v) in enumerate(sample):
            X[2 * i, k] = X[2 * i + 1, k] = 1.0
            y[2 * i], w[2 * i] = 1.0, v          # win share
            y[2 * i + 1], w[2 * i + 1] = 0.0, 1 - v  # loss share
        keep = w > 0
        model = sm.GLM(y[keep], X[keep], family=sm.families.Binomial(), freq_weights=w[keep])
        return np.asarray(model.fit_regularized(alpha=1e-4, L1_wt=0.0).params)

    point = fit(battles)
    rng = np.random.default_rng(seed)
    boots = np.array([fit([battles[i] for i in rng.integers(0, len(battles), len(battles))]) for _ in range(samples)])
    return [{"run": run_id, "strength": float(point[k]), "ci": (float(np.percentile(boots[:, k], 2.5)),
                                                                 float(np.percentile(boots[:, k], 97.5))),
             "votes": len([b for b in battles if b[0] == k])} for k, run_id in enumerate(names)]
