"""The heavy-work queue as users see it: what runs, what waits for what, and when it should start.

Training runs, answer-generation jobs and playground requests share the heavy-work slots
(core.platform.slots). This module reads their tables and starts waiting work when a slot frees; it
writes nothing itself (each kind's module claims its own rows through core.platform.processes.launch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from core.platform import slots
from core.rating import pairs, playground
from core.training import eta, run_records, runs

GENERATION_PRIOR_S_PER_PAIR = 4.0  # 135M model, 160 new tokens, both sides, on 2 CPU cores (bench/)
PLAYGROUND_PRIOR_S = 15.0  # a model load and one pair of answers


@dataclass(frozen=True)
class QueueItem:
    kind: str  # training | answers | playground
    object_id: int  # run id or generation job id
    run_id: int
    status: str  # running | waiting
    position: int  # 0 while running; 1 = next to start
    started_or_queued_at: str
    seconds_left: float | None  # running: measured; waiting: its expected duration
    starts_in_s: float | None  # waiting only: when a slot should free for it

    @property
    def label(self) -> str:
        if self.kind == "training":
            return f"training run {self.run_id}"
        if self.kind == "playground":
            return f"a playground prompt on run {self.run_id}"
        return f"answer generation for run {self.run_id} (job {self.object_id})"


def _seconds_since(stamp: str | None, now_s: float) -> float:
    return now_s - datetime.fromisoformat(stamp).timestamp() if stamp else 0.0


def _generation_left(done: int, total: int, started_at: str | None, now_s: float) -> float:
    elapsed = _seconds_since(started_at, now_s)
    per_pair = elapsed / done if done and elapsed > 0 else GENERATION_PRIOR_S_PER_PAIR
    return max(0.0, (total - done) * per_pair)


def items(db: sqlite_utils.Database, now_s: float | None = None) -> list[QueueItem]:
    """Running work first, then waiting work in the order it will start, with expected starts."""
    now_s = time.time() if now_s is None else now_s
    running: list[QueueItem] = []
    waiting: list[tuple[str, str, int, int, float | None]] = []
    for row in db.query("SELECT id FROM runs WHERE status IN ('queued', 'running') ORDER BY queued_at, id"):
        run = run_records.get_run(db, row["id"])  # a read: its process checked, nothing written
        if run.finished:
            continue
        if run.holds_process:
            # The same time left as the run panel shows (one function, never two answers).
            left = eta.time_left(run, runs.run_events(db, run.id), now_s).left_s
            running.append(QueueItem("training", run.id, run.id, "running", 0, run.started_at or run.queued_at,
                                     left, None))
        else:
            waiting.append((run.queued_at, "training", run.id, run.id, run.estimated_s))
    for job in db.query("SELECT * FROM generation_jobs WHERE status IN ('queued', 'running') ORDER BY created_at, id"):
        if job["status"] == "running" or job["pid"] is not None:
            running.append(QueueItem("answers", job["id"], job["run_id"], "running", 0,
                                     job["started_at"] or job["created_at"],
                                     _generation_left(job["done"], job["total"], job["started_at"], now_s), None))
        else:
            waiting.append((job["created_at"], "answers", job["id"], job["run_id"],
                            job["total"] * GENERATION_PRIOR_S_PER_PAIR))
    for ask in db.query("SELECT * FROM playground_requests WHERE status IN ('queued', 'running') ORDER BY created_at, id"):
        if ask["status"] == "running" or ask["pid"] is not None:
            running.append(QueueItem("playground", ask["id"], ask["run_id"], "running", 0, ask["created_at"],
                                     max(0.0, PLAYGROUND_PRIOR_S - _seconds_since(ask["created_at"], now_s)), None))
        else:
            waiting.append((ask["created_at"], "playground", ask["id"], ask["run_id"], PLAYGROUND_PRIOR_S))
    # Each slot frees when its work ends; waiting work takes the earliest free slot in order.
    free_at = sorted(item.seconds_left or 0.0 for item in running)
    free_at += [0.0] * max(0, slots.capacity(db) - len(free_at))
    queue = list(running)
    for position, (queued_at, kind, object_id, run_id, duration) in enumerate(sorted(waiting), start=1):
        free_at.sort()
        starts = free_at.pop(0) if free_at else None
        queue.append(QueueItem(kind, object_id, run_id, "waiting", position, queued_at, duration, starts))
        if starts is not None:
            free_at.append(starts + (duration or 0.0))
    return queue


def waiting_for(queue: list[QueueItem], kind: str, object_id: int) -> tuple[QueueItem, list[QueueItem]] | None:
    """If this work waits in the queue (from `items`), its entry and the work ahead of it; None when
    it runs or is done."""
    mine = next((i for i in queue if i.kind == kind and i.object_id == object_id), None)
    if mine is None or mine.status != "waiting":
        return None
    return mine, [i for i in queue if i.status == "running" or i.position < mine.position]


def start_waiting(db: sqlite_utils.Database) -> None:
    """A slot may be free (a worker ended, or one was found dead): start what waited longest,
    whatever its kind (each kind's launcher starts only its own, when it is first in line)."""
    reconcile(db)
    while runs.launch_next(db) or pairs.launch_next(db) or playground.launch_next(db):
        pass  # with several slots free, several jobs start


def reconcile(db: sqlite_utils.Database) -> int:
    """Every kind's jobs whose process is gone get their end state; returns how many."""
    return runs.reconcile(db) + pairs.reconcile_jobs(db) + playground.reconcile(db)
