"""The entry point of a studio run inside a Ray job: `python -m core.training.ray_job` in the bundle folder.

Ray starts it with the bundle as working directory (core.training.ray_runs submits it). It trains with the
studio's own trainer against a scratch database in that folder, and reports to the studio through
its job log, since the cluster cannot reach the studio's SQLite: one `@@studio {json}` line per
phase and step, then the result, then the adapter's files in base64 chunks with their sha256.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

EVENT_PREFIX = "@@studio "
CHUNK_BYTES = 48 * 1024


def emit(kind: str, **fields: Any) -> None:
    print(EVENT_PREFIX + json.dumps({"kind": kind, **fields}), flush=True)


def _follow_scratch(db_file: Path, run_id: int, done: threading.Event) -> None:
    """Relay the scratch run's phase and step events to the job log until training ends."""
    from core.platform import store

    db = store.connect(db_file)
    last_event, last_phase = 0, ""
    while True:
        finished = done.is_set()
        row = db.execute("SELECT phase, total_steps FROM runs WHERE id = ?", [run_id]).fetchone()
        if row and row[0] and row[0] != last_phase:
            last_phase = row[0]
            emit("phase", phase=row[0], total_steps=row[1])
        for event in db.query("SELECT * FROM run_events WHERE run_id = ? AND id > ? ORDER BY id", [run_id, last_event]):
            last_event = event["id"]
            emit("step", total_steps=row[1] if row else None,
                 **{k: event[k] for k in ("step", "epoch", "loss", "eval_loss", "learning_rate", "tokens_per_s",
                                          "memory_mb")})
        if finished:
            return
        time.sleep(1.0)


def main() -> int:
    bundle = Path.cwd()
    from core.platform import processes, store
    from core.platform.permissions import SYSTEM_ACTOR
    from core.training import bundles, runs

    db_file = bundle / "remote.db"
    db = store.connect(db_file)
    version, config, preset, base = bundles.load_bundle(db, bundle, SYSTEM_ACTOR, scan=False)
    run = runs.start_run(db, version, base_model=base, preset=preset, config=config, actor=SYSTEM_ACTOR,
                             launch=False, allow_duplicate=True)
    runs.claim_run(db, run.id, processes.ProcessId.current())
    run = runs.get_run(db, run.id)
    directory = processes.run_dir(db, run.id)
    directory.mkdir(parents=True, exist_ok=True)
    emit("phase", phase="starting on the Ray cluster: loading the training libraries")
    done = threading.Event()
    relay = threading.Thread(target=_follow_scratch, args=(db_file, run.id, done), daemon=True)
    relay.start()
    try:
        from core.training import trainer

        result = trainer.train_adapter(db, run, directory, directory / "train.log")
    except BaseException as exc:  # the studio records the failure from this line and the log
        done.set()
        relay.join()
        emit("error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        return 1
    done.set()
    relay.join()
    adapter = Path(result["adapter_path"])
    emit("result", status=result["status"], adapter_sha256=result["adapter_sha256"],
         metrics=json.loads(result["metrics_json"]))
    for path in sorted(adapter.iterdir()):
        data = path.read_bytes()
        for start in range(0, max(len(data), 1), CHUNK_BYTES):
            emit("file", name=path.name, data=base64.b64encode(data[start:start + CHUNK_BYTES]).decode())
        emit("file_end", name=path.name, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
