"""The Author page's output convention (pages/convention_view.py) under AppTest: the inferred
convention in plain words, accepted onto the dataset, then forgotten."""

import json

from streamlit.testing.v1 import AppTest

from core.curation import datasets, importing
from core.curation.convention import Convention
from core.platform import store
from tests.test_convention import TICKETS


def author_settings(dataset_id: int) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.session_state["studio.dataset_id"] = dataset_id
    at.session_state["author.tab"] = "Dataset settings"
    at.switch_page("pages/author.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_the_author_sees_the_inferred_convention_and_accepts_it(db_path, model_dir):
    db = store.connect(db_path)
    dataset = datasets.create_dataset(db, "helpdesk")
    lines = [json.dumps({"messages": [{"role": "user", "content": f"ticket {i}"}, {"role": "assistant", "content": a}]})
             for i, a in enumerate(TICKETS)]
    importing.import_jsonl(db, dataset, ("\n".join(lines) + "\n").encode(), split="train")
    at = author_settings(dataset.id)
    shown = [c.value for c in at.code]
    assert any(v.startswith("Answers have 4 lines: Category (Billing, Account, Security, Technical), Priority (P1–P3)")
               for v in shown), shown
    next(b for b in at.button if b.key == "author.convention.accept").click().run()
    stored = datasets.get_dataset(db, dataset.id).convention_json
    assert [line.label for line in Convention.from_json(stored).lines] == ["Category", "Priority", "Summary", "Next step"]
    assert any("Answers have 4 lines" in m.value for m in at.success)  # shown Markdown-escaped
    at.run()  # the next page run reads the accepted convention
    assert any("Accepted for this dataset" in c.value for c in at.caption)
    next(b for b in at.button if b.key == "author.convention.forget").click().run()
    assert datasets.get_dataset(db, dataset.id).convention_json == ""
