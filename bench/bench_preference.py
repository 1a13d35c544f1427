"""A preference round on the demo (issue 28): its training time next to the SFT run it starts from,
and its win rate against that parent on held-out prompts it never saw, judged by the convention check.

The loop as a team runs it, with the convention check as the rater: SFT run on the demo, answers on
the held-out prompts (SFT vs base), a simulated rater votes blind on the first half of them through
the rating screen's core path (the answer that follows the convention is preferred; both: tie;
neither: both bad), the preference set is built from those votes, the round trains from the SFT
adapter, and both adapters answer the other half. Win = only the round's answer follows the
convention, loss = only the parent's; the rest are ties.

    python -m bench.bench_preference            # the full section, prints its JSON
    python -m bench.bench_preference --quick    # smoke path: a few steps each, 4 new tokens
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench.measure import REPO, run_child

CHILD = r"""
import json, os, sys, time
repo, db_path, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sys.path.insert(0, repo)
os.environ["STUDIO_DB"] = db_path
from core.curation import convention, datasets, demo
from core.curation.convention import convention_ok
from core.models import generation
from core.pii import scan
from core.platform import store
from core.rating import pairs as answer_pairs
from core.rating import preferences, sessions
from core.reports import summary as stats
from core.training import config as training_config, rounds, runs, versions

db = store.connect(db_path)
dataset = demo.seed_demo(db)
scan.scan_dataset(db, dataset.id)
version = versions.freeze(db, dataset, actor="bench")
answers = generation.GenerationConfig(max_new_tokens=4 if quick else 64, batch_size=10)

def train(start):
    began = time.time()
    run = start()
    while not runs.get_run(db, run.id).finished:
        time.sleep(2)
    run = runs.get_run(db, run.id)
    assert run.status == "succeeded", run.error
    return run, round(time.time() - began, 1)

def answer(run):
    job = answer_pairs.start_generation(db, run.id, answers, launch=False)
    answer_pairs.run_generation_job(db, job.id)
    return answer_pairs.pairs(db, run.id)

sft_config = training_config.PRESETS["smoke-test" if quick else training_config.DEFAULT_PRESET]
sft, sft_s = train(lambda: runs.start_run(db, version, preset="smoke-test" if quick else training_config.DEFAULT_PRESET,
                                          config=sft_config, actor="bench", allow_duplicate=True))
check = convention.check_for(dataset.convention_regex, dataset.convention_json,
                             convention.answers_of(versions.version_messages(db, version.id, "train")))
pattern = check.pattern
sft_pairs = answer(sft)
voted = sft_pairs[: len(sft_pairs) // 2]
session = sessions.start_session(db, sft.id, "convention-check")
placed = dict(session.order)
for pair in voted:
    if pair.identical or "pii" in pair.flags:
        continue
    base_ok, tuned_ok = convention_ok(pattern, pair.base_text), convention_ok(pattern, pair.tuned_text)
    if base_ok == tuned_ok:
        verdict = "tie" if base_ok else "both_bad"
    else:
        verdict = "A" if placed[pair.position] == ("tuned" if tuned_ok else "base") else "B"
    sessions.record_rating(db, session, pair.position, verdict)
sessions.close_rating(db, sft.id, actor="bench")  # the votes are final, as when a team starts a round
pref = preferences.build(db, sft.id, viewer="bench")
overrides = {"max_steps": "2", "grad_accumulation": "1"} if quick else {}
result = {"quick": quick, "sft_preset": sft.preset, "sft_s": sft_s, "sft_steps": sft.metrics.get("steps"),
          "convention": check.description, "voted_prompts": len(voted), "preference_pairs": len(pref.pairs),
          "left_out": pref.left_out}
if len(pref.pairs) < rounds.MINIMUM_PAIRS:
    result["round"] = f"not trained: {len(pref.pairs)} preference pairs (needs {rounds.MINIMUM_PAIRS})"
else:
    made, round_s = train(lambda: rounds.start_round(db, sft.id, pref.pairs, rating_run_id=sft.id,
                                                    votes_sha256=pref.votes_sha256,
                                                    config=rounds.round_config(sft, overrides), actor="bench"))
    ab = answer(made)
    wins = sum(convention_ok(pattern, p.tuned_text) and not convention_ok(pattern, p.base_text) for p in ab)
    losses = sum(convention_ok(pattern, p.base_text) and not convention_ok(pattern, p.tuned_text) for p in ab)
    result.update({"round_s": round_s, "round_steps": made.metrics.get("steps"), "ab_prompts": len(ab),
                   "round_convention": sum(convention_ok(pattern, p.tuned_text) for p in ab),
                   "parent_convention": sum(convention_ok(pattern, p.base_text) for p in ab),
                   "wins": wins, "losses": losses, "ties": len(ab) - wins - losses,
                   "win_rate": wins / (wins + losses) if wins + losses else None})
print(json.dumps(result))
"""


def main(quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        return run_child(CHILD, str(REPO), str(Path(folder) / "studio.db"), "1" if quick else "0",
                         timeout=900 if quick else 5400)


def section(p: dict) -> str:
    """The benchmark page's section: times side by side, the round's win rate, and why it may not help."""
    if not p:
        return ""
    if "round_s" not in p:
        return f"## Preference round on the demo\n\n{p.get('round')}\n"
    rate = "–" if p["win_rate"] is None else f"{p['win_rate']:.0%}"
    convention = p["convention"].replace("|", "\\|")  # a regex's alternatives would split the table's cells
    return f"""## Preference round on the demo

The SFT run ({p['sft_preset']}), rated by the convention check on {p['voted_prompts']} held-out prompts
({p['preference_pairs']} preference pairs; left out: {', '.join(f'{n} {k}' for k, n in p['left_out'].items() if n) or 'nothing'}),
then a preference round from its adapter, rated against it on the {p['ab_prompts']} held-out prompts it never saw.

| | SFT run | preference round |
|---|---|---|
| training time | {p['sft_s']} s ({p['sft_steps']} steps) | {p['round_s']} s ({p['round_steps']} steps) |
| held-out answers following the convention ({convention}) | {p['parent_convention']}/{p['ab_prompts']} | {p['round_convention']}/{p['ab_prompts']} |
| round / SFT training time | | {p['round_s'] / p['sft_s']:.2f}× |

Round vs parent, judged by the convention check: won {p['wins']}, lost {p['losses']}, tied {p['ties']}; win rate {rate}.
Why it may not help here: on this 135M model the SFT adapter already follows the demo's convention on
most prompts, so the votes mostly prefer the SFT answer to the base answer, and DPO can only push further
in the direction the parent already went; the convention check cannot see the content a human rater would.
"""


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
