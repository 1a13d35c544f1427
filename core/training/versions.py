"""Frozen dataset versions: the freeze check, immutable copies, and export of canonical JSONL."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from core.curation import validation
from core.curation.datasets import Dataset, DatasetError
from core.curation.duplicates import DuplicatePair
from core.curation.examples import leakage
from core.curation.validation import Messages
from core.pii import review
from core.platform import permissions
from core.platform.paths import published_folder
from core.platform.store import audit, insert_row, now, transaction


@dataclass(frozen=True)
class DatasetVersion:
    id: int
    dataset_id: int
    number: int
    content_hash: str
    train_count: int
    heldout_count: int
    created_by: str
    created_at: str
    pii_override_reason: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DatasetVersion:
        return cls(row["id"], row["dataset_id"], row["number"], row["content_hash"],
                   row["train_count"], row["heldout_count"], row["created_by"], row["created_at"],
                   row["pii_override_reason"])


@dataclass(frozen=True)
class FreezeCheck:
    """Why a dataset can or cannot be frozen now."""
    train: int
    heldout: int
    drafts: int
    leakage: list[DuplicatePair]
    gate: review.GateStatus

    @property
    def blockers(self) -> list[str]:
        reasons = []
        if self.train == 0:
            reasons.append("No ready training examples.")
        if self.leakage:
            reasons.append(f"{len(self.leakage)} held-out example(s) nearly duplicate training "
                           "examples; edit, delete or move them to train.")
        return reasons

    @property
    def pii_blockers(self) -> list[str]:
        return self.gate.blockers  # the one gate rule, shared with export and training


def freeze_check(db: sqlite_utils.Database, dataset_id: int) -> FreezeCheck:
    counts = dict(db.execute("SELECT split, count(*) FROM examples WHERE dataset_id = ? AND "
                             "status = 'ready' GROUP BY split", [dataset_id]).fetchall())
    drafts = db.execute("SELECT count(*) FROM examples WHERE dataset_id = ? AND status = 'draft'",
                        [dataset_id]).fetchone()[0]
    return FreezeCheck(counts.get("train", 0), counts.get("heldout", 0), drafts,
                       leakage(db, dataset_id), review.gate_status(db, dataset_id))


def freeze(db: sqlite_utils.Database, dataset: Dataset, *, actor: str = "",
           override_reason: str = "") -> DatasetVersion:
    """Make an immutable version of the ready examples (drafts are left out)."""
    permissions.require(actor, "freeze")
    check = freeze_check(db, dataset.id)
    if check.blockers:
        raise DatasetError("Cannot freeze: " + " ".join(check.blockers))
    if check.pii_blockers:
        if not override_reason.strip():
            raise DatasetError("Cannot freeze: " + " ".join(check.pii_blockers)
                               + " Resolve them on the PII check page, or an admin overrides with a reason.")
        permissions.require(actor, "pii_override")
    rows = db.query("SELECT id, messages_json, content_hash, split FROM examples WHERE dataset_id = ? "
                    "AND status = 'ready' ORDER BY split DESC, id", [dataset.id])
    members = list(rows)
    digest = hashlib.sha256()
    for row in members:
        digest.update(f"{row['split']}\t{row['messages_json']}\n".encode())
    with transaction(db):
        number = (db.execute("SELECT max(number) FROM dataset_versions WHERE dataset_id = ?",
                             [dataset.id]).fetchone()[0] or 0) + 1
        version_id = insert_row(db, "dataset_versions", {
            "dataset_id": dataset.id, "number": number, "content_hash": digest.hexdigest(),
            "train_count": sum(r["split"] == "train" for r in members),
            "heldout_count": sum(r["split"] == "heldout" for r in members),
            "created_by": actor, "created_at": now(),
            "pii_override_reason": override_reason.strip() if check.pii_blockers else ""})
        db.table("dataset_version_examples").insert_all(
            {"dataset_version_id": version_id, "position": i, "example_id": r["id"], "split": r["split"],
             "messages_json": r["messages_json"], "content_hash": r["content_hash"]}
            for i, r in enumerate(members))
        audit(db, actor, "freeze", "dataset_version", version_id,
              {"dataset": dataset.name, "number": number, "pii_override": bool(check.pii_blockers)})
    return get_version(db, dataset.id, number)


def get_version(db: sqlite_utils.Database, dataset_id: int, number: int | None = None) -> DatasetVersion:
    if number is None:
        row = db.execute("SELECT max(number) FROM dataset_versions WHERE dataset_id = ?",
                         [dataset_id]).fetchone()
        if row[0] is None:
            raise DatasetError("This dataset has no frozen version yet; freeze it first.")
        number = row[0]
    rows = list(db.table("dataset_versions").rows_where("dataset_id = ? AND number = ?", [dataset_id, number]))
    if not rows:
        raise DatasetError(f"No version {number} of this dataset.")
    return DatasetVersion.from_row(rows[0])


def version_by_id(db: sqlite_utils.Database, version_id: int) -> DatasetVersion:
    return DatasetVersion.from_row(db.table("dataset_versions").get(version_id))


def list_versions(db: sqlite_utils.Database, dataset_id: int) -> list[DatasetVersion]:
    return [DatasetVersion.from_row(r) for r in
            db.table("dataset_versions").rows_where("dataset_id = ?", [dataset_id], order_by="number")]


def version_messages(db: sqlite_utils.Database, version_id: int, split: str | None = None) -> list[Messages]:
    query = "SELECT messages_json FROM dataset_version_examples WHERE dataset_version_id = ?"
    params: list[Any] = [version_id]
    if split:
        query += " AND split = ?"
        params.append(split)
    return [json.loads(r[0])["messages"] for r in db.execute(query + " ORDER BY position", params)]


def export_jsonl(db: sqlite_utils.Database, dataset: Dataset, *, version: int | None = None,
                 split: str | None = None, current: bool = False, actor: str = "") -> str:
    """Canonical OpenAI chat JSONL of a frozen version (default: the latest) or the current rows."""
    permissions.require(actor, "export_dataset")
    if split not in (None, "train", "heldout"):
        raise DatasetError("split must be train or heldout.")
    if current:
        query = "SELECT messages_json FROM examples WHERE dataset_id = ?"
        params: list[Any] = [dataset.id]
        if split:
            query += " AND split = ?"
            params.append(split)
        lines = [r[0] for r in db.execute(query + " ORDER BY id", params)]
    else:
        frozen = get_version(db, dataset.id, version)
        review.require_clear_version(db, dataset.id, frozen.id, frozen.pii_override_reason,
                                         f"export version {frozen.number}")
        lines = [validation.canonical_json(m) for m in version_messages(db, frozen.id, split)]
    return "".join(line + "\n" for line in lines)


HF_SPLITS = ("train", "heldout")


def export_hf(db: sqlite_utils.Database, dataset: Dataset, out: Path, *, version: int | None = None,
              actor: str = "") -> Path:
    """A frozen version as a Hugging Face dataset folder (issue 27): one parquet file per split with a
    `messages` column, and a dataset card (README.md) with the version hash, the PII gate decision
    and the counts, whose `configs` block lets `datasets.load_dataset(folder)` find the splits.
    Written to a temporary folder beside `out` and renamed, so a half-written folder never appears."""
    import datasets as hf
    import yaml

    permissions.require(actor, "export_dataset")
    frozen = get_version(db, dataset.id, version)
    review.require_clear_version(db, dataset.id, frozen.id, frozen.pii_override_reason,
                                 f"export version {frozen.number}")
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} already exists and is not empty; choose a new folder.")
    with published_folder(out) as staging:
        (staging / "data").mkdir()
        files = []
        for split in HF_SPLITS:
            rows = [{"messages": m} for m in version_messages(db, frozen.id, split)]
            if rows:
                hf.Dataset.from_list(rows).to_parquet(str(staging / "data" / f"{split}-00000-of-00001.parquet"))
                files.append({"split": split, "path": f"data/{split}-*.parquet"})
        front = yaml.safe_dump({"configs": [{"config_name": "default", "data_files": files}],
                                "tags": ["tuning-studio", "chat"]}, sort_keys=False)
        (staging / "README.md").write_text(f"---\n{front}---\n{_dataset_card(dataset, frozen)}", encoding="utf-8")
    with transaction(db):
        audit(db, actor, "export_hf_dataset", "dataset_version", frozen.id, {"number": frozen.number})
    return out


def pii_decision(version: DatasetVersion) -> str:
    """The PII gate's decision for a version, in words (dataset cards, model cards)."""
    if version.pii_override_reason:
        return f"overridden by {version.created_by or 'anonymous'}: {version.pii_override_reason}"
    return "passed (every finding reviewed before freezing)"


def _dataset_card(dataset: Dataset, version: DatasetVersion) -> str:
    # The dataset's name is user text: kept inside a code span so no Markdown viewer renders it.
    name = dataset.name.replace("`", "'")
    return f"""
# `{name}`, version {version.number}

Chat examples exported by Tuning Studio from a frozen dataset version.

| | |
|---|---|
| Version | {version.number} |
| Version sha256 | `{version.content_hash}` |
| Train examples | {version.train_count} |
| Held-out examples | {version.heldout_count} |
| PII gate | {pii_decision(version).replace("|", "/").replace(chr(10), " ")} |
| Frozen | {version.created_at} by {version.created_by or "anonymous"} |

Each row has one column, `messages`: a list of `{{role, content}}` turns (system, user, assistant),
the format trl's SFTTrainer reads. The held-out split (`heldout`) is the one the studio rates on.

```python
from datasets import load_dataset
data = load_dataset("path/to/this/folder")
```
"""


def export_hf_zip(db: sqlite_utils.Database, version_id: int, *, actor: str = "") -> bytes:
    """The Hugging Face folder of a version as a zip (the page's download): unzip, then `load_dataset`."""
    import io
    import tempfile
    import zipfile

    from core.curation.datasets import get_dataset

    frozen = version_by_id(db, version_id)
    dataset = get_dataset(db, frozen.dataset_id)
    with tempfile.TemporaryDirectory(prefix="studio-hf-export-") as tmp:
        folder = export_hf(db, dataset, Path(tmp) / f"dataset-v{frozen.number}", version=frozen.number, actor=actor)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, str(path.relative_to(folder.parent)))
    return buffer.getvalue()
