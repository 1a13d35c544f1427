"""PII review by distinct value: one decision covers every occurrence, now and in later imports.

Issue 16: a reviewer who must click through 22 occurrences of five product names learns to press
"dismiss all", which defeats the gate. Here findings are grouped by value (the salted value hash
of core.pii.scan), each group says how many examples it touches, and one decision per value and
dataset is recorded with its reason and can be undone:

- not personal data in this dataset (admins: it clears the gate), applied when findings are read,
  so it also covers occurrences that later imports bring;
- anonymise everywhere (authors): every occurrence now, and occurrences found by later scans.

This module alone writes pii_value_decisions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from core.curation import datasets, examples
from core.pii import review
from core.pii import scan as pii
from core.pii import vocabulary as pii_vocabulary
from core.platform import permissions
from core.platform.store import audit, now, transaction

ANONYMISE_METHODS = ("replace", "mask", "redact")


@dataclass(frozen=True)
class ValueGroup:
    """Every finding of one value in one dataset, as a reviewer decides on it."""
    value_hash: str
    value: str  # as written in the current text; "" once anonymised (the raw value is erased)
    entity_types: tuple[str, ...]
    status: str
    reason: str
    finding_ids: tuple[int, ...]
    example_ids: tuple[int, ...]
    context: str  # one occurrence in its sentence, the value between ⟦ ⟧

    @property
    def occurrences(self) -> int:
        return len(self.finding_ids)

    @property
    def example_count(self) -> int:
        return len(self.example_ids)


@dataclass(frozen=True)
class ValueDecision:
    dataset_id: int
    value_hash: str
    decision: str  # not_pii | anonymise
    method: str
    entity_types: list[str]
    value_text: str  # kept for not_pii only
    reason: str
    decided_by: str
    decided_at: str


def _context(text: str, start: int, end: int, width: int = 60) -> str:
    left = max(0, start - width)
    right = min(len(text), end + width)
    return (("…" if left else "") + text[left:start] + "⟦" + text[start:end] + "⟧" + text[end:right]
            + ("…" if right < len(text) else ""))


def value_groups(db: sqlite_utils.Database, dataset_id: int, *, status: str = "open",
                 entity_type: str = "") -> list[ValueGroup]:
    """Findings grouped by value, the values touching the most examples first."""
    findings = review.open_findings(db, dataset_id, status=status, entity_type=entity_type)
    by_value: dict[tuple[str, str], list[review.StoredFinding]] = defaultdict(list)
    for finding in findings:
        by_value[(finding.value_hash, finding.status)].append(finding)
    texts: dict[int, list[dict[str, Any]]] = {}
    groups = []
    for (value_hash, group_status), members in by_value.items():
        first = members[0]
        value = context = ""
        if group_status != "anonymised" and first.example_id is not None:
            if first.example_id not in texts:
                texts[first.example_id] = examples.get_example(db, first.example_id).messages
            text = texts[first.example_id][first.message_index]["content"]
            value, context = text[first.start:first.end], _context(text, first.start, first.end)
        groups.append(ValueGroup(
            value_hash, value, tuple(sorted({m.entity_type for m in members})), group_status, first.reason,
            tuple(m.id for m in members), tuple(sorted({m.example_id for m in members if m.example_id})), context))
    return sorted(groups, key=lambda g: (-g.example_count, -g.occurrences, g.value.casefold()))


def decisions(db: sqlite_utils.Database, dataset_id: int) -> list[ValueDecision]:
    rows = db.query("SELECT * FROM pii_value_decisions WHERE dataset_id = ? ORDER BY decided_at DESC", [dataset_id])
    return [ValueDecision(r["dataset_id"], r["value_hash"], r["decision"], r["method"],
                          json.loads(r["entity_types_json"]), r["value_text"], r["reason"], r["decided_by"],
                          r["decided_at"]) for r in rows]


def _group(db: sqlite_utils.Database, dataset_id: int, value_hash: str) -> ValueGroup:
    for group in value_groups(db, dataset_id, status="open"):
        if group.value_hash == value_hash:
            return group
    raise datasets.DatasetError("No open finding has this value any more (it was decided or the text changed).")


def _record(db: sqlite_utils.Database, dataset_id: int, group: ValueGroup, decision: str, *, method: str = "",
            reason: str = "", actor: str) -> None:
    with transaction(db):
        db.table("pii_value_decisions").upsert({
            "dataset_id": dataset_id, "value_hash": group.value_hash, "decision": decision, "method": method,
            "entity_types_json": json.dumps(list(group.entity_types)),
            "value_text": group.value if decision == "not_pii" else "", "reason": reason,
            "decided_by": actor, "decided_at": now()}, pk=("dataset_id", "value_hash"))
        # The audit names the value's hash, the findings it decides and counts, never an anonymised raw value.
        audit(db, actor, f"pii_value_{decision}", "dataset", dataset_id,
              {"value_hash": group.value_hash, "entity_types": list(group.entity_types), "method": method,
               "reason": reason, "occurrences": group.occurrences, "examples": group.example_count,
               "finding_ids": list(group.finding_ids)})


def mark_not_pii(db: sqlite_utils.Database, dataset_id: int, value_hash: str, reason: str, *,
                 actor: str = "") -> ValueGroup:
    """Decide that a value is not personal data in this dataset: every occurrence, now and later."""
    permissions.require(actor, "pii_dismiss")
    if not reason.strip():
        raise ValueError("Say why this value is not personal data (the reason is kept in the audit log).")
    group = _group(db, dataset_id, value_hash)
    _record(db, dataset_id, group, "not_pii", reason=reason.strip(), actor=actor)
    return group


def vocabulary_suggestions(db: sqlite_utils.Database, dataset_id: int) -> list[ValueGroup]:
    """Open values that match the dataset's glossary or guidelines, waiting for an admin."""
    return [g for g in value_groups(db, dataset_id) if g.reason.startswith(pii_vocabulary.SUGGESTION)]


def confirm_vocabulary(db: sqlite_utils.Database, dataset_id: int, *, actor: str = "") -> dict[str, int]:
    """An admin confirms the dataset's current glossary and guidelines: from now on they clear the
    findings whose whole value they name, each finding a decision audited with who and the term.

    The glossary is text any author can edit, so it never clears the gate by itself (issue 23)."""
    permissions.require(actor, "pii_dismiss")
    with transaction(db):
        datasets.confirm_vocabulary(db, dataset_id, actor=actor)
        return review.apply_vocabulary(db, dataset_id, actor)


def anonymise_everywhere(db: sqlite_utils.Database, dataset_id: int, value_hash: str, *, method: str = "replace",
                         actor: str = "") -> int:
    """Anonymise every occurrence of a value now, and remember to do so for later scans.

    Returns the number of examples changed."""
    permissions.require(actor, "pii_anonymise")
    if method not in ANONYMISE_METHODS:
        raise ValueError(f"method must be one of {', '.join(ANONYMISE_METHODS)}")
    group = _group(db, dataset_id, value_hash)
    _record(db, dataset_id, group, "anonymise", method=method, actor=actor)
    return review.anonymise(db, list(group.finding_ids), method=method, actor=actor)


def undo(db: sqlite_utils.Database, dataset_id: int, value_hash: str, *, actor: str = "") -> ValueDecision:
    """Withdraw a decision. A "not personal data" value is open for review again at once; an
    anonymised value stays anonymised (its raw text was erased), later imports are no longer changed."""
    existing = [d for d in decisions(db, dataset_id) if d.value_hash == value_hash]
    if not existing:
        raise datasets.DatasetError("There is no decision on this value to undo.")
    decision = existing[0]
    permissions.require(actor, "pii_dismiss" if decision.decision == "not_pii" else "pii_anonymise")
    with transaction(db):
        db.execute("DELETE FROM pii_value_decisions WHERE dataset_id = ? AND value_hash = ?", [dataset_id, value_hash])
        audit(db, actor, "pii_value_undo", "dataset", dataset_id,
              {"value_hash": value_hash, "decision": decision.decision})
    return decision


def scan(db: sqlite_utils.Database, dataset_id: int, progress: Callable[[int, int], None] | None = None, *,
         actor: str = "") -> dict[str, int]:
    """Scan what changed, then apply "anonymise everywhere" decisions to new occurrences."""
    summary = pii.scan_dataset(db, dataset_id, progress, actor=actor)
    methods = {d.value_hash: d.method for d in decisions(db, dataset_id) if d.decision == "anonymise"}
    changed = 0
    if methods:
        by_method: dict[str, list[int]] = defaultdict(list)
        for finding in review.open_findings(db, dataset_id):
            if finding.value_hash in methods:
                by_method[methods[finding.value_hash]].append(finding.id)
        for method, ids in by_method.items():
            changed += review.anonymise(db, ids, method=method, actor=actor)
    summary["anonymised_by_decision"] = changed
    return summary
