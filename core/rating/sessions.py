"""Blind A/B rating: generating answer pairs, rating sessions, ratings, and feeding fixes back."""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from random import Random
from typing import Any

import sqlite_utils

from core.curation import datasets, examples
from core.platform import permissions
from core.platform.store import audit, audit_once, get_setting, now, transaction
from core.rating import pairs as answer_pairs
from core.training import runs, versions

VERDICTS = ("A", "B", "tie", "both_bad")
VERDICT_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad"}
# Each vote's value for the tuned model. Tie and both-bad favour neither model, so both count ½;
# the e-value's entries, the score, the per-prompt outcome and the run scores all use this table.
VOTE_VALUES = {"tuned": 1.0, "base": 0.0, "tie": 0.5, "both_bad": 0.5}


class RatingError(Exception):
    """A rating request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class BlindPair:
    """What a rater may see before voting: no side names anywhere."""
    position: int
    prompt: list[dict[str, Any]]
    text_a: str
    text_b: str
    flags_a: list[str]
    flags_b: list[str]


@dataclass(frozen=True)
class Rating:
    run_id: int
    position: int
    rater: str
    left_side: str
    verdict: str
    preferred: str
    scores: dict[str, dict[str, int]]
    comment: str
    seconds_spent: float
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Rating:
        return cls(row["run_id"], row["position"], row["rater"], row["left_side"], row["verdict"],
                   row["preferred"], json.loads(row["scores_json"]), row["comment"],
                   row["seconds_spent"], row["created_at"])


@dataclass(frozen=True)
class RatingSession:
    id: int
    run_id: int
    rater: str
    order: list[tuple[int, str]]  # (position, side shown as A); server-side only
    completed_at: str | None


# ----------------------------------------------------------------------------- sessions

def raters_per_pair(db: sqlite_utils.Database) -> int:
    return int(get_setting(db, "raters_per_pair", "1") or 1)


def planned_raters_per_pair(db: sqlite_utils.Database, run_id: int) -> int:
    """k as it was when the run's first rating session started (the current setting before that):
    the e-value's entry rule reads this, so changing the setting later cannot move entries."""
    row = db.execute("SELECT raters_per_pair FROM rating_plans WHERE run_id = ?", [run_id]).fetchone()
    return int(row[0]) if row else raters_per_pair(db)


def evalue_entries(db: sqlite_utils.Database, run_id: int) -> dict[int, float]:
    """Prompts that entered the e-value, with the outcome value fixed at entry (position -> value)."""
    return dict(db.execute("SELECT position, value FROM evalue_entries WHERE run_id = ? ORDER BY position",
                           [run_id]).fetchall())


def _enter_if_due(db: sqlite_utils.Database, run_id: int, position: int) -> None:
    """Inside the vote's transaction: a prompt enters the e-value once, when its k-th vote arrives,
    with the mean of its first k votes in time order. INSERT OR IGNORE keeps the first entry, so
    a later vote (calibration prompts get every rater's) or an edit never changes it (issue 26)."""
    k = planned_raters_per_pair(db, run_id)
    first = [row[0] for row in db.execute("SELECT preferred FROM ratings WHERE run_id = ? AND position = ? "
                                          "ORDER BY created_at, id LIMIT ?", [run_id, position, k]).fetchall()]
    if len(first) == k:
        db.execute("INSERT OR IGNORE INTO evalue_entries (run_id, position, value, votes, entered_at) "
                   "VALUES (?, ?, ?, ?, ?)", [run_id, position, sum(VOTE_VALUES[p] for p in first) / k, k, now()])


def start_session(db: sqlite_utils.Database, run_id: int, rater: str) -> RatingSession:
    """Start, or resume, a rater's session: a random order and random A/B placement per pair."""
    rater = rater.strip()
    if not rater:
        raise RatingError("Choose your name before rating.")
    permissions.require(rater, "rate")
    existing = list(db.query("SELECT * FROM rating_sessions WHERE run_id = ? AND rater = ?", [run_id, rater]))
    if existing:
        return _session(existing[0])
    candidates = [p.position for p in answer_pairs.pairs(db, run_id) if not p.identical]
    if not candidates:
        raise RatingError("No answer pairs to rate yet: generate them first.")
    rng = Random(secrets.randbits(64))  # unpredictable, so nobody can infer the placement
    rng.shuffle(candidates)
    order = [(position, rng.choice(("base", "tuned"))) for position in candidates]
    from core.rating import blinding  # the rule module imports this one

    with transaction(db):
        # The looks are read inside the transaction that writes the session: a look recorded by
        # open_outcome a moment ago is seen here, and one after waits for this commit and is then
        # refused by the blinding rule (issue 23). Refused rather than counted apart: votes cast
        # knowing the standing or the base answers are not blind.
        reason = blinding.earlier_look(db, rater, run_id)
        if reason is None:
            db.execute("INSERT OR IGNORE INTO rating_sessions (run_id, rater, order_json, created_at) "
                       "VALUES (?, ?, ?, ?)", [run_id, rater, json.dumps(order), now()])
            # The first session fixes k for the e-value's entry rule (planned_raters_per_pair).
            db.execute("INSERT OR IGNORE INTO rating_plans (run_id, raters_per_pair, created_at) VALUES (?, ?, ?)",
                       [run_id, raters_per_pair(db), now()])
            audit(db, rater, "start_rating_session", "run", run_id, {})
        else:
            # Once per rater, run and reason: the Rate page asks on every load, and a log that
            # repeats one refusal a hundred times hides the refusals that differ. Since the run was
            # queued: a deleted run's id can be reused, and its refusals are not this run's.
            queued = db.execute("SELECT queued_at FROM runs WHERE id = ?", [run_id]).fetchone()
            audit_once(db, rater, "rating_refused", "run", run_id, {"reason": reason}, since=queued[0] if queued else "")
    if reason is not None:
        raise RatingError(reason)
    row = next(iter(db.query("SELECT * FROM rating_sessions WHERE run_id = ? AND rater = ?", [run_id, rater])))
    return _session(row)


def _session(row: dict[str, Any]) -> RatingSession:
    return RatingSession(row["id"], row["run_id"], row["rater"],
                         [tuple(x) for x in json.loads(row["order_json"])],  # type: ignore[misc]
                         row["completed_at"])


# Overlap, as annotation tools call it: a calibration subset that every rater rates, so agreement
# can be measured; the other pairs are shared out for coverage (k raters each).
CALIBRATION_FRACTION = 0.2
CALIBRATION_MINIMUM = 10


def calibration_positions(db: sqlite_utils.Database, run_id: int) -> set[int]:
    """The run's calibration pairs: 20 % of the rateable pairs, at least 10 (all, if fewer).
    Drawn with the run id as seed, so every rater and every report sees the same set."""
    return calibration_sample(run_id, answer_pairs.pairs(db, run_id))


def calibration_sample(run_id: int, pairs: list[answer_pairs.Pair]) -> set[int]:
    """calibration_positions of pairs already loaded (the report reads them once)."""
    rateable = sorted(p.position for p in pairs if not p.identical)
    size = min(len(rateable), max(CALIBRATION_MINIMUM, math.ceil(CALIBRATION_FRACTION * len(rateable))))
    return set(Random(run_id).sample(rateable, size))


def session_positions(db: sqlite_utils.Database, session: RatingSession) -> list[int]:
    """Positions this rater should rate, in their own order: every calibration pair, plus the
    other pairs that do not yet have k raters (or that they rated already)."""
    k = raters_per_pair(db)
    calibration = calibration_positions(db, session.run_id)
    counts = dict(db.execute("SELECT position, count(*) FROM ratings WHERE run_id = ? AND rater != ? "
                             "GROUP BY position", [session.run_id, session.rater]).fetchall())
    mine = {r[0] for r in db.execute("SELECT position FROM ratings WHERE rating_session_id = ?", [session.id])}
    return [p for p, _side in session.order if p in mine or p in calibration or counts.get(p, 0) < k]


def run_progress(db: sqlite_utils.Database, run_id: int) -> tuple[int, int]:
    """The whole run's rating progress, for everyone: (pairs with at least k votes, rateable pairs).
    It means the same before and after a rater joins (issue 25: it fell from 12 of 12 to 2 of 12
    when a second rater started); the calibration pairs' own progress is `calibration_progress`."""
    k = raters_per_pair(db)
    rateable = [p.position for p in answer_pairs.pairs(db, run_id) if not p.identical]
    votes = dict(db.execute("SELECT position, count(*) FROM ratings WHERE run_id = ? GROUP BY position",
                            [run_id]).fetchall())
    return sum(votes.get(p, 0) >= k for p in rateable), len(rateable)


@dataclass(frozen=True)
class CalibrationProgress:
    pairs: int  # calibration pairs in the run
    raters: int  # raters who started a session
    complete: int  # of them, those who rated every calibration pair

    def sentence(self) -> str:
        return (f"Calibration: {self.pairs} pairs that every rater rates, so the studio can measure how far "
                f"raters agree; {self.complete} of {self.raters} rater{'s' if self.raters != 1 else ''} "
                "have rated all of them.")


def calibration_progress(db: sqlite_utils.Database, run_id: int) -> CalibrationProgress:
    calibration = calibration_positions(db, run_id)
    raters = [r[0] for r in db.execute("SELECT rater FROM rating_sessions WHERE run_id = ?", [run_id])]
    done = dict(db.execute(
        "SELECT rater, count(DISTINCT position) FROM ratings WHERE run_id = ? AND position IN "
        f"({', '.join('?' * len(calibration)) or 'NULL'}) GROUP BY rater", [run_id, *calibration]).fetchall())
    return CalibrationProgress(len(calibration), len(raters),
                               sum(done.get(r, 0) >= len(calibration) for r in raters))


def session_sentence(db: sqlite_utils.Database, session: RatingSession) -> str:
    """Why a rater has the number of pairs they have, in one sentence."""
    _done, total = progress(db, session)
    rateable = len(session.order)
    if total >= rateable:
        return f"You rate all {rateable} pairs."
    calibration = len(calibration_positions(db, session.run_id))
    return (f"You rate {total} of the {rateable} pairs: the {calibration} calibration pairs every rater rates, "
            f"plus any that still need a vote (the others already have the {raters_per_pair(db)} "
            "vote(s) each pair needs).")


def progress(db: sqlite_utils.Database, session: RatingSession) -> tuple[int, int]:
    positions = session_positions(db, session)
    rated = db.execute("SELECT count(*) FROM ratings WHERE rating_session_id = ?", [session.id]).fetchone()[0]
    return int(rated), len(positions)


def blind_pair(db: sqlite_utils.Database, session: RatingSession, position: int) -> BlindPair:
    side_a = dict(session.order)[position]
    pair = next(p for p in answer_pairs.pairs(db, session.run_id) if p.position == position)
    texts = {"base": pair.base_text, "tuned": pair.tuned_text}
    flags = {side: json.loads(r[0]) for side, r in (
        (s, db.execute("SELECT flags_json FROM generations WHERE run_id = ? AND position = ? AND side = ?",
                       [session.run_id, position, s]).fetchone()) for s in ("base", "tuned"))}
    side_b = "tuned" if side_a == "base" else "base"
    # A flag shown under one answer only would point at a model (base answers mention personal
    # data more often): flags are shown for the pair, on both answers or neither (issue 18).
    shared = sorted((set(flags["base"]) | set(flags["tuned"])) - {"identical"})
    return BlindPair(position, pair.prompt, texts[side_a], texts[side_b], shared, shared)


@dataclass(frozen=True)
class EarlierVote:
    """A rater's own earlier vote on a pair, in screen terms (A/B), to show and edit it."""
    verdict: str
    scores: dict[str, dict[str, int]]  # {"A": {criterion: 1-5}, "B": {...}}
    comment: str


def earlier_vote(db: sqlite_utils.Database, session: RatingSession, position: int) -> EarlierVote | None:
    """The rater's stored vote mapped back to screen sides (scores are stored by model)."""
    mine = my_rating(db, session, position)
    if mine is None:
        return None
    side_a = dict(session.order)[position]
    side_of = {side_a: "A", ("tuned" if side_a == "base" else "base"): "B"}
    return EarlierVote(mine.verdict, {side_of[model]: dict(s) for model, s in mine.scores.items()}, mine.comment)


def next_position(db: sqlite_utils.Database, session: RatingSession, *, skipped: set[int] | None = None) -> int | None:
    """The next pair to show: the first unrated one not skipped; once only skipped pairs are left,
    the first of those again. None when every pair of the session is rated."""
    rated = {r[0] for r in db.execute("SELECT position FROM ratings WHERE rating_session_id = ?", [session.id])}
    unrated = [p for p in session_positions(db, session) if p not in rated]
    fresh = [p for p in unrated if p not in (skipped or set())]
    remaining = fresh or unrated
    return remaining[0] if remaining else None


def record_rating(db: sqlite_utils.Database, session: RatingSession, position: int, verdict: str, *,
                  scores: dict[str, dict[str, int]] | None = None, comment: str = "",
                  seconds_spent: float = 0.0) -> Rating:
    """Save (or change) this rater's verdict on one pair. `scores` is {"A": {criterion: 1-5}, "B": ...}."""
    permissions.require(session.rater, "rate")
    if verdict not in VERDICTS:
        raise RatingError(f"Verdict must be one of {', '.join(VERDICTS)}.")
    order = dict(session.order)
    if position not in order:
        raise RatingError("That pair is not part of this session.")
    for side_scores in (scores or {}).values():
        for criterion, value in side_scores.items():
            if not 1 <= int(value) <= 5:
                raise RatingError(f"Score for {criterion} must be 1 to 5.")
    left = order[position]
    right = "tuned" if left == "base" else "base"
    preferred = {"A": left, "B": right}.get(verdict, verdict)
    # Scores are stored by model identity, so summaries never need the screen side.
    by_side = {left if k == "A" else right: v for k, v in (scores or {}).items()}
    stamp = now()
    with transaction(db):
        # Read inside the write transaction: a reveal or a close that just happened wins.
        _refuse_if_frozen(db, session)
        db.execute(
            "INSERT INTO ratings (rating_session_id, run_id, position, rater, left_side, verdict, preferred, "
            "scores_json, comment, seconds_spent, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (run_id, position, rater) DO UPDATE SET verdict = excluded.verdict, "
            "preferred = excluded.preferred, scores_json = excluded.scores_json, comment = excluded.comment, "
            "seconds_spent = ratings.seconds_spent + excluded.seconds_spent, updated_at = excluded.updated_at",
            [session.id, session.run_id, position, session.rater, left, verdict, preferred,
             json.dumps(by_side, sort_keys=True), comment, float(seconds_spent), stamp, stamp])
        _enter_if_due(db, session.run_id, position)
        rated, total = progress(db, session)
        if rated >= total and session.completed_at is None:
            db.table("rating_sessions").update(session.id, {"completed_at": stamp})
    row = next(iter(db.query("SELECT * FROM ratings WHERE run_id = ? AND position = ? AND rater = ?",
                             [session.run_id, position, session.rater])))
    return Rating.from_row(row)


def _refuse_if_frozen(db: sqlite_utils.Database, session: RatingSession) -> None:
    """Votes are frozen once the rater has seen identities, or once an admin closed rating."""
    completed = db.execute("SELECT completed_at FROM rating_sessions WHERE id = ?", [session.id]).fetchone()
    if completed and completed[0]:
        raise RatingError("Your session is complete and identities were revealed to you; "
                          "your votes can no longer change.")
    if rating_closed(db, session.run_id):
        raise RatingError(f"Rating of run {session.run_id} is closed; votes can no longer change.")


def rating_closed(db: sqlite_utils.Database, run_id: int) -> bool:
    return db.execute("SELECT 1 FROM rating_closures WHERE run_id = ?", [run_id]).fetchone() is not None


def close_rating(db: sqlite_utils.Database, run_id: int, actor: str = "") -> None:
    """End rating of a run (admins): votes freeze and everyone may see its results."""
    permissions.require(actor, "close_rating")
    with transaction(db):
        changed = db.execute("INSERT OR IGNORE INTO rating_closures (run_id, closed_by, closed_at) VALUES (?, ?, ?)",
                             [run_id, actor, now()]).rowcount
        if changed:
            audit(db, actor, "close_rating", "run", run_id, {})


def saw_open_outcome(db: sqlite_utils.Database, run_id: int, viewer: str) -> bool:
    """Whether the viewer looked at this run's outcome while its rating was open (the first look is
    recorded open or closed; one from before the closure was a look at an open outcome)."""
    return db.execute("SELECT 1 FROM outcome_views v LEFT JOIN rating_closures c ON c.run_id = v.run_id "
                      "WHERE v.run_id = ? AND v.viewer = ? AND (c.closed_at IS NULL OR v.seen_at < c.closed_at)",
                      [run_id, (viewer or "").strip()]).fetchone() is not None


def last_rated_position(db: sqlite_utils.Database, session: RatingSession) -> int | None:
    row = db.execute("SELECT position FROM ratings WHERE rating_session_id = ? ORDER BY updated_at DESC, id DESC "
                     "LIMIT 1", [session.id]).fetchone()
    return row[0] if row else None


def my_rating(db: sqlite_utils.Database, session: RatingSession, position: int) -> Rating | None:
    rows = list(db.query("SELECT * FROM ratings WHERE rating_session_id = ? AND position = ?", [session.id, position]))
    return Rating.from_row(rows[0]) if rows else None


def reveal(db: sqlite_utils.Database, session: RatingSession) -> list[Rating]:
    """A rater's own ratings with identities, only once their session is complete.

    Seeing identities freezes the rater's votes: the session is marked complete here, whatever
    made it complete (their last vote, or other raters covering the remaining pairs).
    """
    rated, total = progress(db, session)
    if rated < total:
        raise RatingError(f"Identities are revealed when your session is complete ({rated}/{total}).")
    from core.rating import blinding  # the rule module imports this one

    conflict = blinding.sibling_conflict(db, session.rater, session.run_id)
    if conflict:
        raise RatingError(conflict)
    with transaction(db):
        db.execute("UPDATE rating_sessions SET completed_at = ? WHERE id = ? AND completed_at IS NULL",
                   [now(), session.id])
    return [Rating.from_row(r) for r in db.query("SELECT * FROM ratings WHERE rating_session_id = ? ORDER BY position",
                                                 [session.id])]


def ratings_for_run(db: sqlite_utils.Database, run_id: int) -> list[Rating]:
    return [Rating.from_row(r) for r in db.query("SELECT * FROM ratings WHERE run_id = ? ORDER BY position, rater",
                                                 [run_id])]


def rated_runs(db: sqlite_utils.Database, run_ids: list[int]) -> set[int]:
    """Which of these runs have votes, in one query (the Results run picker asks on every rerun)."""
    if not run_ids:
        return set()
    return {r[0] for r in db.execute(f"SELECT DISTINCT run_id FROM ratings WHERE run_id IN "
                                     f"({', '.join('?' * len(run_ids))})", list(run_ids))}


def make_training_example(db: sqlite_utils.Database, run_id: int, position: int, corrected_answer: str,
                          author: str = "") -> examples.Example:
    """Loop back to curation: the prompt with a corrected answer becomes a draft example."""
    permissions.require(author, "suggest_example")
    run = runs.get_run(db, run_id)
    version = versions.version_by_id(db, run.dataset_version_id)
    dataset = datasets.get_dataset(db, version.dataset_id)
    pair = next(p for p in answer_pairs.pairs(db, run_id) if p.position == position)
    messages = [*pair.prompt, {"role": "assistant", "content": corrected_answer}]
    example = examples.save_example(db, dataset, messages, author=author, status="draft",
                                    tags=[f"from-rating-run-{run_id}"])
    return example
