"""PII detection quality on our labelled set, the gate, anonymisation, incremental rescans."""

import json

import pytest

from core.curation import datasets, examples
from core.pii import review, scan
from core.training import versions
from tests.data.pii_labelled import CLEAN, PERSONS, STRUCTURED

CONFIG = scan.PiiConfig()


def found(text: str, entity: str, value: str) -> bool:
    return any(f.entity_type == entity and value in text[f.start:f.end] or
               (f.entity_type == entity and text[f.start:f.end] in value and len(text[f.start:f.end]) >= len(value) * 0.6)
               for f in scan.analyze_text(text, CONFIG))


@pytest.mark.parametrize("entity", sorted({e for _, e, _ in STRUCTURED}))
def test_structured_recall_at_least_90_percent(entity):
    cases = [(t, v) for t, e, v in STRUCTURED if e == entity]
    hits = sum(found(t, entity, v) for t, v in cases)
    assert hits / len(cases) >= 0.9, f"{entity}: {hits}/{len(cases)}"


def test_person_recall_at_least_80_percent():
    hits = sum(found(t, "PERSON", v) for t, v in PERSONS)
    assert hits / len(PERSONS) >= 0.8, f"{hits}/{len(PERSONS)}"


def test_clean_business_text_rarely_flagged():
    flagged = [t for t in CLEAN if scan.analyze_text(t, CONFIG)]
    assert len(flagged) / len(CLEAN) <= 0.1, flagged


def test_batch_and_single_text_agree():
    texts = [t for t, _, _ in STRUCTURED[:6]] + CLEAN[:4]
    assert scan.analyze_texts(texts, CONFIG) == [scan.analyze_text(t, CONFIG) for t in texts]


@pytest.mark.parametrize(("rule", "text", "expected"), [
    (scan.RegexRule("EMPLOYEE_ID", r"\bEMP-\d{5}\b"), "Badge EMP-12345 was used at 9pm.", "EMP-12345"),
    (scan.RegexRule("CASE_NUMBER", r"\bCASE-[A-Z]{2}\d{4}\b"), "See CASE-NY2231 for history.", "CASE-NY2231"),
])
def test_house_identifier_rules(rule, text, expected):
    config = scan.PiiConfig(regex_rules=[rule])
    hits = [text[f.start:f.end] for f in scan.analyze_text(text, config) if f.entity_type == rule.entity]
    assert hits == [expected]


def test_allow_list_and_deny_list():
    text = "Ridgeline Outfitters thanks Project Falcon."
    config = scan.PiiConfig(allow_list=["Ridgeline Outfitters"], deny_lists={"CODENAME": ["Project Falcon"]})
    types = {(f.entity_type, text[f.start:f.end]) for f in scan.analyze_text(text, config)}
    assert ("CODENAME", "Project Falcon") in types
    assert not any(v == "Ridgeline Outfitters" for _t, v in types)


def test_invalid_regex_rule_is_refused():
    with pytest.raises(ValueError, match="invalid regular expression"):
        scan.PiiConfig(regex_rules=[scan.RegexRule("BAD", "([")])


def convo(text):
    return [{"role": "system", "content": "Support bot."}, {"role": "user", "content": text},
            {"role": "assistant", "content": "We will look into it."}]


def test_gate_anonymise_dismiss_and_incremental_rescan(db):
    dataset = datasets.create_dataset(db, "pii")
    leaky = examples.save_example(db, dataset, convo(
        "I am John Smith, email john.smith@example.com, card 4111 1111 1111 1111. John Smith again."), status="ready")
    examples.save_example(db, dataset, convo("Where is my parcel for order 5512?"), status="ready")
    assert review.gate_status(db, dataset.id).unscanned_examples == 2
    first = scan.scan_dataset(db, dataset.id)
    assert first["scanned"] == 2
    assert scan.scan_dataset(db, dataset.id)["scanned"] == 0  # unchanged: no model work
    open_ = review.open_findings(db, dataset.id)
    kinds = sorted({f.entity_type for f in open_})
    assert kinds == ["CREDIT_CARD", "EMAIL_ADDRESS", "PERSON"]
    with pytest.raises(datasets.DatasetError, match="PII"):
        versions.freeze(db, dataset)
    people = [f.id for f in open_ if f.entity_type == "PERSON"]
    review.anonymise(db, people + [f.id for f in open_ if f.entity_type == "EMAIL_ADDRESS"], method="replace", actor="ana")
    text = examples.get_example(db, leaky.id).messages[1]["content"]
    assert text.count("<PERSON_1>") == 2 and "<EMAIL_ADDRESS_1>" in text and "John" not in text
    remaining = review.open_findings(db, dataset.id)
    assert [f.entity_type for f in remaining] == ["CREDIT_CARD"]
    with pytest.raises(ValueError, match="why"):
        review.dismiss(db, [remaining[0].id], "  ")
    review.dismiss(db, [remaining[0].id], "test card number from the docs", actor="ana")
    assert review.gate_status(db, dataset.id).clear
    assert versions.freeze(db, dataset, actor="ana").train_count == 2
    audit = [json.loads(r["detail_json"]) for r in db.query("SELECT detail_json FROM audit_log WHERE action LIKE 'pii_%'")]
    assert audit and all("John" not in json.dumps(a) and "4111" not in json.dumps(a) for a in audit)
    assert examples.get_example(db, leaky.id).revision == 2


def test_admin_override_of_the_gate_is_recorded(db, team_users):
    dataset = datasets.create_dataset(db, "override", actor="ana")
    examples.save_example(db, dataset, convo("Card 4111 1111 1111 1111 please"), status="ready", author="ana")
    scan.scan_dataset(db, dataset.id, actor="ana")
    with pytest.raises(PermissionError, match="may not pii override"):
        versions.freeze(db, dataset, override_reason="synthetic data", actor="ana")
    version = versions.freeze(db, dataset, override_reason="synthetic test cards", actor="boss")
    assert version.pii_override_reason == "synthetic test cards"
