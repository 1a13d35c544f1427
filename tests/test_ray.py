"""Runs on a real one-node Ray head (issue 17), through the studio's own code path.

Marked slow: CI runs it (`make test` installs requirements-ray.txt); skip locally with -m "not slow".
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.jobs import queue
from core.models import generation
from core.pii import scan
from core.platform import paths, studio_settings
from core.training import runs, versions

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -r requirements-ray.txt")
RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    dashboard = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           # the job's `python` must be this environment's (the head inherits this PATH)
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = subprocess.run(
        [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={free_port()}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         "--num-cpus=2", "--disable-usage-stats",
         f"--temp-dir={tmp_path_factory.mktemp('ray')}"],
        env=env, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    yield f"http://127.0.0.1:{dashboard}"
    subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)


def wait_for(predicate, timeout=420, every=1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def test_runs_on_ray_finish_cancel_and_survive_a_restart(db, demo_dataset, ray_head):
    from ray.job_submission import JobSubmissionClient

    scan.scan_dataset(db, demo_dataset.id)
    version = versions.freeze(db, demo_dataset)
    target = studio_settings.RunTarget("ray", ray_head, 0, models_dir=str(paths.models_dir()))
    studio_settings.set_run_target(db, target)
    smoke = runs.PRESETS["smoke-test"].with_overrides({"max_steps": "2"})
    jobs = JobSubmissionClient(ray_head)

    # 1. A run goes to Ray, reports steps, and its adapter comes back with its lineage.
    done = runs.start_run(db, version, preset="smoke-test", config=smoke)
    assert runs.get_run(db, done.id).target == "ray"
    finished = wait_for(lambda: (r := runs.get_run(db, done.id)).finished and r)
    assert finished.status == "succeeded", finished.error
    assert str(jobs.get_job_status(finished.target_ref)).endswith("SUCCEEDED")
    events = runs.run_events(db, done.id)
    assert [e.step for e in events if e.loss is not None] == [1, 2]
    adapter = Path(finished.adapter_path)
    assert adapter.is_relative_to(paths.data_dir(Path(db.conn.execute("PRAGMA database_list").fetchone()[2])))
    assert generation.adapter_sha256(adapter) == finished.adapter_sha256
    card = (adapter / "README.md").read_text()
    assert "Ray cluster" in card and finished.target_ref in card and finished.adapter_sha256 in card
    assert finished.metrics["ran_on"].startswith("Ray job studio-")

    # 2. Cancel becomes Ray's stop.
    cancelled = runs.start_run(db, version, preset="smoke-test", config=smoke.with_overrides({"max_steps": "200"}))
    wait_for(lambda: runs.get_run(db, cancelled.id).phase.startswith("on Ray"))
    runs.cancel_run(db, cancelled.id)
    stopped = wait_for(lambda: (r := runs.get_run(db, cancelled.id)).finished and r)
    assert stopped.status == "cancelled"
    assert str(jobs.get_job_status(stopped.target_ref)).endswith("STOPPED")

    # 3. The studio restarts mid-run: its follower dies; the Ray job goes on; a new follower re-attaches.
    survivor = runs.start_run(db, version, preset="smoke-test", config=smoke.with_overrides({"seed": "7"}))
    running = wait_for(lambda: (r := runs.get_run(db, survivor.id)).target_ref and r.status == "running" and r)
    os.kill(running.pid, signal.SIGKILL)
    wait_for(lambda: runs.reconcile(db) or runs.get_run(db, survivor.id).status == "queued", timeout=30)
    assert runs.get_run(db, survivor.id).status == "queued"
    queue.start_waiting(db)
    back = wait_for(lambda: (r := runs.get_run(db, survivor.id)).finished and r)
    assert back.status == "succeeded", back.error
    assert back.target_ref == running.target_ref  # the same job, not a second submission
    submitted = [j for j in jobs.list_jobs() if (j.metadata or {}).get("studio_run") == str(survivor.id)]
    assert len(submitted) == 1
