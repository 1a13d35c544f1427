"""Training runs as records: reading a run (row -> TrainingRun) apart from launching and lifecycle.

Reading a run needs the store and the run's config only, so a page or report that shows runs does not
import the PII stack or the launcher (issue 22). The read is honest about a dead worker: a run whose
process is gone reads as what the reconciler will make of it (`after_death`), so nobody is shown a
killed run as "running"; core.training.runs records that state on its own reads (issue 23).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from core.platform.processes import alive
from core.training.config import TrainingConfig

TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
INTERRUPTED_ERROR = ("The training process stopped unexpectedly (killed, or the machine restarted). "
                     "Resume continues from the last checkpoint.")


class RunError(Exception):
    """A request about a training run that cannot be carried out; the message says why."""


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
    pid_started: float | None = None  # the worker's start time: with the pid, names one process
    kind: str = "sft"  # sft: trained on examples; dpo: a preference round on rated answers (issue 28)
    parent_run_id: int | None = None  # a preference round starts from this run's adapter
    rating_run_id: int | None = None  # ... and learns from this run's blind votes
    votes_sha256: str = ""  # ... exactly these votes
    reference_run_id: int | None = None  # what its answers are rated against (None: the base model)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrainingRun:
        """The run as it is: one whose process is gone reads as what it becomes (`after_death`)."""
        run = cls.stored(row)
        if run.holds_process and not alive(run.pid, run.pid_started):
            return after_death(run)
        return run

    @classmethod
    def stored(cls, row: dict[str, Any]) -> TrainingRun:
        """The row as written, for the reconciler that compares it with the process."""
        return cls(row["id"], row["dataset_version_id"], row["base_model"], row["preset"],
                   TrainingConfig.from_json(row["config_json"]), row["status"], row["pid"],
                   row["total_steps"], bool(row["cancel_requested"]), row["adapter_path"],
                   row["adapter_sha256"], json.loads(row["metrics_json"]), row["error"],
                   row["log_tail"], row["created_by"], row["approval"], row["approval_note"],
                   row["queued_at"], row["started_at"], row["finished_at"], row.get("phase") or "",
                   row.get("estimated_s"), row.get("target") or "local", row.get("target_ref") or "",
                   row.get("pid_started"), row.get("kind") or "sft", row.get("parent_run_id"),
                   row.get("rating_run_id"), row.get("votes_sha256") or "", row.get("reference_run_id"))

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def holds_process(self) -> bool:
        """Running, or claimed by a launcher that is starting its worker."""
        return self.status == "running" or (self.status == "queued" and self.pid is not None)


def after_death(run: TrainingRun) -> TrainingRun:
    """What a run becomes when its process is gone: the one rule, for reads and the reconciler.

    A Ray run whose follower here died still runs on the cluster: it goes back to the queue with its
    job id, so a new follower asks Ray for its state and picks it up. A local run is interrupted."""
    from dataclasses import replace

    if run.target == "ray" and run.target_ref:
        return replace(run, status="queued", pid=None, pid_started=None)
    return replace(run, status="interrupted", pid=None, pid_started=None, error=run.error or INTERRUPTED_ERROR)


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


def last_step(db: sqlite_utils.Database, run_id: int) -> int:
    """The highest step with a stored event (0: none), where a re-attached follower resumes."""
    row = db.execute("SELECT max(step) FROM run_events WHERE run_id = ?", [run_id]).fetchone()
    return int(row[0] or 0)
