"""One heavy-work queue for training and answer generation (issue 16): first come, first served
across both kinds, with positions and expected starts a user can read."""

import pytest

from core.jobs import queue as work_queue
from core.models import generation
from core.pii import scan
from core.platform import processes, slots
from core.rating import pairs as answer_pairs
from core.training import runs, versions


def test_generation_waits_for_training_and_keeps_its_place(db, demo_dataset, random_adapter):
    scan.scan_dataset(db, demo_dataset.id)
    version = versions.freeze(db, demo_dataset)
    finished = runs.import_adapter(db, random_adapter, version.id)
    assert slots.capacity(db) == 1
    # A training run holds the only slot (claimed by a live process: this one).
    training_run = runs.start_run(db, version, launch=False, estimated_s=600)
    assert runs.claim_run(db, training_run.id, processes.ProcessId.current()) is not None
    job = answer_pairs.start_generation(db, finished.id, generation.GenerationConfig(max_new_tokens=8))
    assert (job.status, answer_pairs.get_job(db, job.id).status) == ("queued", "queued")
    assert db.execute("SELECT pid FROM generation_jobs WHERE id = ?", [job.id]).fetchone()[0] is None  # not spawned
    later_run = runs.start_run(db, version, launch=True, allow_duplicate=True, estimated_s=300)
    assert runs.get_run(db, later_run.id).pid is None  # waits too

    queue = work_queue.items(db)
    assert [(i.kind, i.object_id, i.status, i.position) for i in queue] == [
        ("training", training_run.id, "running", 0), ("answers", job.id, "waiting", 1),
        ("training", later_run.id, "waiting", 2)]
    running, answers, later = queue
    # Before two steps are timed the running run's time left comes from its estimate (600 s).
    assert running.seconds_left is not None and 590 <= running.seconds_left <= 600
    assert answers.starts_in_s == running.seconds_left
    pairs = len(versions.version_messages(db, version.id, "heldout"))
    assert later.starts_in_s == running.seconds_left + pairs * work_queue.GENERATION_PRIOR_S_PER_PAIR
    mine, ahead = work_queue.waiting_for(queue, "answers", job.id)
    assert mine.position == 1 and [i.object_id for i in ahead] == [training_run.id]

    # The slot frees: the answer job, first in line, goes next, not the later training run.
    runs.fail_run(db, runs.get_run(db, training_run.id), "stopped for the test", "Test", "")
    assert runs.launch_next(db) is None
    assert slots.turn_of(db, "answers") == job.id and slots.turn_of(db, "training") is None


# ----------------------------------------------------------------------------- one job system (issues 22, 23)

def quick_version(db, name="jobs", actor=""):
    """A frozen two-example version without a Presidio scan (an admin's recorded override)."""
    from core.curation import datasets, examples

    dataset = datasets.create_dataset(db, name, actor=actor)
    for split in ("train", "heldout"):
        examples.save_example(db, dataset, [{"role": "user", "content": f"Hi {split}"},
                                            {"role": "assistant", "content": "Hello"}], status="ready", split=split,
                              author=actor)
    return versions.freeze(db, dataset, override_reason="test data, no people", actor=actor)


def finished_run(db, version, tmp_path, actor=""):
    """A succeeded run with an adapter folder (files only: nothing here loads it)."""
    adapter = tmp_path / "adapter-files"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "SmolLM2-135M-Instruct"}')
    (adapter / "adapter_model.safetensors").write_bytes(b"not loaded in this test")
    return runs.import_adapter(db, adapter, version.id, actor=actor)


def test_a_pid_that_started_at_another_time_is_not_the_jobs_process(db):
    import os

    from core.training import run_records

    me = processes.ProcessId.current()
    assert processes.alive(me.pid, me.started) and processes.alive(me.pid, None)
    assert not processes.alive(me.pid, me.started - 3600)  # the pid came back after a reboot: someone else
    # The boot time psutil adds is whole seconds and moves by 1 s when the clock crosses a second: alive.
    assert processes.alive(me.pid, me.started - 1.0) and processes.alive(me.pid, me.started + 1.0)
    run = runs.start_run(db, quick_version(db), launch=False)
    assert runs.claim_run(db, run.id, processes.ProcessId(os.getpid(), me.started - 3600))
    # Reading shows what the run is (nothing written yet); the lifecycle read records it.
    assert run_records.get_run(db, run.id).status == "interrupted"
    assert db.execute("SELECT status FROM runs WHERE id = ?", [run.id]).fetchone()[0] == "running"
    assert runs.get_run(db, run.id).status == "interrupted"
    assert db.execute("SELECT status, pid FROM runs WHERE id = ?", [run.id]).fetchone() == ("interrupted", None)


def test_reading_a_run_does_not_import_the_pii_stack():
    import subprocess
    import sys

    from tests.test_cli import REPO

    code = ("import sys, core.training.run_records\n"
            "print(sorted(m for m in sys.modules if m.startswith(('presidio', 'spacy', 'core.pii'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_whoever_reconciles_a_dead_job_starts_what_waits(db, db_path, model_dir):
    import shutil
    import subprocess
    import time

    from core.models import registry

    version = quick_version(db)
    done = finished_run(db, version, db_path.parent)
    job = answer_pairs.start_generation(db, done.id, launch=False)
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert answer_pairs.claim_job(db, job.id, processes.ProcessId.of(gone.pid))  # the worker, killed
    # A base model the worker cannot load: the run fails fast once started; what matters is the start.
    broken = db_path.parent / "config-only-model"
    broken.mkdir()
    shutil.copy(model_dir / "config.json", broken / "config.json")
    waiting = runs.start_run(db, version, launch=True, preset="smoke-test",
                             base_model=registry.add_model(db, str(broken)).name)
    assert runs.get_run(db, waiting.id).pid is None  # behind the generation job's slot
    assert answer_pairs.reconcile_jobs(db) == 1
    deadline = time.time() + 60
    while runs.get_run(db, waiting.id).status == "queued" and runs.get_run(db, waiting.id).pid is None \
            and time.time() < deadline:
        time.sleep(0.2)
    started = runs.get_run(db, waiting.id)
    assert started.pid is not None or started.status != "queued", "the waiting run was never started"


def test_a_playground_request_waits_for_a_heavy_work_slot_and_the_role_table(db, tmp_path, team_users):
    from core.platform import permissions
    from core.rating import playground

    version = quick_version(db, actor="boss")
    done = finished_run(db, version, tmp_path, actor="boss")
    training = runs.start_run(db, version, launch=False, actor="boss")
    assert runs.claim_run(db, training.id, processes.ProcessId.current())  # the only slot is taken
    request = playground.ask(db, done.id, "Where is my order?", "boss")
    row = db.execute("SELECT status, pid FROM playground_requests WHERE id = ?", [request.id]).fetchone()
    assert row == ("queued", None)  # no model loaded beside the training run
    assert slots.next_in_line(db) == ("playground", request.id)
    assert [(i.kind, i.status) for i in work_queue.items(db)] == [("training", "running"), ("playground", "waiting")]
    with pytest.raises(permissions.PermissionDenied):
        playground.ask(db, done.id, "Which one is tuned?", "mallory", launch=False)  # no role in the team


def test_a_re_attached_ray_follower_does_not_replay_stored_steps():
    from core.training import ray_runs

    log = [{"kind": "phase", "phase": "training"}, {"kind": "step", "step": 1, "loss": 2.0},
           {"kind": "step", "step": 2, "loss": 1.5}, {"kind": "step", "step": 3, "loss": 1.2},
           {"kind": "result", "status": "succeeded"}]
    assert [e.get("step") for e in ray_runs.replayable(log, 2)] == [None, 3, None]
    assert len(ray_runs.replayable(log, 0)) == 5
