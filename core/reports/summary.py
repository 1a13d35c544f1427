"""Evaluation statistics: outcomes, intervals, tests, per-criterion and per-rater views, agreement,
automatic checks and each run's score against the base. statsmodels/scipy do the statistics."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import sqlite_utils

from core.curation import convention, datasets
from core.curation.convention import convention_ok
from core.platform.store import change_count
from core.rating import pairs as answer_pairs
from core.rating import sessions
from core.reports import agreement, report_format, stat_tests
from core.reports.report_format import BASE_NAMES
from core.training import run_records, versions
from core.training import runs as training


@dataclass(frozen=True)
class Outcomes:
    """Counts of one unit: votes (every rater's verdict) or prompts (stat_tests.prompt_outcome)."""
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
    prompt_outcomes: Outcomes             # prompts: won, lost, tied, both bad (neither model got it right)
    tie_rate: float                       # votes
    both_bad_rate: float                  # votes
    win_rate: float | None                # prompts: W / (W + L)
    win_rate_ci: tuple[float, float] | None  # fixed-n Wilson: valid only at a planned end
    sign_test_p: float | None             # prompts, exact; valid only at a planned end
    e_value: float                        # entered prompts; anytime-valid; may be inf (see log10_e_value)
    log10_e_value: float                  # finite at any count: what JSON and displays use
    significant: bool                     # e_value ≥ 20
    win_rate_cs: tuple[float, float]      # anytime-valid 95 % confidence sequence, entered prompts
    entered_wins: int                     # decisive entered prompts won / lost: the verdict's counts
    entered_losses: int
    score: float | None                   # prompts: stat_tests.SCORE_DEFINITION
    score_ci: tuple[float, float] | None
    prompts_needed_for_60: int | None     # decisive prompts for 80 % power, anytime-valid test, from none
    prompts_more_needed: int | None       # the same, more from the entered prompts in hand
    fixed_n_needed_for_60: int            # a sign test looked at once (exact binomial)
    raters_per_pair: int = 1              # k as planned when rating started
    rating_closed: bool = False
    complete_prompts: int = 0             # prompts that entered the e-value
    criteria_tested: int = 0
    per_criterion: list[dict[str, Any]] = field(default_factory=list)
    per_rater: list[dict[str, Any]] = field(default_factory=list)
    position_bias: dict[str, Any] = field(default_factory=dict)
    agreement: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    verdict_text: str = ""
    definitions: dict[str, str] = field(default_factory=dict)
    example_pairs: list[dict[str, Any]] = field(default_factory=list)  # a few rated pairs, for the report
    # What every report calls the two sides after the reveal (model_names): "tuned"/"base" against
    # the base model, the two runs' names when an adapter was rated against another (issue 28).
    names: dict[str, str] = field(default_factory=lambda: dict(BASE_NAMES))
    round_vs_parent: bool = False         # a preference round rated against the adapter it started from

    def to_dict(self) -> dict[str, Any]:
        """Plain data for strict JSON: a non-finite number (an e-value past ~10^308) becomes None;
        log10_e_value keeps its size."""
        data = asdict(self)
        data["outcomes"]["total"] = self.outcomes.total
        data["prompt_outcomes"]["total"] = self.prompt_outcomes.total
        return _finite(data)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def model_names(run: training.TrainingRun) -> dict[str, str]:
    """The two sides' names for the reports, once identities are revealed: the base model and the
    tuned model, or, for a run rated against another adapter, both runs by number (a preference
    round and its parent say so)."""
    if run.reference_run_id is None:
        return dict(BASE_NAMES)
    labels = answer_pairs.labels_of(run)
    tuned_model, base_model = labels["tuned"], labels["base"]
    if run.kind == "dpo":
        tuned_model += " (the preference round)"
        if run.parent_run_id == run.reference_run_id:
            base_model += " (its parent)"
    return {"tuned": labels["tuned"], "base": labels["base"], "tuned_model": tuned_model, "base_model": base_model}


def named(text: str, names: dict[str, str]) -> str:
    """Our own report wording with the sides' names in place of {tuned}/{base}/{tuned_model}/{base_model}."""
    return text.format(**names)


DEFINITIONS = {
    "unit": "the prompt: several raters' votes on one prompt are one observation",
    "prompt outcome": "a prompt is won when its mean vote value is above ½, lost below; at ½ it is both bad "
                      "when at least half its votes say both answers were bad (neither model got it right), "
                      "otherwise tied",
    "score": stat_tests.SCORE_DEFINITION,
    "score_ci": "95 % percentile bootstrap over prompts (none when every prompt has the same value)",
    "win_rate": "decisive prompts won by {tuned_model} / all decisive prompts",
    "e_value": "B(W+1, L+1)·2^(W+L) over the decisive prompts that entered the test; a prompt enters when "
               "its k-th vote arrives (k as set when rating started), with the mean of its first k votes, "
               "and never changes afterwards; at closure the remaining prompts enter with their votes. "
               "Significant when ≥ 20, valid however often Results is looked at",
    "win_rate_cs": "anytime-valid 95 % confidence sequence for the win rate over the same entered prompts, "
                   "the dual of the e-value: it excludes 50 % exactly when the e-value reaches 20",
    "win_rate_ci": "fixed-n Wilson 95 % interval over all decisive prompts: valid only if the number of "
                   "prompts was fixed in advance and looked at once",
    "sign_test_p": "exact two-sided binomial test over decisive prompts; valid only at a planned end",
    "prompts_needed": "decisive prompts after which the anytime-valid test declares a true 60 % win rate with "
                      "80 % probability, computed exactly (376 from none); 'more' starts from the entered "
                      "prompts in hand",
    "per_criterion": "each prompt's mean score difference ({tuned} − {base}) first, then over prompts: the mean "
                     "with a t interval, and a Wilcoxon signed-rank test (about the median difference); "
                     "p-values Holm-adjusted for the number of criteria tested",
    "outcomes": "vote counts, for description",
}


def ratings_signature(db: sqlite_utils.Database, run_id: int | None = None) -> tuple:
    """Changes whenever ratings, answers or closure (of one run, or of any run) or runs change:
    the cache key for summaries (counters bumped by triggers, see store.change_triggers)."""
    if run_id is not None:
        return change_count(db, f"run:{run_id}", "runs")
    total = db.execute("SELECT coalesce(sum(value), 0) FROM change_counters WHERE scope LIKE 'run:%'").fetchone()[0]
    return (int(total),) + change_count(db, "runs")


def prompt_votes(ratings: list[sessions.Rating], pairs: list[answer_pairs.Pair]) -> dict[int, list[str]]:
    """Each prompt's votes (preferred model); an identical pair is one automatic tie, weighted like
    any rated prompt."""
    votes: dict[int, list[str]] = defaultdict(list)
    for r in ratings:
        votes[r.position].append(r.preferred)
    for p in pairs:
        if p.identical:
            votes[p.position].append("tie")
    return dict(sorted(votes.items()))


@dataclass(frozen=True)
class EvaluationRecord:
    """Everything one run's evaluation reads, loaded once by load_record (issue 22: the summary used
    to re-read the run, version and dataset several times). Every statistic below is a pure function
    of it, so tests can build one by hand without a database."""
    run: training.TrainingRun
    version: versions.DatasetVersion
    dataset: datasets.Dataset
    pairs: list[answer_pairs.Pair]
    ratings: list[sessions.Rating]
    evalue_entries: dict[int, float]          # position -> outcome value fixed at entry
    rating_closed: bool
    planned_raters_per_pair: int
    train_answers: list[str]                  # the version's training answers (the inferred convention)


def load_record(db: sqlite_utils.Database, run_id: int) -> EvaluationRecord:
    """The one read of a run's evaluation: each table once (the read-only run record: a report
    does not reconcile processes)."""
    run = run_records.get_run(db, run_id)
    version = versions.version_by_id(db, run.dataset_version_id)
    return EvaluationRecord(
        run=run, version=version, dataset=datasets.get_dataset(db, version.dataset_id),
        pairs=answer_pairs.pairs(db, run_id), ratings=sessions.ratings_for_run(db, run_id),
        evalue_entries=sessions.evalue_entries(db, run_id), rating_closed=sessions.rating_closed(db, run_id),
        planned_raters_per_pair=sessions.planned_raters_per_pair(db, run_id),
        train_answers=convention.answers_of(versions.version_messages(db, version.id, "train")))


def summarize(db: sqlite_utils.Database, run_id: int) -> Summary:
    return summarize_record(load_record(db, run_id))


def summarize_record(record: EvaluationRecord) -> Summary:
    """The evaluation summary of a loaded record; reads nothing else."""
    run, ratings, pairs = record.run, record.ratings, record.pairs
    automatic = sum(p.identical for p in pairs)
    counts = Counter(r.preferred for r in ratings)
    outcomes = Outcomes(counts["tuned"], counts["base"], counts["tie"] + automatic, counts["both_bad"], automatic)
    n = outcomes.total
    votes = prompt_votes(ratings, pairs)
    by_prompt = {p: [stat_tests.outcome_value(v) for v in vs] for p, vs in votes.items()}
    means = stat_tests.prompt_means(by_prompt)
    kinds = Counter(stat_tests.prompt_outcome(vs) for vs in votes.values())
    prompt_outcomes = Outcomes(kinds["won"], kinds["lost"], kinds["tied"], kinds["both_bad"], automatic)
    # The e-value counts each prompt with the outcome it had when it entered (stored by the vote
    # that entered it), so later votes and edits cannot move it; closure enters the rest.
    closed = record.rating_closed
    entered = {q.position: 0.5 for q in pairs if q.identical}
    entered.update(record.evalue_entries)
    if closed:
        entered.update({p: m for p, m in means.items() if p not in entered})
    e_wins, e_losses = sum(m > 0.5 for m in entered.values()), sum(m < 0.5 for m in entered.values())
    log_e = float(stat_tests.log_e_value(e_wins, e_losses))
    decisive = prompt_outcomes.wins + prompt_outcomes.losses
    summary = Summary(
        run_id=run.id, lineage=lineage_of(record), outcomes=outcomes, prompt_outcomes=prompt_outcomes,
        tie_rate=outcomes.ties / n if n else 0.0, both_bad_rate=outcomes.both_bad / n if n else 0.0,
        win_rate=prompt_outcomes.wins / decisive if decisive else None,
        win_rate_ci=stat_tests.wilson(prompt_outcomes.wins, decisive),
        sign_test_p=stat_tests.sign_test(prompt_outcomes.wins, prompt_outcomes.losses),
        e_value=stat_tests.e_value(e_wins, e_losses), log10_e_value=log_e / math.log(10),
        significant=log_e >= stat_tests.LOG_E_VALUE_THRESHOLD,
        win_rate_cs=stat_tests.confidence_sequence(e_wins, e_losses), entered_wins=e_wins, entered_losses=e_losses,
        score=float(np.mean(list(means.values()))) if means else None,
        score_ci=stat_tests.bootstrap_score(by_prompt), prompts_needed_for_60=stat_tests.prompts_needed(),
        prompts_more_needed=stat_tests.prompts_needed(wins=e_wins, losses=e_losses),
        fixed_n_needed_for_60=stat_tests.fixed_n_needed(),
        raters_per_pair=record.planned_raters_per_pair, rating_closed=closed,
        complete_prompts=len(entered), names=model_names(run),
        round_vs_parent=run.kind == "dpo" and run.reference_run_id is not None
        and run.reference_run_id == run.parent_run_id)
    summary.definitions = {k: named(v, summary.names) for k, v in DEFINITIONS.items()}
    summary.per_criterion = per_criterion(ratings)
    summary.criteria_tested = sum(c["wilcoxon_p"] is not None for c in summary.per_criterion)
    summary.per_rater = per_rater(ratings)
    summary.position_bias = position_bias(ratings)
    summary.agreement = agreement.agreement(ratings, sessions.calibration_sample(run.id, pairs))
    summary.checks = checks_of(record)
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
    """Sentences a team lead can repeat. Direction, counts and interval come from the same entered
    prompts as the e-value, and the interval is its dual, so they cannot disagree."""
    o, tuned, base = s.prompt_outcomes, s.names["tuned_model"], s.names["base_model"]
    if o.total == 0:
        return "No prompt has been rated yet."
    lead = (f"Of {o.total} prompts, {tuned} was better on {o.wins}, {base} on {o.losses}, "
            f"{o.ties} were tied, and on {o.both_bad} neither model got it right (both bad).")
    w, lost = s.entered_wins, s.entered_losses
    if w + lost == 0:
        return lead + " No decisive prompt has all its planned votes yet, so there is no verdict." + (
            " Whether the preference round helped is not known yet." if s.round_vs_parent else "")
    cs = report_format.ci(s.win_rate_cs)
    e_text = report_format.e_value(s.log10_e_value)
    tested = f"on the {w + lost} decisive prompts that entered the test {tuned} won {w}"
    if s.significant:
        better = "better" if w > lost else "worse"
        helped = ((" The preference round helped." if w > lost else " The preference round made the answers worse.")
                  if s.round_vs_parent else "")
        return lead + (f" {report_format.sentence_start(tuned)} is {better} than {base}: {tested} (win rate {cs}, "
                       f"anytime-valid 95 %; e-value {e_text} ≥ 20, valid however often you look).{helped}")
    more = ("more than " + str(stat_tests.POWER_LIMIT) if s.prompts_more_needed is None
            else str(s.prompts_more_needed))
    return lead + (f" Not conclusive yet: {tested} (win rate {cs}, anytime-valid 95 %, which includes 50 %; "
                   f"e-value {e_text}, needs 20). If the true win rate were 60 %, about {more} more decisive "
                   "prompts would settle it with 80 % probability." + (
                       " Whether the preference round helped is not settled yet." if s.round_vs_parent else ""))


def per_criterion(ratings: list[sessions.Rating]) -> list[dict[str, Any]]:
    """Per criterion, the prompt is the unit: each prompt's mean score per model and its mean paired
    difference (tuned − base, over the votes that scored both answers) first; then over prompts the
    means with t intervals, a Wilcoxon signed-rank test of the differences and its Holm adjustment
    for the number of criteria tested. n counts prompts."""
    criteria = sorted({c for r in ratings for side in r.scores.values() for c in side})
    rows: list[dict[str, Any]] = []
    for criterion in criteria:
        per_prompt: dict[str, dict[int, list[float]]] = {"base": defaultdict(list), "tuned": defaultdict(list),
                                                        "difference": defaultdict(list)}
        for r in ratings:
            base, tuned = r.scores.get("base", {}).get(criterion), r.scores.get("tuned", {}).get(criterion)
            if base is not None:
                per_prompt["base"][r.position].append(base)
            if tuned is not None:
                per_prompt["tuned"][r.position].append(tuned)
            if base is not None and tuned is not None:
                per_prompt["difference"][r.position].append(tuned - base)
        means = {key: [float(np.mean(v)) for _, v in sorted(values.items())] for key, values in per_prompt.items()}
        base_mean, base_ci = stat_tests.mean_ci(means["base"])
        tuned_mean, tuned_ci = stat_tests.mean_ci(means["tuned"])
        diff_mean, diff_ci = stat_tests.mean_ci(means["difference"])
        rows.append({"criterion": criterion, "n_prompts": len(means["difference"]), "base_mean": base_mean,
                     "base_ci": base_ci, "tuned_mean": tuned_mean, "tuned_ci": tuned_ci, "difference": diff_mean,
                     "difference_ci": diff_ci, "wilcoxon_p": stat_tests.wilcoxon_p(means["difference"])})
    for row, adjusted in zip(rows, stat_tests.holm([r["wilcoxon_p"] for r in rows])):
        row["wilcoxon_p_holm"] = adjusted
    return rows


def per_rater(ratings: list[sessions.Rating]) -> list[dict[str, Any]]:
    rows = []
    for rater in sorted({r.rater for r in ratings}):
        mine = [r for r in ratings if r.rater == rater]
        c = Counter(r.preferred for r in mine)
        decisive = c["tuned"] + c["base"]
        bias = position_bias(mine)
        rows.append({
            "rater": rater, "ratings": len(mine), "wins": c["tuned"], "losses": c["base"], "ties": c["tie"],
            "both_bad": c["both_bad"], "win_rate": c["tuned"] / decisive if decisive else None,
            "left_pick_rate": bias["left_pick_rate"], "position_bias_p": bias["p"],
            "median_seconds": float(np.median([r.seconds_spent for r in mine])) if mine else None})
    return rows


def position_bias(ratings: list[sessions.Rating]) -> dict[str, Any]:
    """Share of side votes that picked the left answer, with an exact binomial test at ½. Pooling
    raters is sound here: each vote's placement was drawn independently at random."""
    left = sum(1 for r in ratings if r.verdict == "A")
    sided = sum(1 for r in ratings if r.verdict in ("A", "B"))
    return {"left_picks": left, "side_votes": sided, "left_pick_rate": left / sided if sided else None,
            "p": stat_tests.sign_test(left, sided - left)}


def automatic_checks(db: sqlite_utils.Database, run: training.TrainingRun, pairs: list[answer_pairs.Pair]) -> dict[str, Any]:
    """The automatic checks of a run's answers (the bench asks for them without ratings)."""
    return checks_of(dataclasses.replace(load_record(db, run.id), run=run, pairs=pairs))


def checks_of(record: EvaluationRecord) -> dict[str, Any]:
    run, dataset, pairs = record.run, record.dataset, record.pairs
    checks: dict[str, Any] = {"pairs": len(pairs)}
    # The same convention the run's behaviour checks used: the expert regex, the accepted convention,
    # or the one inferred from this version's training answers (issue 24).
    check = convention.check_for(dataset.convention_regex, dataset.convention_json, record.train_answers)
    if check.pattern and pairs:
        checks["convention"] = check.pattern
        checks["convention_described"] = check.description
        checks["convention_source"] = check.source
        checks["convention_base"] = sum(convention_ok(check.pattern, p.base_text) for p in pairs)
        checks["convention_tuned"] = sum(convention_ok(check.pattern, p.tuned_text) for p in pairs)
        # Content, not only shape: each closed-set label's value against the reference answer's.
        labels = convention.closed_labels(check, record.train_answers)
        references = [p.reference for p in pairs]
        tuned = convention.label_agreement(labels, [p.tuned_text for p in pairs], references)
        base = convention.label_agreement(labels, [p.base_text for p in pairs], references)
        if tuned:
            checks["labels_agree"] = {label: {"base": base[label][0], "tuned": agree, "of": of}
                                      for label, (agree, of) in tuned.items()}
    if dataset.glossary and pairs:
        terms = [t.lower() for t in dataset.glossary]
        checks["glossary_terms_base"] = sum(sum(t in p.base_text.lower() for t in terms) for p in pairs)
        checks["glossary_terms_tuned"] = sum(sum(t in p.tuned_text.lower() for t in terms) for p in pairs)
    if pairs:
        checks["mean_words_base"] = float(np.mean([len(p.base_text.split()) for p in pairs]))
        checks["mean_words_tuned"] = float(np.mean([len(p.tuned_text.split()) for p in pairs]))
        checks["mean_words_reference"] = float(np.mean([len(p.reference.split()) for p in pairs]))
    # The losses were measured against the base model: against another adapter they would put the
    # base model's number under the reference run's name.
    for key in ("heldout_loss_base", "heldout_loss_tuned", "general_loss_base", "general_loss_tuned"):
        if key in run.metrics and run.reference_run_id is None:
            checks[key] = run.metrics[key]
            checks[key.replace("loss", "perplexity")] = float(np.exp(run.metrics[key]))
    return checks


def lineage_of(record: EvaluationRecord) -> dict[str, Any]:
    run, version, dataset = record.run, record.version, record.dataset
    stamps = sorted(r.created_at for r in record.ratings)
    # One row per rater, never a joined string: a name may hold a comma (issue 23).
    raters = sorted({r.rater for r in record.ratings})
    return {"dataset": dataset.name, "dataset_version": version.number, "dataset_version_sha256": version.content_hash,
            "adapter_sha256": run.adapter_sha256, "base_model": run.base_model, "preset": run.preset,
            "run_config": json.loads(run.config.to_json()), "raters": raters,
            "first_rating": stamps[0] if stamps else None, "last_rating": stamps[-1] if stamps else None,
            "pii_override": version.pii_override_reason,
            # What the run was rated against, and a preference round's origin (issue 28).
            "reference_run_id": run.reference_run_id, "kind": run.kind, "parent_run_id": run.parent_run_id,
            "rating_run_id": run.rating_run_id, "votes_sha256": run.votes_sha256 or None}
