"""Training runs (the one writer of `runs` and `run_events`): queue, worker life, cancel/resume, reconcile, import."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from core.models import registry
from core.pii import review
from core.platform import permissions, slots, studio_settings
from core.platform.processes import db_file, process_alive, run_dir, spawn_worker
from core.platform.store import audit, get_setting, insert_row, now, set_setting, transaction
from core.training import versions
from core.training.config import DEFAULT_PRESET, EARLY_STOP_KEY, PRESETS, TrainingConfig, throughput_key


class RunError(Exception):
    """A request about a training run that cannot be carried out; the message says why."""


class DuplicateRun(RunError):
    """An identical run is already queued or running (a double click, usually)."""


TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class TrainingRun:
    id: int
    dataset_version_id: int
    base_model: str
    preset: str
    config: TrainingConfig
    status: str
    pid: int | None
    total_steps: int | None
    cancel_requested: bool
    adapter_path: str | None
    adapter_sha256: str | None
    metrics: dict[str, Any]
    error: str
    log_tail: str
    created_by: str
    approval: str
    approval_note: str
    queued_at: str
    started_at: str | None
    finished_at: str | None
    phase: str = ""  # what the worker is doing now: loading the model, tokenising, training, saving
    estimated_s: float | None = None  # the pre-launch duration estimate, for the queue's expected starts
    target: str = "local"  # where it runs: a worker process here, or a Ray job
    target_ref: str = ""  # the Ray job's submission id
    kind: str = "sft"  # sft: trained on examples; dpo: a preference round on rated answers (issue 28)
    parent_run_id: int | None = None  # a preference round starts from this run's adapter
    rating_run_id: int | None = None  # ... and learns from this run's blind votes
    votes_sha256: str = ""  # ... exactly these votes
    reference_run_id: int | None = None  # what its answers are rated against (None: the base model)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrainingRun:
        return cls(row["id"], row["dataset_version_id"], row["base_model"], row["preset"],
                   TrainingConfig.from_json(row["config_json"]), row["status"], row["pid"],
                   row["total_steps"], bool(row["cancel_requested"]), row["adapter_path"],
                   row["adapter_sha256"], json.loads(row["metrics_json"]), row["error"],
                   row["log_tail"], row["created_by"], row["approval"], row["approval_note"],
                   row["queued_at"], row["started_at"], row["finished_at"], row.get("phase") or "",
                   row.get("estimated_s"), row.get("target") or "local", row.get("target_ref") or "",
                   row.get("kind") or "sft", row.get("parent_run_id"), row.get("rating_run_id"),
                   row.get("votes_sha256") or "", row.get("reference_run_id"))

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class RunEvent:
    step: int
    epoch: float | None
    loss: float | None
    eval_loss: float | None
    learning_rate: float | None
    tokens_per_s: float | None
    memory_mb: float | None
    created_at: str = ""


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
            "AND status IN ('queued', 'running')", [version.id, base_model, config.to_json()]).fetchone()
        if twin:
            raise DuplicateRun(f"Run {twin[0]} with exactly this version, model and configuration is already "
                               f"{twin[1]}. Start another only if you mean to (confirm to do so).")
        run_id = insert_row(db, "runs", {
            "dataset_version_id": version.id, "base_model": base_model, "preset": preset,
            "config_json": config.to_json(), "status": "queued", "created_by": actor,
            "queued_at": now(), "estimated_s": estimated_s, "target": studio_settings.run_target(db).kind,
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
        if db.execute("SELECT 1 FROM generations WHERE run_id = ? LIMIT 1", [run_id]).fetchone():
            raise RunError(f"Run {run_id} already has answer pairs against its current reference; "
                           "compare other models on a run without answers.")
        db.execute("UPDATE runs SET reference_run_id = ? WHERE id = ?", [reference_run_id, run_id])
        audit(db, actor, "set_reference", "run", run_id, {"reference_run_id": reference_run_id})
    return get_run(db, run_id)


def get_run(db: sqlite_utils.Database, run_id: int) -> TrainingRun:
    rows = list(db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
    if not rows:
        raise RunError(f"No run {run_id}.")
    return TrainingRun.from_row(rows[0])


def list_runs(db: sqlite_utils.Database, dataset_id: int | None = None) -> list[TrainingRun]:
    if dataset_id is None:
        rows = db.query("SELECT * FROM runs ORDER BY id DESC")
    else:
        rows = db.query("SELECT r.* FROM runs r JOIN dataset_versions v ON v.id = r.dataset_version_id "
                        "WHERE v.dataset_id = ? ORDER BY r.id DESC", [dataset_id])
    return [TrainingRun.from_row(r) for r in rows]


def run_events(db: sqlite_utils.Database, run_id: int) -> list[RunEvent]:
    return [RunEvent(r["step"], r["epoch"], r["loss"], r["eval_loss"], r["learning_rate"],
                     r["tokens_per_s"], r["memory_mb"], r["created_at"])
            for r in db.query("SELECT * FROM run_events WHERE run_id = ? ORDER BY id", [run_id])]


def launch_next(db: sqlite_utils.Database) -> int | None:
    """Start the oldest queued run if a heavy-work slot is free and no answer-generation job has
    waited longer (core.platform.slots); returns its id.

    The slot is claimed in a short transaction (pid = this process, alive while it launches), and
    the worker is spawned after the commit: spawning never holds the write lock (issue 15).
    """
    reconcile(db)
    if slots.next_in_line(db) is None and slots.waiting_remote_run(db) is None:
        return None  # nothing waits: no write lock taken
    me = os.getpid()
    with transaction(db):
        turn = slots.turn_of(db, "training")
        if turn is None:
            return None
        run_id = turn
        db.execute("UPDATE runs SET pid = ? WHERE id = ?", [me, run_id])
    try:
        pid = spawn_worker(db_file(db), "train", run_id)
    except BaseException:
        with transaction(db):  # give the slot back; the run stays queued
            db.execute("UPDATE runs SET pid = NULL WHERE id = ? AND status = 'queued' AND pid = ?", [run_id, me])
        raise
    # The worker may have claimed the run already (then it wrote its own pid): only replace ours.
    with transaction(db):
        db.execute("UPDATE runs SET pid = ? WHERE id = ? AND status = 'queued' AND pid = ?", [pid, run_id, me])
    return run_id


# ----------------------------------------------------------------------------- the worker's writes
# The worker process records its run's life here, so `runs` and `run_events` have one writer.

def claim_run(db: sqlite_utils.Database, run_id: int, pid: int) -> bool | None:
    """Mark a queued run running under this pid. None: not claimable; True: its first start."""
    with transaction(db):
        before = db.execute("SELECT started_at FROM runs WHERE id = ?", [run_id]).fetchone()
        claimed = db.execute(
            "UPDATE runs SET status = 'running', pid = ?, started_at = coalesce(started_at, ?), heartbeat_at = ? "
            "WHERE id = ? AND status = 'queued'", [pid, now(), now(), run_id]).rowcount
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


def time_left_s(run: TrainingRun, events: list[RunEvent], now_s: float) -> tuple[float, float | None]:
    """Seconds since the run started, and seconds left from the measured time per step so far
    (None until two steps have been timed)."""
    from datetime import datetime

    started = datetime.fromisoformat(run.started_at).timestamp() if run.started_at else now_s
    stamps = [datetime.fromisoformat(e.created_at).timestamp() for e in events if e.loss is not None]
    steps = [e.step for e in events if e.loss is not None]
    if len(stamps) < 2 or not run.total_steps or steps[-1] <= steps[0]:
        return now_s - started, None
    per_step = (stamps[-1] - stamps[0]) / (steps[-1] - steps[0])
    return now_s - started, max(0.0, (run.total_steps - steps[-1]) * per_step)


def cancel_requested(db: sqlite_utils.Database, run_id: int) -> bool:
    row = db.execute("SELECT cancel_requested FROM runs WHERE id = ?", [run_id]).fetchone()
    return bool(row and row[0])


def record_throughput(db: sqlite_utils.Database, base_model: str, method: str, tokens_per_s: float,
                      dtype: str = "fp32", schedule_used: float | None = None) -> None:
    """A CPU run's measured speed (the basis of the next estimate for this model, method and
    precision) and, for an early-stopped run, the share of its schedule it used."""
    with transaction(db):
        set_setting(db, throughput_key(base_model, method, dtype), str(tokens_per_s))
        if schedule_used is not None:
            raw = get_setting(db, EARLY_STOP_KEY)
            recent = (json.loads(raw) if raw else [])[-4:] + [round(schedule_used, 3)]
            set_setting(db, EARLY_STOP_KEY, json.dumps(recent))


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
    """The sign-off decision on a run (the caller, signoff, checks the role and audits)."""
    db.table("runs").update(run_id, {"approval": decision, "approval_note": note})


def reconcile(db: sqlite_utils.Database) -> int:
    """Runs marked running (or launched) whose process is gone become `interrupted`.

    A Ray run whose follower here died (app restart) still runs on the cluster: it goes back to
    the queue with its job id, so a new follower asks Ray for its state and picks it up."""
    stale = [r for r in db.query("SELECT id, pid, target, target_ref FROM runs WHERE status = 'running' OR "
                                 "(status = 'queued' AND pid IS NOT NULL)")
             if not process_alive(r["pid"])]
    if not stale:
        return 0
    with transaction(db):
        for r in stale:
            if r["target"] == "ray" and r["target_ref"]:
                db.execute("UPDATE runs SET status = 'queued', pid = NULL WHERE id = ? AND status IN "
                           "('running', 'queued')", [r["id"]])
                audit(db, "studio", "run_follower_lost", "run", r["id"], {"ray_job": r["target_ref"]})
                continue
            db.execute("UPDATE runs SET status = 'interrupted', finished_at = ?, error = CASE WHEN "
                       "error = '' THEN 'The training process stopped unexpectedly (killed, or the "
                       "machine restarted). Resume continues from the last checkpoint.' ELSE error END "
                       "WHERE id = ? AND status IN ('running', 'queued')", [now(), r["id"]])
            audit(db, "studio", "run_interrupted", "run", r["id"], {})
    return len(stale)


def cancel_run(db: sqlite_utils.Database, run_id: int, actor: str = "") -> TrainingRun:
    """Ask a run to stop; the trainer saves and stops at the next step. A queued run stops now."""
    permissions.require(actor, "start_run")
    run = get_run(db, run_id)
    with transaction(db):
        if run.status == "queued" and run.pid is None:
            db.table("runs").update(run_id, {"status": "cancelled", "finished_at": now(), "cancel_requested": 1})
        elif run.status in ("running", "queued"):
            db.table("runs").update(run_id, {"cancel_requested": 1})
        audit(db, actor, "cancel_run", "run", run_id, {})
    return get_run(db, run_id)


def resume_run(db: sqlite_utils.Database, run_id: int, actor: str = "", launch: bool = True) -> TrainingRun:
    """Re-queue an interrupted, cancelled or failed run; it continues from its last checkpoint
    (on a Ray cluster: a new job from the start, since the checkpoints stayed on the cluster)."""
    permissions.require(actor, "start_run")
    run = get_run(db, run_id)
    if run.status not in ("interrupted", "cancelled", "failed"):
        raise RunError(f"Run {run_id} is {run.status}; only stopped runs can resume.")
    with transaction(db):
        db.table("runs").update(run_id, {"status": "queued", "pid": None, "cancel_requested": 0,
                                   "finished_at": None, "error": "", "target_ref": ""})
        audit(db, actor, "resume_run", "run", run_id, {})
    if launch:
        launch_next(db)
    return get_run(db, run_id)


def delete_run(db: sqlite_utils.Database, run_id: int, actor: str = "") -> None:
    permissions.require(actor, "delete_run")
    run = get_run(db, run_id)
    if run.status == "running":
        raise RunError("Cancel the run before deleting it.")
    with transaction(db):
        db.execute("DELETE FROM runs WHERE id = ?", [run_id])
        audit(db, actor, "delete_run", "run", run_id, {"adapter_sha256": run.adapter_sha256})
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
