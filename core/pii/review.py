"""PII review: findings on current text, the one gate, dismiss and anonymise (with erasure)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from core.curation import datasets, examples
from core.curation.datasets import DatasetError
from core.pii import erasure, scan
from core.pii import vocabulary as pii_vocabulary
from core.pii.scan import current_config
from core.platform import permissions
from core.platform.store import audit, transaction

# Statuses a reviewer sees. "not_pii" is not stored on the finding: it is decided when read, from the
# dataset's decisions per value, so a decision covers later imports and an undo needs no rescan
# (issue 16). The dataset's vocabulary only suggests: a match stays open, with the suggestion as its
# reason, until an admin confirms it as a decision per value (issue 23).
STATUSES = ("open", "not_pii", "dismissed", "anonymised")


@dataclass(frozen=True)
class StoredFinding:
    id: int
    example_id: int | None
    generation_id: int | None
    message_index: int
    entity_type: str
    start: int
    end: int
    score: float
    status: str
    reason: str
    value_hash: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any], status: str = "", reason: str = "") -> StoredFinding:
        return cls(row["id"], row["example_id"], row["generation_id"], row["message_index"],
                   row["entity_type"], row["start"], row["end"], row["score"], status or row["status"],
                   reason or row["reason"], row["value_hash"])

    def to_dict(self) -> dict[str, Any]:
        return {"example_id": self.example_id, "message_index": self.message_index,
                "entity_type": self.entity_type, "start": self.start, "end": self.end,
                "score": round(self.score, 3), "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class GateStatus:
    open_findings: int
    unscanned_examples: int
    vocabulary_suggestions: int = 0  # open findings whose value matches the vocabulary (admins confirm)
    cleared_by_value_decision: int = 0

    @property
    def clear(self) -> bool:
        return not self.open_findings and not self.unscanned_examples

    @property
    def blockers(self) -> list[str]:
        """Why the gate is closed, in the words every page and command shows."""
        reasons = []
        if self.unscanned_examples:
            reasons.append(f"{self.unscanned_examples} example(s) not yet PII-scanned with the current settings.")
        if self.open_findings:
            reasons.append(f"{self.open_findings} PII finding(s) are unresolved.")
        return reasons


class AutoDecider:
    """The one rule for findings no reviewer needs to see: values an admin decided are not personal
    data in this dataset. The dataset's vocabulary only adds a suggestion to an open finding."""

    def __init__(self, db: sqlite_utils.Database, dataset_id: int) -> None:
        dataset = datasets.get_dataset(db, dataset_id)
        self.vocabulary = pii_vocabulary.Vocabulary(tuple(dataset.glossary), dataset.guidelines)
        self.not_pii = {r["value_hash"]: r["reason"] for r in db.query(
            "SELECT value_hash, reason FROM pii_value_decisions WHERE dataset_id = ? AND decision = 'not_pii'",
            [dataset_id])}

    def decide(self, entity_type: str, value: str, value_hash: str) -> tuple[str, str]:
        """('open', '') or the automatic status with its reason."""
        if value_hash in self.not_pii:
            return "not_pii", f"{pii_vocabulary.VALUE_REASON}: {self.not_pii[value_hash]}"
        term = self.vocabulary.match(entity_type, value)
        if term:
            return "open", f"{pii_vocabulary.SUGGESTION} ({term})"
        return "open", ""


def _with_status(decider: AutoDecider, row: dict[str, Any]) -> StoredFinding:
    if row["status"] != "open":
        return StoredFinding.from_row(row)
    text = json.loads(row["messages_json"])["messages"][row["message_index"]]["content"]
    status, reason = decider.decide(row["entity_type"], text[row["start"]:row["end"]], row["value_hash"])
    return StoredFinding.from_row(row, status, reason)


def open_findings(db: sqlite_utils.Database, dataset_id: int, *, entity_type: str = "",
                  status: str = "open") -> list[StoredFinding]:
    """Findings on the examples' current text under the current configuration, with the status a
    reviewer sees (STATUSES; "" for all), plus the history of anonymisations (they sit on the text
    before it was anonymised, so they are kept whatever the current text; their raw value is gone,
    only the decision remains)."""
    config = current_config(db)
    query = ("SELECT f.*, e.messages_json FROM pii_findings f JOIN examples e ON e.id = f.example_id "
             "WHERE e.dataset_id = ? AND (f.content_hash = e.content_hash OR f.status = 'anonymised') "
             "AND f.config_hash = ?")
    params: list[Any] = [dataset_id, config.hash]
    if entity_type:
        query += " AND f.entity_type = ?"
        params.append(entity_type)
    decider = AutoDecider(db, dataset_id)
    found = [_with_status(decider, r) for r in db.query(query + " ORDER BY f.example_id, f.message_index, f.start",
                                                           params)]
    return [f for f in found if not status or f.status == status]


def gate_status(db: sqlite_utils.Database, dataset_id: int, version_id: int | None = None) -> GateStatus:
    config = current_config(db)
    if version_id is None:
        source, key, example, status_filter = "examples", "dataset_id", "x.id", " AND x.status = 'ready'"
        owner = dataset_id
    else:
        source, key, example, status_filter = "dataset_version_examples", "dataset_version_id", "x.example_id", ""
        owner = version_id
    # Findings and decisions belong to the dataset whose example holds the text (issue 23): the same
    # text in another dataset has its own findings, so only this dataset's examples' findings count.
    unscanned = db.execute(
        f"SELECT count(*) FROM {source} x WHERE x.{key} = ?{status_filter} AND "
        + scan.needs_scan_sql("x.content_hash", example),
        [owner, *scan.needs_scan_params(config.hash)]).fetchone()[0]
    rows = db.query(
        f"SELECT f.*, x.messages_json FROM pii_findings f JOIN {source} x ON x.content_hash = f.content_hash "
        f"WHERE x.{key} = ?{status_filter} AND f.config_hash = ? AND f.status = 'open' "
        "AND f.example_id IN (SELECT id FROM examples WHERE dataset_id = ?) AND f.score >= ?",
        [owner, config.hash, dataset_id, config.threshold])
    decider = AutoDecider(db, dataset_id)
    counts = {"open": 0, "not_pii": 0}
    suggestions = 0
    seen: set[tuple[str, int, int, int, str]] = set()
    for row in rows:
        # One text in two rows of a version (a duplicate), or in two examples, is one finding.
        span = (row["content_hash"], row["message_index"], row["start"], row["end"], row["entity_type"])
        if span in seen:
            continue
        seen.add(span)
        finding = _with_status(decider, row)
        counts[finding.status] += 1
        suggestions += finding.status == "open" and finding.reason.startswith(pii_vocabulary.SUGGESTION)
    return GateStatus(counts["open"], int(unscanned), suggestions, counts["not_pii"])


def dismiss(db: sqlite_utils.Database, finding_ids: list[int], reason: str, actor: str = "") -> int:
    """Decide that findings are not personal data (admins only: it clears the gate)."""
    permissions.require(actor, "pii_dismiss")
    if not reason.strip():
        raise ValueError("Say why this is not personal data (the reason is kept in the audit log).")
    with transaction(db):
        for finding_id in finding_ids:
            row = db.table("pii_findings").get(finding_id)
            scan.decide(db, finding_id, "dismissed", reason.strip(), actor)
            audit(db, actor, "pii_dismiss", "example", row["example_id"],
                  {"entity_type": row["entity_type"], "message_index": row["message_index"],
                   "span": [row["start"], row["end"]], "reason": reason.strip()})
    return len(finding_ids)


def apply_vocabulary(db: sqlite_utils.Database, dataset_id: int, actor: str) -> dict[str, int]:
    """Apply the dataset's confirmed vocabulary to its findings on the current text: open findings
    whose whole value it names are dismissed, findings it dismissed that it no longer names are
    reopened. Each change is a decision by the admin who confirmed the vocabulary, audited with
    the term as its reason (issue 23). Runs inside the caller's transaction."""
    permissions.require(actor, "pii_dismiss")
    dataset = datasets.get_dataset(db, dataset_id)
    vocabulary = pii_vocabulary.Vocabulary.confirmed(dataset.confirmed_vocabulary)
    by = str(dataset.confirmed_vocabulary.get("confirmed_by", actor))
    config = current_config(db)
    rows = db.query("SELECT f.*, e.messages_json FROM pii_findings f JOIN examples e ON e.id = f.example_id "
                    "WHERE e.dataset_id = ? AND f.content_hash = e.content_hash AND f.config_hash = ? "
                    "AND f.status IN ('open', 'dismissed')", [dataset_id, config.hash])
    changed = {"dismissed": 0, "reopened": 0}
    with transaction(db):
        for row in list(rows):
            text = json.loads(row["messages_json"])["messages"][row["message_index"]]["content"]
            term = vocabulary.match(row["entity_type"], text[row["start"]:row["end"]])
            by_vocabulary = row["status"] == "dismissed" and row["reason"].startswith(pii_vocabulary.VOCABULARY_REASON)
            if row["status"] == "open" and term:
                status, reason, action = "dismissed", pii_vocabulary.decision_reason(term, by), "pii_vocabulary"
                changed["dismissed"] += 1
            elif by_vocabulary and not term:
                status, reason, action = "open", "", "pii_vocabulary_reopen"
                changed["reopened"] += 1
            else:
                continue
            scan.decide(db, row["id"], status, reason, by)
            audit(db, actor, action, "example", row["example_id"],
                  {"finding_id": row["id"], "entity_type": row["entity_type"], "message_index": row["message_index"],
                   "span": [row["start"], row["end"]], "reason": reason or "no longer in the confirmed vocabulary"})
    return changed


def anonymise(db: sqlite_utils.Database, finding_ids: list[int], *, method: str = "replace",
              actor: str = "") -> int:
    """Replace the findings' spans (typed placeholder, mask or redact) as a new example revision.

    Placeholders are consistent within an example: the same value gets the same `<PERSON_1>`.
    """
    permissions.require(actor, "pii_anonymise")
    if method not in ("replace", "mask", "redact"):
        raise ValueError("method must be replace, mask or redact")
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    by_example: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for finding_id in finding_ids:
        row = db.table("pii_findings").get(finding_id)
        if row["status"] == "open" and row["example_id"] is not None:
            by_example[row["example_id"]].append(row)
    engine = AnonymizerEngine()
    changed = 0
    rescan: set[int] = set()
    reviewed: set[int] = set()  # the datasets whose examples this call anonymised
    erased: dict[str, str] = {}  # raw value -> what replaced it, to erase it from history too
    for example_id, rows in by_example.items():
        example = examples.get_example(db, example_id)
        if any(r["content_hash"] != example.content_hash for r in rows):
            continue  # the text changed since the scan; the findings are stale
        messages = [dict(m) for m in example.messages]
        numbering: dict[tuple[str, str], str] = {}
        for index in sorted({r["message_index"] for r in rows}):
            text = messages[index]["content"]
            spans = [r for r in rows if r["message_index"] == index]
            for r in sorted(spans, key=lambda r: r["start"]):
                key = (r["entity_type"], text[r["start"]:r["end"]])
                if key not in numbering:
                    n = sum(1 for k in numbering if k[0] == r["entity_type"]) + 1
                    numbering[key] = f"<{r['entity_type']}_{n}>"

            def placeholder(value: str, table: dict[tuple[str, str], str] = numbering) -> str:
                return next((v for (_e, raw), v in table.items() if raw == value), "<PII>")

            operator = {"replace": OperatorConfig("custom", {"lambda": placeholder}),
                        "mask": OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": 10_000,
                                                        "from_end": False}),
                        "redact": OperatorConfig("redact", {})}[method]
            result = engine.anonymize(
                text=text, analyzer_results=[RecognizerResult(r["entity_type"], r["start"], r["end"], r["score"])
                                             for r in spans],
                operators={"DEFAULT": operator})
            messages[index]["content"] = result.text
            for r in spans:
                raw = text[r["start"]:r["end"]]
                erased.setdefault(raw, {"replace": numbering.get((r["entity_type"], raw), "<PII>"),
                                        "mask": "*" * len(raw), "redact": ""}[method])
        dataset = datasets.get_dataset(db, example.dataset_id)
        reviewed.add(example.dataset_id)
        with transaction(db):
            updated = examples.save_example(db, dataset, messages, example_id=example_id, author=actor,
                                            reason=f"pii_{method}")
            for r in rows:
                scan.decide(db, r["id"], "anonymised", method, actor)
                audit(db, actor, "pii_anonymise", "example", example_id,
                      {"entity_type": r["entity_type"], "message_index": r["message_index"],
                       "span": [r["start"], r["end"]], "method": method})
            # Findings left on this example (not chosen now) carry over to the new text where the
            # span is unchanged, so the reviewer does not lose them.
            if not _carry_over(db, example, updated.content_hash, {r["id"] for r in rows}):
                rescan.add(example.dataset_id)
        changed += 1
    # Erased means erased: old revisions, versions, quarantine, prompts, logs, files, free pages.
    report = erasure.erase_values(db, erased, actor=actor)
    # Erasure also rewrites current texts that hold the value inside a longer one (a name inside an
    # e-mail address): those are new, unscanned texts too. Texts whose leftover findings could not
    # all be placed on the new text are scanned afresh as well, outside the write transaction
    # (Presidio is slow); until then the gate counts them unscanned.
    # Only the datasets under review here: another dataset's changed text stays unscanned (its gate
    # closed) until its own people scan it.
    rescan.update(set(report.datasets) & reviewed)
    for dataset_id in sorted(rescan):
        scan.scan_dataset(db, dataset_id, actor=actor)
    return changed


def _carry_over(db: sqlite_utils.Database, old: Any, new_hash: str, handled: set[int]) -> bool:
    """Copy the findings not handled now onto the new text; False when one cannot be re-located.

    Then nothing is copied and the new text is left unscanned: a finding dropped here would let
    part of a name pass the gate (issue 23), so the caller scans the text again instead.
    """
    config = current_config(db)
    leftovers = [row for row in db.query("SELECT * FROM pii_findings WHERE example_id = ? AND content_hash = ? AND "
                                         "config_hash = ?", [old.id, old.content_hash, config.hash])
                 if row["id"] not in handled]
    new = db.table("examples").get(old.id)
    new_messages = json.loads(new["messages_json"])["messages"]
    placed = []
    for row in leftovers:
        text = old.messages[row["message_index"]]["content"][row["start"]:row["end"]]
        position = new_messages[row["message_index"]]["content"].find(text)
        if position < 0:
            return False
        placed.append((row, position, position + len(text)))
    for row, start, end in placed:
        scan.copy_finding(db, row, new_hash, start, end)
    scan.mark_scanned(db, new_hash, config.hash)
    return True


def require_clear_version(db: sqlite_utils.Database, dataset_id: int, version_id: int, override_reason: str,
                          doing: str) -> None:
    """The one PII gate for a frozen version (export, training): the same rule as freezing —
    every example scanned with the current settings and no open finding — unless an admin
    overrode the gate with a recorded reason when the version was frozen."""
    if override_reason:
        return
    blockers = gate_status(db, dataset_id, version_id=version_id).blockers
    if blockers:
        raise DatasetError(f"Cannot {doing}: " + " ".join(blockers)
                           + " Scan and resolve them on the PII check page, then freeze again.")
