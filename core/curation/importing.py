"""Importing JSONL: per-line verdicts, quarantine of bad lines and fixing them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from core.curation import datasets, examples, validation
from core.curation.datasets import Dataset, DatasetError
from core.curation.examples import example_row as _example_row
from core.curation.validation import TokenCounter
from core.models import templating
from core.platform import permissions
from core.platform.store import audit, now, transaction

MAX_IMPORT_BYTES = 50 * 2**20  # also the page's upload limit


@dataclass
class ImportReport:
    formats: dict[str, int] = field(default_factory=dict)
    imported: int = 0
    duplicates: int = 0
    blank: int = 0
    quarantined: int = 0
    errors: list[validation.LineProblem] = field(default_factory=list)
    warnings: list[validation.LineProblem] = field(default_factory=list)
    # How the file was read (spreadsheets: the text encoding used and why; issue 27).
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"formats": self.formats, "notes": self.notes, "imported": self.imported, "duplicates": self.duplicates,
                "blank": self.blank, "quarantined": self.quarantined,
                "errors": [e.to_dict() for e in self.errors],
                "warnings": [w.to_dict() for w in self.warnings]}


def import_jsonl(db: sqlite_utils.Database, dataset: Dataset | str, data: bytes, *, source: str = "",
                 author: str = "", split: str = "train", count_tokens: TokenCounter | None = None,
                 max_length: int = templating.DEFAULT_MAX_LENGTH) -> ImportReport:
    """Import valid lines, quarantine invalid ones (fixable later), report every line's verdict.

    `dataset` may be a name: a dataset of that name that does not exist yet is created in the same
    transaction as the import, so a killed import (`kill -9`) leaves no empty dataset (issue 23).
    """
    permissions.require(author, "import_examples")
    if isinstance(dataset, str):
        try:
            dataset = datasets.get_dataset(db, dataset)
        except DatasetError:
            permissions.require(author, "create_dataset")
    if len(data) > MAX_IMPORT_BYTES:
        raise DatasetError(f"The file is {len(data) / 2**20:.0f} MB; the limit is {MAX_IMPORT_BYTES // 2**20} MB. "
                           "Split it into smaller files.")
    return import_parsed(db, dataset, validation.parse_jsonl(data), source=source, author=author,
                         split=split, count_tokens=count_tokens, max_length=max_length)


def import_parsed(db: sqlite_utils.Database, dataset: Dataset | str, parsed: validation.ParseResult, *,
                  source: str = "", author: str = "", split: str = "train",
                  count_tokens: TokenCounter | None = None, unit: str = "line",
                  max_length: int = templating.DEFAULT_MAX_LENGTH) -> ImportReport:
    """Import parsed lines or rows (JSONL, spreadsheet, Hugging Face): the valid ones become
    examples, the invalid ones go to quarantine, every one gets a verdict in the report."""
    permissions.require(author, "import_examples")
    if split not in ("train", "heldout"):
        raise DatasetError("split must be train or heldout.")
    report = ImportReport(formats=parsed.formats, blank=parsed.blank)
    new_name = dataset if isinstance(dataset, str) else None
    dataset_id = 0 if isinstance(dataset, str) else dataset.id  # set once the new dataset exists
    dataset_name = dataset if isinstance(dataset, str) else dataset.name
    existing = {r[0] for r in db.execute(
        "SELECT content_hash FROM examples WHERE dataset_id = ?", [dataset_id]).fetchall()}
    seen_in_file: dict[str, int] = {}
    to_insert: list[dict[str, Any]] = []
    to_quarantine: list[dict[str, Any]] = []
    stamp = now()
    for line in parsed.lines:
        if not line.ok or line.messages is None:
            report.errors.extend(line.problems)
            to_quarantine.append({"dataset_id": dataset_id, "source": source, "line_no": line.line,
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
                f"{unit} {line.line}: exact duplicate of {unit} {seen_in_file[digest]}; skipped", "warning"))
            continue
        if digest in existing:
            report.duplicates += 1
            report.warnings.append(validation.LineProblem(
                line.line, "duplicate_in_dataset",
                f"{unit} {line.line}: already in dataset '{dataset_name}'; skipped", "warning"))
            continue
        seen_in_file[digest] = line.line
        tokens = count_tokens(line.messages) if count_tokens else None
        codes = []
        if tokens is not None and tokens > max_length:
            codes.append("too_long")
            report.warnings.append(validation.LineProblem(
                line.line, "too_long", f"{unit} {line.line}: {tokens:,} tokens with the model's chat "
                f"template, over max length {max_length:,}; the end would be cut in training", "warning"))
        to_insert.append(_example_row(dataset_id, line.messages, digest, split=line.split or split,
                                      status="ready", author=author, source=source, stamp=stamp,
                                      tokens=tokens, codes=codes, tags=list(line.tags)))
    with transaction(db):
        if new_name is not None:
            dataset_id = datasets.create_dataset(db, new_name, actor=author).id
            for row in to_insert + to_quarantine:
                row["dataset_id"] = dataset_id
        if to_insert:
            examples.insert_rows(db, to_insert)
        if to_quarantine:
            db.table("quarantine").insert_all(to_quarantine)
        audit(db, author, "import", "dataset", dataset_id,
              {"source": source, "imported": len(to_insert), "quarantined": len(to_quarantine)})
    report.imported = len(to_insert)
    report.quarantined = len(to_quarantine)
    return report


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
        examples.insert_rows(db, [_example_row(row["dataset_id"], parsed.messages, digest, split="train",
                                               status="ready", author=author, source=row["source"],
                                               stamp=now())])
        db.table("quarantine").delete(quarantine_id)
        audit(db, author, "fix_quarantined", "dataset", row["dataset_id"], {"line": row["line_no"]})
    return []


def discard_quarantined(db: sqlite_utils.Database, quarantine_id: int, author: str = "") -> None:
    permissions.require(author, "edit_examples")
    with transaction(db):
        row = db.table("quarantine").get(quarantine_id)
        db.table("quarantine").delete(quarantine_id)
        audit(db, author, "discard_quarantined", "dataset", row["dataset_id"], {"line": row["line_no"]})


def quarantined_turns(raw_text: str) -> list[dict[str, str]] | None:
    """A quarantined line as editable turns (role, content) when it is JSON in a known shape, so a
    wrong role or a missing answer is fixed in a form rather than by hand-editing JSON; None when
    the line is not JSON at all (then only the raw text can be edited)."""
    try:
        obj = json.loads(raw_text)
    except (ValueError, RecursionError):
        return None
    _format, messages = validation.convert(obj)
    if not isinstance(messages, list):
        return None
    turns = []
    for message in messages:
        if isinstance(message, dict):
            content = message.get("content")
            turns.append({"role": str(message.get("role") or "user"),
                          "content": content if isinstance(content, str) else json.dumps(content)})
    return turns or None


def turns_line(turns: list[dict[str, str]]) -> str:
    """The edited turns as one JSONL line for fix_quarantined."""
    return json.dumps({"messages": [{"role": t["role"], "content": t["content"]} for t in turns]}, ensure_ascii=False)
