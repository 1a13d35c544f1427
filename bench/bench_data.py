"""Import speed (10,000 lines), PII scanning (batched vs per text, unchanged rescan) and page
render times (AppTest) with 10,000 examples and 5,000 ratings."""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import REPO

sys.path.insert(0, str(REPO))

import core  # noqa: E402,F401
from core.curation import datasets, demo, examples, importing
from core.pii import scan
from core.platform import store
from core.rating import sessions
from core.training import runs, versions

WORDS = ("order refund parcel tent stove jacket warranty invoice login account delivery courier size colour "
         "broken late missing charge twice discount code zipper strap battery").split()


def synthetic_lines(n: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))) + f" #{i}"
        answer = f"Category: Shipping\nPriority: P{1 + i % 3}\nSummary: {question[:60]}\nReply: Trace order {i}."
        lines.append(json.dumps({"messages": [{"role": "user", "content": question},
                                              {"role": "assistant", "content": answer}]}))
    return ("\n".join(lines) + "\n").encode()


def bench_import(db) -> dict:
    data = synthetic_lines(10_000)
    dataset = datasets.create_dataset(db, "bench-import")
    started = time.perf_counter()
    report = importing.import_jsonl(db, dataset, data)
    seconds = time.perf_counter() - started
    return {"lines": 10_000, "imported": report.imported, "seconds": round(seconds, 2),
            "examples_per_s": round(report.imported / seconds)}


def bench_pii(db) -> dict:
    ds = datasets.get_dataset(db, demo.DEMO_NAME)
    texts = [m["content"] for e in examples.all_examples(db, ds.id) for m in e.messages]
    config = scan.current_config(db)
    scan.analyze_text("warm up John Smith", config)
    started = time.perf_counter()
    for text in texts:
        scan.analyze_text(text, config)
    per_text = time.perf_counter() - started
    started = time.perf_counter()
    scan.analyze_texts(texts, config)
    batched = time.perf_counter() - started
    n_examples = len(examples.all_examples(db, ds.id))
    started = time.perf_counter()
    scan.scan_dataset(db, ds.id)
    first_scan = time.perf_counter() - started
    started = time.perf_counter()
    again = scan.scan_dataset(db, ds.id)
    rescan = time.perf_counter() - started
    return {"texts": len(texts), "examples": n_examples,
            "per_text_examples_per_s": round(n_examples / per_text, 1),
            "batched_examples_per_s": round(n_examples / batched, 1),
            "scan_examples_per_s": round(n_examples / first_scan, 1),
            "unchanged_rescan_seconds": round(rescan, 3), "rescanned": again["scanned"]}


def seed_ratings(db, version_id: int, pairs: int = 1000, raters: int = 5) -> int:
    run = runs.start_run(db, versions.version_by_id(db, version_id), launch=False)
    db.execute("UPDATE runs SET status = 'succeeded', adapter_path = '/nonexistent' WHERE id = ?", [run.id])
    stamp = store.now()
    with store.transaction(db):
        for position in range(pairs):
            for side in ("base", "tuned"):
                db.table("generations").insert({
                    "run_id": run.id, "position": position, "prompt_json": json.dumps([{"role": "user", "content": f"q{position}"}]),
                    "reference": "r", "side": side, "text": f"{side} answer {position} " * 5, "settings_json": "{}",
                    "created_at": stamp})
    store.set_setting(db, "raters_per_pair", str(raters))
    for r in range(raters):
        session = sessions.start_session(db, run.id, f"rater-{r}")
        for position, _left in session.order:
            sessions.record_rating(db, session, position, "A" if (position + r) % 3 else "B", seconds_spent=5)
    return run.id


def bench_pages(db_path: Path) -> dict:
    from streamlit.testing.v1 import AppTest

    os.environ["STUDIO_DB"] = str(db_path)
    db = store.connect(db_path)
    big = datasets.get_dataset(db, "bench-import")
    held = [e.id for e in examples.list_examples(db, big.id, limit=200)[0]]
    examples.bulk_update(db, {i: {"split": "heldout"} for i in held})
    scan.save_config(db, scan.current_config(db))
    db.execute("INSERT OR IGNORE INTO pii_scans (content_hash, config_hash, scanned_at) SELECT content_hash, ?, ? FROM examples",
               [scan.current_config(db).hash, store.now()])
    version = versions.freeze(db, big, override_reason="bench")
    seed_ratings(db, version.id)
    timings = {}
    for page in ("pages/home.py", "pages/author.py", "pages/pii_check.py", "pages/train.py", "pages/rate.py",
                 "pages/results.py", "pages/settings.py"):
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
        at.session_state["studio.dataset_id"] = big.id
        at.run()
        at.switch_page(page)
        at.run()  # warm (caches, imports)
        started = time.perf_counter()
        at.run()
        timings[page] = round(time.perf_counter() - started, 3)
        if at.exception:
            timings[page + " error"] = at.exception[0].message
    return timings


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = store.connect(path)
        demo.seed_demo(db)
        results = {"import": bench_import(db), "pii": bench_pii(db)}
        results["pages"] = bench_pages(path)
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
