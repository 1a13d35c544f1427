"""Files and processes of runs: run and log folders, the worker launcher, liveness, log tails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlite_utils

from core.platform.paths import REPO_ROOT, data_dir
from core.platform.store import now


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


def spawn_worker(database: str, job: str, object_id: int) -> int:
    """A detached worker process (new session) that outlives the app; returns the worker's pid.

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
    return int((logs / f"{job}-{object_id}.pid").read_text())


def process_alive(pid: int | None) -> bool:
    """Whether a worker process still runs (a zombie, finished but not reaped, does not)."""
    import psutil

    if not pid:
        return False
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True


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


