"""Examples and their revisions: create, edit, delete, bulk edits, listing, splits, near-duplicates."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from core.curation import validation
from core.curation.datasets import Dataset, DatasetError
from core.curation.duplicates import DuplicatePair, find_near_duplicates
from core.curation.validation import Messages
from core.platform import permissions
from core.platform.store import audit, change_count, insert_row, now, transaction


@dataclass(frozen=True)
class Example:
    id: int
    dataset_id: int
    messages: Messages
    content_hash: str
    split: str
    tags: list[str]
    status: str
    author: str
    revision: int
    problem_codes: list[str]
    token_count: int | None
    updated_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Example:
        return cls(row["id"], row["dataset_id"], json.loads(row["messages_json"])["messages"],
                   row["content_hash"], row["split"], json.loads(row["tags_json"]), row["status"],
                   row["author"], row["revision"],
                   [c for c in row["problem_codes"].split(",") if c], row["token_count"],
                   row["updated_at"])

    @property
    def first_user_text(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "user"), "")


def example_row(dataset_id: int, messages: Messages, digest: str, *, split: str, status: str,
                 author: str, source: str, stamp: str, tokens: int | None = None,
                 codes: list[str] | None = None, tags: list[str] | None = None) -> dict[str, Any]:
    return {"dataset_id": dataset_id, "messages_json": validation.canonical_json(messages),
            "content_hash": digest, "split": split, "tags_json": json.dumps(tags or []),
            "status": status, "author": author, "revision": 1, "source": source,
            "problem_codes": ",".join(codes or []), "token_count": tokens,
            "created_at": stamp, "updated_at": stamp}


def insert_rows(db: sqlite_utils.Database, rows: list[dict[str, Any]]) -> None:
    """Insert prepared example rows (from `example_row`) inside the caller's transaction; the
    caller (an import, a quarantine fix) has checked permission and validity."""
    if rows:
        db.table("examples").insert_all(rows)


def get_example(db: sqlite_utils.Database, example_id: int) -> Example:
    return Example.from_row(db.table("examples").get(example_id))


def save_example(db: sqlite_utils.Database, dataset: Dataset, messages: Messages, *,
                 example_id: int | None = None, author: str = "", split: str | None = None,
                 status: str | None = None, tags: list[str] | None = None,
                 reason: str = "edit") -> Example:
    """Create or update one example; an update keeps the previous text as a revision."""
    permissions.require(author, "edit_examples")
    problems = validation.check_messages(messages, 1)
    codes = sorted({p.code for p in problems})
    if status == "ready" and codes:
        raise DatasetError("Only a valid example can be marked ready: "
                           + "; ".join(p.message.removeprefix("line 1: ") for p in problems))
    clean = [{"role": m["role"], "content": m["content"]} for m in messages]
    digest = validation.content_hash(clean)
    clash = db.execute("SELECT id FROM examples WHERE dataset_id = ? AND content_hash = ? AND id != ?",
                       [dataset.id, digest, example_id or -1]).fetchone()
    if clash:
        raise DatasetError(f"Example {clash[0]} already has exactly this content.")
    stamp = now()
    with transaction(db):
        if example_id is None:
            row = example_row(dataset.id, clean, digest, split=split or "train",
                               status=status or "draft", author=author, source="editor",
                               stamp=stamp, codes=codes, tags=tags)
            example_id = insert_row(db, "examples", row)
            audit(db, author, "create_example", "example", example_id, {})
        else:
            old = db.table("examples").get(example_id)
            db.table("example_revisions").insert({
                "example_id": example_id, "revision": old["revision"],
                "messages_json": old["messages_json"], "content_hash": old["content_hash"],
                "author": old["author"], "reason": reason, "created_at": stamp})
            update: dict[str, Any] = {"messages_json": validation.canonical_json(clean),
                                      "content_hash": digest, "revision": old["revision"] + 1,
                                      "problem_codes": ",".join(codes), "token_count": None,
                                      "updated_at": stamp, "author": author or old["author"]}
            if split:
                update["split"] = split
            if status:
                update["status"] = status
            if tags is not None:
                update["tags_json"] = json.dumps(tags)
            if codes:
                update["status"] = "draft"
            db.table("examples").update(example_id, update)
            audit(db, author, "edit_example", "example", example_id,
                  {"revision": old["revision"] + 1, "reason": reason})
    return get_example(db, example_id)


def duplicate_example(db: sqlite_utils.Database, dataset: Dataset, example_id: int,
                      author: str = "") -> Example:
    original = get_example(db, example_id)
    messages = [dict(m) for m in original.messages]
    # A copy must differ to pass the exact-duplicate rule; mark it so the author edits it.
    messages[-1]["content"] = messages[-1]["content"] + "\n(copy: edit me)"
    return save_example(db, dataset, messages, author=author, split=original.split,
                        tags=original.tags, status="draft")


def delete_examples(db: sqlite_utils.Database, example_ids: list[int], author: str = "") -> int:
    """Delete examples; their text stays in example_revisions and in any frozen version."""
    permissions.require(author, "delete_examples")
    stamp = now()
    with transaction(db):
        for example_id in example_ids:
            old = db.table("examples").get(example_id)
            db.table("example_revisions").insert({
                "example_id": example_id, "revision": old["revision"],
                "messages_json": old["messages_json"], "content_hash": old["content_hash"],
                "author": old["author"], "reason": "deleted", "created_at": stamp})
            db.table("examples").delete(example_id)
            audit(db, author, "delete_example", "example", example_id, {})
    return len(example_ids)


def bulk_update(db: sqlite_utils.Database, changes: dict[int, dict[str, Any]], author: str = "") -> int:
    """Apply tag/split/status edits from the data editor in one transaction."""
    permissions.require(author, "edit_examples")
    with transaction(db):
        for example_id, change in changes.items():
            row: dict[str, Any] = {}
            if "split" in change:
                if change["split"] not in ("train", "heldout"):
                    raise DatasetError(f"Example {example_id}: split must be train or heldout.")
                row["split"] = change["split"]
            if "status" in change:
                if change["status"] not in ("draft", "ready"):
                    raise DatasetError(f"Example {example_id}: status must be draft or ready.")
                if change["status"] == "ready" and db.table("examples").get(example_id)["problem_codes"]:
                    raise DatasetError(f"Example {example_id} has problems; fix it before ready.")
                row["status"] = change["status"]
            if "tags" in change:
                row["tags_json"] = json.dumps([t.strip() for t in change["tags"] if t.strip()])
            if row:
                row["updated_at"] = now()
                db.table("examples").update(example_id, row)
        audit(db, author, "bulk_update", "dataset", None, {"examples": len(changes)})
    return len(changes)


def apply_table_edits(db: sqlite_utils.Database, before: list[dict[str, Any]], after: list[dict[str, Any]],
                      author: str = "") -> tuple[int, int]:
    """The Author table's save: split/status/tags edits and ticked deletions, all or nothing.

    Rows carry id, split, status, tags (comma separated) and delete (bool). Returns (changed, deleted).
    """
    changes: dict[int, dict[str, Any]] = {}
    for old, new in zip(before, after):
        change: dict[str, Any] = {k: new[k] for k in ("split", "status") if new[k] != old[k]}
        if new["tags"] != old["tags"]:
            change["tags"] = str(new["tags"] or "").split(",")
        if change:
            changes[int(new["id"])] = change
    to_delete = [int(r["id"]) for r in after if r.get("delete")]
    with transaction(db):  # one transaction: a failed deletion undoes the edits too
        bulk_update(db, changes, author=author)
        for example_id in to_delete:
            if not db.execute("SELECT 1 FROM examples WHERE id = ?", [example_id]).fetchone():
                raise DatasetError(f"Example {example_id} no longer exists (deleted meanwhile?); nothing was saved.")
        if to_delete:
            delete_examples(db, to_delete, author=author)
    return len(changes), len(to_delete)


@dataclass(frozen=True)
class ExampleFilter:
    text: str = ""
    tag: str = ""
    status: str = ""
    split: str = ""
    has_pii: bool = False
    has_problem: bool = False


def list_examples(db: sqlite_utils.Database, dataset_id: int, flt: ExampleFilter | None = None,
                  *, limit: int = 50, offset: int = 0) -> tuple[list[Example], int]:
    """One page of examples and the total matching; SQL-side so 10,000 rows stay fast."""
    flt = flt or ExampleFilter()
    where = ["dataset_id = ?"]
    params: list[Any] = [dataset_id]
    if flt.text:
        where.append("messages_json LIKE ? ESCAPE '\\'")
        escaped = flt.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%{escaped}%")
    if flt.tag:
        where.append("tags_json LIKE ?")
        params.append(f'%{json.dumps(flt.tag)}%')
    if flt.status:
        where.append("status = ?")
        params.append(flt.status)
    if flt.split:
        where.append("split = ?")
        params.append(flt.split)
    if flt.has_pii:
        where.append("EXISTS (SELECT 1 FROM pii_findings f WHERE f.example_id = examples.id "
                     "AND f.content_hash = examples.content_hash AND f.status = 'open')")
    if flt.has_problem:
        where.append("problem_codes != ''")
    clause = " AND ".join(where)
    total = db.execute(f"SELECT count(*) FROM examples WHERE {clause}", params).fetchone()[0]
    rows = db.query(f"SELECT * FROM examples WHERE {clause} ORDER BY id LIMIT ? OFFSET ?",
                    [*params, limit, offset])
    return [Example.from_row(r) for r in rows], total


def content_signature(db: sqlite_utils.Database, dataset_id: int) -> tuple[int, ...]:
    """Changes with every write to the dataset (examples, splits, quarantine, versions, findings)
    or to PII scans and settings: the cache key for expensive checks (counters bumped by triggers)."""
    return change_count(db, f"dataset:{dataset_id}", "pii")


def all_examples(db: sqlite_utils.Database, dataset_id: int) -> list[Example]:
    return [Example.from_row(r) for r in db.query(
        "SELECT * FROM examples WHERE dataset_id = ? ORDER BY id", [dataset_id])]


def random_split(db: sqlite_utils.Database, dataset_id: int, heldout_fraction: float = 0.2,
                 seed: int = 0, author: str = "") -> tuple[int, int]:
    """Seeded split of all examples; returns (train, heldout) counts."""
    permissions.require(author, "edit_examples")
    if not 0 < heldout_fraction < 1:
        raise DatasetError("The held-out fraction must be between 0 and 1.")
    ids = [r[0] for r in db.execute("SELECT id FROM examples WHERE dataset_id = ? ORDER BY id",
                                    [dataset_id]).fetchall()]
    random.Random(seed).shuffle(ids)
    cut = round(len(ids) * heldout_fraction)
    heldout = set(ids[:cut])
    with transaction(db):
        for example_id in ids:
            db.table("examples").update(example_id, {"split": "heldout" if example_id in heldout else "train"})
        audit(db, author, "random_split", "dataset", dataset_id,
              {"seed": seed, "heldout_fraction": heldout_fraction})
    return len(ids) - cut, cut


def near_duplicates(db: sqlite_utils.Database, dataset_id: int) -> list[DuplicatePair]:
    """Near-duplicate pairs inside the training split."""
    rows = db.execute("SELECT id, messages_json FROM examples WHERE dataset_id = ? AND split = 'train'",
                      [dataset_id]).fetchall()
    return find_near_duplicates([(r[0], _dialogue_text(r[1])) for r in rows])


def leakage(db: sqlite_utils.Database, dataset_id: int) -> list[DuplicatePair]:
    """Held-out prompts that (nearly) duplicate a training prompt: they make evaluation dishonest.

    Ready examples only: drafts never enter a version, so a draft made from a held-out prompt
    ("Make this a training example") cannot leak anything until it is marked ready (issue 23)."""
    rows = db.execute("SELECT id, messages_json, split FROM examples WHERE dataset_id = ? AND status = 'ready'",
                      [dataset_id]).fetchall()
    train = {r[0] for r in rows if r[2] == "train"}
    heldout = {r[0] for r in rows if r[2] == "heldout"}
    return find_near_duplicates([(r[0], _prompt_text(r[1])) for r in rows], between=(train, heldout))


def _dialogue_text(messages_json: str) -> str:
    return "\n".join(m["content"] for m in json.loads(messages_json)["messages"] if m["role"] != "system")


def _prompt_text(messages_json: str) -> str:
    return "\n".join(m["content"] for m in json.loads(messages_json)["messages"] if m["role"] == "user")
