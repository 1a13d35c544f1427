"""Bring your data, take your model (issue 27): spreadsheets and HF files in, HF folder and merged model out.

Real files written by the tools people use: an .xlsx by openpyxl (with formula cells), a CSV
encoded as Windows-1252, a parquet file written by `datasets`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest

from core.curation import datasets, examples, importing, tabular
from core.curation.datasets import DatasetError
from core.training import versions

REPO = Path(__file__).resolve().parent.parent
SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _xlsx_with_formulas() -> bytes:
    """A workbook as openpyxl writes it, then given a saved value for one formula as Excel would:
    openpyxl writes formulas without values, Excel stores the computed value beside each one.
    The saved value deliberately differs from what the formula computes, so reading it (not
    evaluating the formula) is what the test proves."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Tickets"
    ws.append(["question", "answer", "team", "notes"])
    ws.append(["How do I reset my password?", "Open Settings, then Security, then Reset.", "auth", ""])
    ws.append(["What is two times five?", "=2*5", "maths", ""])  # the answer cell is B3
    ws.append([None, None, None, None])
    ws.append(["Who approves refunds?", '=CONCAT("Finance", " team")', "billing", "no saved value"])
    ws.append(["", "An answer without a question.", "", ""])
    buffer = io.BytesIO()
    wb.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                ElementTree.register_namespace("", SHEET_NS)
                root = ElementTree.fromstring(data)
                cell = root.find(f".//{{{SHEET_NS}}}c[@r='B3']")
                assert cell is not None and cell.find(f"{{{SHEET_NS}}}f") is not None
                cell.set("t", "str")
                value = cell.find(f"{{{SHEET_NS}}}v")  # openpyxl writes an empty one
                if value is None:
                    value = ElementTree.SubElement(cell, f"{{{SHEET_NS}}}v")
                value.text = "Ten (saved by Excel)"
                data = ElementTree.tostring(root, xml_declaration=True, encoding="UTF-8")
            target.writestr(item, data)
    return out.getvalue()


def test_xlsx_formulas_read_as_saved_values_and_rows_reported(db):
    dataset = datasets.create_dataset(db, "tickets")
    table = tabular.read_xlsx(_xlsx_with_formulas())
    assert table.columns == ("question", "answer", "team", "notes")
    assert [r["row"] for r in table.preview()] == ["2", "3", "5", "6"] and table.blank == 1
    mapping = tabular.ColumnMapping.parse("user=question,assistant=answer,category=team")
    report = tabular.import_spreadsheet(db, dataset, table, mapping, source="tickets.xlsx")
    assert report.imported == 2 and report.quarantined == 2 and report.blank == 1
    assert [(e.line, e.code) for e in report.errors] == [
        (5, "formula_without_value"), (5, "blank_content"), (6, "blank_content")]
    assert "column 'answer' holds a formula with no saved value" in report.errors[0].message
    assert report.errors[2].message == "row 6: message 1 (user) content is blank"
    assert "formulas read as their saved values" in report.notes[0]
    stored = {e.messages[1]["content"]: e.tags for e in examples.list_examples(db, dataset.id)[0]}
    assert stored == {"Open Settings, then Security, then Reset.": ["category:auth"],
                      "Ten (saved by Excel)": ["category:maths"]}
    held = importing.list_quarantine(db, dataset.id)
    assert [(q["line_no"], q["code"]) for q in held] == [(5, "formula_without_value"), (6, "blank_content")]
    # The quarantined row is JSON messages, so the quarantine editor can fix it.
    assert importing.quarantined_turns(held[0]["raw_text"]) == [
        {"role": "user", "content": "Who approves refunds?"}, {"role": "assistant", "content": ""}]
    assert tabular.remembered_mapping(db, dataset.id) == mapping


def test_cp1252_csv_is_refused_until_named_then_read(db):
    data = "question,answer,split\r\nCafé au lait?,Oui – très bon,heldout\r\nPrix?,5 €,train\r\n".encode("cp1252")
    with pytest.raises(DatasetError, match="--encoding cp1252") as refused:
        tabular.read_csv(data)
    assert "byte 0xe9 at byte 27" in str(refused.value)  # the é of Café: 23 bytes of header line, then "Caf"
    table = tabular.read_csv(data, "cp1252")
    assert table.note == "read as Windows-1252 (cp1252) (as asked)"
    dataset = datasets.create_dataset(db, "cafe")
    report = tabular.import_spreadsheet(db, dataset, table, tabular.ColumnMapping.parse(
        "user=question,assistant=answer,split=split"))
    assert report.imported == 2 and not report.errors
    got = {e.messages[1]["content"]: e.split for e in examples.list_examples(db, dataset.id)[0]}
    assert got == {"Oui – très bon": "heldout", "5 €": "train"}


@pytest.mark.parametrize(("data", "note"), [
    (b"\xef\xbb\xbfq,a\nx,y\n", "read as UTF-8 with BOM (detected from the byte-order mark)"),
    ("q,a\nna\u00efve,y\n".encode(), "read as UTF-8 (detected: every byte is valid UTF-8)"),
    (b"q,a\nx,y\n", "read as UTF-8 (plain ASCII, the same in every supported encoding)"),
])
def test_encoding_detection_says_which(data, note):
    table = tabular.read_csv(data)
    assert table.note == note and table.columns == ("q", "a") and len(table.rows) == 1


def test_mapping_and_file_problems_have_clear_messages():
    with pytest.raises(DatasetError, match="Map one column to user and one to assistant"):
        tabular.ColumnMapping.parse("user=q")
    with pytest.raises(DatasetError, match="PART one of user, assistant, system"):
        tabular.ColumnMapping.parse("prompt=q,assistant=a")
    with pytest.raises(DatasetError, match="No column 'answer' in the file; its columns are q, a"):
        tabular.parse_rows(tabular.read_csv(b"q,a\nx,y\n"), tabular.ColumnMapping.parse("user=q,assistant=answer"))
    with pytest.raises(DatasetError, match="Column name 'q' appears twice"):
        tabular.read_csv(b"q,q\nx,y\n")
    with pytest.raises(DatasetError, match="Expected 2 fields in line 3, saw 3"):
        tabular.read_csv(b"q,a\nx,y\nx,y,z\n")


def test_parquet_written_by_datasets_in_three_layouts(db, tmp_path):
    import datasets as hf

    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
         "conversations": None, "instruction": None, "input": None, "output": None},
        {"messages": None, "conversations": [{"from": "human", "value": "Ping?"}, {"from": "gpt", "value": "Pong."}],
         "instruction": None, "input": None, "output": None},
        {"messages": None, "conversations": None, "instruction": "Translate", "input": "chat", "output": "cat"},
        {"messages": [{"role": "user", "content": "Unanswered"}], "conversations": None,
         "instruction": None, "input": None, "output": None},
    ]
    # One layout per file is the usual case; `messages: None` rows fall through to the next layout.
    split_files = {}
    for name, keep in (("chat", "messages"), ("sharegpt", "conversations")):
        path = tmp_path / f"{name}.parquet"
        hf.Dataset.from_list([{keep: r[keep]} for r in rows if r[keep] is not None]).to_parquet(str(path))
        split_files[name] = path
    alpaca = tmp_path / "alpaca.parquet"
    hf.Dataset.from_list([{k: rows[2][k] for k in ("instruction", "input", "output")}]).to_parquet(str(alpaca))

    dataset = datasets.create_dataset(db, "hf")
    chat = tabular.import_hf(db, dataset, split_files["chat"])
    assert chat.formats == {"openai": 2} and chat.imported == 1
    assert [(e.line, e.code) for e in chat.errors] == [(2, "example_missing_assistant_message")]
    assert chat.errors[0].message == "row 2: no assistant message"
    assert chat.notes == ["split 'train' of chat.parquet: 2 rows"]
    assert tabular.import_hf(db, dataset, split_files["sharegpt"]).formats == {"sharegpt": 1}
    assert tabular.import_hf(db, dataset, alpaca).formats == {"alpaca": 1}
    stored = sorted(json.dumps(e.messages) for e in examples.list_examples(db, dataset.id)[0])
    assert stored == sorted(json.dumps(m) for m in [
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        [{"role": "user", "content": "Ping?"}, {"role": "assistant", "content": "Pong."}],
        [{"role": "user", "content": "Translate\n\nchat"}, {"role": "assistant", "content": "cat"}]])


def test_round_trip_through_a_hugging_face_folder(db, demo_dataset, tmp_path):
    import datasets as hf

    version = versions.freeze(db, demo_dataset, override_reason="test data, no real people")
    out = versions.export_hf(db, demo_dataset, tmp_path / "hf-demo")
    card = (out / "README.md").read_text()
    assert version.content_hash in card and "overridden by anonymous: test data, no real people" in card
    assert f"| Train examples | {version.train_count} |" in card
    loaded = hf.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {name: loaded[name].num_rows for name in loaded} == {
        "train": version.train_count, "heldout": version.heldout_count}
    with pytest.raises(DatasetError, match="splits train, heldout: choose one"):
        tabular.read_hf(out)
    copy = datasets.create_dataset(db, "round trip")
    for split in ("train", "heldout"):
        report = tabular.import_hf(db, copy, out, from_split=split, split=split)
        assert report.imported == getattr(version, f"{split}_count") and not report.errors
    again = versions.freeze(db, copy, override_reason="test data, no real people")
    assert again.content_hash == version.content_hash  # same examples, same splits, same order
    with pytest.raises(DatasetError, match="already exists and is not empty"):
        versions.export_hf(db, demo_dataset, out)


def test_cli_imports_a_csv_with_a_mapping_and_remembers_it(tmp_path, model_dir):
    db = tmp_path / "cli.db"
    source = tmp_path / "faq.csv"
    source.write_bytes("question,answer\nWhere is the café?,Ground floor.\n".encode("cp1252"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "core", "--db", str(db), *args], cwd=REPO,
                              capture_output=True, text=True, timeout=300)

    refused = cli("import", str(source), "--dataset", "faq", "--map", "user=question,assistant=answer")
    assert refused.returncode == 1 and "--encoding cp1252" in refused.stderr
    done = cli("import", str(source), "--dataset", "faq", "--map", "user=question,assistant=answer",
               "--encoding", "cp1252", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["imported"] == 1 and report["notes"] == ["read as Windows-1252 (cp1252) (as asked)"]
    source.write_text("question,answer\nWhere is the lift?,Left of the door.\n", encoding="utf-8")
    remembered = cli("import", str(source), "--dataset", "faq", "--json")  # no --map: the remembered one
    assert remembered.returncode == 0 and json.loads(remembered.stdout)["imported"] == 1


def test_merged_model_answers_token_for_token_like_adapter_on_base(db, demo_dataset, random_adapter, tmp_path):
    """The merged weights (W + BA folded in) give the same greedy tokens as the adapter applied on
    the full-precision base — with an adapter whose LoRA weights are not zero, so a merge that
    dropped or doubled the update would change the answers (checked against the bare base too)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.models import generation
    from core.reports import merged_model
    from core.training import runs

    version = versions.freeze(db, demo_dataset, override_reason="test data, no real people")
    run = runs.import_adapter(db, random_adapter, version.id)
    with pytest.raises(ValueError, match="not signed off.*--confirm-unapproved"):
        merged_model.export_merged_model(db, run.id, tmp_path / "merged", actor="")
    out = merged_model.export_merged_model(db, run.id, tmp_path / "merged", actor="", confirm_unapproved=True)
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "README.md"} <= names
    assert not any(n.startswith("adapter") for n in names)
    card = (out / "README.md").read_text()
    assert version.content_hash in card and "exported without approval, confirmed by" in card
    assert '"learning_rate"' in card and "Not rated yet." in card

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert tokenizer.chat_template  # the template travels with the merged model
    prompts = [[{"role": "user", "content": "My order arrived damaged. What now?"}],
               [{"role": "user", "content": "Can I change the delivery address?"}]]
    merged = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    with_adapter, base_tokenizer = generation.load_with_adapter(run.base_model, random_adapter)
    for messages in prompts:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)["input_ids"]
        with torch.no_grad():
            a = merged.generate(ids, max_new_tokens=16, do_sample=False)[0, ids.shape[1]:].tolist()
            b = with_adapter.generate(input_ids=ids, max_new_tokens=16, do_sample=False)[0, ids.shape[1]:].tolist()
            with with_adapter.disable_adapter():
                base = with_adapter.generate(input_ids=ids, max_new_tokens=16, do_sample=False)[0, ids.shape[1]:].tolist()
        assert a == b
        assert a != base


def test_saved_to_disk_folder_and_arrow_file_choose_the_split(db, tmp_path):
    import datasets as hf

    def rows(*answers: str) -> list[dict]:
        return [{"conversations": [{"from": "human", "value": f"Q{a}"}, {"from": "gpt", "value": a}]} for a in answers]

    folder = tmp_path / "saved"
    hf.DatasetDict({"train": hf.Dataset.from_list(rows("a", "b")),
                    "test": hf.Dataset.from_list(rows("c"))}).save_to_disk(str(folder))
    dataset = datasets.create_dataset(db, "saved")
    with pytest.raises(DatasetError, match="No split 'validation'; the dataset has train, test"):
        tabular.import_hf(db, dataset, folder, from_split="validation")
    report = tabular.import_hf(db, dataset, folder, from_split="test", split="heldout")
    assert report.imported == 1 and report.notes == ["split 'test' of saved: 1 rows"]
    arrow = next((folder / "train").glob("*.arrow"))
    assert tabular.import_hf(db, dataset, arrow).imported == 2
    got = sorted((e.split, e.messages[1]["content"]) for e in examples.list_examples(db, dataset.id)[0])
    assert got == [("heldout", "c"), ("train", "a"), ("train", "b")]
