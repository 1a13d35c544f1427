"""Background worker process: `python -m core.jobs.worker --db DB train|generate|playground|start-waiting ID [--detach]`.

Owns its job's state in SQLite from start to finish; the app only reads it and sets flags. Started
by the one launcher (core.platform.processes.launch); `start-waiting` (ID 0) only starts the work that
waits for a free slot, for a reconciler that found a dead job (core.platform.processes.reap).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import traceback

from core.jobs import queue
from core.platform import processes, store
from core.rating import pairs
from core.training import runs


def _detach(db_file: str, job: str, object_id: int) -> None:
    # Fork so the launcher exits at once (the app reaps it) and this process is adopted by init.
    pid = os.fork()
    if pid > 0:
        (processes.log_dir(db_file) / f"{job}-{object_id}.pid").write_text(str(pid))
        os._exit(0)
    os.setsid()


def explain_failure(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return ("Out of memory. Lower batch size or max length, use qlora, or turn on gradient "
                "checkpointing.")
    if isinstance(exc, ValueError):
        return f"Bad configuration: {exc}"
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return "The disk is full: free space and resume the run."
    return f"Training failed: {text}"


# ----------------------------------------------------------------------------- training

def train(db_file: str, run_id: int) -> int:
    db = store.connect(db_file)
    first_start = runs.claim_run(db, run_id, processes.ProcessId.current())
    if first_start is None:
        return 0  # another worker took it, or it was cancelled meanwhile
    run = runs.get_run(db, run_id)
    directory = processes.run_dir(db, run_id)
    if first_start:
        shutil.rmtree(directory, ignore_errors=True)  # a first start never resumes leftovers
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "train.log"
    log = open(log_path, "a", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        if run.target == "ray":
            from core.training import ray_runs

            result = ray_runs.follow(db, run, directory, log_path)
        else:
            runs.set_phase(db, run_id, "starting: loading the training libraries")
            from core.training import trainer

            result = trainer.train_adapter(db, run, directory, log_path)
        runs.finish_run(store.connect(db_file), run, result, processes.log_tail(log_path))
    except BaseException as exc:  # the run must end in a recorded state, whatever happened
        runs.fail_run(store.connect(db_file), run, explain_failure(exc) + "\n\n" + traceback.format_exc(),
                          type(exc).__name__, processes.log_tail(log_path))
    finally:
        _start_waiting(db_file)
    return 0


def _start_waiting(db_file: str) -> None:
    """A slot is free: start whatever waited longest, a training run or an answer-generation job."""
    queue.start_waiting(store.connect(db_file))


def generate_job(db_file: str, job_id: int) -> int:
    db = store.connect(db_file)
    if not pairs.claim_job(db, job_id, processes.ProcessId.current()):
        return 0
    try:
        pairs.run_generation_job(db, job_id)
    except BaseException as exc:  # record the failure; the page shows it
        pairs.fail_job(store.connect(db_file), job_id, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    finally:
        _start_waiting(db_file)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.jobs.worker")
    parser.add_argument("--db", required=True)
    parser.add_argument("job", choices=["train", "generate", "playground", processes.WAKE_JOB])
    parser.add_argument("object_id", type=int)
    parser.add_argument("--detach", action="store_true")
    args = parser.parse_args(argv)
    if args.detach:
        _detach(args.db, args.job, args.object_id)
    if args.job == "train":
        return train(args.db, args.object_id)
    if args.job == processes.WAKE_JOB:
        _start_waiting(args.db)
        return 0
    if args.job == "playground":
        from core.rating import playground

        try:
            playground.answer(store.connect(args.db), args.object_id, processes.ProcessId.current())
        finally:
            _start_waiting(args.db)
        return 0
    return generate_job(args.db, args.object_id)


if __name__ == "__main__":
    sys.exit(main())
