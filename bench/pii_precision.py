"""PII precision and recall on a realistic domain set, and the review decisions an expert needs.

`python bench/pii_precision.py` prints the table in docs/pii.md. Two configurations of one
dataset of 120 support tickets (tests/data/pii_domain.py): without and with the dataset's own
vocabulary (glossary + guidelines). Decisions: review by occurrence (one per finding) before;
by distinct value after.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.curation import datasets, examples
from core.pii import review, scan, values
from core.platform import store
from tests.data import pii_domain  # noqa: E402


def measure(with_vocabulary: bool) -> dict[str, float]:
    clean, planted = pii_domain.tickets()
    with tempfile.TemporaryDirectory() as folder:
        db = store.connect(Path(folder) / "studio.db")
        dataset = datasets.create_dataset(
            db, "tickets", guidelines=pii_domain.GUIDELINES if with_vocabulary else "",
            glossary=pii_domain.GLOSSARY if with_vocabulary else [])
        owner: dict[int, tuple[str, str] | None] = {}
        for text in clean:
            owner[examples.save_example(db, dataset, [{"role": "user", "content": text},
                                                      {"role": "assistant", "content": "Noted."}],
                                        status="ready").id] = None
        for text, entity, value in planted:
            owner[examples.save_example(db, dataset, [{"role": "user", "content": text},
                                                      {"role": "assistant", "content": "Noted."}],
                                        status="ready").id] = (entity, value)
        scan.scan_dataset(db, dataset.id)
        found = review.open_findings(db, dataset.id)
        true_hits = set()
        false_findings = 0
        for f in found:
            text = examples.get_example(db, f.example_id).messages[f.message_index]["content"]
            label = owner[f.example_id]
            if label and label[1] in text[f.start:f.end] or label and text[f.start:f.end] in label[1]:
                true_hits.add(f.example_id)
            else:
                false_findings += 1
        groups = values.value_groups(db, dataset.id)
        false_values = sum(1 for g in groups if not any(owner[e] for e in g.example_ids))
        return {"findings": len(found), "false": false_findings, "precision": (len(found) - false_findings) / max(len(found), 1),
                "recall": len(true_hits) / len(planted), "planted": len(planted), "found": len(true_hits),
                "decisions_by_occurrence": len(found), "decisions_by_value": len(groups),
                "false_values": false_values}


def main() -> None:
    rows = [("without the dataset's vocabulary", measure(False)), ("with glossary + guidelines", measure(True))]
    print("| setting | open findings | false | precision | recall | decisions by occurrence | decisions by value |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['findings']} | {r['false']} | {r['precision']:.2f} | {r['found']}/{r['planted']} | "
              f"{r['decisions_by_occurrence']} | {r['decisions_by_value']} ({r['false_values']} false) |")


if __name__ == "__main__":
    main()
