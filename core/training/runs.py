"""Training runs (the one writer of `runs` and `run_events`): queue, worker life, cancel/resume, reconcile, import.

Reading runs lives in core.training.run_records; the reads here also record what they find (a dead
worker's run is reconciled on every read of its status, issue 23)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import sqlite_utils

from core.models import registry
from core.pii import review
from core.platform import permissions, processes, slots, studio_settings
from core.platform.processes import ProcessId, run_dir
from core.platform.store import audit, get_setting, insert_row, now, set_setting, transaction
from core.training import run_records, versions
from core.training.config import DEFAULT_PRESET, PRESETS, TrainingConfig, early_stop_key, throughput_key
from core.training.run_records import (
    TERMINAL,
    RunError,
    RunEvent,
    TrainingRun,
    after_death,
    last_step,
    run_events,
)

# The read model's names, re-exported: callers that launch or change runs read them from here too.
__all__ = ["TERMINAL", "RunError", "RunEvent", "TrainingRun", "last_step", "run_events"]


class DuplicateRun(RunError):
    """An identical run is already queued or running (a double click, usually)."""


# ----------------------------------------------------------------------------- queue

def start_run(db: sqlite_utils.Database, version: versions.DatasetVersion, *,
              base_model: str = registry.DEFAULT_MODEL, preset: str = DEFAULT_PRESET,
              config: TrainingConfig | None = None, actor: str = "", launch: bool = True,
              allow_duplicate: bool = False, estimated_s: float | None = None,
              lineage: dict[str, Any] | None = None, preference_rows: list[dict[str, Any]] | None = None
              ) -> TrainingRun:
    """Queue a run on a frozen version and launch the queue; returns at once.

    estimated_s: the pre-launch estimate the user saw, kept so the queue can say when later work starts.
    lineage and preference_rows: a preference round's columns (kind, parent, rating run, votes hash,
    reference) and its frozen pairs, written in the same transaction (core.training.rounds)."""
    permissions.require(actor, "start_run")
    registry.resolve(base_model)  # a clear ModelUnavailable now, not a traceback in the worker
    review.require_clear_version(db, version.dataset_id, version.id, version.pii_override_reason,
                                     f"train on version {version.number}")
    if version.train_count == 0:
        raise RunError("This version has no training examples.")
    config = config or PRESETS[preset]
    with transaction(db):
        # Checked under the write lock: two tabs clicking at once cannot both pass.
        twin = None if allow_duplicate else db.execute(
            "SELECT id, status FROM runs WHERE dataset_version_id = ? AND base_model = ? AND config_json = ? "
            "AND kind = ? AND votes_sha256 = ? AND status IN ('queued', 'running')",
            [version.id, base_model, config.to_json(), (lineage or {}).get("kind", "sft"),
             (lineage or {}).get("votes_sha256", "")]).fetchone()
        if twin:
            raise DuplicateRun(f"Run {twin[0]} with exactly this version, model and configuration is already "
                               f"{twin[1]}. Start another only if you mean to (confirm to do so).")
        target = studio_settings.run_target(db).kind
        # Read in the transaction that records it: a switch to Ray a moment ago cannot slip a round through.
        if (lineage or {}).get("kind") == "dpo" and target != "local":
            raise RunError("Preference rounds train on this machine only (not yet on a Ray cluster): "
                           "set the run target to this machine in Settings to start one.")
        run_id = insert_row(db, "runs", {
            "dataset_version_id": version.id, "base_model": base_model, "preset": preset,
            "config_json": config.to_json(), "status": "queued", "created_by": actor,
            "queued_at": now(), "estimated_s": estimated_s, "target": target,
            **(lineage or {})})
        for row in preference_rows or []:
            db.table("preference_pairs").insert({**row, "run_id": run_id})
        audit(db, actor, "start_run", "run", run_id, {"preset": preset, "version": version.id, **(lineage or {})})
    if launch:
        launch_next(db)
    return get_run(db, int(run_id))


def set_reference(db: sqlite_utils.Database, run_id: int, reference_run_id: int | None, actor: str = "") -> TrainingRun:
    """Choose what a run's answers are rated against: another run's adapter, or None for the base.
    Only before its answers exist (checked under the write lock), so no pair mixes two references."""
    permissions.require(actor, "start_run")
    if reference_run_id == run_id:
        raise RunError("A run cannot be compared with itself.")
    with transaction(db):
        if db.execute("SELECT 1 FROM generations WHERE run_id = ? UNION ALL SELECT 1 FROM generation_jobs "
                      "WHERE run_id = ? AND status IN ('queued', 'running') LIMIT 1", [run_id, run_id]).fetchone():
            raise RunError(f"Run {run_id} already has answer pairs against its current reference; "
                           "compare other models on a run without answers.")
        db.execute("UPDATE runs SET reference_run_id = ? WHERE id = ?", [reference_run_id, run_id])
        audit(db, actor, "set_reference", "run", run_id, {"reference_run_id": reference_run_id})
    return get_run(db, run_id)


def get_run(db: sqlite_utils.Database, run_id: int) -> TrainingRun:
    """A run as it is now: a run whose worker died is recorded as such first (and what waited starts)."""
    reconcile(db)
    return run_records.get_run(db, run_id)


def list_runs(db: sqlite_utils.Database, dataset_id: int | None = None) -> list[TrainingRun]:
    reconcile(db)
    return run_records.list_runs(db, dataset_id)


def launch_next(db: sqlite_utils.Database) -> int | None:
    """Start the oldest queued run if a heavy-work slot is free and no other heavy job has waited
    longer (core.platform.slots); returns its id. Through the one launcher (processes.launch)."""
    reconcile(db)
    if slots.next_in_line(db) is None and slots.waiting_remote_run(db) is None:
        return None  # nothing waits: no write lock taken

    def claim(me: ProcessId) -> int | None:
        run_id = slots.turn_of(db, "training")
        if run_id is not None:
            db.execute("UPDATE runs SET pid = ?, pid_started = ? WHERE id = ?", [me.pid, me.started, run_id])
        return run_id

    def record(run_id: int, me: ProcessId, worker: ProcessId) -> None:
        # The worker may have claimed the run already (then it wrote its own pid): only replace ours.
        db.execute("UPDATE runs SET pid = ?, pid_started = ? WHERE id = ? AND status = 'queued' AND pid = ?",
                   [worker.pid, worker.started, run_id, me.pid])

    def release(run_id: int, me: ProcessId, error: BaseException) -> None:  # the run stays queued
        db.execute("UPDATE runs SET pid = NULL, pid_started = NULL WHERE id = ? AND status = 'queued' AND pid = ?",
                   [run_id, me.pid])

    return processes.launch(db, "train", claim, record, release)


# ----------------------------------------------------------------------------- the worker's writes
# The worker process records its run's life here, so `runs` and `run_events` have one writer.

def claim_run(db: sqlite_utils.Database, run_id: int, worker: ProcessId) -> bool | None:
    """Mark a queued run running under this process. None: not claimable; True: its first start."""
    with transaction(db):
        before = db.execute("SELECT started_at FROM runs WHERE id = ?", [run_id]).fetchone()
        claimed = db.execute(
            "UPDATE runs SET status = 'running', pid = ?, pid_started = ?, started_at = coalesce(started_at, ?), "
            "heartbeat_at = ? WHERE id = ? AND status = 'queued'",
            [worker.pid, worker.started, now(), now(), run_id]).rowcount
    if not claimed:
        return None
    return before is not None and before[0] is None


def record_progress(db: sqlite_utils.Database, run_id: int, event: dict[str, Any] | None,
                    update: dict[str, Any]) -> None:
    """One training step's event (optional) and the run's live fields, with a heartbeat."""
    with transaction(db):
        if event is not None:
            db.table("run_events").insert({"run_id": run_id, **event, "created_at": now()})
        db.table("runs").update(run_id, {**update, "heartbeat_at": now()})


def set_target_ref(db: sqlite_utils.Database, run_id: int, ref: str) -> None:
    """The Ray job's submission id, recorded before anything else so a restart can find the job."""
    with transaction(db):
        db.execute("UPDATE runs SET target_ref = ? WHERE id = ?", [ref, run_id])


def set_phase(db: sqlite_utils.Database, run_id: int, phase: str) -> None:
    """Say what the worker is doing, so the live panel never sits at "running 0/?" unexplained."""
    record_progress(db, run_id, None, {"phase": phase})


def cancel_requested(db: sqlite_utils.Database, run_id: int) -> bool:
    row = db.execute("SELECT cancel_requested FROM runs WHERE id = ?", [run_id]).fetchone()
    return bool(row and row[0])


def record_throughput(db: sqlite_utils.Database, base_model: str, method: str, tokens_per_s: float,
                      dtype: str = "fp32", schedule_used: float | None = None,
                      batch_size: int = TrainingConfig.batch_size, config: TrainingConfig | None = None) -> None:
    """A CPU run's measured speed (the basis of the next estimate for this model, method, precision
    and batch size) and, for a run with early stopping, the share of its schedule it used (1.0 when it
    never stopped), under its stop rule's key."""
    with transaction(db):
        set_setting(db, throughput_key(base_model, method, dtype, batch_size), str(tokens_per_s))
        if schedule_used is not None:
            key = early_stop_key(config or TrainingConfig())
            raw = get_setting(db, key)
            recent = (json.loads(raw) if raw else [])[-4:] + [round(schedule_used, 3)]
            set_setting(db, key, json.dumps(recent))


def finish_run(db: sqlite_utils.Database, run: TrainingRun, result: dict[str, Any], log_tail_text: str) -> None:
    with transaction(db):
        db.table("runs").update(run.id, {**result, "finished_at": now(), "log_tail": log_tail_text, "phase": ""})
        audit(db, run.created_by, f"run_{result['status']}", "run", run.id,
              {"adapter_sha256": result.get("adapter_sha256")})


def fail_run(db: sqlite_utils.Database, run: TrainingRun, error: str, error_type: str, log_tail_text: str) -> None:
    with transaction(db):
        db.table("runs").update(run.id, {"status": "failed", "finished_at": now(), "error": error,
                                         "log_tail": log_tail_text, "phase": ""})
        audit(db, run.created_by, "run_failed", "run", run.id, {"error": error_type})


def record_metrics(db: sqlite_utils.Database, run_id: int, metrics: dict[str, Any]) -> None:
    """Merge evaluation metrics (held-out loss, forgetting probe) into the run's metrics."""
    with transaction(db):
        current = json.loads(db.execute("SELECT metrics_json FROM runs WHERE id = ?", [run_id]).fetchone()[0])
        db.table("runs").update(run_id, {"metrics_json": json.dumps({**current, **metrics})})


def set_approval(db: sqlite_utils.Database, run_id: int, decision: str, note: str) -> None:
    """The sign-off decision on a run, inside the caller's transaction (core.reports.export.approve
    checks the role and audits)."""
    db.table("runs").update(run_id, {"approval": decision, "approval_note": note})


def reconcile(db: sqlite_utils.Database) -> int:
    """Runs marked running (or launched) whose process is gone get their end state
    (run_records.after_death: interrupted, or back in the queue for a Ray run whose job goes on);
    the one reconciler (processes.reap) then starts what waits."""
    held = {r.id: r for r in map(TrainingRun.stored, db.query(
        "SELECT * FROM runs WHERE status = 'running' OR (status = 'queued' AND pid IS NOT NULL)"))}

    def mark_dead(run_id: int) -> bool:
        run = held[run_id]
        dead = after_death(run)
        changed = db.execute(
            "UPDATE runs SET status = ?, pid = NULL, pid_started = NULL, error = ?, "
            "finished_at = CASE WHEN ? = 'interrupted' THEN ? ELSE finished_at END "
            "WHERE id = ? AND status = ? AND pid IS ?",
            [dead.status, dead.error, dead.status, now(), run_id, run.status, run.pid]).rowcount
        if changed:
            audit(db, "studio", "run_follower_lost" if dead.status == "queued" else "run_interrupted", "run",
                  run_id, {"ray_job": run.target_ref} if dead.status == "queued" else {})
        return bool(changed)

    return len(processes.reap(db, [(r.id, r.pid, r.pid_started) for r in held.values()], mark_dead))


def cancel_run(db: sqlite_utils.Database, run_id: int, actor: str = "") -> TrainingRun:
    """Ask a run to stop; the trainer saves and stops at the next step. A queued run stops now.

    Each case is one conditional UPDATE: a worker that claims the run meanwhile makes the first
    miss, and the run is then asked to stop instead of being marked cancelled while it trains.
    A queued Ray run that already has a cluster job (its follower died) keeps its place: its next
    follower sees the request and stops the cluster job (Ray's stop_job), which only it can reach."""
    permissions.require(actor, "start_run")
    with transaction(db):
        stopped = db.execute(
            "UPDATE runs SET status = 'cancelled', finished_at = ?, cancel_requested = 1 WHERE id = ? AND "
            "status = 'queued' AND pid IS NULL AND NOT (target = 'ray' AND target_ref != '')", [now(), run_id]).rowcount
        asked = stopped or db.execute(
            "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status IN ('running', 'queued')",
            [run_id]).rowcount
        if asked:
            audit(db, actor, "cancel_run", "run", run_id, {"stopped_while_queued": bool(stopped)})
    run = get_run(db, run_id)
    if not asked and not run.finished:
        raise RunError(f"Run {run_id} is {run.status}; it cannot be cancelled.")
    if asked and not stopped and run.target == "ray" and run.status == "queued":
        launch_next(db)  # the follower that stops the cluster job
    return get_run(db, run_id)


def resume_run(db: sqlite_utils.Database, run_id: int, actor: str = "", launch: bool = True) -> TrainingRun:
    """Re-queue an interrupted, cancelled or failed run; it continues from its last checkpoint
    (on a Ray cluster: a new job from the start, since the checkpoints stayed on the cluster)."""
    permissions.require(actor, "start_run")
    reconcile(db)
    with transaction(db):
        resumed = db.execute(
            "UPDATE runs SET status = 'queued', pid = NULL, pid_started = NULL, cancel_requested = 0, "
            "finished_at = NULL, error = '', target_ref = '' WHERE id = ? AND status IN "
            "('interrupted', 'cancelled', 'failed')", [run_id]).rowcount
        if resumed:
            audit(db, actor, "resume_run", "run", run_id, {})
    if not resumed:
        raise RunError(f"Run {run_id} is {run_records.get_run(db, run_id).status}; only stopped runs can resume.")
    if launch:
        launch_next(db)
    return get_run(db, run_id)


def delete_run(db: sqlite_utils.Database, run_id: int, actor: str = "") -> None:
    permissions.require(actor, "delete_run")
    reconcile(db)
    with transaction(db):
        # A run that holds a process (or a Ray job) is never deleted under it.
        sha = db.execute("SELECT adapter_sha256 FROM runs WHERE id = ?", [run_id]).fetchone()
        deleted = db.execute("DELETE FROM runs WHERE id = ? AND status != 'running' AND pid IS NULL AND NOT "
                             "(status = 'queued' AND target_ref != '')", [run_id]).rowcount
        if deleted:
            audit(db, actor, "delete_run", "run", run_id, {"adapter_sha256": sha[0] if sha else None})
    if not deleted:
        if sha is None:
            raise RunError(f"No run {run_id}.")
        raise RunError("Cancel the run before deleting it.")
    shutil.rmtree(run_dir(db, run_id), ignore_errors=True)


# The files that make a PEFT adapter; anything else in the folder (optimizer state, data, links to
# elsewhere on the server) is not copied.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md")


def _adapter_files(source: Path) -> list[Path]:
    """The adapter's own regular files; a symbolic link is refused, never followed."""
    if source.is_symlink() or not source.is_dir():
        raise RunError(f"{source} is not a folder (symbolic links are not followed).")
    files = []
    for name in ADAPTER_FILES:
        path = source / name
        if path.is_symlink():
            raise RunError(f"{path} is a symbolic link; copy the real file into the folder.")
        if path.is_file():
            files.append(path)
    names = {f.name for f in files}
    if "adapter_config.json" not in names:
        raise RunError(f"{source} has no adapter_config.json: not a PEFT adapter directory.")
    if not names & {"adapter_model.safetensors", "adapter_model.bin"}:
        raise RunError(f"{source} has no adapter weights (adapter_model.safetensors).")
    return files


def import_adapter(db: sqlite_utils.Database, directory: Path, version_id: int, *, actor: str = "",
                   base_model: str = registry.DEFAULT_MODEL) -> TrainingRun:
    """Register a PEFT adapter trained elsewhere (a bundle, another machine) as a finished run."""
    from core.models import generation

    permissions.require(actor, "import_adapter")
    source = Path(directory)
    files = _adapter_files(source)
    adapter_config = json.loads((source / "adapter_config.json").read_text())
    version = versions.version_by_id(db, version_id)
    with transaction(db):
        run_id = insert_row(db, "runs", {
            "dataset_version_id": version.id, "base_model": base_model, "preset": "imported",
            "config_json": TrainingConfig().to_json(), "status": "succeeded", "created_by": actor,
            "queued_at": now(), "finished_at": now(),
            "metrics_json": json.dumps({"imported_from": str(source.resolve()),
                                        "base_model_name_or_path": adapter_config.get("base_model_name_or_path")})})
    # Copy and hash outside the write transaction (slow work never holds the write lock).
    target = run_dir(db, run_id) / "adapter"
    try:
        target.mkdir(parents=True, exist_ok=False)
        for f in files:
            shutil.copyfile(f, target / f.name, follow_symlinks=False)
        sha = generation.adapter_sha256(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        with transaction(db):
            db.execute("DELETE FROM runs WHERE id = ?", [run_id])
        raise
    with transaction(db):
        db.table("runs").update(run_id, {"adapter_path": str(target), "adapter_sha256": sha})
        audit(db, actor, "import_adapter", "run", run_id, {"source": str(source), "files": [f.name for f in files]})
    return get_run(db, run_id)
