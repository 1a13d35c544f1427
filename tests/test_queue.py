"""One heavy-work queue for training and answer generation (issue 16): first come, first served
across both kinds, with positions and expected starts a user can read."""

import os

from core.jobs import queue as work_queue
from core.models import generation
from core.pii import scan
from core.platform import slots
from core.rating import pairs as answer_pairs
from core.training import runs, versions


def test_generation_waits_for_training_and_keeps_its_place(db, demo_dataset, random_adapter):
    scan.scan_dataset(db, demo_dataset.id)
    version = versions.freeze(db, demo_dataset)
    finished = runs.import_adapter(db, random_adapter, version.id)
    assert slots.capacity(db) == 1
    # A training run holds the only slot (claimed by a live process: this one).
    training_run = runs.start_run(db, version, launch=False, estimated_s=600)
    assert runs.claim_run(db, training_run.id, os.getpid()) is not None
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
