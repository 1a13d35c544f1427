"""Files and processes of background work: run and log folders, the one job launcher and reconciler, liveness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from core.platform.paths import REPO_ROOT, data_dir
from core.platform.store import now, transaction


def run_dir(db: sqlite_utils.Database | Path, run_id: int) -> Path:
    """Files of one run. Keyed by the database's name and store id: two databases in one folder,
    or a database re-created under an old name (run ids start again at 1), never share files."""
    database = db if isinstance(db, Path) else Path(db_file(db))
    return data_dir(database) / "runs" / _folder_name(database) / f"run-{run_id:04d}"


def log_dir(database: str | Path) -> Path:
    path = Path(database).resolve()
    return path.parent / "logs" / _folder_name(path)


def _folder_name(database: Path) -> str:
    # Read the store id with a plain read-only connection: callers (the launcher) may hold none.
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute("SELECT value FROM settings WHERE key = 'store_id'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        row = None
    return f"{database.stem}-{row[0]}" if row else database.stem


def db_file(db: sqlite_utils.Database) -> str:
    return str(db.execute("PRAGMA database_list").fetchone()[2])


def log_tail(path: Path, chars: int = 4000) -> str:
    """The end of a log file, for the run's live view and its final record."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ----------------------------------------------------------------------------- the job system
# Training runs, answer-generation jobs and playground requests are all "a row that a detached
# worker process owns while it runs". The steps below exist once; each kind's module passes
# callbacks that write its own table (one writer per table), and counts slots (core.platform.slots).

GONE = 0.0  # the start time recorded for a process that ended before it could be looked at
WAKE_JOB = "start-waiting"  # the worker command that starts waiting work and exits
# psutil's create_time() is the boot time plus the process's start ticks, and Linux gives the boot
# time (/proc/stat btime) in whole seconds, recomputed from the wall clock: when the clock is slewed or
# stepped across a second boundary every create_time() moves by 1 s at once. With 0.5 s, such a tick
# made every live worker look dead (a run 4 s old marked interrupted while it trained on). A pid
# reused after a reboot started minutes or hours apart, so 2 s still tells them apart.
START_TOLERANCE_S = 2.0


@dataclass(frozen=True)
class ProcessId:
    """One process: its pid and psutil's create_time(). A pid alone is reused (after a reboot the
    first few hundred come back within seconds), so a dead run could look alive (issue 22)."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        import psutil

        try:
            return cls(pid, psutil.Process(pid).create_time())
        except psutil.NoSuchProcess:
            return cls(pid, GONE)

    @classmethod
    def current(cls) -> ProcessId:
        return cls.of(os.getpid())


def alive(pid: int | None, started: float | None) -> bool:
    """The one answer to "does this job's process still run?". A zombie (finished, not reaped) does
    not; a process with this pid that started at another time is someone else. `started` is None
    only on rows written before pids had start times: then the pid alone decides, as it did."""
    import psutil

    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if started is not None and abs(process.create_time() - started) > START_TOLERANCE_S:
            return False
        return process.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process with this pid and start time: it exists
        return True


def spawn_worker(database: str, job: str, object_id: int) -> ProcessId:
    """A detached worker process (new session) that outlives the app; returns the worker's identity.

    The launcher forks once more and exits; the worker records its own pid, so no zombie is left
    in the app process. The launcher imports nothing heavy, so this returns in well under a second.
    """
    logs = log_dir(database)
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(logs / f"{job}-{object_id}.log", "ab") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "core.jobs.worker", "--db", database, job, str(object_id), "--detach"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd=REPO_ROOT, env=env)
        exit_code = launcher.wait(timeout=60)
    if exit_code != 0:
        raise RuntimeError(f"The worker launcher failed (exit code {exit_code}); see {logs / f'{job}-{object_id}.log'}")
    return ProcessId.of(int((logs / f"{job}-{object_id}.pid").read_text()))


def launch(db: sqlite_utils.Database, job: str, claim: Callable[[ProcessId], int | None],
           record: Callable[[int, ProcessId, ProcessId], None],
           release: Callable[[int, ProcessId, BaseException], None]) -> int | None:
    """The one claim-spawn-record launcher; returns the id of the object it started, or None.

    `claim(me)` runs in a write transaction: it takes a slot by marking its row with this launching
    process (alive while it launches, so no reconciler takes the job for dead) and returns the row's
    id, or None when it is not this kind's turn. The worker is spawned after the commit (spawning
    never holds the write lock). `record(id, me, worker)` then puts the worker's identity in place of
    ours where the worker has not claimed the row yet; `release(id, me, error)` gives the slot back
    if the spawn failed. Both run in a transaction; each owner writes only its own table.
    """
    me = ProcessId.current()
    with transaction(db):
        object_id = claim(me)
    if object_id is None:
        return None
    try:
        worker = spawn_worker(db_file(db), job, object_id)
    except BaseException as exc:
        with transaction(db):
            release(object_id, me, exc)
        raise
    with transaction(db):
        record(object_id, me, worker)
    return object_id


def reap(db: sqlite_utils.Database, held: Iterable[tuple[int, int | None, float | None]],
         mark_dead: Callable[[int], bool]) -> list[int]:
    """The one reconciler: the jobs in `held` (id, pid, pid start) whose process is gone get the
    owner's end state (`mark_dead(id)`, a conditional UPDATE that says whether it changed the row,
    all in one transaction). Whoever finds a dead job also starts what waits: its slot is free now,
    and nothing else would notice (issue 23). Returns the ids it marked."""
    dead = [object_id for object_id, pid, started in held if not alive(pid, started)]
    if not dead:
        return []
    with transaction(db):
        marked = [object_id for object_id in dead if mark_dead(object_id)]
    if marked:
        start_waiting(db)
    return marked


def start_waiting(db: sqlite_utils.Database) -> None:
    """Start the work that waits for a free slot, in a worker of its own: the queue (core.jobs)
    knows every kind, and a reconciler low in the layers must not import it."""
    spawn_worker(db_file(db), WAKE_JOB, 0)


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint. The Trainer writes trainer_state.json last, so a folder
    without it was cut off mid-save (killed process, full disk) and must not be resumed from."""
    checkpoints = sorted((p for p in directory.glob("checkpoint-*") if (p / "trainer_state.json").exists()),
                         key=lambda p: int(p.name.split("-")[-1]))
    return checkpoints[-1] if checkpoints else None


def write_model_card(adapter_dir: Path, run: Any, version: Any, metrics: dict[str, Any], sha: str,
                     where: str = "") -> None:
    """The adapter's README: base model, dataset version, PII gate, config, metrics, where it ran."""
    where = where or f"this studio's machine ({metrics.get('device', 'cpu')})"
    card = f"""---
base_model: {run.base_model}
library_name: peft
tags: [lora, qlora, tuning-studio]
---
# Adapter from Tuning Studio run {run.id}

- Base model: `{run.base_model}`
- Dataset version: {version.number} (sha256 `{version.content_hash}`), {version.train_count} train / {version.heldout_count} held-out examples
- PII gate: {"overridden: " + version.pii_override_reason if version.pii_override_reason else "passed"}
- Preset: `{run.preset}`
- Adapter sha256: `{sha}`
- Trained: {now()} on {where}

## Config
```json
{json.dumps(json.loads(run.config.to_json()), indent=2)}
```

## Metrics
```json
{json.dumps(metrics, indent=2)}
```

Load it with plain peft: `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), "{adapter_dir.name}")`.
"""
    (adapter_dir / "README.md").write_text(card, encoding="utf-8")


