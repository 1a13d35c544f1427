"""Runs on a Ray cluster (issue 17): submit through Ray's job API, follow, cancel, bring the adapter back.

The studio's worker process for a Ray run does not train: it writes the run's bundle (data, config
and the studio's own `core` package), submits it with `JobSubmissionClient` as the job's working
directory with `python -m core.training.ray_job` as entry point, records the submission id at once, and then
follows the job: phases and steps from the job log go into the same run rows and events a local
run writes, Cancel becomes Ray's stop, and on success the adapter's files come back from the log
into the run folder, checked against their sha256, with a model card that says where it ran.
If the studio restarts mid-run, core.training.runs.reconcile queues the run again with its job id and a new
follower picks the job up where it is (or where it ended).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from core.models import generation
from core.platform import processes, store, studio_settings
from core.platform.permissions import SYSTEM_ACTOR
from core.training import bundles, runs, versions
from core.training.ray_job import EVENT_PREFIX

POLL_S = 2.0
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class RayJobFailed(RuntimeError):
    """The Ray job ended without an adapter; the message says why (from Ray and the job's log)."""


def client(target: studio_settings.RunTarget) -> Any:
    studio_settings.require_ray()
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(target.address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayJobFailed(f"Cannot reach the Ray cluster at {target.address}: {exc}") from exc


def submit(db: sqlite_utils.Database, jobs: Any, run: runs.TrainingRun, target: studio_settings.RunTarget,
           directory: Path, submission_id: str) -> None:
    bundle = bundles.write_bundle(db, run, directory / "bundle", actor=SYSTEM_ACTOR, with_code=True)
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if target.models_dir:
        env["STUDIO_MODELS_DIR"] = target.models_dir
    jobs.submit_job(entrypoint="python -m core.training.ray_job", submission_id=submission_id,
                              runtime_env={"working_dir": str(bundle), "env_vars": env},
                              entrypoint_num_gpus=target.num_gpus or None,
                              metadata={"studio_run": str(run.id)})
    shutil.rmtree(bundle, ignore_errors=True)  # uploaded; the data must not linger in two places


def events(log_text: str) -> list[dict[str, Any]]:
    """The studio's lines in a job log, in order (anything else is the trainer's own output)."""
    return [json.loads(line[len(EVENT_PREFIX):]) for line in log_text.splitlines() if line.startswith(EVENT_PREFIX)]


def replayable(found: list[dict[str, Any]], stored_step: int) -> list[dict[str, Any]]:
    """The job's events a follower should apply: a re-attached follower reads the whole log again,
    so step events the run already stored (up to `stored_step`) are left out; replaying them made the
    curves and the time left wrong (issue 23). Phases, files and the result are applied again."""
    return [e for e in found if not (e.get("kind") == "step" and int(e.get("step", 0)) <= stored_step)]


def follow(db: sqlite_utils.Database, run: runs.TrainingRun, directory: Path, log_path: Path) -> dict[str, Any]:
    """Submit (or re-attach to) the run's Ray job and follow it to the end; returns the run's final fields."""
    target = studio_settings.run_target(db)
    jobs = client(target)
    if not run.target_ref:
        runs.set_phase(db, run.id, f"submitting to the Ray cluster at {target.address}")
        ref = f"studio-{store.store_id(db)}-run-{run.id}-{int(time.time())}"
        runs.set_target_ref(db, run.id, ref)  # first, so a restart finds the job whatever happens next
        submit(db, jobs, run, target, directory, ref)
    else:
        ref = run.target_ref
        runs.set_phase(db, run.id, f"re-attaching to Ray job {ref}")
    seen = 0
    stored_step = runs.last_step(db, run.id)  # a re-attached follower starts from what is stored
    files: dict[str, bytearray] = {}
    checked: dict[str, str] = {}
    result: dict[str, Any] = {}
    stop_sent = False
    while True:
        status = str(jobs.get_job_status(ref)).split(".")[-1]
        log = jobs.get_job_logs(ref)
        found = events(log)
        for event in replayable(found[seen:], stored_step):
            kind = event.pop("kind")
            if kind == "phase":
                runs.set_phase(db, run.id, f"on Ray: {event['phase']}")
            elif kind == "step":
                total = event.pop("total_steps", None)
                runs.record_progress(db, run.id, event, {"total_steps": total} if total else {})
            elif kind == "file":
                files.setdefault(event["name"], bytearray()).extend(base64.b64decode(event["data"]))
            elif kind == "file_end":
                checked[event["name"]] = event["sha256"]
            elif kind == "result":
                result = event
            elif kind == "error":
                raise RayJobFailed(f"{event['error']} (on the Ray cluster)\n\n{event.get('traceback', '')}")
        seen = len(found)
        log_path.write_text("\n".join(line for line in log.splitlines() if not line.startswith(EVENT_PREFIX)))
        if runs.cancel_requested(db, run.id) and not stop_sent and status not in TERMINAL:
            jobs.stop_job(ref)
            stop_sent = True
        if status in TERMINAL:
            break
        time.sleep(POLL_S)
    if status == "STOPPED" or (stop_sent and status != "SUCCEEDED"):
        return {"status": "cancelled" if stop_sent else "interrupted", "phase": "",
                "error": "" if stop_sent else f"Ray stopped job {ref}."}
    if status != "SUCCEEDED" or not result:
        message = jobs.get_job_info(ref).message or "no message"
        raise RayJobFailed(f"Ray job {ref} ended {status}: {message}")
    return _adapter_back(db, run, directory, files, checked, result, ref, target)


def _adapter_back(db: sqlite_utils.Database, run: runs.TrainingRun, directory: Path, files: dict[str, bytearray],
                  checked: dict[str, str], result: dict[str, Any], ref: str,
                  target: studio_settings.RunTarget) -> dict[str, Any]:
    adapter_dir = directory / "adapter"
    shutil.rmtree(adapter_dir, ignore_errors=True)
    adapter_dir.mkdir(parents=True)
    for name, data in files.items():
        if Path(name).name != name or name not in checked:
            raise RayJobFailed(f"The Ray job sent an unexpected file {name!r}; nothing was kept.")
        if hashlib.sha256(data).hexdigest() != checked[name]:
            raise RayJobFailed(f"{name} arrived damaged from the Ray job (sha256 mismatch); nothing was kept.")
        (adapter_dir / name).write_bytes(bytes(data))
    sha = generation.adapter_sha256(adapter_dir)
    if sha != result["adapter_sha256"]:
        raise RayJobFailed("The adapter that came back is not the one the Ray job trained (sha256 mismatch).")
    metrics = {**result["metrics"], "ran_on": f"Ray job {ref} at {target.address}",
               "num_gpus": target.num_gpus}
    version = versions.version_by_id(db, run.dataset_version_id)
    processes.write_model_card(adapter_dir, run, version, metrics, sha,
                               where=f"a Ray cluster ({target.address}, job {ref}, {target.num_gpus:g} GPU)")
    return {"status": result["status"], "adapter_path": str(adapter_dir), "adapter_sha256": sha,
            "metrics_json": json.dumps(metrics)}
