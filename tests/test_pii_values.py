"""PII review by distinct value and the dataset's own vocabulary (issue 16), on real Presidio."""

import json

import pytest

from core.curation import datasets, examples
from core.pii import review, values
from core.pii import scan as pii
from core.pii.vocabulary import Vocabulary
from core.platform import permissions
from tests.data import pii_domain


def convo(text):
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}]


def add(db, dataset, *texts, actor=""):
    return [examples.save_example(db, dataset, convo(t), status="ready", author=actor) for t in texts]


@pytest.mark.parametrize(("entity", "value", "expected"), [
    ("PERSON", "Analytics Pro", "glossary: Analytics Pro"),
    ("PERSON", "analytics pro", "glossary: Analytics Pro"),       # the whole term, in any case
    ("PERSON", "Analytics", None),                                # part of a term: never (issue 23)
    ("PERSON", "the Backup Vault team", None),                    # holds a term: never (issue 23)
    ("LOCATION", "Reissue", "named in the guidelines"),
    ("PERSON", "Priya Raman", None),
    ("PERSON", "Vault Analytics", None),                          # words of two terms, not one
    ("EMAIL_ADDRESS", "backup vault", None),                      # structured identifiers are never vocabulary
])
def test_vocabulary_rule_known_cases(entity, value, expected):
    vocabulary = Vocabulary(("Analytics Pro", "Backup Vault"), "Reissue, Escalate and Refund are our actions.")
    assert vocabulary.match(entity, value) == expected


def test_domain_set_keeps_recall_and_needs_few_decisions(db):
    """120 real-looking tickets: every false finding but one value is suggested as the dataset's own
    vocabulary, and one admin confirmation clears them all."""
    clean, planted = pii_domain.tickets()
    dataset = datasets.create_dataset(db, "tickets", guidelines=pii_domain.GUIDELINES, glossary=pii_domain.GLOSSARY)
    add(db, dataset, *clean, *[t for t, _e, _v in planted])
    pii.scan_dataset(db, dataset.id)
    suggested = {g.value for g in values.vocabulary_suggestions(db, dataset.id)}
    open_values = {g.value for g in values.value_groups(db, dataset.id)} - suggested
    hidden = suggested
    planted_values = {v for _t, _e, v in planted}
    # Recall: what the detector finds of the planted data stays open; the vocabulary hides none of it.
    assert not planted_values & hidden
    assert len(planted_values & open_values) >= 9, planted_values - open_values
    assert open_values - planted_values <= {"EU"}, open_values - planted_values
    assert {"Analytics Pro", "MailFlow API", "Reissue"} <= hidden
    gate = review.gate_status(db, dataset.id)
    assert gate.vocabulary_suggestions >= 50 and gate.open_findings == gate.vocabulary_suggestions + 9 + 5
    assert values.confirm_vocabulary(db, dataset.id)["dismissed"] == gate.vocabulary_suggestions
    gate = review.gate_status(db, dataset.id)
    assert gate.open_findings == 9 + 5 and gate.vocabulary_suggestions == 0  # nine planted values, "EU" 5 times


def test_one_decision_per_value_covers_later_imports_and_can_be_undone(db, team_users):
    dataset = datasets.create_dataset(db, "values", actor="ana")
    add(db, dataset, "Zorblax crashed again for the night shift.", "Please ask Zorblax to call me back.", actor="ana")
    values.scan(db, dataset.id, actor="ana")
    groups = values.value_groups(db, dataset.id)
    zorblax = next(g for g in groups if g.value == "Zorblax")
    assert zorblax.example_count == 2 and "⟦Zorblax⟧" in zorblax.context
    with pytest.raises(permissions.PermissionDenied):
        values.mark_not_pii(db, dataset.id, zorblax.value_hash, "our build server", actor="ana")
    with pytest.raises(ValueError, match="why"):
        values.mark_not_pii(db, dataset.id, zorblax.value_hash, " ", actor="boss")
    values.mark_not_pii(db, dataset.id, zorblax.value_hash, "our build server", actor="boss")
    assert review.gate_status(db, dataset.id).clear
    # A later import of the same value is covered by the same decision.
    add(db, dataset, "Zorblax rejected the nightly upload.", actor="ana")
    values.scan(db, dataset.id, actor="ana")
    gate = review.gate_status(db, dataset.id)
    assert gate.clear and gate.cleared_by_value_decision == 3
    values.undo(db, dataset.id, zorblax.value_hash, actor="boss")
    assert review.gate_status(db, dataset.id).open_findings == 3
    actions = [r["action"] for r in db.query("SELECT action FROM audit_log WHERE action LIKE 'pii_value%'")]
    assert actions == ["pii_value_not_pii", "pii_value_undo"]


def test_anonymise_everywhere_reaches_later_imports(db):
    dataset = datasets.create_dataset(db, "anon")
    add(db, dataset, "Write to lena.ortiz@example.com about the refund.", "CC lena.ortiz@example.com please.")
    values.scan(db, dataset.id)
    email = next(g for g in values.value_groups(db, dataset.id) if g.entity_types == ("EMAIL_ADDRESS",))
    assert values.anonymise_everywhere(db, dataset.id, email.value_hash) == 2
    later = add(db, dataset, "lena.ortiz@example.com again, sorry.")[0]
    summary = values.scan(db, dataset.id)
    assert summary["anonymised_by_decision"] == 1
    assert "lena" not in examples.get_example(db, later.id).messages[0]["content"]
    assert review.gate_status(db, dataset.id).clear
    decision = values.decisions(db, dataset.id)[0]
    assert decision.decision == "anonymise" and decision.value_text == ""  # the raw value is not kept
    assert "lena" not in json.dumps([dict(r) for r in db.query("SELECT * FROM audit_log")])


def test_anonymising_a_name_inside_an_email_leaves_no_text_unscanned(db):
    # Erasing the name "dana" also rewrites the address that contains it: that new text must be
    # scanned before the gate reads it, or the gate stays shut with nothing left to review.
    dataset = datasets.create_dataset(db, "inside")
    examples.save_example(db, dataset, [
        {"role": "user", "content": "Please send a VAT invoice for order HP-508. My email is dana.rivera@example.com."},
        {"role": "assistant", "content": "Category: Billing\nPriority: P3\nSummary: Please send a VAT invoice for "
                                         "order HP-508. My email is dana\nReply: Handle it under the billing policy."}],
        status="ready")
    values.scan(db, dataset.id)
    for _ in range(5):
        groups = values.value_groups(db, dataset.id)
        if not groups:
            break
        values.anonymise_everywhere(db, dataset.id, groups[0].value_hash)
    gate = review.gate_status(db, dataset.id)
    assert gate.unscanned_examples == 0 and gate.clear, gate
    assert "dana" not in json.dumps([dict(r) for r in db.query("SELECT messages_json FROM examples")])


def test_glossary_edit_suggests_without_a_rescan_and_never_an_email(db):
    dataset = datasets.create_dataset(db, "gloss")
    add(db, dataset, "Ledger Lite and Atlas Search disagree on revenue; write to ravi@example.net.")
    pii.scan_dataset(db, dataset.id)
    assert {g.value for g in values.value_groups(db, dataset.id)} >= {"Ledger Lite", "ravi@example.net"}
    scans = db.table("pii_scans").count
    datasets.update_dataset(db, dataset.id, glossary=["Ledger Lite", "Atlas Search", "ravi@example.net"])
    suggested = {g.value for g in values.vocabulary_suggestions(db, dataset.id)}
    assert "Ledger Lite" in suggested and "ravi@example.net" not in suggested
    assert "Ledger Lite" in {g.value for g in values.value_groups(db, dataset.id)}  # still open: a suggestion
    assert db.table("pii_scans").count == scans  # nothing was rescanned
    datasets.update_dataset(db, dataset.id, glossary=[])
    assert values.vocabulary_suggestions(db, dataset.id) == []
