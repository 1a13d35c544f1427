"""Real QLoRA training of the shipped model on CPU, in the background worker process."""

import json
import os
import signal
import time
from pathlib import Path

import pytest

from core.curation import datasets, importing
from core.models import generation, registry
from core.pii import scan
from core.platform import processes, store
from core.training import config as training_config
from core.training import runs, versions


def small_version(db, model_dir, train_n=16, heldout_n=4):
    from core.curation.demo import DEMO_DIR

    dataset = datasets.create_dataset(db, "small", convention_regex=r"^Category: ")
    lines = (DEMO_DIR / "train.jsonl").read_bytes().splitlines()[:train_n]
    importing.import_jsonl(db, dataset, b"\n".join(lines))
    held = (DEMO_DIR / "heldout.jsonl").read_bytes().splitlines()[:heldout_n]
    importing.import_jsonl(db, dataset, b"\n".join(held), split="heldout")
    scan.save_config(db, scan.PiiConfig(allow_list=["Canada", "Portland", "Zipper", "Gift", "Alder", "Granite",
                                                  "Harbor & Pine"]))
    scan.scan_dataset(db, dataset.id)
    return versions.freeze(db, dataset, override_reason="demo data")


def wait_for(db, run_id, predicate, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs.reconcile(db)
        run = runs.get_run(db, run_id)
        if predicate(run):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} stuck in {runs.get_run(db, run_id).status}: {runs.get_run(db, run_id).error}")


@pytest.mark.slow
def test_qlora_run_trains_in_background_and_adapter_changes_outputs(db, db_path, model_dir):
    version = small_version(db, model_dir)
    config = training_config.TrainingConfig(max_steps=8, batch_size=4, learning_rate=3e-3, max_length=256,
                                     warmup_fraction=0.0, lr_scheduler="constant")
    run = runs.start_run(db, version, preset="smoke-test", config=config, actor="test")
    # Launched, not run inline: the call returned at once with a worker process recorded.
    assert run.status in ("queued", "running") and runs.get_run(db, run.id).pid
    run = wait_for(db, run.id, lambda r: r.finished)
    assert run.status == "succeeded", run.error
    events = runs.run_events(db, run.id)
    assert [e.step for e in events if e.loss is not None][-1] == 8
    assert run.metrics["steps"] == 8 and run.metrics["tokens_per_s"] > 0
    # The behaviour checks answered every held-out prompt with the model raters get (issue 24).
    assert "full-precision base" in run.metrics["judged_on"] and run.metrics["probe_prompts"] == 4
    assert run.metrics["convention_source"] == "expert regex" and run.metrics["behaviour_curve"][-1]["probed"] == 4
    adapter = Path(run.adapter_path)
    card = (adapter / "README.md").read_text()
    assert version.content_hash in card and run.adapter_sha256 in card
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 16
    assert generation.adapter_sha256(adapter) == run.adapter_sha256

    # Plain peft, as a user outside the studio would load it.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    prompt = [{"role": "system", "content": "You triage customer tickets for Harbor & Pine Outfitters."},
              {"role": "user", "content": "My stove leaks fuel, order HP-99001."}]
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    with torch.inference_mode():
        before = base.generate(**ids, max_new_tokens=12, do_sample=False)
    tuned = PeftModel.from_pretrained(base, str(adapter))
    with torch.inference_mode():
        after = tuned.generate(**ids, max_new_tokens=12, do_sample=False)
    assert before.tolist() != after.tolist()
    assert tokenizer.decode(after[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).startswith("Category")


@pytest.mark.slow
def test_sigkill_marks_interrupted_and_resume_finishes(db, db_path, model_dir):
    version = small_version(db, model_dir, train_n=12, heldout_n=2)
    config = training_config.TrainingConfig(max_steps=6, batch_size=2, max_length=192)
    run = runs.start_run(db, version, preset="smoke-test", config=config)
    run_directory = processes.run_dir(db, run.id)
    run = wait_for(db, run.id, lambda r: r.finished or processes.latest_checkpoint(run_directory) is not None)
    assert run.status == "running"
    os.kill(run.pid, signal.SIGKILL)
    run = wait_for(db, run.id, lambda r: r.status != "running")
    assert run.status == "interrupted" and "stopped unexpectedly" in run.error
    resumed_from = int(processes.latest_checkpoint(run_directory).name.split("-")[1])
    runs.resume_run(db, run.id)
    run = wait_for(db, run.id, lambda r: r.finished)
    assert run.status == "succeeded", run.error
    assert run.metrics["steps"] == 6
    steps_after_resume = [e.step for e in runs.run_events(db, run.id) if e.loss is not None]
    assert steps_after_resume[-1] == 6 and resumed_from >= 3


@pytest.mark.slow
def test_cancel_during_first_step_saves_and_stops(db, db_path, model_dir):
    version = small_version(db, model_dir, train_n=8, heldout_n=1)
    run = runs.start_run(db, version, config=training_config.TrainingConfig(max_steps=200, batch_size=2, max_length=128))
    runs.cancel_run(db, run.id)
    run = wait_for(db, run.id, lambda r: r.finished)
    assert run.status == "cancelled"
    assert run.metrics["steps"] < 200 and Path(run.adapter_path, "adapter_model.safetensors").exists()


def test_reconcile_marks_dead_process_interrupted(db, model_dir):
    version = small_version(db, model_dir, train_n=4, heldout_n=1)
    run = runs.start_run(db, version, launch=False)
    db.execute("UPDATE runs SET status = 'running', pid = 999999 WHERE id = ?", [run.id])
    assert runs.reconcile(store.connect(db.conn.execute("PRAGMA database_list").fetchone()[2])) == 1
    assert runs.get_run(db, run.id).status == "interrupted"


def test_config_validation_and_overrides():
    with pytest.raises(ValueError, match="lora_dropout"):
        training_config.TrainingConfig(lora_dropout=1.5)
    config = training_config.PRESETS["seed-article"].with_overrides({"learning_rate": "0.001", "assistant_only_loss": "true"})
    assert config.learning_rate == 0.001 and config.assistant_only_loss
    with pytest.raises(ValueError, match="Unknown setting"):
        config.with_overrides({"nope": "1"})
    seed = training_config.PRESETS["seed-article"]
    assert (seed.lora_r, seed.lora_alpha, seed.epochs, seed.batch_size, seed.grad_accumulation, seed.learning_rate,
            seed.warmup_fraction, seed.targets) == (16, 32, 3, 4, 4, 2e-4, 0.1, ["q_proj", "k_proj", "v_proj", "o_proj"])


def test_estimate_is_plausible(db, demo_dataset):
    scan.scan_dataset(db, demo_dataset.id)
    version = versions.freeze(db, demo_dataset)
    small = training_config.estimate(db, version, training_config.PRESETS["small-data"])
    seed = training_config.estimate(db, version, training_config.PRESETS["seed-article"])
    assert small.steps == 114 and seed.steps == 15  # 75 examples: 38 batches of 2 x 3 epochs; 19 of 4 x 3 / 4
    assert 1000 < small.peak_memory_mb < 20000 and small.duration_s > 0
    assert set(small.hosted_costs) == set(training_config.HOSTED_RATES_PER_MILLION)


def test_hosted_costs_known_values():
    # 2.5 million tokens at $3 and $25 per million: $7.50 and $62.50, worked by hand; blank or NaN rates dropped.
    assert training_config.hosted_costs(2_500_000, {"small": 3.0, "large": 25.0, "": 9.0, "nan": float("nan")}) \
        == {"small": 7.5, "large": 62.5}


@pytest.mark.slow
def test_bundle_trains_after_the_launching_process_exits(db, db_path, model_dir, tmp_path):
    """The scale-out path, and 'restart the app mid-run': the CLI process that queued the run
    exits at once, the worker it started trains on to the end."""
    import subprocess
    import sys

    from tests.test_cli import REPO

    version = small_version(db, model_dir, train_n=8, heldout_n=2)
    run = runs.start_run(db, version, preset="smoke-test", launch=False)
    bundle = tmp_path / "bundle"
    assert subprocess.run([sys.executable, "-m", "core", "--db", str(db_path), "train-bundle", "--run", str(run.id),
                           "--out", str(bundle)], cwd=REPO, check=True, capture_output=True).returncode == 0
    assert sorted(p.name for p in bundle.iterdir()) == ["README.md", "config.json", "heldout.jsonl", "train.jsonl"]
    other_db = tmp_path / "elsewhere" / "bundle.db"
    out = subprocess.run([sys.executable, "-m", "core", "--db", str(other_db), "--json", "train", "--bundle", str(bundle),
                          "--set", "max_steps=2"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    queued = json.loads(out.stdout)
    elsewhere = store.connect(other_db)
    finished = wait_for(elsewhere, queued["run"], lambda r: r.finished)
    assert finished.status == "succeeded", finished.error
    assert finished.config.max_steps == 2 and finished.preset == "smoke-test"
    imported = runs.import_adapter(db, Path(finished.adapter_path), version.id)
    assert imported.adapter_sha256 == finished.adapter_sha256 and imported.status == "succeeded"


def test_estimates_read_the_chosen_models_architecture(model_dir):
    """Parameter and LoRA counts from config.json equal what torch and peft count on the real model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    arch = training_config.Architecture.of(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    assert arch.parameters == sum(p.numel() for p in model.parameters())
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=targets, task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert arch.lora_parameters(8, targets) == trainable


def test_the_estimate_states_its_speed_basis(db, demo_dataset):
    scan.scan_dataset(db, demo_dataset.id)
    version = versions.freeze(db, demo_dataset)
    fp32 = training_config.PRESETS["small-data"].with_overrides({"precision": "fp32"})
    before = training_config.estimate(db, version, fp32)
    assert before.tokens_per_s == training_config.PRIOR_TOKENS_PER_S and "quiet 2-core" in before.basis
    runs.record_throughput(db, registry.DEFAULT_MODEL, "qlora", 40.0, "fp32")
    after = training_config.estimate(db, version, fp32)
    assert after.tokens_per_s == 40.0 and "measured on this machine" in after.basis
    # A speed measured at another batch size is no basis: batch 4 runs faster per token than batch 2.
    runs.record_throughput(db, registry.DEFAULT_MODEL, "qlora", 90.0, "fp32", batch_size=4)
    assert training_config.estimate(db, version, fp32).tokens_per_s == 40.0
    assert training_config.estimate(db, version, fp32.with_overrides({"batch_size": "4"})).tokens_per_s == 90.0
    assert after.duration_s == pytest.approx(2 * before.duration_s, abs=1)
    # Early-stopped runs that used half their schedule: the next estimate expects half the time.
    runs.record_throughput(db, registry.DEFAULT_MODEL, "qlora", 40.0, "fp32", schedule_used=0.5)
    halved = training_config.estimate(db, version, fp32)
    assert halved.duration_s == pytest.approx(after.duration_s / 2, abs=1) and "50% of the schedule" in halved.basis
    no_stop = training_config.estimate(db, version, fp32.with_overrides({"early_stopping": "false"}))
    assert no_stop.duration_s == after.duration_s
    # A rule's fractions serve only that rule: format-alone runs that used a quarter say nothing of the default.
    alone = fp32.with_overrides({"stop_on_format_alone": "true"})
    assert training_config.estimate(db, version, alone).duration_s == after.duration_s  # none recorded yet
    runs.record_throughput(db, registry.DEFAULT_MODEL, "qlora", 40.0, "fp32", schedule_used=0.25, config=alone)
    assert training_config.estimate(db, version, alone).duration_s == pytest.approx(after.duration_s / 4, abs=1)
    assert training_config.estimate(db, version, fp32).duration_s == halved.duration_s


# ----------------------------------------------------------------------------- lifecycle races (issue 23)

def _with_worker_claiming_meanwhile(db_path, run_id, action, claim_sql):
    """Run `action` while another connection holds the write lock and then changes the run (a worker
    claiming it): an action that read the status before taking the lock acts on a stale status."""
    import sqlite3
    import threading

    other = sqlite3.connect(db_path, isolation_level=None, timeout=10)
    other.execute("BEGIN IMMEDIATE")
    outcome: dict[str, object] = {}

    def act() -> None:
        try:
            outcome["result"] = action(store.connect(db_path))
        except Exception as exc:  # the test inspects what the action said
            outcome["error"] = exc

    thread = threading.Thread(target=act)
    thread.start()
    time.sleep(1.0)  # the action has read the run and now waits for the write lock
    other.execute(claim_sql, [os.getpid(), processes.ProcessId.current().started, run_id])
    other.execute("COMMIT")
    thread.join(timeout=30)
    other.close()
    return outcome


def test_cancel_resume_and_delete_act_on_the_status_inside_their_transaction(db, db_path):
    from tests.test_queue import quick_version

    version = quick_version(db)
    claim = "UPDATE runs SET status = 'running', pid = ?, pid_started = ? WHERE id = ?"
    queued = runs.start_run(db, version, launch=False)
    _with_worker_claiming_meanwhile(db_path, queued.id, lambda d: runs.cancel_run(d, queued.id), claim)
    after = runs.get_run(db, queued.id)
    assert (after.status, after.cancel_requested) == ("running", True)  # asked to stop, not marked cancelled

    failed = runs.start_run(db, version, launch=False, allow_duplicate=True)
    runs.fail_run(db, failed, "for the test", "Test", "")
    resumed_elsewhere = "UPDATE runs SET status = 'running', pid = ?, pid_started = ? WHERE id = ?"
    outcome = _with_worker_claiming_meanwhile(db_path, failed.id, lambda d: runs.delete_run(d, failed.id),
                                              resumed_elsewhere)
    assert isinstance(outcome.get("error"), runs.RunError) and runs.get_run(db, failed.id).status == "running"
    outcome = _with_worker_claiming_meanwhile(db_path, failed.id, lambda d: runs.resume_run(d, failed.id, launch=False),
                                              resumed_elsewhere)
    assert isinstance(outcome.get("error"), runs.RunError)
    assert runs.get_run(db, failed.id).pid == os.getpid()  # the running worker keeps its run


def test_a_requeued_ray_run_that_is_cancelled_goes_to_a_follower_that_stops_its_job(db):
    from tests.test_queue import quick_version

    run = runs.start_run(db, quick_version(db), launch=False)
    # Its follower died (app restart): reconcile put it back in the queue with its cluster job id.
    db.execute("UPDATE runs SET target = 'ray', target_ref = 'studio-test-run-1' WHERE id = ?", [run.id])
    runs.cancel_run(db, run.id)
    row = db.execute("SELECT status, cancel_requested FROM runs WHERE id = ?", [run.id]).fetchone()
    # Not marked cancelled here (the cluster job would run on): a follower was started to stop it.
    assert row[0] != "cancelled" and row[1] == 1
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'cancel_run'").fetchone()[0] == 1


def test_a_refused_bundle_leaves_no_folder(db, tmp_path, team_users):
    from core.platform import permissions
    from core.training import bundles
    from tests.test_queue import quick_version

    run = runs.start_run(db, quick_version(db, actor="boss"), launch=False, actor="boss")
    out = tmp_path / "bundle-out"
    with pytest.raises(permissions.PermissionDenied):
        bundles.write_bundle(db, runs.get_run(db, run.id), out, actor="Sam")  # a rater may not export data
    assert not out.exists()
