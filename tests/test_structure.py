"""Bugs that the 0.1.0 shape hid (issue 15), each pinned by a test that failed before the fix."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time

import pytest

from core.curation import datasets, examples, importing, validation
from core.models import registry, templating
from core.pii import review, scan
from core.platform import processes, store
from core.rating import pairs, sessions
from core.training import runs, versions


def convo(text: str, answer: str = "Noted.") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]


def test_a_rating_saved_while_a_run_launches_succeeds(rated_db, model_dir, tmp_path):
    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    version = versions.version_by_id(db, runs.get_run(db, run_id).dataset_version_id)
    # A base model the worker cannot load: the run fails fast once the worker starts, so no
    # real training runs here; what matters is the launch.
    broken = tmp_path / "config-only-model"
    broken.mkdir()
    shutil.copy(model_dir / "config.json", broken / "config.json")
    added = registry.add_model(db, str(broken))
    queued = runs.start_run(db, version, base_model=added.name, preset="smoke-test", launch=False)
    session = sessions.start_session(db, run_id, "Dana")
    log = processes.log_dir(rated_db) / f"train-{queued.id}.log"
    launcher = threading.Thread(target=lambda: runs.launch_next(store.connect(rated_db)))
    launcher.start()
    deadline = time.time() + 30
    while not log.exists() and time.time() < deadline:
        time.sleep(0.01)
    assert log.exists(), "the launch never started"
    rater_db = store.connect(rated_db)
    rater_db.execute("PRAGMA busy_timeout = 1000")  # a rater saving while the worker launches
    sessions.record_rating(rater_db, session, session.order[0][0], "A")
    launcher.join(timeout=60)
    deadline = time.time() + 180
    while not runs.get_run(db, queued.id).finished and time.time() < deadline:
        time.sleep(0.5)
    assert runs.get_run(db, queued.id).status == "failed"


def test_a_dead_generation_worker_is_reconciled(rated_db):
    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    job = pairs.start_generation(db, run_id, launch=False)
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert pairs.claim_job(db, job.id, processes.ProcessId.of(gone.pid))
    assert pairs.get_job(db, job.id).status == "running"
    assert pairs.reconcile_jobs(db) == 1
    failed = pairs.get_job(db, job.id)
    assert failed.status == "failed" and "stopped unexpectedly" in failed.error


def test_the_cache_key_changes_with_every_dataset_write(db):
    dataset = datasets.create_dataset(db, "cache")
    for i in range(6):
        examples.save_example(db, dataset, convo(f"Question {i}"), status="ready")
    importing.import_jsonl(db, dataset, b"{bad\n")
    keys = [examples.content_signature(db, dataset.id)]

    def changed() -> bool:
        keys.append(examples.content_signature(db, dataset.id))
        return keys[-1] != keys[-2]

    examples.random_split(db, dataset.id, 0.5, seed=1)  # only splits change: the 0.1.0 key missed this
    assert changed()
    importing.discard_quarantined(db, importing.list_quarantine(db, dataset.id)[0]["id"])
    assert changed()
    scan.scan_dataset(db, dataset.id)
    assert changed()
    versions.freeze(db, dataset)
    assert changed()
    other = datasets.create_dataset(db, "elsewhere")
    examples.save_example(db, other, convo("Unrelated"))
    assert not changed()  # another dataset's writes leave this key alone


def test_a_skipped_pair_does_not_come_straight_back(rated_db):
    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    session = sessions.start_session(db, run_id, "Dana")
    first = sessions.next_position(db, session)
    assert first is not None
    following = sessions.next_position(db, session, skipped={first})
    assert following not in (None, first)
    for position in sessions.session_positions(db, session):
        if position != first:
            sessions.record_rating(db, session, position, "tie")
    assert sessions.next_position(db, session, skipped={first}) == first  # only the skipped one is left


def test_export_and_training_use_the_freeze_gate(db, model_dir):
    dataset = datasets.create_dataset(db, "gate")
    examples.save_example(db, dataset, convo("How do returns work?", "Thirty days."), status="ready")
    scan.scan_dataset(db, dataset.id)
    version = versions.freeze(db, dataset)
    assert versions.export_jsonl(db, dataset, version=version.number)
    scan.save_config(db, scan.PiiConfig(threshold=0.5))  # new settings: the version is not scanned with them
    with pytest.raises(datasets.DatasetError, match="not yet PII-scanned"):
        versions.export_jsonl(db, dataset, version=version.number)
    with pytest.raises(datasets.DatasetError, match="not yet PII-scanned"):
        runs.start_run(db, version, preset="smoke-test", launch=False)
    scan.scan_dataset(db, dataset.id)
    assert versions.export_jsonl(db, dataset, version=version.number)
    assert review.gate_status(db, dataset.id, version_id=version.id).clear


def test_a_table_save_is_all_or_nothing(db):
    dataset = datasets.create_dataset(db, "table")
    kept = examples.save_example(db, dataset, convo("Keep me"), status="ready")
    row = {"id": kept.id, "split": "train", "status": "ready", "tags": "", "delete": False}
    gone = {"id": 10_000, "split": "train", "status": "ready", "tags": "", "delete": False}
    with pytest.raises(datasets.DatasetError, match="no longer exists"):
        examples.apply_table_edits(db, [row, gone], [{**row, "split": "heldout"}, {**gone, "delete": True}])
    assert examples.get_example(db, kept.id).split == "train"  # the edit was rolled back with the deletion
    assert examples.apply_table_edits(db, [row], [{**row, "tags": "a, b"}]) == (1, 0)
    assert examples.get_example(db, kept.id).tags == ["a", "b"]


def test_token_counting_never_switches_itself_off(tmp_path):
    with pytest.raises(registry.ModelUnavailable):
        templating.token_counter(str(tmp_path / "no-such-model"))


def test_every_code_the_validator_emits_is_documented():
    lines = [b"[1]", b"{bad", b'{"x": 1}', b'{"messages": []}', b'{"messages": "no"}',
             b'{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}',
             b'{"messages": [{"role": "user"}]}', b'{"messages": [{"role": "user", "content": " "}]}',
             b'{"messages": [{"role": "user", "content": 3, "extra": 1}]}', b"\xff\xfe",
             b'{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}',
             b'{"a": NaN}', b"[" * 50_000 + b"]" * 50_000,
             json.dumps({"messages": convo("x" * (validation.MAX_CONTENT_CHARS + 1))}).encode()]
    emitted = {p.code for line in lines for p in validation.parse_line(line, 1).problems}
    assert len(emitted) >= 12 and emitted <= set(validation.CODES)


def test_an_identical_run_is_not_queued_twice_by_accident(db, model_dir):
    dataset = datasets.create_dataset(db, "twice")
    examples.save_example(db, dataset, convo("How do returns work?", "Thirty days."), status="ready")
    scan.scan_dataset(db, dataset.id)
    version = versions.freeze(db, dataset)
    first = runs.start_run(db, version, preset="smoke-test", launch=False)
    with pytest.raises(runs.DuplicateRun, match=f"Run {first.id} .* already queued"):
        runs.start_run(db, version, preset="smoke-test", launch=False)
    assert runs.start_run(db, version, preset="smoke-test", launch=False, allow_duplicate=True).id != first.id
    assert runs.start_run(db, version, preset="small-data", launch=False).id  # another config is fine


def test_answer_pairs_are_not_generated_twice_at_once(rated_db):
    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    job = pairs.start_generation(db, run_id, launch=False)
    with pytest.raises(pairs.AnswerPairsError, match=f"already being generated \\(job {job.id}\\)"):
        pairs.start_generation(db, run_id, launch=False)


def test_a_training_step_does_not_throw_away_cached_summaries(rated_db):
    from core.reports import summary

    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    before = summary.ratings_signature(db, run_id)
    runs.record_progress(db, run_id, {"step": 1, "epoch": 0.1, "loss": 2.0, "eval_loss": None,
                                          "learning_rate": 1e-4, "tokens_per_s": 50.0, "memory_mb": 900.0},
                             {"log_tail": "step 1", "phase": "training"})
    assert summary.ratings_signature(db, run_id) == before  # heartbeat, log and phase are not results
    runs.record_metrics(db, run_id, {"heldout_loss_tuned": 1.0})
    assert summary.ratings_signature(db, run_id) != before


def test_answers_of_a_failed_generation_job_never_reach_a_rater(db, random_adapter, monkeypatch, tmp_path):
    """Issue 23: a job that fails after storing answers left them rateable (and unscanned), and the
    Generate form never came back because pairs existed."""
    from core.models import generation
    from tests.test_queue import quick_version

    version = quick_version(db)
    run_id = runs.import_adapter(db, random_adapter, version.id).id
    job = pairs.start_generation(db, run_id, generation.GenerationConfig(max_new_tokens=4), launch=False)
    monkeypatch.setattr(generation, "GENERAL_TEXT", tmp_path / "missing.txt")  # fails after the answers
    with pytest.raises(FileNotFoundError):
        pairs.run_generation_job(db, job.id)
    pairs.fail_job(db, job.id, "FileNotFoundError: general.txt")  # what the worker records
    assert db.execute("SELECT count(*) FROM generations WHERE run_id = ?", [run_id]).fetchone()[0] == 2
    assert pairs.pairs(db, run_id) == []
    with pytest.raises(sessions.RatingError, match="generate them first"):
        sessions.start_session(db, run_id, "Quinn")
    assert pairs.start_generation(db, run_id, launch=False).status == "queued"  # it can be generated again
