"""The pre-launch estimate on a quiet and on a busy machine (issue 25 item 1).

One database, the demo set frozen, three runs of the default preset one after the other: a first run
that teaches the studio this machine's speed (its estimate stands on a prior), then a run on the
quiet machine, then a run beside a second heavy job — a CPU burner on every usable core, started
by this bench and stopped after. Each run records the estimate as the Train page shows it (scaled by
`eta.machine_load`), the estimate the machine's load did not scale, the measured training seconds,
their ratio, and the load the studio saw.

    python -m bench.bench_estimate           # the default preset's full schedule (the lead's run)
    python -m bench.bench_estimate --quick   # 4 steps, no behaviour checks: a smoke run of the bench
    python -m bench.bench_estimate --quiet-only   # the first and the second run, without the busy one
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import REPO

QUICK = {"max_steps": "4", "behaviour_checks": "false", "early_stopping": "false"}

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from core.curation import demo
from core.pii import scan as pii
from core.platform import store
from core.training import config as training_config, eta, runs as training, versions
db = store.connect(sys.argv[2])
overrides = json.loads(sys.argv[3])
if not db.table("datasets").count:
    ds = demo.seed_demo(db); pii.scan_dataset(db, ds.id); versions.freeze(db, ds, actor="bench")
version = versions.get_version(db, 1)
config = training_config.PRESETS[training_config.DEFAULT_PRESET].with_overrides(overrides)
plain = training_config.estimate(db, version, config)
load = eta.machine_load()
shown = eta.on_this_machine(plain, load)
run = training.start_run(db, version, preset=training_config.DEFAULT_PRESET, config=config, actor="bench",
                         allow_duplicate=True, estimated_s=shown.duration_s)
while not training.get_run(db, run.id).finished:
    time.sleep(1)
run = training.get_run(db, run.id)
assert run.status == "succeeded", run.error
print(json.dumps({"estimate_s": shown.duration_s, "estimate_quiet_s": plain.duration_s,
                  "measured_s": run.metrics["duration_s"], "steps": run.metrics.get("steps"),
                  "slowdown": round(load.slowdown, 2), "busy_cores": load.busy_cores, "cores": load.cores,
                  "said": load.sentence(), "load_after": round(os.getloadavg()[0], 2)}))
"""

BURNER = r"""
import multiprocessing, os
def burn(_):
    x = 0
    while True:
        x = (x * 7 + 1) % 1000003
if __name__ == "__main__":
    n = len(os.sched_getaffinity(0))
    with multiprocessing.Pool(n) as pool:
        pool.map(burn, range(n))
"""


def start_burner() -> subprocess.Popen:
    """A second heavy job: one busy loop per usable core, in its own process group."""
    burner = subprocess.Popen([sys.executable, "-c", BURNER], start_new_session=True)
    time.sleep(3)  # let it reach full speed before the studio looks at the machine
    return burner


def stop_burner(burner: subprocess.Popen) -> None:
    os.killpg(burner.pid, signal.SIGTERM)  # its own group: the pool workers go with it
    try:
        burner.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(burner.pid, signal.SIGKILL)
        burner.wait()


def main(quick: bool = False, conditions: tuple[str, ...] = ("first run", "quiet", "busy")) -> dict:
    from bench.measure import run_child

    overrides = QUICK if quick else {}
    results: dict = {"mode": "quick" if quick else "full", "cores_available": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        for condition in conditions:
            burner = start_burner() if condition == "busy" else None
            try:
                result = run_child(CHILD, str(REPO), db, json.dumps(overrides))
            finally:
                if burner is not None:
                    stop_burner(burner)
            result["ratio"] = round(result["measured_s"] / result["estimate_s"], 2) if result["estimate_s"] else None
            results[condition] = result
            print(json.dumps({condition: result}), file=sys.stderr)
            time.sleep(5)  # let the burner's load fade before the next run
    return results


def table(r: dict) -> str:
    """Estimated vs measured side by side, with the load the studio saw before each run."""
    rows = ["| run | estimate shown (s) | estimate without load (s) | measured (s) | measured / shown | "
            "busy cores seen | what the studio said |", "|---|---|---|---|---|---|---|"]
    for condition in ("first run", "quiet", "busy"):
        x = r.get(condition)
        if x:
            rows.append(f"| {condition} | {x['estimate_s']} | {x['estimate_quiet_s']} | {x['measured_s']} | "
                        f"{x['ratio']}× | {x['busy_cores']} of {x['cores']} | {x['said']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    out = main(quick="--quick" in sys.argv[1:],
               conditions=("first run", "quiet") if "--quiet-only" in sys.argv[1:] else ("first run", "quiet", "busy"))
    print(json.dumps(out, indent=2))
    print(table(out))
