"""A preference round (DPO) trained in the background worker on the shipped model (issue 28)."""

import json
from pathlib import Path

import pytest

from core.curation.demo import DEMO_DIR
from core.platform import store
from core.training import rounds, runs
from tests.test_training import small_version, wait_for

BAD_ANSWERS = ["Sorry, I cannot help with that.", "Please contact support.", "ok", "I do not know what you mean.",
               "Thank you for your message!", "Try again later."]


def hand_made_pairs() -> list[rounds.PreferencePair]:
    """Six held-out tickets: the reference triage chosen over an unhelpful reply."""
    lines = (DEMO_DIR / "heldout.jsonl").read_text().splitlines()[:6]
    pairs = []
    for position, (line, bad) in enumerate(zip(lines, BAD_ANSWERS)):
        messages = json.loads(line)["messages"]
        pairs.append(rounds.PreferencePair(position, messages[:-1], messages[-1]["content"], bad, "votes"))
    return pairs


def margins(model_dir: Path, adapter: Path, pairs: list[rounds.PreferencePair]) -> list[float]:
    """log p(chosen | prompt) - log p(rejected | prompt), summed over the answer's tokens (end of turn
    included), with the adapter on the full-precision base, as answers are generated for rating."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(model_dir)), str(adapter)).eval()

    def logprob(prompt: list[dict], answer: str) -> float:
        head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
        assert full.startswith(head)
        start = len(tokenizer(head, add_special_tokens=False)["input_ids"])
        ids = tokenizer(full, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            logits = model(ids).logits[0, :-1].float()
        picked = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
        return float(picked[start - 1:].sum())

    return [logprob(p.prompt, p.chosen) - logprob(p.prompt, p.rejected) for p in pairs]


@pytest.mark.slow
def test_a_preference_round_raises_the_margin_of_chosen_over_rejected(db, db_path, model_dir, random_adapter):
    version = small_version(db, model_dir, train_n=8, heldout_n=8)
    parent = runs.import_adapter(db, random_adapter, version.id, actor="test")
    pairs = hand_made_pairs()
    # The preset's knobs with a short schedule: 4 steps of 2 pairs (every pair once, two twice), and a
    # learning rate that moves the margin within those steps (a 2-core CPU takes minutes per step).
    config = rounds.round_config(parent, {"max_steps": "4", "grad_accumulation": "1", "learning_rate": "5e-4",
                                          "precision": "fp32"})
    run = rounds.start_round(db, parent.id, pairs, rating_run_id=parent.id, votes_sha256="ab" * 32, config=config,
                             actor="test")
    assert (run.kind, run.parent_run_id, run.reference_run_id, run.preset) == ("dpo", parent.id, parent.id,
                                                                                "preference-round")
    run = wait_for(db, run.id, lambda r: r.finished, timeout=2400)
    assert run.status == "succeeded", run.error
    assert run.metrics["steps"] == 4 and run.metrics["preference_pairs"] == 6
    adapter = Path(run.adapter_path)
    assert not (adapter / "ref").exists()  # trl's frozen reference copy is not part of the round
    card = (adapter / "README.md").read_text()
    assert f"Rating run: {parent.id}" in card and "ab" * 32 in card and parent.adapter_sha256 in card

    before = margins(model_dir, Path(parent.adapter_path), pairs)
    after = margins(model_dir, adapter, pairs)
    rise = sum(after) / len(after) - sum(before) / len(before)
    print(f"mean margin chosen - rejected: parent {sum(before) / 6:.3f}, round {sum(after) / 6:.3f}, rise {rise:.3f}")
    assert rise > 0.5, (before, after)
    assert sum(a > b for a, b in zip(after, before)) >= 5, (before, after)


def test_a_preference_round_is_refused_with_a_message_when_runs_go_to_ray(db, model_dir, random_adapter):
    version = small_version(db, model_dir, train_n=8, heldout_n=8)
    parent = runs.import_adapter(db, random_adapter, version.id, actor="test")
    # The saved target as the Settings page writes it (saving through set_run_target needs Ray installed).
    store.set_setting(db, "run_target", json.dumps({"kind": "ray", "address": "ray://head:10001"}))
    with pytest.raises(runs.RunError, match="this machine only .* set the run target to this machine in Settings"):
        rounds.start_round(db, parent.id, hand_made_pairs(), rating_run_id=parent.id, votes_sha256="ab" * 32,
                           actor="test", launch=False)
    assert runs.list_runs(db) == [runs.get_run(db, parent.id)]  # nothing was queued
