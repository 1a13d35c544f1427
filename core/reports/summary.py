"""Evaluation statistics: outcomes, intervals, tests, per-criterion and per-rater views, agreement,
automatic checks and Bradley-Terry strengths. statsmodels/scipy do the statistics."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import sqlite_utils

from core.curation import datasets
from core.curation.convention import convention_ok
from core.platform.store import change_count
from core.rating import pairs as answer_pairs
from core.rating import sessions
from core.reports import agreement, stat_tests
from core.training import runs as training
from core.training import versions


@dataclass(frozen=True)
class Outcomes:
    """Counts of one unit: votes (every rater's verdict) or prompts (each prompt's mean verdict)."""
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
    """Every headline number is per prompt (several raters on one prompt are one observation);
    `outcomes` are vote counts, for description only. docs/statistics.md defines each field."""
    run_id: int
    lineage: dict[str, Any]
    outcomes: Outcomes                    # votes
    prompt_outcomes: Outcomes             # prompts: mean vote value > ½ win, < ½ loss, = ½ tie
    tie_rate: float                       # votes
    both_bad_rate: float                  # votes
    win_rate: float | None                # prompts: W / (W + L)
    win_rate_ci: tuple[float, float] | None
    sign_test_p: float | None             # prompts, exact; for information (not peeking-safe)
    e_value: float                        # prompts with their planned votes; anytime-valid
    significant: bool                     # e_value ≥ 20
    score: float | None                   # prompts: inference.SCORE_DEFINITION
    score_ci: tuple[float, float] | None
    prompts_needed_for_60: int            # decisive prompts for 80 % power, anytime-valid test
    complete_prompts: int = 0
    per_criterion: list[dict[str, Any]] = field(default_factory=list)
    per_rater: list[dict[str, Any]] = field(default_factory=list)
    agreement: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    verdict_text: str = ""
    definitions: dict[str, str] = field(default_factory=dict)
    example_pairs: list[dict[str, Any]] = field(default_factory=list)  # a few rated pairs, for the report

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcomes"]["total"] = self.outcomes.total
        data["prompt_outcomes"]["total"] = self.prompt_outcomes.total
        return data


DEFINITIONS = {
    "unit": "the prompt: several raters' votes on one prompt are one observation",
    "score": stat_tests.SCORE_DEFINITION,
    "score_ci": "95 % percentile bootstrap over prompts",
    "win_rate": "decisive prompts won by the tuned model / all decisive prompts (a prompt is won when "
                "its mean vote value is above ½, lost below, tied at ½)",
    "win_rate_ci": "Wilson 95 % interval over decisive prompts",
    "sign_test_p": "exact two-sided binomial test over decisive prompts; valid only at a planned end",
    "e_value": "B(W+1, L+1)·2^(W+L) over decisive prompts that have all their planned votes; "
               "significant when ≥ 20, valid however often Results is looked at",
    "outcomes": "vote counts, for description",
}


def ratings_signature(db: sqlite_utils.Database, run_id: int | None = None) -> tuple:
    """Changes whenever ratings, answers or closure (of one run, or of any run) or runs change:
    the cache key for summaries (counters bumped by triggers, see store.change_triggers)."""
    if run_id is not None:
        return change_count(db, f"run:{run_id}", "runs")
    total = db.execute("SELECT coalesce(sum(value), 0) FROM change_counters WHERE scope LIKE 'run:%'").fetchone()[0]
    return (int(total),) + change_count(db, "runs")


def summarize(db: sqlite_utils.Database, run_id: int) -> Summary:
    run = training.get_run(db, run_id)
    ratings = sessions.ratings_for_run(db, run_id)
    pairs = answer_pairs.pairs(db, run_id)
    automatic = sum(p.identical for p in pairs)
    counts = Counter(r.preferred for r in ratings)
    outcomes = Outcomes(counts["tuned"], counts["base"], counts["tie"] + automatic, counts["both_bad"], automatic)
    n = outcomes.total
    by_prompt: dict[int, list[float]] = defaultdict(list)
    for r in ratings:
        by_prompt[r.position].append(stat_tests.outcome_value(r.preferred))
    for p in pairs:
        if p.identical:  # an identical pair weighs as much as a rated prompt: one tie
            by_prompt[p.position].append(0.5)
    means = stat_tests.prompt_means(by_prompt)
    prompt_outcomes = Outcomes(sum(m > 0.5 for m in means.values()), sum(m < 0.5 for m in means.values()),
                               sum(m == 0.5 for m in means.values()), 0, automatic)
    # The e-value counts a prompt once its planned votes are in (or rating is closed), so a prompt's
    # outcome does not change after it entered the sequential test.
    k = sessions.raters_per_pair(db)
    closed = sessions.rating_closed(db, run_id)
    identical = {p.position for p in pairs if p.identical}
    complete = {p: m for p, m in means.items() if closed or p in identical or len(by_prompt[p]) >= k}
    e_wins, e_losses = sum(m > 0.5 for m in complete.values()), sum(m < 0.5 for m in complete.values())
    e = stat_tests.e_value(e_wins, e_losses)
    decisive = prompt_outcomes.wins + prompt_outcomes.losses
    summary = Summary(
        run_id=run_id, lineage=lineage(db, run), outcomes=outcomes, prompt_outcomes=prompt_outcomes,
        tie_rate=outcomes.ties / n if n else 0.0, both_bad_rate=outcomes.both_bad / n if n else 0.0,
        win_rate=prompt_outcomes.wins / decisive if decisive else None,
        win_rate_ci=stat_tests.wilson(prompt_outcomes.wins, decisive),
        sign_test_p=stat_tests.sign_test(prompt_outcomes.wins, prompt_outcomes.losses),
        e_value=e, significant=e >= stat_tests.E_VALUE_THRESHOLD,
        score=float(np.mean(list(means.values()))) if means else None,
        score_ci=stat_tests.bootstrap_score(by_prompt), prompts_needed_for_60=stat_tests.prompts_needed(),
        complete_prompts=len(complete), definitions=dict(DEFINITIONS))
    summary.per_criterion = per_criterion(ratings)
    summary.per_rater = per_rater(ratings)
    summary.agreement = agreement.agreement(ratings, sessions.calibration_positions(db, run_id))
    summary.checks = automatic_checks(db, run, pairs)
    summary.example_pairs = example_pairs(ratings, pairs)
    summary.verdict_text = verdict_text(summary)
    return summary


def example_pairs(ratings: list[sessions.Rating], pairs: list[answer_pairs.Pair], limit: int = 5) -> list[dict[str, Any]]:
    """Up to `limit` rated pairs for the report: split votes first (where raters disagreed), then
    the rest in prompt order, each with its prompt, both answers and every vote."""
    votes: dict[int, dict[str, str]] = defaultdict(dict)
    for r in ratings:
        votes[r.position][r.rater] = r.preferred
    by_position = {p.position: p for p in pairs}
    order = sorted(votes, key=lambda p: (-len(set(votes[p].values())), p))
    chosen = []
    for position in order[:limit]:
        pair = by_position[position]
        prompt = next((m["content"] for m in reversed(pair.prompt) if m["role"] == "user"), "")
        chosen.append({"position": position, "prompt": prompt, "base": pair.base_text, "tuned": pair.tuned_text,
                       "votes": dict(sorted(votes[position].items()))})
    return chosen


def verdict_text(s: Summary) -> str:
    """One sentence a team lead can repeat."""
    o = s.prompt_outcomes
    decisive = o.wins + o.losses
    if decisive == 0:
        return "No prompt has a decisive verdict yet."
    lead = (f"The tuned model was preferred on {o.wins} of {decisive} decisive prompts"
            f" ({s.win_rate:.0%}, 95 % CI {s.win_rate_ci[0]:.0%}–{s.win_rate_ci[1]:.0%})" if s.win_rate_ci else "")
    if s.significant:
        better = "better" if o.wins > o.losses else "worse"
        return lead + (f": it is {better} than the base model (e-value {s.e_value:.0f} ≥ 20, valid however "
                       "often you look).")
    more = max(0, s.prompts_needed_for_60 - decisive)
    return lead + (f"; not conclusive yet (e-value {s.e_value:.1f}, needs 20). If the true win rate were 60 %, "
                   f"about {more} more decisive prompts would settle it with 80 % probability.")


def per_criterion(ratings: list[sessions.Rating]) -> list[dict[str, Any]]:
    """Mean 1–5 scores per model, and the paired difference (tuned − base) per vote with a t
    interval and a Wilcoxon signed-rank test; n is the number of votes that scored both answers."""
    criteria = sorted({c for r in ratings for side in r.scores.values() for c in side})
    rows = []
    for criterion in criteria:
        base = [r.scores["base"][criterion] for r in ratings if criterion in r.scores.get("base", {})]
        tuned = [r.scores["tuned"][criterion] for r in ratings if criterion in r.scores.get("tuned", {})]
        paired = [r.scores["tuned"][criterion] - r.scores["base"][criterion] for r in ratings
                  if criterion in r.scores.get("base", {}) and criterion in r.scores.get("tuned", {})]
        base_mean, base_ci = stat_tests.mean_ci(base)
        tuned_mean, tuned_ci = stat_tests.mean_ci(tuned)
        diff_mean, diff_ci = stat_tests.mean_ci(paired)
        rows.append({"criterion": criterion, "n_pairs": len(paired), "base_mean": base_mean, "base_ci": base_ci,
                     "tuned_mean": tuned_mean, "tuned_ci": tuned_ci, "difference": diff_mean,
                     "difference_ci": diff_ci, "wilcoxon_p": stat_tests.wilcoxon_p(paired)})
    return rows


def per_rater(ratings: list[sessions.Rating]) -> list[dict[str, Any]]:
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

    # Runs rated against another adapter (issue 28) are not on this scale: their votes are not against the base.
    runs = [r for r in training.list_runs(db, dataset_id) if r.status == "succeeded" and r.reference_run_id is None]
    battles: list[tuple[int, float]] = []  # (run index, outcome for tuned: 1, 0 or 0.5)
    names = []
    for run in runs:
        votes = [stat_tests.outcome_value(r.preferred) for r in sessions.ratings_for_run(db, run.id)]
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


def checks_table(checks: dict[str, Any]) -> list[dict[str, str]]:
    """The automatic checks in plain words: what each measures, base vs tuned."""
    n = checks.get("pairs", 0)
    rows: list[dict[str, str]] = []

    def add(check: str, base: Any, tuned: Any, meaning: str) -> None:
        rows.append({"check": check, "base": str(base), "tuned": str(tuned), "what it tells you": meaning})

    if "convention_base" in checks:
        add("Follows the output convention", f"{checks['convention_base']}/{n}", f"{checks['convention_tuned']}/{n}",
            "answers matching the dataset's output pattern exactly")
    if "glossary_terms_base" in checks:
        add("Glossary terms used", checks["glossary_terms_base"], checks["glossary_terms_tuned"],
            "how often the dataset's own terms appear in the answers")
    if "mean_words_base" in checks:
        add("Mean length (words)", f"{checks['mean_words_base']:.0f}", f"{checks['mean_words_tuned']:.0f}",
            f"the reference answers average {checks['mean_words_reference']:.0f} words")
    if "heldout_loss_base" in checks:
        add("Held-out loss", f"{checks['heldout_loss_base']:.3f}", f"{checks['heldout_loss_tuned']:.3f}",
            "lower: the model finds your reference answers more likely (it learned your style)")
    if "general_loss_base" in checks:
        add("Forgetting probe (general-text loss)", f"{checks['general_loss_base']:.3f}",
            f"{checks['general_loss_tuned']:.3f}",
            "loss on ordinary English the adapter never saw; much higher for tuned means it damaged general "
            "language ability (catastrophic forgetting)")
    return rows
