"""Shared fixtures: real SQLite files under tmp dirs, the real shipped model, real Presidio."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import core  # noqa: E402,F401
from core.curation import datasets, demo
from core.models import registry
from core.pii import scan
from core.platform import permissions, store
from core.rating import pairs
from core.training import runs, versions

REPO = Path(__file__).resolve().parent.parent


# Errors in pages raise in tests instead of becoming a one-line message with an error id.
os.environ["STUDIO_RAISE_ERRORS"] = "1"

TEAM = {"boss": "admin", "ana": "author", "Dana": "author", "Sam": "rater", "Riley": "rater"}
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def no_users_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Single-user mode unless a test asks for a team: a developer's own users file never leaks in."""
    monkeypatch.setenv("STUDIO_USERS_FILE", str(tmp_path_factory.getbasetemp() / "no-users.toml"))


@pytest.fixture(scope="session")
def users_toml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from core.platform import auth

    path = tmp_path_factory.mktemp("users") / "users.toml"
    path.write_text("".join(auth.add_user_line(name, role, PASSWORD) for name, role in TEAM.items()))
    return path


@pytest.fixture
def team_users(users_toml: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A users file with one admin (boss), authors (ana, Dana) and raters (Sam, Riley)."""
    monkeypatch.setenv("STUDIO_USERS_FILE", str(users_toml))
    return dict(TEAM)


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "studio.db"
    monkeypatch.setenv("STUDIO_DB", str(path))
    return path


@pytest.fixture
def db(db_path: Path):
    return store.connect(db_path)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return registry.ensure_default_model()


@pytest.fixture
def demo_dataset(db, model_dir) -> datasets.Dataset:
    dataset = demo.seed_demo(db)
    assert dataset is not None
    return dataset


@pytest.fixture(scope="session")
def random_adapter(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """A real PEFT adapter with non-zero random LoRA weights, so tuned outputs differ from base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False, task_type="CAUSAL_LM"))
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    peft_model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def generated_db(tmp_path_factory: pytest.TempPathFactory, model_dir: Path, random_adapter: Path) -> Path:
    """A demo database, PII-scanned and frozen, with an imported adapter run and generated pairs."""
    from core.models import generation

    path = tmp_path_factory.mktemp("generated") / "studio.db"
    db = store.connect(path)
    dataset = demo.seed_demo(db)
    assert dataset is not None
    scan.scan_dataset(db, dataset.id)
    version = versions.freeze(db, dataset, actor="test")
    run = runs.import_adapter(db, random_adapter, version.id, actor="test")
    job = pairs.start_generation(db, run.id, generation.GenerationConfig(max_new_tokens=12, batch_size=10),
                                  launch=False)
    pairs.run_generation_job(db, job.id)
    db.conn.close()
    return path


@pytest.fixture
def rated_db(generated_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the generated database (and its run files) for one test."""
    target = tmp_path / "studio.db"
    source = sqlite3.connect(generated_db)
    dest = sqlite3.connect(target)
    source.backup(dest)
    source.close()
    dest.close()
    if (generated_db.parent / "runs").exists():
        shutil.copytree(generated_db.parent / "runs", tmp_path / "runs")
        db = store.connect(target)
        for run in db.query("SELECT id, adapter_path FROM runs"):
            db.table("runs").update(run["id"], {"adapter_path": str(tmp_path / "runs" / Path(run["adapter_path"]).relative_to(
                generated_db.parent / "runs"))})
    monkeypatch.setenv("STUDIO_DB", str(target))
    return target


def publish_generations(db, run_id: int) -> None:
    """Mark a run's hand-inserted answers as the output of a succeeded generation job: answers are
    shown only once their job succeeded (issue 23)."""
    from core.platform import store

    n = db.execute("SELECT count(DISTINCT position) FROM generations WHERE run_id = ?", [run_id]).fetchone()[0]
    with store.transaction(db):
        db.table("generation_jobs").insert({"run_id": run_id, "status": "succeeded", "total": n, "done": n,
                                            "settings_json": "{}", "created_at": store.now(),
                                            "finished_at": store.now()})


def hand_run(db, version: int, adapter: Path, prompts: list[str], *, base_model: str | None = None) -> int:
    """A finished run whose answers are written by hand (no generation): the base answers are the
    same text for the same prompt, as the real base model's greedy answers are."""
    kwargs = {"base_model": base_model} if base_model else {}
    run = runs.import_adapter(db, adapter, version, actor=permissions.SYSTEM_ACTOR, **kwargs).id
    with store.transaction(db):
        for position, prompt in enumerate(prompts):
            for side, text in (("base", f"Base answer to {prompt}"), ("tuned", f"Run {run} answers {prompt}")):
                db.table("generations").insert({
                    "run_id": run, "position": position, "prompt_json": json.dumps([{"role": "user", "content": prompt}]),
                    "reference": "", "side": side, "text": text, "settings_json": "{}", "created_at": store.now()})
    publish_generations(db, run)
    return run
