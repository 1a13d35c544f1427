"""`make bench`: every benchmark, side by side in one run, written to docs/BENCHMARKS.md."""

from __future__ import annotations

import json
import sys
import time

from bench import bench_behaviour, bench_data, bench_estimate, bench_generation, bench_preference, bench_training
from bench.measure import OUT, REPO, machine


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "–"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.time()
    only = (set(sys.argv[1].split(",")) if len(sys.argv) > 1
            else {"data", "generation", "training", "behaviour", "preference", "estimate"})
    previous = json.loads((OUT / "results.json").read_text()) if (OUT / "results.json").exists() else {}
    data = bench_data.main() if "data" in only else previous["data"]
    generation = bench_generation.main() if "generation" in only else previous["generation"]
    training = bench_training.main() if "training" in only else previous["training"]
    behaviour = bench_behaviour.main() if "behaviour" in only else previous.get("behaviour", {})
    preference = bench_preference.main() if "preference" in only else previous.get("preference", {})
    estimate = bench_estimate.main() if "estimate" in only else previous.get("estimate", {})
    results = {"data": data, "generation": generation, "training": training, "behaviour": behaviour,
               "preference": preference, "estimate": estimate,
               "total_minutes": round((time.time() - started) / 60, 1)}
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    report = REPO / "docs" / "BENCHMARKS.md"
    report.write_text(with_hand_sections(report.read_text() if report.exists() else "", render(results)))
    print(json.dumps(results, indent=2))
    return 0


def shortfalls(r: dict) -> str:
    new, seed = r["training"]["small-data"], r["training"]["seed-article"]
    ours, loop = r["generation"]["ours"], r["generation"]["seed"]
    notes = []
    if new["tokens_per_s"] < 2 * seed["tokens_per_s"]:
        notes.append(
            f"- **Training tokens/s ({new['tokens_per_s'] / seed['tokens_per_s']:.2f}× of the seed recipe, target 2×).** "
            "A step is matmul-bound (profile above); bf16 compute buys about a third, and the rest of the seed "
            "recipe's cost is in the same matmuls. Our tokens/s also pays for the behaviour checks (generation and "
            "held-out loss inside the measured time), which the seed recipe does not do; what they buy is the "
            "stop as soon as the behaviour holds.")
    if new.get("time_to_format_s") is None or new["time_to_format_s"] > 120:
        notes.append(f"- **Time to behaviour ({new.get('time_to_format_s')} s, target ≤ 120 s).** See the curve above.")
    if new["convention_tuned"] < new["pairs"]:
        notes.append(
            f"- **Full held-out compliance ({new['convention_tuned']}/{new['pairs']} after the early stop; 0.2.0's default "
            f"reached {r['training']['small-data-0.2.0']['convention_tuned']}/{new['pairs']} after "
            f"{r['training']['small-data-0.2.0']['duration_s']} s).** The checks answer with the adapter on the 4-bit "
            "NF4 base it trains against; the answers for rating put it on the full-precision base, and this shorter, "
            "less overfit run is more sensitive to that difference (with 8 probe prompts the probe held 8/8 and the "
            "rating answers were still 14/20, the same six prompts at 80 and 160 new tokens). Next: rate on the base "
            "that was trained, or make the probe answer as rating does. Its held-out loss is much better than 0.2.0's.")
    for name in ("small-data", "small-data-0.2.0"):
        run = r["training"][name]
        err = (run["estimate_s"] - run["duration_s"]) / run["duration_s"]
        if abs(err) > 0.25:
            notes.append(
                f"- **Estimate error for {name} ({err:+.0%}, target ±25 %).** Each variant was this database's first run "
                f"of its kind, so the estimate stood on a prior ({run['estimate_basis']}) and on the full schedule; "
                "after a run, the next estimate uses this machine's measured speed for that model, method and "
                "precision and the share of the schedule early-stopped runs used (tested in tests/test_training.py).")
    if ours["answers_per_s"] < 4 * loop["answers_per_s"]:
        notes.append(
            f"- **A/B generation ({ours['answers_per_s'] / loop['answers_per_s']:.2f}×, target 4×).** Batching 10 "
            "prompts on 2 CPU cores gains less than on a GPU: generation is compute-bound here, so batching "
            "mostly saves Python and kernel-launch overhead. The memory saving comes from keeping one model.")
    if ours["peak_rss_mb"] > 0.5 * loop["peak_rss_mb"]:
        notes.append(
            f"- **Generation memory ({ours['peak_rss_mb'] / loop['peak_rss_mb']:.2f}×, target 0.5×).** A 135M model is "
            "small next to the Python, torch and tokenizer runtime (~700 MB) that both variants carry, so "
            "dropping the second model copy cannot halve the process's peak.")
    slow_pages = [p for p, t in r["data"]["pages"].items() if isinstance(t, float) and t >= 1]
    if slow_pages:
        notes.append(f"- **Pages over 1 s:** {', '.join(slow_pages)}.")
    return "\n".join(notes) or "- Nothing: every target was met in this run."


def behaviour_section(b: dict) -> str:
    """Time to behaviour on the bench sets the studio never saw (issue 24)."""
    runs = {k: v for k, v in b.items() if ":" in k}
    if not runs:
        return ""

    def row(key: str, run: dict) -> str:
        seed = runs.get(key.split(":")[0] + ":seed-article")
        time_ratio = ratio(run["duration_s"], seed["duration_s"]) if seed and seed is not run else "–"
        err = (run["estimate_s"] - run["duration_s"]) / run["duration_s"]
        return (f"| {key} | {run['train']}/{run['heldout']} | {run['duration_s']} s ({run['steps']} steps) | {time_ratio} | "
                f"{run.get('stopped_early') or 'no'} | {run.get('time_to_format_s', '–')} | "
                f"**{run['convention_tuned']}/{run['pairs']}** (base {run['convention_base']}/{run['pairs']}) | "
                f"{labels_right(run)} | {err:+.0%} | {run['load_before'][0]} → {run['load_after'][0]} |")

    def labels_right(run: dict) -> str:
        """Closed-set values equal to the reference answer's, per label: what the answers say."""
        agree = run.get("labels_agree") or {}
        return ", ".join(f"{label} {c['tuned']}/{c['of']}" for label, c in agree.items()) or "–"

    rows = "\n".join(row(k, v) for k, v in runs.items())
    conventions = "\n".join(f"- {k.split(':')[0]}: {v.get('convention_described')}"
                             for k, v in runs.items() if k.endswith(":small-data"))
    return f"""## Time to behaviour on data the studio never saw (tests/data/behaviour_sets.py)

Imported through the CLI with no output convention typed; the studio inferred:
{conventions}

Held-out format: every held-out prompt answered greedily by the adapter on the full-precision base (plain
`PeftModel.from_pretrained`, as raters and users get it), matched against the inferred convention (values from
its closed sets). Load: 1-minute load average before → after each run.

| set:preset | train/held-out | training time | / seed | stopped early | format first held on the probe (s) | held-out format (full precision) | closed-set values as the reference | estimate error | load |
|---|---|---|---|---|---|---|---|---|---|
{rows}

"""


def training_section(t: dict) -> str:
    new, old, seed, mm = t["small-data"], t["small-data-0.2.0"], t["seed-article"], t["matmul"]
    params = 134_515_008

    def mfu(run: dict) -> str:
        peak = mm["bf16_flops"] if run.get("compute_dtype") == "bf16" else mm["fp32_flops"]
        return f"{run['tokens_per_s'] * 6 * params / peak:.1%} of {run.get('compute_dtype', 'fp32')}"

    def error(run: dict) -> str:
        return f"{(run['estimate_s'] - run['duration_s']) / run['duration_s']:+.0%}"

    rows = [
        ("tokens/s (unpadded, seen by the model; checks included)", "tokens_per_s", "{}"),
        ("optimizer steps", "steps", "{}"), ("training duration", "duration_s", "{} s"),
        ("compute dtype", "compute_dtype", "{}"), ("peak RSS of the trainer", "peak_memory_mb", "{} MB"),
        ("held-out loss on reference answers (tuned)", "heldout_loss_tuned", "{}"),
        ("forgetting probe: general-text loss, tuned (base {})".format(new.get("general_loss_base")),
         "general_loss_tuned", "{}"),
        ("pre-launch estimate", "estimate_s", "{} s"), ("load average before the run", "load_before", "{}"),
    ]
    def ratios(key: str) -> str:
        if key not in ("tokens_per_s", "duration_s"):
            return " | |"
        return f" {ratio(new[key], seed[key])} | {ratio(new[key], old[key])} |"

    table = "\n".join(f"| {label} | " + " | ".join(fmt.format(run.get(key, "–")) for run in (new, old, seed)) + " |"
                      + ratios(key) for label, key, fmt in rows)
    curve = "\n".join(f"| {p['step']} | {p['seconds']} s | {p['compliant']}/{p['probed']} | "
                      f"{'–' if p['eval_loss'] is None else round(p['eval_loss'], 3)} |"
                      for p in new.get("behaviour_curve", []))
    top = "\n".join(f"| `{o['op']}` | {o['self_ms']} ms | {o['share']:.0%} | {o['calls']} |"
                    for o in t["profile"]["top_ops"])
    return f"""## 1. Training (demo dataset, 75 train / 20 held-out), one after the other on {t.get('cores_available', '?')} cores

| | small-data (new default) | 0.2.0's default | seed-article | new / seed | new / 0.2.0 |
|---|---|---|---|---|---|
{table}
| held-out output convention, tuned (20 greedy answers after the run) | {new['convention_tuned']}/{new['pairs']} | {old['convention_tuned']}/{old['pairs']} | {seed['convention_tuned']}/{seed['pairs']} | | |
| held-out output convention, base | {new['convention_base']}/{new['pairs']} | {old['convention_base']}/{old['pairs']} | {seed['convention_base']}/{seed['pairs']} | | |
| estimate error (estimate − measured) / measured | {error(new)} | {error(old)} | {error(seed)} | | |
| model FLOP utilisation (6 × parameters × tokens/s over the matching peak) | {mfu(new)} | {mfu(old)} | {mfu(seed)} | | |
| stopped early | {new.get('stopped_early') or 'no'} | no | no | | |

Ratios: tokens/s {ratio(new['tokens_per_s'], seed['tokens_per_s'])} of the seed recipe and {ratio(new['tokens_per_s'], old['tokens_per_s'])} of 0.2.0's default;
training time {ratio(new['duration_s'], old['duration_s'])} of 0.2.0's default.
Matmul peaks measured in the same run: {mm['fp32_flops'] / 1e9:.0f} GFLOP/s fp32, {mm['bf16_flops'] / 1e9:.0f} GFLOP/s bf16.

## 2. Time to behaviour: the new default's behaviour curve

Held-out format compliance on {new.get('behaviour_curve', [{}])[0].get('probed', '?')} probe prompts and held-out loss at each
check, against wall-clock seconds of training (checks included). First full compliance on the probe:
**{new.get('time_to_format_s')} s**; after the run, {new['convention_tuned']}/{new['pairs']} of all held-out prompts.

| step | seconds | format on the probe | held-out loss |
|---|---|---|---|
{curve}

## 3. One training step, profiled (torch.profiler, bf16, batch 4 × 126 tokens)

fp32 step {t['profile']['fp32_step_s']} s, bf16 step {t['profile']['bf16_step_s']} s ({ratio(t['profile']['fp32_step_s'], t['profile']['bf16_step_s'])} faster).

| operator | self time | share | calls |
|---|---|---|---|
{top}
"""


def estimate_section(e: dict) -> str:
    if not e:
        return ""
    return f"""## 8. The pre-launch estimate on a quiet and a busy machine (default preset, demo dataset)

Three runs one after the other: the first teaches the studio this machine's speed, the second runs on the quiet
machine, the third beside a CPU burner on all {e['cores_available']} usable cores (started by the bench, stopped
after). "Estimate shown" is what the Train page says after looking at the machine (`core/training/eta.py`).

{bench_estimate.table(e)}
"""


# Everything above this line in docs/BENCHMARKS.md was measured by hand (a run on a quiet machine, a
# browser walk) and is kept as it is; everything below it is rewritten from bench/out/results.json.
GENERATED_BELOW = ("<!-- Below: written by `make bench` (bench/run_all.py) from bench/out/results.json. "
                   "Above: measured by hand, kept by make bench. -->")


def with_hand_sections(existing: str, generated: str) -> str:
    """The report with its hand-measured part kept and the generated part replaced."""
    if GENERATED_BELOW in existing:
        head = existing.split(GENERATED_BELOW, 1)[0].rstrip("\n")
    elif not existing.strip():
        head = "# Benchmarks"
    else:  # the marker was edited away: writing now would drop the hand-measured sections
        raise SystemExit(f"docs/BENCHMARKS.md has no line {GENERATED_BELOW!r}: put it back where the "
                         "hand-measured sections end, then run make bench again.")
    return (head or "# Benchmarks") + "\n\n" + GENERATED_BELOW + "\n\n" + generated


def render(r: dict) -> str:
    ours, loop = r["generation"]["ours"], r["generation"]["seed"]
    pages = r["data"]["pages"]
    page_rows = "\n".join(f"| {p} | {t} s | {'meets' if isinstance(t, float) and t < 1 else 'misses'} < 1 s |"
                          for p, t in pages.items() if not p.endswith("error"))
    pii = r["data"]["pii"]
    return f"""## Measured by `make bench`

In one run ({r['total_minutes']} minutes) on: {machine()}.
Ratios are pair-wise in the same run; absolute times vary with the machine's load.

{training_section(r["training"])}
{behaviour_section(r.get("behaviour", {}))}
{bench_preference.section(r.get("preference", {}))}
## 4. A/B generation (20 held-out prompts × base and tuned, 64 new tokens, greedy)

| | ours: one model, adapter toggled, batched | seed: loop, two model copies | ratio | target |
|---|---|---|---|---|
| answers/s | {ours['answers_per_s']} | {loop['answers_per_s']} | {ratio(ours['answers_per_s'], loop['answers_per_s'])} | ≥ 4× |
| peak RSS | {ours['peak_rss_mb']} MB | {loop['peak_rss_mb']} MB | {ratio(ours['peak_rss_mb'], loop['peak_rss_mb'])} | ≤ 0.5× |

## 5. PII scan ({pii['examples']} demo examples, {pii['texts']} messages)

| | examples/s |
|---|---|
| per text | {pii['per_text_examples_per_s']} |
| batched (spaCy pipe) | {pii['batched_examples_per_s']} ({ratio(pii['batched_examples_per_s'], pii['per_text_examples_per_s'])}) |
| first scan into the store | {pii['scan_examples_per_s']} |
| unchanged rescan | {pii['unchanged_rescan_seconds']} s, {pii['rescanned']} examples re-analysed |

## 6. Pages (AppTest, warm, 10,000 examples and 5,000 ratings)

| page | render | target |
|---|---|---|
{page_rows}

## 7. Import

{r['data']['import']['lines']:,} lines in {r['data']['import']['seconds']} s: **{r['data']['import']['examples_per_s']:,} examples/s**.

{estimate_section(r.get("estimate", {}))}
## What fell short, and why

{shortfalls(r)}

## Reproduce

    make bench            # writes this file and bench/out/results.json
    python -m bench.bench_estimate --quick   # section 8 with 4-step runs (a smoke run)
    python -m bench.bench_walk               # a new user's walk in headless Chromium, step by step
"""


if __name__ == "__main__":
    sys.exit(main())
