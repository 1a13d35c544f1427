"""The early-stopping rule on hand-written behaviour curves, and the off-convention stop on the real model."""

import pytest

from core.training.behaviour_probe import BehaviourProbe, CurvePoint

PATTERN = r"^Category: (Billing|Shipping)\nPriority: P[123]$"


def probe(pattern=PATTERN, points=(), patience=2):
    p = BehaviourProbe(None, [[{"role": "user", "content": "x"}]] if pattern else [], pattern, every=5,
                       early_stopping=True, patience=patience, max_new_tokens=32)
    p.curve = [CurvePoint(*point) for point in points]
    return p


@pytest.mark.parametrize(("points", "stops"), [
    # (step, seconds, compliant, probed, eval_loss)
    ([(5, 10, 1, 1, 2.0), (10, 20, 1, 1, 1.5)], False),            # format held twice, loss still falling 25 %
    ([(5, 10, 1, 1, 2.0), (10, 20, 1, 1, 1.99)], True),            # held twice, loss flat (0.5 % < 1 %)
    ([(5, 10, 0, 1, 2.0), (10, 20, 1, 1, 2.5)], False),            # held only once
    ([(5, 10, 1, 1, 2.0)], False),                                 # one check is not convergence
    ([(5, 10, 1, 1, 1.9), (10, 20, 0, 1, 2.0), (15, 30, 1, 1, 2.1)], False),  # format lost in between
])
def test_stops_when_format_held_twice_and_loss_stopped_improving(points, stops):
    assert bool(probe(points=points)._converged()) is stops


def test_without_a_convention_patience_counts_checks_without_improvement():
    flat = [(5, 10, None, 0, 2.0), (10, 20, None, 0, 1.999), (15, 30, None, 0, 1.998)]
    assert probe("", flat[:2])._converged() == ""
    assert "did not improve for 2 checks" in probe("", flat)._converged()
    assert probe("", flat, patience=3)._converged() == ""


def test_an_off_convention_answer_stops_early_on_the_real_model(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompts = [[{"role": "user", "content": "Write a long poem about the sea."}]]
    strict = BehaviourProbe(tokenizer, prompts, PATTERN, every=1, early_stopping=True, patience=1, max_new_tokens=64)
    loose = BehaviourProbe(tokenizer, prompts, r"(?s).*", every=1, early_stopping=True, patience=1, max_new_tokens=64)
    cut, full = strict.answers(model)[0], loose.answers(model)[0]
    # The base model does not answer "Category: …": generation stops within a few tokens.
    assert full.startswith(cut) and len(tokenizer(cut)["input_ids"]) <= 4 < len(tokenizer(full)["input_ids"])
