"""Answer pairs for blind rating: generation jobs (queued in the worker, reconciled when it dies) and the base/tuned answers."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from core.models import generation
from core.pii import scan
from core.platform import permissions, processes, slots
from core.platform.store import audit, insert_row, now, transaction
from core.training import rounds, runs, versions


class AnswerPairsError(Exception):
    """A request about answer pairs that cannot be carried out; the message says why."""


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
class GenerationJob:
    id: int
    run_id: int
    status: str
    done: int
    total: int
    error: str


def start_generation(db: sqlite_utils.Database, run_id: int, config: generation.GenerationConfig | None = None,
                     *, actor: str = "", launch: bool = True) -> GenerationJob:
    permissions.require(actor, "start_run")
    run = runs.get_run(db, run_id)
    if run.status != "succeeded" or not run.adapter_path:
        raise AnswerPairsError(f"Run {run_id} has not finished successfully; nothing to compare yet.")
    config = config or generation.GenerationConfig()
    reference_adapter(db, run)  # a clear message now if the reference cannot answer
    total = len(prompts_to_answer(db, run))
    if total == 0:
        raise AnswerPairsError("The run's dataset version has no held-out examples to answer"
                               + (" that it did not learn from as preferences." if run.kind == "dpo" else "."))
    with transaction(db):
        # Checked under the write lock: two clicks at once cannot both queue a job.
        busy = db.execute("SELECT id FROM generation_jobs WHERE run_id = ? AND status IN ('queued', 'running')",
                          [run_id]).fetchone()
        if busy:
            raise AnswerPairsError(f"Answers for run {run_id} are already being generated (job {busy[0]}).")
        job_id = insert_row(db, "generation_jobs", {
            "run_id": run_id, "status": "queued", "total": total, "settings_json": config.to_json(),
            "created_at": now()})
        audit(db, actor, "start_generation", "run", run_id, {"job": job_id})
    if launch:
        launch_next(db)
    return get_job(db, job_id)


def launch_next(db: sqlite_utils.Database) -> int | None:
    """Start the oldest waiting job if a heavy-work slot is free and no training run has waited
    longer (core.platform.slots); returns its id. Claimed in a short transaction, spawned after the commit."""
    if slots.next_in_line(db) is None:
        return None  # nothing waits: no write lock taken
    me = os.getpid()
    with transaction(db):
        job_id = slots.turn_of(db, "answers")
        if job_id is None:
            return None
        db.execute("UPDATE generation_jobs SET pid = ? WHERE id = ?", [me, job_id])
    try:
        pid = processes.spawn_worker(processes.db_file(db), "generate", job_id)
    except BaseException as exc:  # never leave a queued job that nothing will pick up
        fail_job(db, job_id, f"The worker could not be started: {exc}")
        raise
    with transaction(db):
        db.execute("UPDATE generation_jobs SET pid = ? WHERE id = ? AND status = 'queued' AND pid = ?",
                   [pid, job_id, me])
    return job_id


def claim_job(db: sqlite_utils.Database, job_id: int, pid: int) -> bool:
    """The worker takes a queued generation job (False: someone else did, or it was reconciled)."""
    with transaction(db):
        return bool(db.execute("UPDATE generation_jobs SET status = 'running', pid = ?, started_at = ? WHERE id = ? "
                               "AND status = 'queued'", [pid, now(), job_id]).rowcount)


def fail_job(db: sqlite_utils.Database, job_id: int, error: str) -> None:
    with transaction(db):
        db.table("generation_jobs").update(job_id, {"status": "failed", "finished_at": now(), "error": error})


def reconcile_jobs(db: sqlite_utils.Database) -> int:
    """Jobs whose worker is gone (killed, machine restarted) become `failed` with a reason, so the
    Rate page offers to generate again instead of waiting forever (issue 15)."""
    stale = [r["id"] for r in db.query("SELECT id, pid FROM generation_jobs WHERE status IN ('queued', 'running') "
                                       "AND pid IS NOT NULL") if not processes.process_alive(r["pid"])]
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
    job = db.table("generation_jobs").get(job_id)
    run = runs.get_run(db, job["run_id"])
    config = generation.GenerationConfig(**json.loads(job["settings_json"]))
    numbered = prompts_to_answer(db, run)
    heldout = [messages for _position, messages in numbered]
    model, tokenizer = generation.load_with_adapter(run.base_model, str(run.adapter_path), reference_adapter(db, run))
    sha = run.adapter_sha256 or ""
    with transaction(db):
        db.execute("DELETE FROM generations WHERE run_id = ?", [run.id])
    for start in range(0, len(heldout), config.batch_size):
        chunk = heldout[start:start + config.batch_size]
        positions = [position for position, _messages in numbered[start:start + config.batch_size]]
        prompts = [generation.prompt_of(m)[0] for m in chunk]
        base = generation.generate(model, tokenizer, prompts, config, side="base")
        tuned = generation.generate(model, tokenizer, prompts, config, side="tuned")
        stamp = now()
        with transaction(db):
            for position, messages, b, t in zip(positions, chunk, base, tuned):
                prompt, reference = generation.prompt_of(messages)
                for side, text, other in (("base", b, t), ("tuned", t, b)):
                    db.table("generations").insert({
                        "run_id": run.id, "position": position, "prompt_json": json.dumps(prompt),
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
    runs.record_metrics(db, run.id, metrics)
    # Outputs are PII-scanned before anyone rates them.
    rows = list(db.query("SELECT id, text, flags_json FROM generations WHERE run_id = ?", [run.id]))
    found = scan.scan_generation_texts(db, [(r["id"], r["text"]) for r in rows])
    with transaction(db):
        for r in rows:
            if found.get(r["id"]):
                flags = json.loads(r["flags_json"]) + ["pii"]
                db.table("generations").update(r["id"], {"flags_json": json.dumps(flags)})
        db.table("generation_jobs").update(job_id, {"status": "succeeded", "finished_at": now()})


# ----------------------------------------------------------------------------- which two models answer (issue 28)
# A pair's sides keep their stored names: "tuned" is the run's own adapter (the challenger), "base"
# is what it is compared with: the base model, or the reference run's adapter on the same base.

def reference_adapter(db: sqlite_utils.Database, run: runs.TrainingRun) -> str | None:
    """The adapter folder answering on the "base" side, None for the base model itself."""
    if run.reference_run_id is None:
        return None
    try:
        reference = runs.get_run(db, run.reference_run_id)
    except runs.RunError as exc:
        raise AnswerPairsError(f"Run {run.id} is compared with run {run.reference_run_id}, which is gone.") from exc
    if reference.status != "succeeded" or not reference.adapter_path:
        raise AnswerPairsError(f"Run {run.id} is compared with run {reference.id}, which has no finished adapter.")
    if reference.base_model != run.base_model:
        raise AnswerPairsError(f"Run {reference.id} was trained on {reference.base_model}, run {run.id} on "
                               f"{run.base_model}: only adapters of the same base answer from one loaded model.")
    return reference.adapter_path


def prompts_to_answer(db: sqlite_utils.Database, run: runs.TrainingRun) -> list[tuple[int, list[dict[str, Any]]]]:
    """(position, held-out example) to answer: all held-out prompts, except, for a preference
    round, those it learned from (its A/B must be on prompts it never saw)."""
    seen = rounds.seen_prompts(db, run.id)
    heldout = versions.version_messages(db, run.dataset_version_id, "heldout")
    return [(i, m) for i, m in enumerate(heldout)
            if json.dumps(generation.prompt_of(m)[0], sort_keys=True) not in seen]


def model_labels(db: sqlite_utils.Database, run_id: int) -> dict[str, str]:
    """What each side is called once identities are revealed: the two models' names."""
    run = runs.get_run(db, run_id)
    if run.reference_run_id is None:
        return {"base": "base model", "tuned": f"run {run_id}"}
    return {"base": f"run {run.reference_run_id}", "tuned": f"run {run_id}"}


def pairs(db: sqlite_utils.Database, run_id: int) -> list[Pair]:
    by_position: dict[int, dict[str, Any]] = {}
    for r in db.query("SELECT * FROM generations WHERE run_id = ? ORDER BY position", [run_id]):
        entry = by_position.setdefault(r["position"], {"prompt": json.loads(r["prompt_json"]),
                                                       "reference": r["reference"], "flags": set()})
        entry[r["side"]] = r["text"]
        entry["flags"].update(json.loads(r["flags_json"]))
    return [Pair(p, e["prompt"], e["reference"], e.get("base", ""), e.get("tuned", ""), sorted(e["flags"]))
            for p, e in sorted(by_position.items()) if "base" in e and "tuned" in e]
