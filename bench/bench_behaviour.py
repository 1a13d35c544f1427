"""Time to behaviour on data the studio has never seen (issue 24): the bench sets of
tests/data/behaviour_sets.py imported through the CLI as a user would (no output convention typed),
PII-scanned and frozen, trained with a preset, then all held-out prompts answered by the adapter on
the full-precision base (plain PeftModel.from_pretrained, as raters see it) and matched against the
convention the studio inferred. One child process per (set, preset), one after the other.

    python -m bench.bench_behaviour vet-clinic small-data      # one run, prints its JSON
    python -m bench.bench_behaviour vet-clinic small-data batch_size=2   # ... with a knob changed
    python -m bench.bench_behaviour insurance-claims small-data  # the set the defaults were not tuned on
    python -m bench.bench_behaviour demo small-data                # the demo as the studio seeds it
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import REPO

CHILD = r"""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
repo, db_path, name, preset, overrides = sys.argv[1:6]
sys.path.insert(0, repo)
env = dict(os.environ, STUDIO_DB=db_path, PYTHONPATH=repo)

def cli(*args):
    done = subprocess.run([sys.executable, "-m", "core", "--json", *args], cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"core {' '.join(args)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)

from tests.data import behaviour_sets
if name == "demo":
    # The demo as the studio seeds it on first start (its system prompt and its expert regex included).
    from core.curation import demo
    from core.platform import store as demo_store
    demo_db = demo_store.connect(db_path)
    name = demo.seed_demo(demo_db).name
    train, heldout = ([None] * demo_db.table("examples").count_where("split = ?", [split]) for split in ("train", "heldout"))
else:
    train, heldout = behaviour_sets.SETS[name]()
    folder = Path(tempfile.mkdtemp())
    for split, rows in (("train", train), ("heldout", heldout)):
        (folder / f"{split}.jsonl").write_bytes(behaviour_sets.jsonl(rows))
        cli("import", str(folder / f"{split}.jsonl"), "--dataset", name, "--split", split)
cli("pii-scan", "--dataset", name)
try:
    cli("freeze", "--dataset", name)
except SystemExit:
    # The sets are synthetic: the pet and customer first names are not anyone's personal data.
    cli("freeze", "--dataset", name, "--override-reason", "bench: synthetic first names")

from core.curation import convention, datasets
from core.models import generation
from core.platform import store
from core.rating import pairs as answer_pairs
from core.reports import summary as stats
from core.training import config as training_config, runs as training, versions
db = store.connect(db_path)
dataset = datasets.get_dataset(db, name)
version = versions.list_versions(db, dataset.id)[-1]
config = training_config.PRESETS[preset].with_overrides(json.loads(overrides))
estimate = training_config.estimate(db, version, config)
load = os.getloadavg()
run = training.start_run(db, version, preset=preset, config=config, actor="bench", allow_duplicate=True)
while not training.get_run(db, run.id).finished:
    time.sleep(2)
run = training.get_run(db, run.id)
assert run.status == "succeeded", run.error
job = answer_pairs.start_generation(db, run.id, generation.GenerationConfig(max_new_tokens=128), launch=False)
answer_pairs.run_generation_job(db, job.id)
run = training.get_run(db, run.id)
pairs = answer_pairs.pairs(db, run.id)
checks = stats.automatic_checks(db, run, pairs)
curve = run.metrics.get("behaviour_curve", [])
print(json.dumps({"set": name, "preset": preset, "overrides": json.loads(overrides), "train": len(train), "heldout": len(heldout),
                  **{k: v for k, v in run.metrics.items() if k != "behaviour_curve"}, "behaviour_curve": curve,
                  "estimate_s": round(estimate.duration_s, 1), "estimate_basis": estimate.basis,
                  "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()],
                  "convention_tuned": checks.get("convention_tuned"), "convention_base": checks.get("convention_base"),
                  "pairs": checks["pairs"], "convention_described": checks.get("convention_described"),
                  "labels_agree": checks.get("labels_agree"),
                  "last_probe": curve[-1] if curve else None,
                  # What the judged model wrote where it missed the format: what to fix next.
                  "off_format": [p.tuned_text for p in pairs
                                 if checks.get("convention") and not convention.convention_ok(checks["convention"], p.tuned_text)]}))
"""

SETS = ("helpdesk", "vet-clinic", "insurance-claims")  # the last one was never tuned on (0.5.0)


def run_one(name: str, preset: str = "small-data", overrides: dict[str, str] | None = None) -> dict:
    """One (set, preset) run in a child process; `overrides` are key=value settings on the preset (as `--set`)."""
    from bench.measure import run_child

    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        result = run_child(CHILD, str(REPO), str(Path(tmp) / "bench.db"), name, preset, json.dumps(overrides or {}))
        result["total_wall_s"] = round(time.time() - started, 1)
        return result


def main() -> dict:
    results: dict = {"cores_available": len(os.sched_getaffinity(0))}
    for name in SETS:
        for preset in ("small-data", "seed-article"):
            results[f"{name}:{preset}"] = run_one(name, preset)
            print(json.dumps(results[f"{name}:{preset}"]), file=sys.stderr)
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1:
        from core.training.config import PRESETS

        preset = sys.argv[2] if len(sys.argv) > 2 else "small-data"
        if preset not in PRESETS:
            raise SystemExit(f"Unknown preset {preset!r}: name one of {', '.join(PRESETS)} before any key=value.")
        if bad := [arg for arg in sys.argv[3:] if "=" not in arg]:
            raise SystemExit(f"Not key=value: {' '.join(bad)} (e.g. batch_size=2 learning_rate=1e-3).")
        extra = dict(pair.split("=", 1) for pair in sys.argv[3:])
        print(json.dumps(run_one(sys.argv[1], preset, extra), indent=2))
    else:
        print(json.dumps(main(), indent=2))
