"""Issue 23, PII: the gate cannot be cleared by an author, findings per dataset, erasure that parses
what it erases and covers every TEXT column of the schema; real SQLite files and real Presidio."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.curation import datasets, examples, importing
from core.pii import erasure, review, values
from core.pii import scan as pii
from core.pii.vocabulary import Vocabulary
from core.platform import permissions, processes, store
from core.platform.store import now
from core.training import versions

REPO = Path(__file__).resolve().parent.parent


def convo(text: str, answer: str = "Noted.") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]


def add(db, dataset, *texts, actor=""):
    return [examples.save_example(db, dataset, convo(t), status="ready", author=actor) for t in texts]


def audit_rows(db, action):
    return [dict(r, detail=json.loads(r["detail_json"]))
            for r in db.query("SELECT * FROM audit_log WHERE action = ? ORDER BY id", [action])]


# ----------------------------------------------------------------------------- the gate and the vocabulary

@pytest.mark.parametrize(("glossary", "value", "expected"), [
    (("Doe",), "Jane Doe", None),                          # a word of a value clears nothing
    (("Jane Doe Foundation",), "Jane Doe", None),          # nor a term that holds the value
    (("jane doe",), "Jane Doe", "glossary: jane doe"),     # the whole value, in any case
])
def test_vocabulary_matches_a_findings_whole_value_only(glossary, value, expected):
    assert Vocabulary(glossary).match("PERSON", value) == expected


def test_an_authors_glossary_clears_nothing_until_an_admin_confirms_it(db, team_users):
    dataset = datasets.create_dataset(db, "tickets", actor="ana")
    add(db, dataset, "Please ask Jane Doe to call me back.", "Jane Doe wrote again about the invoice.", actor="ana")
    datasets.update_dataset(db, dataset.id, actor="ana", glossary=["Doe", "Jane Doe"])
    values.scan(db, dataset.id, actor="ana")
    gate = review.gate_status(db, dataset.id)
    assert not gate.clear and gate.open_findings == 2 and gate.vocabulary_suggestions == 2
    (group,) = values.vocabulary_suggestions(db, dataset.id)
    assert group.value == "Jane Doe" and group.status == "open"
    with pytest.raises(permissions.PermissionDenied):
        values.confirm_vocabulary(db, dataset.id, actor="ana")
    with pytest.raises(datasets.DatasetError, match="unresolved"):
        versions.freeze(db, dataset, actor="ana")
    assert values.confirm_vocabulary(db, dataset.id, actor="boss") == {"dismissed": 2, "reopened": 0}
    assert review.gate_status(db, dataset.id).clear
    rows = audit_rows(db, "pii_vocabulary")
    assert [r["actor"] for r in rows] == ["boss", "boss"]
    assert {r["detail"]["reason"] for r in rows} == {"dataset vocabulary (glossary: Jane Doe), confirmed by boss"}
    assert sorted(r["detail"]["finding_id"] for r in rows) == sorted(group.finding_ids)
    # A later import is cleared by the confirmed vocabulary, as boss's decision, audited per finding.
    add(db, dataset, "Jane Doe called twice today.", actor="ana")
    values.scan(db, dataset.id, actor="ana")
    assert review.gate_status(db, dataset.id).clear and len(audit_rows(db, "pii_vocabulary")) == 3
    # What the author adds afterwards waits for the next confirmation.
    datasets.update_dataset(db, dataset.id, actor="ana", glossary=["Jane Doe", "Priya Raman"])
    add(db, dataset, "Priya Raman asked for a callback.", actor="ana")
    values.scan(db, dataset.id, actor="ana")
    gate = review.gate_status(db, dataset.id)
    assert gate.open_findings == 1 and gate.vocabulary_suggestions == 1


def test_the_pii_page_offers_authors_no_glossary_way_around_the_gate():
    source = (REPO / "pages" / "pii_check.py").read_text()
    assert "glossary=" not in source and "update_dataset" not in source


def test_the_same_text_in_two_datasets_has_its_own_findings_and_decisions(db, team_users):
    text = "Send the refund to kim.lee@example.com please."
    first = datasets.create_dataset(db, "first", actor="ana")
    second = datasets.create_dataset(db, "second", actor="Dana")
    add(db, first, text, actor="ana")
    (other,) = add(db, second, text, actor="Dana")
    values.scan(db, first.id, actor="ana")
    # The second dataset's copy was never scanned for it: its gate is not clear on borrowed findings.
    assert review.gate_status(db, second.id).unscanned_examples == 1
    values.scan(db, second.id, actor="Dana")
    assert [g.value for g in values.value_groups(db, second.id)] == ["kim.lee@example.com"]
    (mine,) = review.open_findings(db, first.id)
    review.dismiss(db, [mine.id], "a shared test inbox", actor="boss")
    assert review.gate_status(db, first.id).clear
    assert review.gate_status(db, second.id).open_findings == 1  # a decision belongs to its dataset
    review.dismiss(db, [f.id for f in review.open_findings(db, second.id)], "test inbox", actor="boss")
    assert review.gate_status(db, second.id).clear and review.gate_status(db, first.id).clear


@pytest.mark.parametrize(("text", "start", "end", "expected"), [
    ("Maria Gonzalez\nOrder", 0, 20, "Maria Gonzalez"),
    ("Best,\nJane Doe\r\nNext", 5, 20, "Jane Doe"),
    ("Jane Doe  \n", 0, 11, "Jane Doe"),
    ("\n\n", 0, 2, ""),
])
def test_a_span_is_cut_at_its_first_line_break(text, start, end, expected):
    cut = pii.one_line(text, start, end)
    assert text[cut[0]:cut[1]] == expected


def test_presidio_spans_never_cross_a_line_break():
    text = "Best,\nMaria Gonzalez\nOrder 42 is late"  # spaCy tags "Maria Gonzalez\nOrder" as one PERSON
    found = pii.analyze_text(text, pii.PiiConfig())
    assert [(f.entity_type, text[f.start:f.end]) for f in found] == [("PERSON", "Maria Gonzalez")]
    (batched,) = pii.analyze_texts([text], pii.PiiConfig())
    assert batched == found


def test_carry_over_scans_again_when_a_finding_cannot_be_placed(db):
    dataset = datasets.create_dataset(db, "overlap")
    (example,) = add(db, dataset, "Write to Maria Gonzalez about it.")
    pii.scan_dataset(db, dataset.id)
    (whole,) = review.open_findings(db, dataset.id)
    assert (whole.start, whole.end) == (9, 23)
    # A second, overlapping finding on the first name (as a house rule or an older copy would leave).
    row = db.table("pii_findings").get(whole.id)
    pii.copy_finding(db, row, row["content_hash"], 9, 14)
    first_name = max(f.id for f in review.open_findings(db, dataset.id))
    review.anonymise(db, [first_name], method="replace")
    current = examples.get_example(db, example.id).messages[0]["content"]
    assert current == "Write to <PERSON_1> Gonzalez about it."
    # "Maria Gonzalez" cannot be found in the new text; dropping it would let "Gonzalez" pass.
    gate = review.gate_status(db, dataset.id)
    assert not gate.clear
    assert {current[f.start:f.end] for f in review.open_findings(db, dataset.id)} == {"Gonzalez"}


# ----------------------------------------------------------------------------- erasure

SIGNED = "Thanks for the quick help.\nJane Doe"


def _plant_everywhere(db, dataset, value):
    """Copies of a text holding the value at the start of a line, in tables that are not examples."""
    version = versions.freeze(db, dataset, override_reason="frozen before the scan")
    line = json.dumps({"messages": [{"role": "user", "content": SIGNED}]})
    importing.import_jsonl(db, dataset, (line + "\n").encode())  # quarantined: no assistant turn
    run_id = store.insert_row(db, "runs", {"dataset_version_id": version.id, "base_model": "m", "config_json": "{}",
                                           "status": "failed", "error": f"ValueError: bad prompt {SIGNED!r}",
                                           "queued_at": now()})
    prompt = json.dumps([{"role": "user", "content": SIGNED}])
    store.insert_row(db, "generations", {"run_id": run_id, "position": 0, "prompt_json": prompt, "side": "base",
                                         "text": f"Dear {value},", "settings_json": "{}", "created_at": now()})
    store.insert_row(db, "generation_jobs", {"run_id": run_id, "status": "failed", "settings_json": "{}",
                                             "error": f"failed on {SIGNED!r}", "created_at": now()})
    store.insert_row(db, "playground_requests", {"run_id": run_id, "prompt_json": prompt, "settings_json": "{}",
                                                 "base_text": f"{value}:", "tuned_text": f"Hello\n{value}",
                                                 "created_at": now()})
    folder = processes.run_dir(db, run_id)
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": SIGNED}]}) + "\n")
    (folder / "train.log").write_text(f"sample: {json.dumps(SIGNED)}\n")
    return version


def test_a_name_at_the_start_of_a_line_is_erased_from_every_copy(db_path):
    db = store.connect(db_path)
    dataset = datasets.create_dataset(db, "signed", description="Tickets Jane Doe forwarded")
    (example,) = add(db, dataset, SIGNED)
    version = _plant_everywhere(db, dataset, "Jane Doe")
    pii.scan_dataset(db, dataset.id)
    found = [f for f in review.open_findings(db, dataset.id) if f.entity_type == "PERSON"]
    assert found, "Presidio should find the signature"
    review.anonymise(db, [f.id for f in found], method="replace")
    assert examples.get_example(db, example.id).messages[0]["content"] == "Thanks for the quick help.\n<PERSON_1>"
    frozen = versions.version_by_id(db, version.id)
    assert frozen.content_hash != version.content_hash
    assert datasets.get_dataset(db, dataset.id).description == "Tickets <PERSON_1> forwarded"
    (line,) = (processes.run_dir(db, 1) / "train.jsonl").read_text().splitlines()
    assert json.loads(line)["messages"][0]["content"] == "Thanks for the quick help.\n<PERSON_1>"
    db.conn.close()
    leaks = [str(p) for p in db_path.parent.rglob("*") if p.is_file() and b"Jane Doe" in p.read_bytes()]
    assert leaks == []


@pytest.mark.parametrize(("text", "expected"), [
    ('{"content": "thanks.\\nJane Doe"}', '{"content": "thanks.\\n<P>"}'),       # after an escaped line break
    ('{"a":"Jane Doe\\u2019s","b":["x Jane Doe"]}', '{"a":"<P>’s","b":["x <P>"]}'),  # compact, nested
    ('{"content": "Jane Does"}', '{"content": "Jane Does"}'),                     # word boundaries still hold
])
def test_json_is_erased_inside_its_parsed_values(text, expected):
    rules = erasure._rules({"Jane Doe": "<P>"})
    out = erasure.erase_json(text, rules)
    assert json.loads(out) == json.loads(expected)


def test_every_text_column_is_erased_or_exempt_with_a_reason(db):
    assert erasure.undecided_columns(db) == []
    assert all(erasure.exempt_reason(t, c) for t, c in erasure.text_columns(db) if (t, c) not in erasure.ERASED)
    schema = {f"{t}.{c}" for t, c in erasure.text_columns(db)}
    stale = sorted(f"{t}.{c}" for t, c in [*erasure.ERASED, *erasure.EXEMPT] if f"{t}.{c}" not in schema)
    assert stale == []  # every decision names a real column
    db.execute("ALTER TABLE generation_jobs ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    assert erasure.undecided_columns(db) == ["generation_jobs.note"]
    with pytest.raises(erasure.ErasureError, match="generation_jobs.note"):
        erasure.erase_values(db, {"Jane Doe": "<P>"}, actor="test")


def test_erasure_is_global_and_the_audit_says_so(db):
    first = datasets.create_dataset(db, "first")
    second = datasets.create_dataset(db, "second")
    add(db, first, "Mail kim.lee@example.com today.")
    (theirs,) = add(db, second, "Refund for kim.lee@example.com please.")
    other_version = versions.freeze(db, second, override_reason="before the scan")
    values.scan(db, first.id)
    (group,) = values.value_groups(db, first.id)
    values.anonymise_everywhere(db, first.id, group.value_hash)
    # The value is personal data wherever it is: the other dataset's text and version lose it too.
    assert examples.get_example(db, theirs.id).messages[0]["content"] == "Refund for <EMAIL_ADDRESS_1> please."
    assert versions.version_by_id(db, other_version.id).content_hash != other_version.content_hash
    (erase,) = audit_rows(db, "pii_erase")
    assert erase["detail"]["scope"].startswith("global") and erase["detail"]["datasets"] == [second.id]
    assert [r["object_id"] for r in audit_rows(db, "version_erased")] == [str(other_version.id)]
    # Its changed text counts as unscanned there until it is scanned: the gate closes, never opens.
    assert review.gate_status(db, second.id).unscanned_examples == 1
    values.scan(db, second.id)
    assert review.gate_status(db, second.id).clear


def test_the_reliability_doc_lists_what_erasure_covers(db):
    doc = (REPO / "docs" / "reliability.md").read_text()
    assert erasure.coverage_markdown(db) in doc
    assert not re.search(r"UNDECIDED", doc)
