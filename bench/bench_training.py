"""Training throughput and behaviour change: our default preset vs the seed article's recipe,
same data, same machine, run one after the other in this process's children."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import REPO

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import core
from core import answer_pairs, datasets, demo, generation, pii, rating, stats, store, training, versions
db = store.connect(sys.argv[2])
preset = sys.argv[3]
if not db.table("datasets").count:
    ds = demo.seed_demo(db); pii.scan_dataset(db, ds.id); versions.freeze(db, ds, actor="bench")
version = versions.get_version(db, 1)
run = training.start_run(db, version, preset=preset, actor="bench")
while not training.get_run(db, run.id).finished:
    time.sleep(2)
run = training.get_run(db, run.id)
assert run.status == "succeeded", run.error
job = answer_pairs.start_generation(db, run.id, generation.GenerationConfig(max_new_tokens=80), launch=False)
answer_pairs.run_generation_job(db, job.id)
run = training.get_run(db, run.id)
checks = stats.automatic_checks(db, run, answer_pairs.pairs(db, run.id))
print(json.dumps({"preset": preset, **run.metrics, "convention_tuned": checks["convention_tuned"],
                  "convention_base": checks["convention_base"], "pairs": checks["pairs"]}))
"""

MATMUL = r"""
import json, time, torch
def peak(dtype, n=1024, reps=20):
    a = torch.randn(n, n, dtype=dtype); b = torch.randn(n, n, dtype=dtype)
    for _ in range(3): a @ b
    t = time.perf_counter()
    for _ in range(reps): a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t)
print(json.dumps({"fp32_flops": peak(torch.float32), "bf16_flops": peak(torch.bfloat16)}))
"""


def main() -> dict:
    from bench.measure import run_child

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        for preset in ("small-data", "seed-article"):
            started = time.time()
            child = run_child(CHILD, str(REPO), db, preset)
            child["total_wall_s"] = round(time.time() - started, 1)
            results[preset] = child
            print(json.dumps(child), file=sys.stderr)
    results["matmul"] = run_child(MATMUL)
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
