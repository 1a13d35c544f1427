"""Datasets and their examples: import, edit with revisions, splits, quarantine, versions, export."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from core import permissions, text_safety, validation
from core.duplicates import DuplicatePair, find_near_duplicates
from core.store import audit, insert_row, now, transaction
from core.validation import Messages, TokenCounter

MAX_IMPORT_BYTES = 50 * 2**20  # also the page's upload limit
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

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Dataset:
        return cls(row["id"], row["name"], row["description"], row["system_prompt"],
                   row["guidelines"], json.loads(row["criteria_json"]) or DEFAULT_CRITERIA,
                   row["convention_regex"], json.loads(row["glossary_json"]), row["created_at"])


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
    def prompt_text(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def first_user_text(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "user"), "")


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


@dataclass
class ImportReport:
    formats: dict[str, int] = field(default_factory=dict)
    imported: int = 0
    duplicates: int = 0
    blank: int = 0
    quarantined: int = 0
    errors: list[validation.LineProblem] = field(default_factory=list)
    warnings: list[validation.LineProblem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"formats": self.formats, "imported": self.imported, "duplicates": self.duplicates,
                "blank": self.blank, "quarantined": self.quarantined,
                "errors": [e.to_dict() for e in self.errors],
                "warnings": [w.to_dict() for w in self.warnings]}


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
    allowed = {"description", "system_prompt", "guidelines", "convention_regex"}
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
    with transaction(db):
        db.table("datasets").update(dataset_id, row)
        audit(db, actor, "update_dataset", "dataset", dataset_id, {"fields": sorted(row)})
    return get_dataset(db, dataset_id)


# ----------------------------------------------------------------------------- import

def import_jsonl(db: sqlite_utils.Database, dataset: Dataset, data: bytes, *, source: str = "",
                 author: str = "", split: str = "train", count_tokens: TokenCounter | None = None,
                 max_length: int = 1024) -> ImportReport:
    """Import valid lines, quarantine invalid ones (fixable later), report every line's verdict."""
    permissions.require(author, "import_examples")
    if len(data) > MAX_IMPORT_BYTES:
        raise DatasetError(f"The file is {len(data) / 2**20:.0f} MB; the limit is {MAX_IMPORT_BYTES // 2**20} MB. "
                           "Split it into smaller files.")
    parsed = validation.parse_jsonl(data)
    report = ImportReport(formats=parsed.formats, blank=parsed.blank)
    existing = {r[0] for r in db.execute(
        "SELECT content_hash FROM examples WHERE dataset_id = ?", [dataset.id]).fetchall()}
    seen_in_file: dict[str, int] = {}
    to_insert: list[dict[str, Any]] = []
    to_quarantine: list[dict[str, Any]] = []
    stamp = now()
    for line in parsed.lines:
        if not line.ok or line.messages is None:
            report.errors.extend(line.problems)
            to_quarantine.append({"dataset_id": dataset.id, "source": source, "line_no": line.line,
                                  "raw_text": line.raw[:validation.MAX_LINE_BYTES],
                                  "code": line.problems[0].code,
                                  "message": "; ".join(p.message for p in line.problems),
                                  "created_at": stamp})
            continue
        digest = validation.content_hash(line.messages)
        if digest in seen_in_file:
            report.duplicates += 1
            report.warnings.append(validation.LineProblem(
                line.line, "duplicate_in_file",
                f"line {line.line}: exact duplicate of line {seen_in_file[digest]}; skipped", "warning"))
            continue
        if digest in existing:
            report.duplicates += 1
            report.warnings.append(validation.LineProblem(
                line.line, "duplicate_in_dataset",
                f"line {line.line}: already in dataset '{dataset.name}'; skipped", "warning"))
            continue
        seen_in_file[digest] = line.line
        tokens = count_tokens(line.messages) if count_tokens else None
        codes = []
        if tokens is not None and tokens > max_length:
            codes.append("too_long")
            report.warnings.append(validation.LineProblem(
                line.line, "too_long", f"line {line.line}: {tokens:,} tokens with the model's chat "
                f"template, over max length {max_length:,}; the end would be cut in training", "warning"))
        to_insert.append(_example_row(dataset.id, line.messages, digest, split=split, status="ready",
                                      author=author, source=source, stamp=stamp, tokens=tokens,
                                      codes=codes))
    with transaction(db):
        if to_insert:
            db.table("examples").insert_all(to_insert)
        if to_quarantine:
            db.table("quarantine").insert_all(to_quarantine)
        audit(db, author, "import", "dataset", dataset.id,
              {"source": source, "imported": len(to_insert), "quarantined": len(to_quarantine)})
    report.imported = len(to_insert)
    report.quarantined = len(to_quarantine)
    return report


def _example_row(dataset_id: int, messages: Messages, digest: str, *, split: str, status: str,
                 author: str, source: str, stamp: str, tokens: int | None = None,
                 codes: list[str] | None = None, tags: list[str] | None = None) -> dict[str, Any]:
    return {"dataset_id": dataset_id, "messages_json": validation.canonical_json(messages),
            "content_hash": digest, "split": split, "tags_json": json.dumps(tags or []),
            "status": status, "author": author, "revision": 1, "source": source,
            "problem_codes": ",".join(codes or []), "token_count": tokens,
            "created_at": stamp, "updated_at": stamp}


def list_quarantine(db: sqlite_utils.Database, dataset_id: int) -> list[dict[str, Any]]:
    return list(db.table("quarantine").rows_where("dataset_id = ?", [dataset_id], order_by="id"))


def fix_quarantined(db: sqlite_utils.Database, quarantine_id: int, new_text: str, *,
                    author: str = "") -> list[validation.LineProblem]:
    """Re-validate an edited quarantined line; import it when valid. Returns remaining problems."""
    permissions.require(author, "edit_examples")
    row = db.table("quarantine").get(quarantine_id)
    parsed = validation.parse_line(new_text.encode("utf-8"), row["line_no"])
    if not parsed.ok or parsed.messages is None:
        with transaction(db):
            db.table("quarantine").update(quarantine_id, {
                "raw_text": new_text, "code": parsed.problems[0].code,
                "message": "; ".join(p.message for p in parsed.problems)})
        return list(parsed.problems)
    digest = validation.content_hash(parsed.messages)
    if db.execute("SELECT 1 FROM examples WHERE dataset_id = ? AND content_hash = ?",
                  [row["dataset_id"], digest]).fetchone():
        return [validation.LineProblem(row["line_no"], "duplicate_in_dataset",
                                       f"line {row['line_no']}: already in the dataset")]
    with transaction(db):
        db.table("examples").insert(_example_row(row["dataset_id"], parsed.messages, digest, split="train",
                                           status="ready", author=author, source=row["source"],
                                           stamp=now()))
        db.table("quarantine").delete(quarantine_id)
        audit(db, author, "fix_quarantined", "dataset", row["dataset_id"], {"line": row["line_no"]})
    return []


def discard_quarantined(db: sqlite_utils.Database, quarantine_id: int, author: str = "") -> None:
    permissions.require(author, "edit_examples")
    with transaction(db):
        row = db.table("quarantine").get(quarantine_id)
        db.table("quarantine").delete(quarantine_id)
        audit(db, author, "discard_quarantined", "dataset", row["dataset_id"], {"line": row["line_no"]})


# ----------------------------------------------------------------------------- examples

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
            row = _example_row(dataset.id, clean, digest, split=split or "train",
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


def content_signature(db: sqlite_utils.Database, dataset_id: int) -> str:
    """Changes whenever any example of the dataset changes: a cache key for expensive checks."""
    row = db.execute("SELECT count(*), max(updated_at), sum(id * revision), group_concat(DISTINCT split) "
                     "FROM examples WHERE dataset_id = ?", [dataset_id]).fetchone()
    findings = db.execute("SELECT count(*), max(decided_at) FROM pii_findings f JOIN examples e ON e.id = f.example_id "
                          "WHERE e.dataset_id = ?", [dataset_id]).fetchone()
    scans = db.execute("SELECT count(*), max(id) FROM pii_configs").fetchone()
    return repr((tuple(row), tuple(findings), tuple(scans), db.table("pii_scans").count))


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


# ----------------------------------------------------------------------------- duplicates

def near_duplicates(db: sqlite_utils.Database, dataset_id: int) -> list[DuplicatePair]:
    """Near-duplicate pairs inside the training split."""
    rows = db.execute("SELECT id, messages_json FROM examples WHERE dataset_id = ? AND split = 'train'",
                      [dataset_id]).fetchall()
    return find_near_duplicates([(r[0], _dialogue_text(r[1])) for r in rows])


def leakage(db: sqlite_utils.Database, dataset_id: int) -> list[DuplicatePair]:
    """Held-out prompts that (nearly) duplicate a training prompt: they make evaluation dishonest."""
    rows = db.execute("SELECT id, messages_json, split FROM examples WHERE dataset_id = ?",
                      [dataset_id]).fetchall()
    train = {r[0] for r in rows if r[2] == "train"}
    heldout = {r[0] for r in rows if r[2] == "heldout"}
    return find_near_duplicates([(r[0], _prompt_text(r[1])) for r in rows], between=(train, heldout))


def _dialogue_text(messages_json: str) -> str:
    return "\n".join(m["content"] for m in json.loads(messages_json)["messages"] if m["role"] != "system")


def _prompt_text(messages_json: str) -> str:
    return "\n".join(m["content"] for m in json.loads(messages_json)["messages"] if m["role"] == "user")


# ----------------------------------------------------------------------------- versions

@dataclass(frozen=True)
class FreezeCheck:
    """Why a dataset can or cannot be frozen now."""
    train: int
    heldout: int
    drafts: int
    leakage: list[DuplicatePair]
    pii_open: int
    pii_unscanned: int

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
        reasons = []
        if self.pii_unscanned:
            reasons.append(f"{self.pii_unscanned} example(s) not yet PII-scanned with the current settings.")
        if self.pii_open:
            reasons.append(f"{self.pii_open} PII finding(s) are unresolved.")
        return reasons


def freeze_check(db: sqlite_utils.Database, dataset_id: int) -> FreezeCheck:
    from core import pii

    counts = dict(db.execute("SELECT split, count(*) FROM examples WHERE dataset_id = ? AND "
                             "status = 'ready' GROUP BY split", [dataset_id]).fetchall())
    drafts = db.execute("SELECT count(*) FROM examples WHERE dataset_id = ? AND status = 'draft'",
                        [dataset_id]).fetchone()[0]
    gate = pii.gate_status(db, dataset_id)
    return FreezeCheck(counts.get("train", 0), counts.get("heldout", 0), drafts,
                       leakage(db, dataset_id), gate.open_findings, gate.unscanned_examples)


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


# ----------------------------------------------------------------------------- export

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
        from core import pii

        frozen = get_version(db, dataset.id, version)
        gate = pii.gate_status(db, dataset.id, version_id=frozen.id)
        if gate.open_findings and not frozen.pii_override_reason:
            raise DatasetError(f"Cannot export: {gate.open_findings} unresolved PII finding(s).")
        lines = [validation.canonical_json(m) for m in version_messages(db, frozen.id, split)]
    return "".join(line + "\n" for line in lines)
