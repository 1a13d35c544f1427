"""Datasets and their examples: import, edit with revisions, splits, quarantine, versions, export."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from core.curation import convention
from core.platform import permissions, text_safety
from core.platform.store import audit, insert_row, now, transaction

DEFAULT_CRITERIA = ["task accuracy", "format compliance", "domain terminology", "tone"]


class DatasetError(Exception):
    """A request about a dataset that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Dataset:
    id: int
    name: str
    description: str
    system_prompt: str
    guidelines: str
    criteria: list[str]
    convention_regex: str
    glossary: list[str]
    created_at: str
    # The glossary and guidelines as an admin last confirmed them; {} when never (issue 23).
    confirmed_vocabulary: dict[str, Any] = field(default_factory=dict)
    convention_json: str = ""  # an accepted output convention (curation.convention); '' = inferred

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Dataset:
        return cls(row["id"], row["name"], row["description"], row["system_prompt"],
                   row["guidelines"], json.loads(row["criteria_json"]) or DEFAULT_CRITERIA,
                   row["convention_regex"], json.loads(row["glossary_json"]), row["created_at"],
                   json.loads(row.get("vocabulary_json") or "{}"),
                   convention_json=row.get("convention_json", ""))


# ----------------------------------------------------------------------------- datasets

def create_dataset(db: sqlite_utils.Database, name: str, *, description: str = "",
                   system_prompt: str = "", guidelines: str = "", convention_regex: str = "",
                   criteria: list[str] | None = None, glossary: list[str] | None = None,
                   actor: str = "") -> Dataset:
    permissions.require(actor, "create_dataset")
    name = name.strip()
    if not name or len(name) > 80:
        raise DatasetError("A dataset name must be 1 to 80 characters.")
    if db.execute("SELECT 1 FROM datasets WHERE name = ?", [name]).fetchone():
        raise DatasetError(f"A dataset called '{name}' already exists.")
    with transaction(db):
        dataset_id = insert_row(db, "datasets", {
            "name": name, "description": description, "system_prompt": system_prompt,
            "guidelines": guidelines, "criteria_json": json.dumps(_criteria(criteria or DEFAULT_CRITERIA)),
            "convention_regex": convention_regex, "glossary_json": json.dumps(glossary or []),
            "created_at": now()})
        audit(db, actor, "create_dataset", "dataset", dataset_id, {"name": name})
    return get_dataset(db, name)


def confirm_vocabulary(db: sqlite_utils.Database, dataset_id: int, actor: str = "") -> Dataset:
    """Record the dataset's current glossary and guidelines as confirmed by an admin: from now on
    they clear name-like findings (each one audited by core.pii.review). An author's later edits
    wait for the next confirmation (issue 23)."""
    permissions.require(actor, "pii_dismiss")
    with transaction(db):
        dataset = get_dataset(db, dataset_id)
        confirmed = {"glossary": dataset.glossary, "guidelines": dataset.guidelines,
                     "confirmed_by": actor or permissions.ANONYMOUS, "confirmed_at": now()}
        db.table("datasets").update(dataset_id, {"vocabulary_json": json.dumps(confirmed, ensure_ascii=False)})
        audit(db, actor, "pii_vocabulary_confirm", "dataset", dataset_id,
              {"glossary_terms": len(dataset.glossary), "guidelines_chars": len(dataset.guidelines)})
    return get_dataset(db, dataset_id)


def _criteria(names: list[str]) -> list[str]:
    # Criteria become slider labels, chart ticks and report columns: identifiers, not free text.
    try:
        return [text_safety.check_criterion_name(c) for c in names if c.strip()]
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc


def delete_empty_dataset(db: sqlite_utils.Database, dataset_id: int, actor: str = "") -> bool:
    """Remove a dataset that holds nothing (no examples, quarantine or versions); False otherwise."""
    permissions.require(actor, "create_dataset")
    with transaction(db):
        removed = db.execute(
            "DELETE FROM datasets WHERE id = ? AND NOT EXISTS (SELECT 1 FROM examples WHERE dataset_id = ?) "
            "AND NOT EXISTS (SELECT 1 FROM quarantine WHERE dataset_id = ?) "
            "AND NOT EXISTS (SELECT 1 FROM dataset_versions WHERE dataset_id = ?)",
            [dataset_id, dataset_id, dataset_id, dataset_id]).rowcount
        if removed:
            audit(db, actor, "delete_empty_dataset", "dataset", dataset_id, {})
    return bool(removed)


def get_dataset(db: sqlite_utils.Database, name_or_id: str | int) -> Dataset:
    column = "id" if isinstance(name_or_id, int) else "name"
    rows = list(db.query(f"SELECT * FROM datasets WHERE {column} = ?", [name_or_id]))
    if not rows:
        raise DatasetError(f"No dataset called '{name_or_id}'.")
    return Dataset.from_row(rows[0])


def list_datasets(db: sqlite_utils.Database) -> list[Dataset]:
    return [Dataset.from_row(r) for r in db.table("datasets").rows_where(order_by="id")]


def update_dataset(db: sqlite_utils.Database, dataset_id: int, actor: str = "", **fields: Any) -> Dataset:
    permissions.require(actor, "edit_dataset")
    allowed = {"description", "system_prompt", "guidelines", "convention_regex", "convention_json"}
    row: dict[str, Any] = {k: v for k, v in fields.items() if k in allowed}
    if "criteria" in fields:
        row["criteria_json"] = json.dumps(_criteria(fields["criteria"]))
    if "glossary" in fields:
        row["glossary_json"] = json.dumps([g for g in fields["glossary"] if g.strip()])
    if row.get("convention_regex"):
        import re
        try:
            re.compile(row["convention_regex"])
        except re.error as exc:
            raise DatasetError(f"The output convention is not a valid regular expression: {exc}") from exc
    if row.get("convention_json"):
        try:
            convention.Convention.from_json(row["convention_json"])
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
    with transaction(db):
        db.table("datasets").update(dataset_id, row)
        audit(db, actor, "update_dataset", "dataset", dataset_id, {"fields": sorted(row)})
    return get_dataset(db, dataset_id)


# ----------------------------------------------------------------------------- import


# ----------------------------------------------------------------------------- examples


# ----------------------------------------------------------------------------- duplicates


# ----------------------------------------------------------------------------- versions


# ----------------------------------------------------------------------------- export

