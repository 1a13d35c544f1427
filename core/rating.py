"""Blind A/B rating: generating answer pairs, rating sessions, ratings, and feeding fixes back."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from random import Random
from typing import Any

import sqlite_utils

from core import datasets, generation, permissions, training
from core.store import audit, get_setting, insert_row, now, transaction

VERDICTS = ("A", "B", "tie", "both_bad")
VERDICT_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad"}


class RatingError(Exception):
    """A rating request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Pair:
    position: int
    prompt: list[dict[str, Any]]
    reference: str
    base_text: str
    tuned_text: str
    flags: list[str]

    @property
    def identical(self) -> bool:
        return self.base_text.strip() == self.tuned_text.strip()


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


@dataclass(frozen=True)
class GenerationJob:
    id: int
    run_id: int
    status: str
    done: int
    total: int
    error: str


# ----------------------------------------------------------------------------- generating pairs

def start_generation(db: sqlite_utils.Database, run_id: int, config: generation.GenerationConfig | None = None,
                     *, actor: str = "", launch: bool = True) -> GenerationJob:
    permissions.require(actor, "start_run")
    run = training.get_run(db, run_id)
    if run.status != "succeeded" or not run.adapter_path:
        raise RatingError(f"Run {run_id} has not finished successfully; nothing to compare yet.")
    config = config or generation.GenerationConfig()
    total = len(datasets.version_messages(db, run.dataset_version_id, "heldout"))
    if total == 0:
        raise RatingError("The run's dataset version has no held-out examples to answer.")
    with transaction(db):
        job_id = insert_row(db, "generation_jobs", {
            "run_id": run_id, "status": "queued", "total": total, "settings_json": config.to_json(),
            "created_at": now()})
        audit(db, actor, "start_generation", "run", run_id, {"job": job_id})
    if launch:
        pid = training.spawn_worker(training.db_file(db), "generate", job_id)
        with transaction(db):
            db.execute("UPDATE generation_jobs SET pid = ? WHERE id = ? AND status = 'queued'", [pid, job_id])
    return get_job(db, job_id)


def claim_job(db: sqlite_utils.Database, job_id: int, pid: int) -> bool:
    """The worker takes a queued generation job (False: someone else did, or it was reconciled)."""
    with transaction(db):
        return bool(db.execute("UPDATE generation_jobs SET status = 'running', pid = ? WHERE id = ? AND "
                               "status = 'queued'", [pid, job_id]).rowcount)


def fail_job(db: sqlite_utils.Database, job_id: int, error: str) -> None:
    with transaction(db):
        db.table("generation_jobs").update(job_id, {"status": "failed", "finished_at": now(), "error": error})


def reconcile_jobs(db: sqlite_utils.Database) -> int:
    """Jobs whose worker is gone (killed, machine restarted) become `failed` with a reason, so the
    Rate page offers to generate again instead of waiting forever (issue 15)."""
    stale = [r["id"] for r in db.query("SELECT id, pid FROM generation_jobs WHERE status IN ('queued', 'running') "
                                       "AND pid IS NOT NULL") if not training.process_alive(r["pid"])]
    for job_id in stale:
        with transaction(db):
            db.execute("UPDATE generation_jobs SET status = 'failed', finished_at = ?, error = ? WHERE id = ? AND "
                       "status IN ('queued', 'running')",
                       [now(), "The answer-generation process stopped unexpectedly (killed, or the machine "
                        "restarted). Generate the answer pairs again.", job_id])
    return len(stale)


def get_job(db: sqlite_utils.Database, job_id: int) -> GenerationJob:
    r = db.table("generation_jobs").get(job_id)
    return GenerationJob(r["id"], r["run_id"], r["status"], r["done"], r["total"], r["error"])


def latest_job(db: sqlite_utils.Database, run_id: int) -> GenerationJob | None:
    row = db.execute("SELECT id FROM generation_jobs WHERE run_id = ? ORDER BY id DESC LIMIT 1",
                     [run_id]).fetchone()
    return get_job(db, row[0]) if row else None


def run_generation_job(db: sqlite_utils.Database, job_id: int) -> None:
    """Generate base and tuned answers for every held-out prompt (called in the worker)."""
    from core import pii

    job = db.table("generation_jobs").get(job_id)
    run = training.get_run(db, job["run_id"])
    config = generation.GenerationConfig(**json.loads(job["settings_json"]))
    heldout = datasets.version_messages(db, run.dataset_version_id, "heldout")
    model, tokenizer = generation.load_with_adapter(run.base_model, str(run.adapter_path))
    sha = run.adapter_sha256 or ""
    with transaction(db):
        db.execute("DELETE FROM generations WHERE run_id = ?", [run.id])
    for start in range(0, len(heldout), config.batch_size):
        chunk = heldout[start:start + config.batch_size]
        prompts = [generation.prompt_of(m)[0] for m in chunk]
        base = generation.generate(model, tokenizer, prompts, config, side="base")
        tuned = generation.generate(model, tokenizer, prompts, config, side="tuned")
        stamp = now()
        with transaction(db):
            for offset, (messages, b, t) in enumerate(zip(chunk, base, tuned)):
                prompt, reference = generation.prompt_of(messages)
                for side, text, other in (("base", b, t), ("tuned", t, b)):
                    db.table("generations").insert({
                        "run_id": run.id, "position": start + offset, "prompt_json": json.dumps(prompt),
                        "reference": reference, "side": side, "text": text,
                        "settings_json": config.to_json(), "adapter_sha256": sha,
                        "flags_json": json.dumps(generation.flags_for(text, other)), "created_at": stamp})
            db.table("generation_jobs").update(job_id, {"done": start + len(chunk)})
    # Held-out loss and the forgetting probe, base vs tuned, recorded on the run for the summary.
    general = [line for line in generation.GENERAL_TEXT.read_text().splitlines() if line.strip()]
    metrics = {}
    for side in ("base", "tuned"):
        metrics[f"heldout_loss_{side}"] = round(generation.mean_loss(model, tokenizer, heldout, side=side), 4)
        metrics[f"general_loss_{side}"] = round(generation.mean_loss(model, tokenizer, texts=general, side=side), 4)
    training.record_metrics(db, run.id, metrics)
    # Outputs are PII-scanned before anyone rates them.
    rows = list(db.query("SELECT id, text, flags_json FROM generations WHERE run_id = ?", [run.id]))
    found = pii.scan_generation_texts(db, [(r["id"], r["text"]) for r in rows])
    with transaction(db):
        for r in rows:
            if found.get(r["id"]):
                flags = json.loads(r["flags_json"]) + ["pii"]
                db.table("generations").update(r["id"], {"flags_json": json.dumps(flags)})
        db.table("generation_jobs").update(job_id, {"status": "succeeded", "finished_at": now()})


def pairs(db: sqlite_utils.Database, run_id: int) -> list[Pair]:
    by_position: dict[int, dict[str, Any]] = {}
    for r in db.query("SELECT * FROM generations WHERE run_id = ? ORDER BY position", [run_id]):
        entry = by_position.setdefault(r["position"], {"prompt": json.loads(r["prompt_json"]),
                                                       "reference": r["reference"], "flags": set()})
        entry[r["side"]] = r["text"]
        entry["flags"].update(json.loads(r["flags_json"]))
    return [Pair(p, e["prompt"], e["reference"], e.get("base", ""), e.get("tuned", ""), sorted(e["flags"]))
            for p, e in sorted(by_position.items()) if "base" in e and "tuned" in e]


# ----------------------------------------------------------------------------- sessions

def raters_per_pair(db: sqlite_utils.Database) -> int:
    return int(get_setting(db, "raters_per_pair", "1") or 1)


def start_session(db: sqlite_utils.Database, run_id: int, rater: str) -> RatingSession:
    """Start, or resume, a rater's session: a random order and random A/B placement per pair."""
    rater = rater.strip()
    if not rater:
        raise RatingError("Choose your name before rating.")
    permissions.require(rater, "rate")
    existing = list(db.query("SELECT * FROM rating_sessions WHERE run_id = ? AND rater = ?", [run_id, rater]))
    if existing:
        return _session(existing[0])
    candidates = [p.position for p in pairs(db, run_id) if not p.identical]
    if not candidates:
        raise RatingError("No answer pairs to rate yet: generate them first.")
    rng = Random(secrets.randbits(64))  # unpredictable, so nobody can infer the placement
    rng.shuffle(candidates)
    order = [(position, rng.choice(("base", "tuned"))) for position in candidates]
    with transaction(db):
        db.execute("INSERT OR IGNORE INTO rating_sessions (run_id, rater, order_json, created_at) "
                   "VALUES (?, ?, ?, ?)", [run_id, rater, json.dumps(order), now()])
        audit(db, rater, "start_rating_session", "run", run_id, {})
    row = next(iter(db.query("SELECT * FROM rating_sessions WHERE run_id = ? AND rater = ?", [run_id, rater])))
    return _session(row)


def _session(row: dict[str, Any]) -> RatingSession:
    return RatingSession(row["id"], row["run_id"], row["rater"],
                         [tuple(x) for x in json.loads(row["order_json"])],  # type: ignore[misc]
                         row["completed_at"])


def get_session(db: sqlite_utils.Database, session_id: int) -> RatingSession:
    return _session(db.table("rating_sessions").get(session_id))


def session_positions(db: sqlite_utils.Database, session: RatingSession) -> list[int]:
    """Positions this rater should rate: their own order, minus pairs already rated by k others."""
    k = raters_per_pair(db)
    counts = dict(db.execute("SELECT position, count(*) FROM ratings WHERE run_id = ? AND rater != ? "
                             "GROUP BY position", [session.run_id, session.rater]).fetchall())
    mine = {r[0] for r in db.execute("SELECT position FROM ratings WHERE rating_session_id = ?", [session.id])}
    return [p for p, _side in session.order if p in mine or counts.get(p, 0) < k]


def progress(db: sqlite_utils.Database, session: RatingSession) -> tuple[int, int]:
    positions = session_positions(db, session)
    rated = db.execute("SELECT count(*) FROM ratings WHERE rating_session_id = ?", [session.id]).fetchone()[0]
    return int(rated), len(positions)


def blind_pair(db: sqlite_utils.Database, session: RatingSession, position: int) -> BlindPair:
    side_a = dict(session.order)[position]
    pair = next(p for p in pairs(db, session.run_id) if p.position == position)
    texts = {"base": pair.base_text, "tuned": pair.tuned_text}
    flags = {side: json.loads(r[0]) for side, r in (
        (s, db.execute("SELECT flags_json FROM generations WHERE run_id = ? AND position = ? AND side = ?",
                       [session.run_id, position, s]).fetchone()) for s in ("base", "tuned"))}
    side_b = "tuned" if side_a == "base" else "base"
    return BlindPair(position, pair.prompt, texts[side_a], texts[side_b],
                     [f for f in flags[side_a] if f != "identical"], [f for f in flags[side_b] if f != "identical"])


def next_position(db: sqlite_utils.Database, session: RatingSession, *, skipped: set[int] | None = None) -> int | None:
    rated = {r[0] for r in db.execute("SELECT position FROM ratings WHERE rating_session_id = ?", [session.id])}
    for position in session_positions(db, session):
        if position not in rated and position not in (skipped or set()):
            return position
    return None


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
    row = db.execute("SELECT rating_closed_at FROM runs WHERE id = ?", [run_id]).fetchone()
    return bool(row and row[0])


def close_rating(db: sqlite_utils.Database, run_id: int, actor: str = "") -> None:
    """End rating of a run (admins): votes freeze and everyone may see its results."""
    permissions.require(actor, "close_rating")
    with transaction(db):
        changed = db.execute("UPDATE runs SET rating_closed_at = ?, rating_closed_by = ? "
                             "WHERE id = ? AND rating_closed_at IS NULL", [now(), actor, run_id]).rowcount
        if changed:
            audit(db, actor, "close_rating", "run", run_id, {})


@dataclass(frozen=True)
class ResultsAccess:
    """Whether a viewer may see a run's outcome (results page, exports, CLI summary), and why not."""
    allowed: bool
    reason: str = ""


def results_access(db: sqlite_utils.Database, run_id: int, viewer: str) -> ResultsAccess:
    """The blinding rule in one place.

    A viewer with an unfinished rating session on this run sees nothing of its outcome (whatever
    their role): one look at the per-rater table or the CSV tells them which side was which.
    Otherwise admins see results while rating is open; everyone sees them once it is closed.
    """
    session = db.execute("SELECT completed_at FROM rating_sessions WHERE run_id = ? AND rater = ?",
                         [run_id, (viewer or "").strip()]).fetchone()
    if session is not None and not session[0] and not rating_closed(db, run_id):
        return ResultsAccess(False, f"You are rating run {run_id}: its results and exports open to you when "
                                    "your own session is complete, so your remaining votes stay blind.")
    if rating_closed(db, run_id) or permissions.allowed(viewer, "view_open_results"):
        return ResultsAccess(True)
    return ResultsAccess(False, f"Rating of run {run_id} is still open: its results and exports are for admins "
                                "until an admin closes rating (Results → Close rating).")


def require_results_access(db: sqlite_utils.Database, run_id: int, viewer: str) -> None:
    access = results_access(db, run_id, viewer)
    if not access.allowed:
        raise permissions.PermissionDenied(access.reason)


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
    with transaction(db):
        db.execute("UPDATE rating_sessions SET completed_at = ? WHERE id = ? AND completed_at IS NULL",
                   [now(), session.id])
    return [Rating.from_row(r) for r in db.query("SELECT * FROM ratings WHERE rating_session_id = ? ORDER BY position",
                                                 [session.id])]


def ratings_for_run(db: sqlite_utils.Database, run_id: int) -> list[Rating]:
    return [Rating.from_row(r) for r in db.query("SELECT * FROM ratings WHERE run_id = ? ORDER BY position, rater",
                                                 [run_id])]


def make_training_example(db: sqlite_utils.Database, run_id: int, position: int, corrected_answer: str,
                          author: str = "") -> datasets.Example:
    """Loop back to curation: the prompt with a corrected answer becomes a draft example."""
    permissions.require(author, "suggest_example")
    run = training.get_run(db, run_id)
    version = datasets.version_by_id(db, run.dataset_version_id)
    dataset = datasets.get_dataset(db, version.dataset_id)
    pair = next(p for p in pairs(db, run_id) if p.position == position)
    messages = [*pair.prompt, {"role": "assistant", "content": corrected_answer}]
    example = datasets.save_example(db, dataset, messages, author=author, status="draft",
                                    tags=[f"from-rating-run-{run_id}"])
    return example
