"""Training bundles: a frozen version and a run's configuration, self-contained for another machine.

Used by `train-bundle` (carry it by hand), by `train --bundle` on the other machine, and by the Ray
target, which ships the bundle as the Ray job's working directory (issue 17).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlite_utils

from core.curation import datasets, importing
from core.platform.paths import REPO_ROOT
from core.training import config as training_config
from core.training import runs, versions

BUNDLE_README = """# Tuning Studio training bundle

Dataset '{dataset}', version {number}. Train it on any machine with the studio checked out:

    python -m core --db bundle.db train --bundle . --wait

On several GPUs, the same trainer runs under `accelerate launch`. Bring the adapter back with
`python -m core import-adapter runs/bundle/run-0001/adapter --version-id N` on the studio machine.
"""


def write_bundle(db: sqlite_utils.Database, run: runs.TrainingRun, out: Path, *, actor: str,
                 with_code: bool = False) -> Path:
    """Write train/held-out JSONL, config.json and a README; with_code adds the studio's `core`
    package, so a Ray job runs exactly this studio's trainer."""
    version = versions.version_by_id(db, run.dataset_version_id)
    dataset = datasets.get_dataset(db, version.dataset_id)
    # Exported (permission and PII gate checked) before anything is written: a refused bundle
    # leaves no empty folder behind (issue 23).
    splits = {split: versions.export_jsonl(db, dataset, version=version.number, split=split, actor=actor)
              for split in ("train", "heldout")}
    out.mkdir(parents=True, exist_ok=True)
    for split, text in splits.items():
        (out / f"{split}.jsonl").write_text(text, encoding="utf-8")
    (out / "config.json").write_text(json.dumps({
        "preset": run.preset, "base_model": run.base_model, "config": json.loads(run.config.to_json()),
        "dataset": dataset.name, "dataset_version": version.number,
        "dataset_version_sha256": version.content_hash, "run": run.id}, indent=2))
    (out / "README.md").write_text(BUNDLE_README.format(dataset=dataset.name, number=version.number))
    if with_code:
        shutil.copytree(REPO_ROOT / "core", out / "core", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return out


def load_bundle(db: sqlite_utils.Database, bundle: Path, actor: str, *, scan: bool = True
                ) -> tuple[versions.DatasetVersion, training_config.TrainingConfig, str, str]:
    """The bundle's version (imported and frozen on first use), config, preset and base model.

    scan=False skips the PII scan (a Ray job: the studio's gate already passed for this version)."""
    meta = json.loads((bundle / "config.json").read_text())
    name = f"{meta['dataset']} (bundle v{meta['dataset_version']})"
    try:
        dataset = datasets.get_dataset(db, name)
    except datasets.DatasetError:
        dataset = datasets.create_dataset(db, name, actor=actor)
        for split in ("train", "heldout"):
            importing.import_jsonl(db, dataset, (bundle / f"{split}.jsonl").read_bytes(), split=split,
                                   source=f"bundle/{split}.jsonl", author=actor)
        if scan:
            from core.pii import scan as pii

            pii.scan_dataset(db, dataset.id, actor=actor)
    try:
        version = versions.get_version(db, dataset.id)
    except datasets.DatasetError:
        version = versions.freeze(db, dataset, actor=actor,
                                  override_reason="bundle was PII-checked on the studio machine")
    config = training_config.TrainingConfig.from_json(json.dumps(meta["config"]))
    return version, config, meta["preset"], meta["base_model"]
