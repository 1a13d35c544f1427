"""AppTest of issue 27's page parts: spreadsheet import on Author, take-your-model on Results."""

from streamlit.testing.v1 import AppTest

from core.curation import examples, importing, tabular
from core.platform import store
from core.reports import merged_model
from core.training import runs, versions


def plain(text: str) -> str:
    """Message text without the Markdown escapes common.* adds (user content is shown inert)."""
    return text.replace("\\", "")


def _author() -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=180)
    at.run()
    at.switch_page("pages/author.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_author_imports_a_cp1252_csv_with_preview_and_mapping(db_path, model_dir):
    at = _author()
    data = "frage,antwort,gruppe\nWo ist das Café?,Im Erdgeschoss.,ort\nLeer?,,x\n".encode("cp1252")
    at.file_uploader(key="author.table.upload").upload("faq.csv", data, "text/csv").run()
    assert "--encoding cp1252" in " ".join(plain(e.value) for e in at.error)  # refused, the choice named
    at.selectbox(key="author.table.encoding").set_value("cp1252").run()
    assert not at.exception
    assert any("read as Windows-1252 (cp1252) (as asked)" in plain(c.value) for c in at.caption)
    preview = next(d.value for d in at.dataframe if "frage" in d.value.columns)
    assert preview["frage"].tolist() == ["Wo ist das Café?", "Leer?"] and preview["row"].tolist() == ["2", "3"]
    at.selectbox(key="author.table.map.1.user").set_value("frage")
    at.selectbox(key="author.table.map.1.assistant").set_value("antwort")
    at.selectbox(key="author.table.map.1.category").set_value("gruppe")
    at.button(key="author.table.import").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("faq.csv into train: imported 1; 1 quarantined" in plain(s.value) for s in at.success)
    db = store.connect(db_path)
    found = examples.list_examples(db, 1, examples.ExampleFilter(text="Café"))[0]
    assert [e.messages[1]["content"] for e in found] == ["Im Erdgeschoss."] and found[0].tags == ["category:ort"]
    assert [(q["line_no"], q["code"]) for q in importing.list_quarantine(db, 1)] == [(3, "blank_content")]
    assert tabular.remembered_mapping(db, 1) == tabular.ColumnMapping("frage", "antwort", category="gruppe")
    # The next visit starts from the remembered mapping.
    again = _author()
    again.file_uploader(key="author.table.upload").upload("faq.csv", data, "text/csv").run()
    again.selectbox(key="author.table.encoding").set_value("cp1252").run()
    assert again.selectbox(key="author.table.map.1.assistant").value == "antwort"


def test_results_offers_hf_folder_and_merge_only_with_confirmation(db_path, model_dir, random_adapter):
    db = store.connect(db_path)
    from core.curation import demo

    dataset = demo.seed_demo(db)
    assert dataset is not None
    version = versions.freeze(db, dataset, override_reason="test data, no real people")
    run = runs.import_adapter(db, random_adapter, version.id)
    at = AppTest.from_file("../app.py", default_timeout=180)
    at.run()
    at.switch_page("pages/results.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.checkbox(key=f"results.merge.confirm.{run.id}").value is False
    at.button(key=f"results.merge.{run.id}").click().run()
    assert any("not signed off" in plain(e.value) and "approve the run" in plain(e.value) for e in at.error)
    assert not merged_model.default_dir(db, run.id).exists()  # nothing merged without the confirmation
    labels = [b.proto.label for b in at.get("download_button")]
    assert f"Download dataset version {version.number} as a Hugging Face folder (zip: parquet + card)" in labels
