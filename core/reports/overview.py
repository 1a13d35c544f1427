"""The Home page's picture of where a dataset stands in the loop, computed from the store."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from core.curation import datasets
from core.pii import review
from core.rating import pairs as answer_pairs
from core.training import runs as training
from core.training import versions


@dataclass(frozen=True)
class Step:
    name: str
    done: bool
    detail: str
    why: str


def loop_steps(db: sqlite_utils.Database, dataset: datasets.Dataset) -> list[Step]:
    counts = dict(db.execute("SELECT status, count(*) FROM examples WHERE dataset_id = ? GROUP BY status",
                             [dataset.id]).fetchall())
    total = sum(counts.values())
    gate = review.gate_status(db, dataset.id)
    frozen = versions.list_versions(db, dataset.id)
    runs = training.list_runs(db, dataset.id)
    succeeded = [r for r in runs if r.status == "succeeded"]
    generated = [r for r in succeeded if answer_pairs.pairs(db, r.id)]
    rated = db.execute("SELECT count(*) FROM ratings r JOIN runs ON runs.id = r.run_id JOIN dataset_versions v "
                       "ON v.id = runs.dataset_version_id WHERE v.dataset_id = ?", [dataset.id]).fetchone()[0]
    approved = [r for r in runs if r.approval == "approved"]
    return [
        Step("Add examples", total >= 1,
             f"{total} examples ({counts.get('ready', 0)} ready, {counts.get('draft', 0)} draft)",
             "100–500 good examples change a model's behaviour; start with 50."),
        Step("Check PII", total > 0 and gate.clear,
             f"{gate.unscanned_examples} unscanned, {gate.open_findings} open findings",
             "Personal data in training examples can be memorised by the model."),
        Step("Freeze a version", bool(frozen),
             f"{len(frozen)} version(s)" + (f", latest v{frozen[-1].number}" if frozen else ""),
             "Runs train on an immutable snapshot, so results stay reproducible."),
        Step("Train", bool(succeeded), f"{len(runs)} run(s), {len(succeeded)} succeeded",
             "A background QLoRA run teaches the house style; the app stays usable."),
        Step("Generate answers", bool(generated), f"{len(generated)} run(s) with answer pairs",
             "Base and tuned models answer held-out prompts they never saw in training."),
        Step("Rate blind", rated > 0, f"{rated} rating(s)",
             "Experts compare answers labelled only A and B, so nobody's bias shows."),
        Step("Export & sign off", bool(approved), f"{len(approved)} approved adapter(s)",
             "The summary with lineage is what a review meeting needs."),
    ]
