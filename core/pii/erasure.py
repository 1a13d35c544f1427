"""Erasing anonymised personal data from everywhere it reached: history, versions, files, free pages.

Anonymising an example writes a new revision; without this module the raw value would stay in
the old revision, in frozen versions, in quarantine, in generated prompts, in logs and run files,
and in freed database pages and the WAL (issue 12). This is the one module that rewrites rows of
other concerns' tables, on purpose: erasure must reach all of them in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from core.curation import validation
from core.platform import processes
from core.platform.store import audit, checkpoint, transaction

# (table, primary key, text columns) that may hold user text.
TEXT_COLUMNS: list[tuple[str, str, tuple[str, ...]]] = [
    ("example_revisions", "id", ("messages_json",)),
    ("dataset_version_examples", "rowid", ("messages_json",)),
    ("quarantine", "id", ("raw_text", "message")),
    ("generations", "id", ("prompt_json", "reference", "text")),
    ("ratings", "id", ("comment",)),
    ("runs", "id", ("log_tail", "error")),
    ("audit_log", "id", ("detail_json",)),
    ("pii_value_decisions", "rowid", ("value_text", "reason")),
]
TEXT_FILE_SUFFIXES = {".jsonl", ".json", ".txt", ".log", ".md", ".csv", ".html"}


@dataclass
class ErasureReport:
    rows: int = 0
    files: list[str] = field(default_factory=list)
    versions_rehashed: list[int] = field(default_factory=list)


def _forms(value: str) -> list[str]:
    """The value as it appears in plain text and inside JSON written either way."""
    forms = {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def _pattern(value: str) -> re.Pattern[str]:
    # Word boundaries, so erasing "Ann" never touches "Annual".
    return re.compile("|".join(rf"(?<!\w){re.escape(f)}(?!\w)" for f in _forms(value)))


def _replace_all(text: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in rules:
        # A function, not a template: a replacement is literal text, never a backreference.
        text = pattern.sub(_literal(replacement), text)
    return text


def _literal(replacement: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: replacement


def erase_values(db: sqlite_utils.Database, replacements: dict[str, str], *, actor: str) -> ErasureReport:
    """Replace each raw value by its replacement in every stored copy, then scrub the files.

    Callers (pii_review.anonymise) have already checked the actor's permission to anonymise.
    """
    values = {v: r for v, r in replacements.items() if v.strip()}
    report = ErasureReport()
    if not values:
        return report
    rules = [(_pattern(v), r) for v, r in sorted(values.items(), key=lambda kv: -len(kv[0]))]
    needles = sorted({f for v in values for f in _forms(v)})
    with transaction(db):
        for table, key, columns in TEXT_COLUMNS:
            for column in columns:
                where = " OR ".join(f"instr({column}, ?) > 0" for _ in needles)
                rows = db.execute(f"SELECT {key}, {column} FROM {table} WHERE {where}", needles).fetchall()
                for row_key, text in rows:
                    new = _replace_all(text, rules)
                    if new != text:
                        db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", [new, row_key])
                        report.rows += 1
                        if table == "example_revisions":
                            _rehash_revision(db, row_key, new)
                        if table == "dataset_version_examples":
                            _rehash_version_row(db, row_key, new, report)
        for version_id in report.versions_rehashed:
            _rehash_version(db, version_id, actor)
        audit(db, actor, "pii_erase", "database", None,
              {"values": len(values), "rows": report.rows, "versions": report.versions_rehashed})
    report.files = _scrub_files(db, rules)
    checkpoint(db)
    return report


def _rehash_revision(db: sqlite_utils.Database, revision_id: int, messages_json: str) -> None:
    messages = json.loads(messages_json)["messages"]
    db.execute("UPDATE example_revisions SET content_hash = ? WHERE id = ?",
               [validation.content_hash(messages), revision_id])


def _rehash_version_row(db: sqlite_utils.Database, rowid: int, messages_json: str, report: ErasureReport) -> None:
    messages = json.loads(messages_json)["messages"]
    db.execute("UPDATE dataset_version_examples SET content_hash = ? WHERE rowid = ?",
               [validation.content_hash(messages), rowid])
    version_id = db.execute("SELECT dataset_version_id FROM dataset_version_examples WHERE rowid = ?",
                            [rowid]).fetchone()[0]
    if version_id not in report.versions_rehashed:
        report.versions_rehashed.append(version_id)


def _rehash_version(db: sqlite_utils.Database, version_id: int, actor: str) -> None:
    # The same digest as versions.freeze; the change is audited so lineage stays explainable.
    digest = hashlib.sha256()
    for split, messages_json in db.execute("SELECT split, messages_json FROM dataset_version_examples WHERE "
                                           "dataset_version_id = ? ORDER BY position", [version_id]):
        digest.update(f"{split}\t{messages_json}\n".encode())
    old = db.execute("SELECT content_hash FROM dataset_versions WHERE id = ?", [version_id]).fetchone()[0]
    db.execute("UPDATE dataset_versions SET content_hash = ? WHERE id = ?", [digest.hexdigest(), version_id])
    audit(db, actor, "version_erased", "dataset_version", version_id,
          {"old_sha256": old, "new_sha256": digest.hexdigest(),
           "why": "personal data anonymised after freezing was erased from this version"})


def _scrub_files(db: sqlite_utils.Database, rules: list[tuple[re.Pattern[str], str]]) -> list[str]:
    """Run folders and worker logs of this database: rewrite text files that hold a value."""
    database = Path(processes.db_file(db))
    roots = [processes.run_dir(db, 0).parent, processes.log_dir(database)]
    changed = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.is_symlink() or not path.is_file() or path.suffix not in TEXT_FILE_SUFFIXES:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            new = _replace_all(text, rules)
            if new != text:
                tmp = path.with_name(path.name + ".erasing")
                tmp.write_text(new, encoding="utf-8")
                os.replace(tmp, path)
                changed.append(str(path))
    return changed
