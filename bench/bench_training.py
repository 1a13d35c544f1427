"""Training: the new default vs 0.2.0's default vs the seed article's recipe, same data, same machine,
one after the other in this process's children; plus a torch.profiler table of one step and the
machine's matmul peaks (for model FLOP utilisation)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import REPO

# 0.2.0's default: the same preset before 0.3's levers (fp32 compute on CPUs, batch 4, lr 1e-3, an
# eval per epoch, no behaviour checks, no early stopping), with the gradient fix of 0.3.
VARIANTS = {
    "small-data": ("small-data", {}),
    "small-data-0.2.0": ("small-data", {"precision": "fp32", "behaviour_checks": "false", "early_stopping": "false",
                                        "learning_rate": "0.001", "batch_size": "4"}),
    "seed-article": ("seed-article", {}),
}

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from core.curation import demo
from core.models import generation
from core.pii import scan as pii
from core.platform import store
from core.rating import pairs as answer_pairs
from core.reports import summary as stats
from core.training import config as training_config, runs as training, versions
db = store.connect(sys.argv[2])
preset, overrides = sys.argv[3], json.loads(sys.argv[4])
if not db.table("datasets").count:
    ds = demo.seed_demo(db); pii.scan_dataset(db, ds.id); versions.freeze(db, ds, actor="bench")
version = versions.get_version(db, 1)
config = training_config.PRESETS[preset].with_overrides(overrides)
estimate = training_config.estimate(db, version, config)
load = os.getloadavg()[0]
run = training.start_run(db, version, preset=preset, config=config, actor="bench", allow_duplicate=True)
while not training.get_run(db, run.id).finished:
    time.sleep(2)
run = training.get_run(db, run.id)
assert run.status == "succeeded", run.error
job = answer_pairs.start_generation(db, run.id, generation.GenerationConfig(max_new_tokens=80), launch=False)
answer_pairs.run_generation_job(db, job.id)
run = training.get_run(db, run.id)
checks = stats.automatic_checks(db, run, answer_pairs.pairs(db, run.id))
print(json.dumps({"preset": preset, "overrides": overrides, **run.metrics, "estimate_s": round(estimate.duration_s, 1),
                  "estimate_basis": estimate.basis, "load_before": round(load, 2),
                  "convention_tuned": checks["convention_tuned"], "convention_base": checks["convention_base"],
                  "pairs": checks["pairs"]}))
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

# One optimizer step of the default preset's model (QLoRA NF4, LoRA r16 on all linear layers; a batch of
# 4 demo-length sequences, as 0.3's default trained), timed for fp32 and bf16 compute, then profiled in bf16.
PROFILE = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from torch.profiler import profile, ProfilerActivity
from core.models import registry as models
out = {}
for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    torch.manual_seed(0)
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(models.resolve(models.DEFAULT_MODEL), quantization_config=q,
                                                 dtype=dtype, device_map="cpu")
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randint(0, 40000, (4, 126))
    def step():
        loss = model(input_ids=x, labels=x).loss
        loss.backward(); opt.step(); opt.zero_grad()
    step()
    t = time.perf_counter()
    for _ in range(4): step()
    out[name + "_step_s"] = round((time.perf_counter() - t) / 4, 3)
    if name == "bf16":
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in rows)
        out["top_ops"] = [{"op": e.key, "self_ms": round(e.self_cpu_time_total / 1000, 1),
                           "share": round(e.self_cpu_time_total / total, 3), "calls": e.count} for e in rows[:10]]
print(json.dumps(out))
"""


def main() -> dict:
    from bench.measure import run_child

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        for name, (preset, overrides) in VARIANTS.items():
            started = time.time()
            child = run_child(CHILD, str(REPO), db, preset, json.dumps(overrides))
            child["total_wall_s"] = round(time.time() - started, 1)
            results[name] = child
            print(json.dumps(child), file=sys.stderr)
    results["matmul"] = run_child(MATMUL)
    results["profile"] = run_child(PROFILE, str(REPO))
    results["cores_available"] = len(os.sched_getaffinity(0))
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
