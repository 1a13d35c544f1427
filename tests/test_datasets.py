"""Curation: editing with revisions, quarantine, splits, duplicates, leakage, versions, export."""

import json

import pytest

from core.curation import datasets, examples, importing
from core.pii import scan
from core.training import versions


def convo(user: str, answer: str = "Fine.") -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


# Canonical JSONL written by hand (not by the code under test): compact separators, role then
# content, UTF-8 kept as is, one object per line.
CANONICAL = (
    '{"messages":[{"role":"user","content":"Où est ma commande ?"},{"role":"assistant","content":"Elle arrive demain."}]}\n'
    '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Tab\\there"},'
    '{"role":"assistant","content":"Quote \\" done","weight":1}]}\n')


def test_round_trip_import_export_is_byte_identical(db):
    dataset = datasets.create_dataset(db, "round trip")
    importing.import_jsonl(db, dataset, CANONICAL.encode())
    assert versions.export_jsonl(db, dataset, current=True).encode() == CANONICAL.encode()


def test_export_canonicalises_other_spellings_of_the_same_examples(db):
    dataset = datasets.create_dataset(db, "messy")
    messy = ('\ufeff{"messages": [{"content": "Où est ma commande ?", "role": "user"}, '
             '{"role": "assistant", "content": "Elle arrive demain."}]}\r\n\r\n'
             '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tab\\there"}, '
             '{"weight": 1, "content": "Quote \\" done", "role": "assistant"}]}\n')
    importing.import_jsonl(db, dataset, messy.encode())
    assert versions.export_jsonl(db, dataset, current=True) == CANONICAL


def test_editing_keeps_revisions_and_frozen_versions_never_change(db, model_dir):
    dataset = datasets.create_dataset(db, "versions")
    example = examples.save_example(db, dataset, convo("What is our refund window?", "60 days."), status="ready")
    examples.save_example(db, dataset, convo("Tell me about returns", "Use the label."), status="ready",
                          split="heldout")
    scan.scan_dataset(db, dataset.id)
    v1 = versions.freeze(db, dataset, actor="t")
    frozen_text = versions.export_jsonl(db, dataset, version=1)
    examples.save_example(db, dataset, convo("What is our refund window?", "Thirty days."), example_id=example.id,
                          status="ready")
    assert examples.get_example(db, example.id).revision == 2
    assert db.table("example_revisions").count == 1
    assert versions.export_jsonl(db, dataset, version=1) == frozen_text
    scan.scan_dataset(db, dataset.id)
    v2 = versions.freeze(db, dataset, actor="t")
    assert v2.number == 2 and v2.content_hash != v1.content_hash
    assert "Thirty days" in versions.export_jsonl(db, dataset, version=2)


def test_ready_requires_a_valid_example(db):
    dataset = datasets.create_dataset(db, "drafts")
    with pytest.raises(datasets.DatasetError, match="no assistant"):
        examples.save_example(db, dataset, [{"role": "user", "content": "q"}], status="ready")
    draft = examples.save_example(db, dataset, [{"role": "user", "content": "q"}])
    assert draft.status == "draft" and "example_missing_assistant_message" in draft.problem_codes


def test_quarantine_fix_imports_the_line(db):
    dataset = datasets.create_dataset(db, "q")
    importing.import_jsonl(db, dataset, b'{"messages": [{"role": "user", "content": "hi"}]}\n')
    held = importing.list_quarantine(db, dataset.id)
    assert held[0]["code"] == "example_missing_assistant_message"
    still_bad = importing.fix_quarantined(db, held[0]["id"], '{"messages": [')
    assert still_bad[0].code == "invalid_json"
    assert importing.fix_quarantined(db, held[0]["id"], json.dumps({"messages": convo("hi")})) == []
    assert importing.list_quarantine(db, dataset.id) == []
    assert db.table("examples").count == 1


def test_near_duplicates_and_leakage_block_freezing(db, model_dir):
    dataset = datasets.create_dataset(db, "leak")
    base = "My tent order HP-1001 arrived with a torn rain fly and a bent pole, please help me get a replacement quickly"
    examples.save_example(db, dataset, convo(base), status="ready")
    examples.save_example(db, dataset, convo(base.replace("HP-1001", "HP-2002")), status="ready")
    examples.save_example(db, dataset, convo("How long does shipping take for a sleeping bag?"),
                          status="ready")
    leaked = examples.save_example(db, dataset, convo(base.replace("quickly", "soon"), "Ok."), status="ready",
                                   split="heldout")
    assert len(examples.near_duplicates(db, dataset.id)) == 1
    leaks = examples.leakage(db, dataset.id)
    assert {leaks[0].first_id, leaks[0].second_id} & {leaked.id}
    scan.scan_dataset(db, dataset.id)
    with pytest.raises(datasets.DatasetError, match="nearly duplicate"):
        versions.freeze(db, dataset)
    examples.bulk_update(db, {leaked.id: {"split": "train"}})
    assert versions.freeze(db, dataset).train_count == 4


def test_random_split_is_seeded(db):
    dataset = datasets.create_dataset(db, "split")
    for i in range(20):
        examples.save_example(db, dataset, convo(f"question number {i} about a completely different topic {i * 7}"))
    assert examples.random_split(db, dataset.id, 0.25, seed=3) == (15, 5)
    first = [e.id for e in examples.all_examples(db, dataset.id) if e.split == "heldout"]
    examples.random_split(db, dataset.id, 0.25, seed=3)
    assert [e.id for e in examples.all_examples(db, dataset.id) if e.split == "heldout"] == first


def test_filters_and_pagination(db):
    dataset = datasets.create_dataset(db, "filters")
    for i in range(30):
        examples.save_example(db, dataset, convo(f"ticket {i} 100%_off"), tags=["even"] if i % 2 == 0 else ["odd"])
    page, total = examples.list_examples(db, dataset.id, examples.ExampleFilter(tag="even"), limit=10, offset=10)
    assert total == 15 and len(page) == 5
    hits, total = examples.list_examples(db, dataset.id, examples.ExampleFilter(text="ticket 1 "))
    assert total == 1
    hits, total = examples.list_examples(db, dataset.id, examples.ExampleFilter(text="%_off"))
    assert total == 30


def test_the_system_prompt_most_examples_share_is_offered_once(db):
    from core.curation import system_prompt

    same = "You triage client intake e-mails for Hale & Partners."
    rows = [[{"role": "system", "content": same}, {"role": "user", "content": f"q{i}"},
             {"role": "assistant", "content": "a"}] for i in range(4)]
    rows += [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]]
    found = system_prompt.shared_prompt(rows)
    assert (found.text, found.used_by, found.examples) == (same, 4, 5)  # 4 of 5 = 80 %
    assert found.sentence() == "4 of 5 examples share this system prompt."
    assert system_prompt.shared_prompt(rows + [[{'role': 'user', 'content': 'other'}]]) is None  # 4 of 6 is not most of them
    dataset = datasets.create_dataset(db, "intake")
    for messages in rows:
        examples.save_example(db, dataset, messages)
    assert system_prompt.offer(db, dataset.id, "").text == same
    assert system_prompt.offer(db, dataset.id, same) is None  # already the reusable prompt
