"""Erasing anonymised personal data from everywhere it reached: history, versions, files, free pages.

Anonymising an example writes a new revision; without this module the raw value would stay in
the old revision, in frozen versions, in quarantine, in generated prompts, in logs and run files,
and in freed database pages and the WAL (issue 12). This is the one module that rewrites rows of
other concerns' tables, on purpose: erasure must reach all of them in one transaction.

Issue 23: what is erased derives from the schema. Every TEXT column of every table is either in
ERASED (with how its text is read) or in EXEMPT (with the reason it can never hold user text);
a column in neither stops erasure with a message, and a test fails, so a new column cannot be
forgotten. JSON is erased inside the parsed string values (load, replace in each string, dump),
never over the serialized text, where `"thanks.\\nJane Doe"` puts the letter `n` before `Jane`.

Erasure is global: a value anonymised in one dataset is personal data wherever it appears, so it
is erased from every dataset, version, run, answer and file of this database, and the audit row
says so (docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from core.curation import validation
from core.platform import processes
from core.platform.store import audit, checkpoint, transaction

# How a column's text is read: "json" is parsed and erased in its string values; "text" is plain
# text (it may quote escaped JSON, as a log or an error message does); "raw" is a line as a user
# sent it: erased as JSON when it parses, else as text.
JSON, TEXT, RAW = "json", "text", "raw"

# Columns that may hold user text (examples, names, answers, comments, logs, error messages).
ERASED: dict[tuple[str, str], str] = {
    ("datasets", "name"): TEXT, ("datasets", "description"): TEXT, ("datasets", "system_prompt"): TEXT,
    ("datasets", "guidelines"): TEXT, ("datasets", "criteria_json"): JSON,
    ("datasets", "convention_regex"): TEXT, ("datasets", "glossary_json"): JSON, ("datasets", "vocabulary_json"): JSON,
    ("datasets", "convention_json"): JSON,
    ("preference_pairs", "prompt_json"): JSON, ("preference_pairs", "chosen"): TEXT,
    ("preference_pairs", "rejected"): TEXT,
    ("examples", "messages_json"): JSON, ("examples", "tags_json"): JSON, ("examples", "source"): TEXT,
    ("example_revisions", "messages_json"): JSON, ("example_revisions", "reason"): TEXT,
    ("quarantine", "source"): TEXT, ("quarantine", "raw_text"): RAW, ("quarantine", "message"): TEXT,
    ("dataset_versions", "pii_override_reason"): TEXT,
    ("dataset_version_examples", "messages_json"): JSON,
    ("pii_configs", "config_json"): JSON,
    ("pii_findings", "reason"): TEXT,
    ("runs", "config_json"): JSON, ("runs", "metrics_json"): JSON, ("runs", "error"): TEXT,
    ("runs", "log_tail"): TEXT, ("runs", "approval_note"): TEXT,
    ("generation_jobs", "settings_json"): JSON, ("generation_jobs", "error"): TEXT,
    ("generations", "prompt_json"): JSON, ("generations", "reference"): TEXT, ("generations", "text"): TEXT,
    ("generations", "settings_json"): JSON, ("generations", "flags_json"): JSON,
    ("ratings", "scores_json"): JSON, ("ratings", "comment"): TEXT,
    ("audit_log", "detail_json"): JSON,
    ("playground_requests", "prompt_json"): JSON, ("playground_requests", "settings_json"): JSON,
    ("playground_requests", "base_text"): TEXT, ("playground_requests", "tuned_text"): TEXT,
    ("playground_requests", "error"): TEXT,
    ("pii_value_decisions", "value_text"): TEXT, ("pii_value_decisions", "reason"): TEXT,
}

_ACCOUNT = "an account name: who did what stays in the record; accounts are managed on Settings"
_CODE = "a code or state the studio writes from a fixed set"
_STUDIO = "written by the studio from its own identifiers, never from user text"
EXEMPT: dict[tuple[str, str], str] = {
    ("_sqlite_migrations", "migration_set"): _STUDIO, ("_sqlite_migrations", "name"): _STUDIO,
    ("settings", "key"): _STUDIO,
    ("settings", "value"): "studio settings (limits, salt, store id) set by admins; never example content",
    ("base_models", "name"): "a model's name or hub id, chosen by an admin",
    ("base_models", "source"): _CODE, ("base_models", "location"): "a model's folder or hub id",
    ("examples", "split"): _CODE, ("examples", "status"): _CODE, ("examples", "author"): _ACCOUNT,
    ("examples", "problem_codes"): _CODE,
    ("example_revisions", "author"): _ACCOUNT,
    ("quarantine", "code"): _CODE,
    ("dataset_versions", "created_by"): _ACCOUNT,
    ("dataset_version_examples", "split"): _CODE,
    ("pii_configs", "created_by"): _ACCOUNT,
    ("pii_findings", "entity_type"): _CODE, ("pii_findings", "status"): _CODE,
    ("pii_findings", "decided_by"): _ACCOUNT,
    ("runs", "base_model"): "a registered model's name", ("runs", "preset"): _CODE, ("runs", "status"): _CODE,
    ("runs", "adapter_path"): _STUDIO, ("runs", "created_by"): _ACCOUNT, ("runs", "approval"): _CODE,
    ("runs", "phase"): _CODE, ("runs", "target"): _CODE, ("runs", "target_ref"): _STUDIO,
    ("generation_jobs", "status"): _CODE, ("generation_jobs", "target"): _CODE,
    ("generation_jobs", "target_ref"): _STUDIO,
    ("generations", "side"): _CODE,
    ("runs", "kind"): _CODE, ("preference_pairs", "source"): _CODE,
    ("rating_sessions", "rater"): _ACCOUNT, ("outcome_views", "viewer"): _ACCOUNT,
    ("rating_sessions", "order_json"): "positions and sides only",
    ("ratings", "rater"): _ACCOUNT, ("ratings", "left_side"): _CODE, ("ratings", "verdict"): _CODE,
    ("ratings", "preferred"): _CODE,
    ("audit_log", "actor"): _ACCOUNT, ("audit_log", "action"): _CODE, ("audit_log", "object_type"): _CODE,
    ("audit_log", "object_id"): "a row id or a configuration hash",
    ("rating_closures", "closed_by"): _ACCOUNT,
    ("sign_in_failures", "user_name"): "the name typed at sign-in, kept for back-off",
    ("sign_in_failures", "client"): "a client address, kept for back-off",
    ("change_counters", "scope"): _STUDIO,
    ("playground_requests", "status"): _CODE, ("playground_requests", "created_by"): _ACCOUNT,
    ("pii_value_decisions", "decision"): _CODE, ("pii_value_decisions", "method"): _CODE,
    ("pii_value_decisions", "entity_types_json"): "entity names, which must match a strict pattern",
    ("pii_value_decisions", "decided_by"): _ACCOUNT,
}
# Whole families of columns decided by their name: a new column that follows the naming rule is decided.
EXEMPT_SUFFIXES = {"_at": "an ISO-8601 timestamp the studio writes",
                   "_hash": "a digest (a salted one for PII values)",
                   "_sha256": "a digest"}

TEXT_FILE_SUFFIXES = {".jsonl", ".json", ".txt", ".log", ".md", ".csv", ".html"}
FILE_ROOTS = ("runs/<database>/ (run folders: training files, logs, adapters' text files)",
              "logs/<database>/ (worker logs)")


class ErasureError(Exception):
    """Erasure cannot promise to reach every copy (a column without a decision); nothing was changed."""


@dataclass
class ErasureReport:
    rows: int = 0
    files: list[str] = field(default_factory=list)
    versions_rehashed: list[int] = field(default_factory=list)
    datasets: list[int] = field(default_factory=list)


def text_columns(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    """Every (table, column) declared TEXT in this database's schema."""
    return [(table, column.name) for table in db.table_names() if not table.startswith("sqlite_")
            for column in db[table].columns if column.type.upper() == "TEXT"]


def exempt_reason(table: str, column: str) -> str | None:
    if (table, column) in EXEMPT:
        return EXEMPT[(table, column)]
    return next((why for suffix, why in EXEMPT_SUFFIXES.items() if column.endswith(suffix)), None)


def undecided_columns(db: sqlite_utils.Database) -> list[str]:
    """TEXT columns that are neither erased nor exempt: each needs a decision in this module."""
    return [f"{t}.{c}" for t, c in text_columns(db) if (t, c) not in ERASED and exempt_reason(t, c) is None]


def coverage_markdown(db: sqlite_utils.Database) -> str:
    """What erasure covers, for docs/reliability.md (a test checks the document matches)."""
    lines = ["| table | erased columns (how read) | exempt columns (why) |", "|---|---|---|"]
    by_table: dict[str, tuple[list[str], list[str]]] = {}
    for table, column in text_columns(db):
        erased, exempt = by_table.setdefault(table, ([], []))
        if (table, column) in ERASED:
            erased.append(f"`{column}` ({ERASED[(table, column)]})")
        else:
            exempt.append(f"`{column}` ({exempt_reason(table, column) or 'UNDECIDED'})")
    for table, (erased, exempt) in sorted(by_table.items()):
        lines.append(f"| `{table}` | {', '.join(erased) or '—'} | {', '.join(exempt) or '—'} |")
    lines.append("")
    lines.append("Files: text files (" + ", ".join(sorted(TEXT_FILE_SUFFIXES)) + ") under the data folder's "
                 + " and ".join(FILE_ROOTS) + "; `.jsonl` line by line and `.json` parsed, the others as text.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- replacing in text

def _forms(value: str) -> list[str]:
    """The value as plain text and as JSON or HTML would escape it inside a quoted string."""
    forms = {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1], html.escape(value)}
    return sorted(forms, key=len, reverse=True)


def _pattern(value: str) -> re.Pattern[str]:
    # Word boundaries, so erasing "Ann" never touches "Annual". In text that quotes escaped JSON (a
    # log line, an error message) the letter of an escape such as `\n` is not part of a word.
    parts = []
    for form in _forms(value):
        before = r"(?:(?<!\w)|(?<=\\[nrtbf]))" if re.match(r"\w", form) else ""
        after = r"(?!\w)" if re.search(r"\w$", form) else ""
        parts.append(before + re.escape(form) + after)
    return re.compile("|".join(parts))


Rules = list[tuple[re.Pattern[str], str]]


def _rules(values: dict[str, str]) -> Rules:
    return [(_pattern(v), r) for v, r in sorted(values.items(), key=lambda kv: -len(kv[0]))]


def erase_text(text: str, rules: Rules) -> str:
    for pattern, replacement in rules:
        # A function, not a template: a replacement is literal text, never a backreference.
        text = pattern.sub(_literal(replacement), text)
    return text


def _literal(replacement: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: replacement


def _erase_values(obj: Any, rules: Rules) -> Any:
    if isinstance(obj, str):
        return erase_text(obj, rules)
    if isinstance(obj, list):
        return [_erase_values(item, rules) for item in obj]
    if isinstance(obj, dict):
        # Keys are field names the studio chose; values are what users wrote.
        return {key: _erase_values(item, rules) for key, item in obj.items()}
    return obj


def _dump_like(obj: Any, original: str, like: Any) -> str:
    """Serialise obj in the style the original text was written in (compact or not, ASCII or not)."""
    for separators in ((",", ":"), None):
        for ensure_ascii in (False, True):
            for sort_keys in (False, True):
                options = {"separators": separators, "ensure_ascii": ensure_ascii, "sort_keys": sort_keys}
                if json.dumps(like, **options) == original:  # type: ignore[arg-type]
                    return json.dumps(obj, **options)  # type: ignore[arg-type]
    return json.dumps(obj, ensure_ascii=False)


def erase_json(text: str, rules: Rules) -> str:
    """Erase inside the parsed string values of a JSON document, then write it back the same way."""
    obj = json.loads(text)
    erased = _erase_values(obj, rules)
    return text if erased == obj else _dump_like(erased, text, obj)


def erase_raw(text: str, rules: Rules) -> str:
    try:
        return erase_json(text, rules)
    except (ValueError, RecursionError):
        return erase_text(text, rules)


def erase_jsonl(text: str, rules: Rules) -> str:
    return "".join(erase_raw(line.rstrip("\n"), rules) + ("\n" if line.endswith("\n") else "")
                   for line in text.splitlines(keepends=True))


_READERS: dict[str, Callable[[str, Rules], str]] = {JSON: erase_json, TEXT: erase_text, RAW: erase_raw}


# ----------------------------------------------------------------------------- erasing

def erase_values(db: sqlite_utils.Database, replacements: dict[str, str], *, actor: str) -> ErasureReport:
    """Replace each raw value by its replacement in every stored copy, then scrub the files.

    Global on purpose: the value is erased from every dataset of this database, not only the one
    where it was anonymised. Callers (pii_review.anonymise) have already checked the actor's
    permission to anonymise.
    """
    values = {v: r for v, r in replacements.items() if v.strip()}
    report = ErasureReport()
    if not values:
        return report
    undecided = undecided_columns(db)
    if undecided:
        raise ErasureError("Erasure has no decision for text column(s) " + ", ".join(undecided)
                           + ": add each to ERASED or EXEMPT in core/pii/erasure.py.")
    rules = _rules(values)
    needles = sorted({f for v in values for f in _forms(v)})
    with transaction(db):
        for (table, column), kind in ERASED.items():
            if not db[table].exists():
                continue
            where = " OR ".join(f"instr({column}, ?) > 0" for _ in needles)
            rows = db.execute(f"SELECT rowid, {column} FROM {table} WHERE {where}", needles).fetchall()
            for rowid, text in rows:
                new = _READERS[kind](text, rules)
                if new == text:
                    continue
                db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", [new, rowid])
                report.rows += 1
                if column == "messages_json":
                    _rehash(db, table, rowid, new, report)
        for version_id in report.versions_rehashed:
            _rehash_version(db, version_id, actor)
        audit(db, actor, "pii_erase", "database", None,
              {"values": len(values), "rows": report.rows, "versions": report.versions_rehashed,
               "datasets": sorted(set(report.datasets)),
               "scope": "global: every dataset, version, run and file of this database, since the value is "
                        "personal data wherever it appears"})
    report.files = _scrub_files(db, rules)
    checkpoint(db)
    return report


def _rehash(db: sqlite_utils.Database, table: str, rowid: int, messages_json: str, report: ErasureReport) -> None:
    digest = validation.content_hash(json.loads(messages_json)["messages"])
    db.execute(f"UPDATE {table} SET content_hash = ? WHERE rowid = ?", [digest, rowid])
    if table == "examples":
        # Another dataset's current text changed: its old findings no longer apply, and the new
        # text counts as unscanned until it is scanned, so its gate closes rather than opens.
        report.datasets.append(db.execute("SELECT dataset_id FROM examples WHERE rowid = ?", [rowid]).fetchone()[0])
    if table == "dataset_version_examples":
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
           "why": "personal data anonymised after freezing was erased from this version (erasure is global: "
                  "the value may have been anonymised in another dataset)"})


def _scrub_files(db: sqlite_utils.Database, rules: Rules) -> list[str]:
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
            reader = {".jsonl": erase_jsonl, ".json": erase_raw}.get(path.suffix, erase_text)
            new = reader(text, rules)
            if new != text:
                tmp = path.with_name(path.name + ".erasing")
                tmp.write_text(new, encoding="utf-8")
                os.replace(tmp, path)
                changed.append(str(path))
    return changed
