"""Answer pairs for blind rating: generation jobs (queued in the worker, reconciled when it dies) and the base/tuned answers.

Each chunk of answers is PII-scanned before it is stored, and pairs are shown only from a job that
succeeded: no unscanned or partial answer set reaches a rater (issue 23)."""

from __future__ import annotations

import json
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
    """Start the oldest waiting job if a heavy-work slot is free and no other heavy job has waited
    longer (core.platform.slots); returns its id. Through the one launcher (processes.launch)."""
    if slots.next_in_line(db) is None:
        return None  # nothing waits: no write lock taken

    def claim(me: processes.ProcessId) -> int | None:
        job_id = slots.turn_of(db, "answers")
        if job_id is not None:
            db.execute("UPDATE generation_jobs SET pid = ?, pid_started = ? WHERE id = ?", [me.pid, me.started, job_id])
        return job_id

    def record(job_id: int, me: processes.ProcessId, worker: processes.ProcessId) -> None:
        db.execute("UPDATE generation_jobs SET pid = ?, pid_started = ? WHERE id = ? AND status = 'queued' AND pid = ?",
                   [worker.pid, worker.started, job_id, me.pid])

    def release(job_id: int, me: processes.ProcessId, error: BaseException) -> None:
        # Never leave a queued job that nothing will pick up.
        _fail(db, job_id, f"The worker could not be started: {error}")

    return processes.launch(db, "generate", claim, record, release)


def claim_job(db: sqlite_utils.Database, job_id: int, worker: processes.ProcessId) -> bool:
    """The worker takes a queued generation job (False: someone else did, or it was reconciled)."""
    with transaction(db):
        return bool(db.execute("UPDATE generation_jobs SET status = 'running', pid = ?, pid_started = ?, "
                               "started_at = ? WHERE id = ? AND status = 'queued'",
                               [worker.pid, worker.started, now(), job_id]).rowcount)


def fail_job(db: sqlite_utils.Database, job_id: int, error: str) -> None:
    with transaction(db):
        _fail(db, job_id, error)


def _fail(db: sqlite_utils.Database, job_id: int, error: str) -> bool:
    return bool(db.execute("UPDATE generation_jobs SET status = 'failed', finished_at = ?, error = ? WHERE id = ? "
                           "AND status IN ('queued', 'running')", [now(), error, job_id]).rowcount)


def reconcile_jobs(db: sqlite_utils.Database) -> int:
    """Jobs whose worker is gone (killed, machine restarted) become `failed` with a reason, so the
    Rate page offers to generate again instead of waiting forever (issue 15); the one reconciler
    (processes.reap) then starts what waited behind them (issue 23)."""
    held = [(r["id"], r["pid"], r["pid_started"]) for r in db.query(
        "SELECT id, pid, pid_started FROM generation_jobs WHERE status IN ('queued', 'running') AND pid IS NOT NULL")]
    return len(processes.reap(db, held, lambda job_id: _fail(
        db, job_id, "The answer-generation process stopped unexpectedly (killed, or the machine restarted). "
        "Generate the answer pairs again.")))


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
    pii_config = scan.current_config(db)
    for start in range(0, len(heldout), config.batch_size):
        chunk = heldout[start:start + config.batch_size]
        positions = [position for position, _messages in numbered[start:start + config.batch_size]]
        prompts = [generation.prompt_of(m)[0] for m in chunk]
        base = generation.generate(model, tokenizer, prompts, config, side="base")
        tuned = generation.generate(model, tokenizer, prompts, config, side="tuned")
        # Scanned before the chunk is published: answers and their findings go in together (issue 23).
        findings = scan.analyze_texts(base + tuned, pii_config)
        base_found, tuned_found = findings[:len(base)], findings[len(base):]
        stamp = now()
        with transaction(db):
            for offset, (position, messages, b, t) in enumerate(zip(positions, chunk, base, tuned)):
                prompt, reference = generation.prompt_of(messages)
                for side, text, other, found in (("base", b, t, base_found[offset]),
                                                 ("tuned", t, b, tuned_found[offset])):
                    flags = generation.flags_for(text, other) + (["pii"] if found else [])
                    generation_id = insert_row(db, "generations", {
                        "run_id": run.id, "position": position, "prompt_json": json.dumps(prompt),
                        "reference": reference, "side": side, "text": text,
                        "settings_json": config.to_json(), "adapter_sha256": sha,
                        "flags_json": json.dumps(flags), "created_at": stamp})
                    scan.record_answer_findings(db, generation_id, text, found, pii_config)
            db.table("generation_jobs").update(job_id, {"done": start + len(chunk)})
    # Held-out loss and the forgetting probe, base vs tuned, recorded on the run for the summary.
    general = [line for line in generation.GENERAL_TEXT.read_text().splitlines() if line.strip()]
    metrics = {}
    for side in ("base", "tuned"):
        metrics[f"heldout_loss_{side}"] = round(generation.mean_loss(model, tokenizer, heldout, side=side), 4)
        metrics[f"general_loss_{side}"] = round(generation.mean_loss(model, tokenizer, texts=general, side=side), 4)
    runs.record_metrics(db, run.id, metrics)
    with transaction(db):
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
    return labels_of(runs.get_run(db, run_id))


def labels_of(run: runs.TrainingRun) -> dict[str, str]:
    """model_labels of a run already loaded (a report reads the run once)."""
    if run.reference_run_id is None:
        return {"base": "base model", "tuned": f"run {run.id}"}
    return {"base": f"run {run.reference_run_id}", "tuned": f"run {run.id}"}


def pairs(db: sqlite_utils.Database, run_id: int) -> list[Pair]:
    """The run's answer pairs, once its latest generation job succeeded: a failed or killed job's
    partial set is never rated (and the Rate page offers to generate again)."""
    job = latest_job(db, run_id)
    if job is None or job.status != "succeeded":
        return []
    by_position: dict[int, dict[str, Any]] = {}
    for r in db.query("SELECT * FROM generations WHERE run_id = ? ORDER BY position", [run_id]):
        entry = by_position.setdefault(r["position"], {"prompt": json.loads(r["prompt_json"]),
                                                       "reference": r["reference"], "flags": set()})
        entry[r["side"]] = r["text"]
        entry["flags"].update(json.loads(r["flags_json"]))
    return [Pair(p, e["prompt"], e["reference"], e.get("base", ""), e.get("tuned", ""), sorted(e["flags"]))
            for p, e in sorted(by_position.items()) if "base" in e and "tuned" in e]


def runs_with_pairs(db: sqlite_utils.Database, run_ids: list[int]) -> set[int]:
    """Which of these runs have answer pairs, in one query (the run picker asks on every rerun).
    A pair needs both sides at one position, as in `pairs`."""
    if not run_ids:
        return set()
    return {r[0] for r in db.execute(
        "SELECT DISTINCT b.run_id FROM generations b JOIN generations t ON t.run_id = b.run_id "
        f"AND t.position = b.position AND t.side = 'tuned' WHERE b.side = 'base' AND b.run_id IN "
        f"({', '.join('?' * len(run_ids))})", list(run_ids))}
