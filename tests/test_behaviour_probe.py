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


def test_stop_on_format_alone_does_not_wait_for_the_loss_but_still_needs_the_margin():
    falling = [(5, 10, 1, 1, 2.0), (10, 20, 1, 1, 1.5)]  # format held twice, loss still falling 25 %
    fast = probe(points=falling)
    fast.stop_on_format_alone = True
    assert "set to stop on the format alone (step 10)" in fast._converged()
    assert probe(points=falling)._converged() == ""  # the default waits for the loss
    once = probe(points=[(5, 10, 0, 1, 2.0), (10, 20, 1, 1, 1.5)])
    once.stop_on_format_alone = True
    assert once._converged() == ""  # held once is not enough either way
    narrow = BehaviourProbe(None, [[{"role": "user", "content": "x"}]] * 4, PATTERN, heldout=20, every=5,
                            early_stopping=True, patience=2, max_new_tokens=32, stop_on_format_alone=True)
    narrow.curve = [CurvePoint(*p) for p in [(5, 10, 4, 4, 2.0), (10, 20, 4, 4, 1.5)]]
    assert narrow._converged() == ""  # 4/4 of 20 held-out prompts shows too little: the margin still rules


def content_probe(points, patience=2):
    """A probe whose checks carry chrF and closed-set agreement: (step, compliant, loss, chrF, agreement)."""
    p = BehaviourProbe(None, [[{"role": "user", "content": "x"}]] * 30, PATTERN, heldout=30, every=15,
                       early_stopping=True, patience=patience, max_new_tokens=32, references=["r"] * 30)
    p.curve = [CurvePoint(step, step * 3.0, compliant, 30, loss, similarity=chrf, agreement=agreement)
               for step, compliant, loss, chrf, agreement in points]
    return p


def test_the_stop_waits_for_what_the_answers_say_not_for_the_heldout_loss():
    """Issue 24, on the shape of the helpdesk bench run: the format held from the first check and the
    held-out loss was lowest at step 45, but the categories raters read went on improving."""
    climbing = [(15, 30, 1.59, 54.7, 0.37), (30, 30, 1.47, 52.3, 0.30), (45, 30, 1.34, 50.9, 0.40),
                (60, 30, 1.69, 59.3, 0.55), (75, 30, 1.54, 61.2, 0.52)]
    assert content_probe(climbing)._converged() == ""  # the loss rule stopped here (loss flat, format held)
    flat = climbing + [(90, 30, 1.53, 62.4, 0.65), (105, 30, 1.54, 62.3, 0.65)]
    assert content_probe(flat)._converged() == ""  # one check without a gain is not a plateau
    plateau = flat + [(120, 30, 1.55, 62.9, 0.667)]  # +0.6 chrF, +0.017 agreement: under both gains
    reason = content_probe(plateau)._converged()
    assert "stopped improving for 2 checks" in reason and "closed-set values right 67%" in reason and "step 120" in reason
    assert content_probe(plateau, patience=3)._converged() == ""
    # Agreement alone still climbing keeps the run going, however flat chrF is.
    labels_climb = flat + [(120, 30, 1.55, 62.4, 0.70)]
    assert content_probe(labels_climb)._converged() == ""
    # And what the answers say never overrides the margin: 26/30 at the last check, no stop.
    below = plateau[:-1] + [(120, 26, 1.55, 62.9, 0.667)]
    assert content_probe(below)._converged() == ""


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


# ----------------------------------------------------------------------------- stop only with margin (issue 24)

def test_the_heldout_lower_bound_on_hand_values():
    from core.training.behaviour_probe import heldout_lower_bound

    # All n probe answers pass: the one-sided 95 % Clopper-Pearson bound is 0.05^(1/n) for the rest.
    assert heldout_lower_bound(8, 8, 20) == pytest.approx((8 + 0.05 ** (1 / 8) * 12) / 20)   # 0.8126
    assert heldout_lower_bound(12, 12, 20) == pytest.approx((12 + 0.05 ** (1 / 12) * 8) / 20)  # 0.9116
    assert heldout_lower_bound(29, 29, 10_000) == pytest.approx(0.05 ** (1 / 29), abs=1e-3)  # 0.9019 >= 0.9
    assert heldout_lower_bound(28, 28, 10_000) < 0.9                                          # 0.8985
    assert heldout_lower_bound(11, 12, 12) == 11 / 12   # the whole split probed: known exactly
    assert heldout_lower_bound(0, 12, 20) == 0.0


def test_the_early_stop_refuses_to_stop_below_the_margin_on_a_hand_made_curve():
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(8)]
    # 8/8 at two checks in a row, loss flat: the old rule stopped here (and 14/20 followed the format).
    curve = [(5, 10, 8, 8, 2.0), (10, 20, 8, 8, 1.995)]
    narrow = BehaviourProbe(None, prompts, PATTERN, heldout=20, every=5, early_stopping=True, patience=2,
                            max_new_tokens=32)
    narrow.curve = [CurvePoint(*p) for p in curve]
    assert narrow._converged() == "" and not narrow.margin_reachable
    assert "shows only 81 % of the 20 held-out answers" in narrow.refused
    # 12 probe prompts of 20 all passing bound the held-out rate at 91 %: the same curve stops.
    wide = BehaviourProbe(None, prompts + prompts[:4], PATTERN, heldout=20, every=5, early_stopping=True,
                          patience=2, max_new_tokens=32)
    wide.curve = [CurvePoint(5, 10, 12, 12, 2.0), CurvePoint(10, 20, 12, 12, 1.995)]
    assert "at least 91 % of the 20 held-out answers" in wide._converged()
    # 18/20 of the whole split is 90 %: enough; 17/20 is not.
    whole = BehaviourProbe(None, (prompts * 3)[:20], PATTERN, heldout=20, every=5, early_stopping=True, patience=2,
                           max_new_tokens=32)
    whole.curve = [CurvePoint(5, 10, 18, 20, 2.0), CurvePoint(10, 20, 18, 20, 1.995)]
    assert whole._converged()
    whole.curve = [CurvePoint(5, 10, 18, 20, 2.0), CurvePoint(10, 20, 17, 20, 1.995)]
    assert whole._converged() == ""


def test_without_structure_the_probe_stops_when_chrf_plateaus():
    p = BehaviourProbe(None, [[{"role": "user", "content": "x"}]], "", references=["a reference"], every=5,
                       early_stopping=True, patience=2, max_new_tokens=32)
    rising = [CurvePoint(5, 10, None, 0, 2.0, 20.0), CurvePoint(10, 20, None, 0, 1.9, 30.0),
              CurvePoint(15, 30, None, 0, 1.89, 35.0)]
    p.curve = rising
    assert p._converged() == ""
    p.curve = rising + [CurvePoint(20, 40, None, 0, 1.88, 35.5), CurvePoint(25, 50, None, 0, 1.87, 35.9)]
    assert "chrF) did not improve by 1 point for 2 checks (best 35.0" in p._converged()


def test_chrf_is_sacrebleus_on_known_strings():
    from core.training.behaviour_probe import chrf

    assert chrf(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    assert chrf(["xyz"], ["the cat sat on the mat"]) == pytest.approx(0.0)


# ----------------------------------------------------------------------------- one model judged everywhere

def test_probe_and_rating_give_the_same_answers_token_for_token(model_dir, random_adapter):
    """The probe holds the adapter as training does (on the 4-bit base); it answers with the adapter
    saved and put on the full-precision base: token for token what rating generates (the loader and
    the batched generation `pairs.run_generation_job` uses). Answering on the 4-bit base it trained
    against (the old probe) gives other answers: the 8/8-vs-14/20 gap of issue 24."""
    import json

    from peft import PeftModel

    from core.models import generation, registry
    from core.training import trainer
    from core.training.behaviour_probe import JudgedModel
    from core.training.config import TrainingConfig
    from tests.conftest import REPO

    lines = (REPO / "tests" / "data" / "journey_heldout.jsonl").read_text().splitlines()
    prompts, references = zip(*(generation.prompt_of(json.loads(line)["messages"]) for line in lines))
    config = generation.GenerationConfig(max_new_tokens=16)
    rating_model, tokenizer = generation.load_with_adapter(registry.DEFAULT_MODEL, random_adapter)
    rated = generation.generate(rating_model, tokenizer, list(prompts), config, side="tuned")
    del rating_model

    training_form = trainer.load_for_training(registry.resolve(registry.DEFAULT_MODEL), TrainingConfig(), cuda=False)
    training_form = PeftModel.from_pretrained(training_form, str(random_adapter), is_trainable=True)
    judge = JudgedModel(registry.DEFAULT_MODEL)
    probe = BehaviourProbe(None, list(prompts), "", references=list(references), heldout=len(prompts), judge=judge,
                           every=1, early_stopping=True, patience=2, max_new_tokens=config.max_new_tokens)

    def ids(texts):
        return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    assert len(rated) == 3
    assert ids(probe.answers(*judge.sync(training_form))) == ids(rated)   # first check: PeftModel.from_pretrained
    assert ids(probe.answers(*judge.sync(training_form))) == ids(rated)   # later checks: PEFT's state-dict loader
    assert probe.answers(training_form, tokenizer) != rated                # on the NF4 base: not what raters see
    judge.close()


def test_agreement_with_the_references_on_the_real_model(model_dir):
    """The check's content signal: closed-set values equal to the reference's, on what the model wrote."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompts = [[{"role": "user", "content": "Write a long poem about the sea."}]] * 2
    p = BehaviourProbe(tokenizer, prompts, PATTERN, every=1, early_stopping=False, patience=1, max_new_tokens=16,
                       references=["Category: Billing\nPriority: P1"] * 2, labels=("Category", "Priority"))
    p.judge = None

    class State:
        global_step, max_steps = 1, 10

    class Control:
        should_evaluate = False

    p.on_step_end(None, State(), Control(), model=model)
    point = p._pending
    assert point.compliant == 0 and point.agreement == 0.0  # the base model writes no Category line
    assert point.similarity is not None and point.similarity < 30
    p.on_evaluate(None, State(), Control(), metrics={"eval_loss": 2.5})
    assert p.curve == [point] and point.eval_loss == 2.5 and point.check_s is not None and point.check_s > 0


def test_the_best_check_is_kept_when_the_last_is_worse_and_not_when_cancelled(model_dir, tmp_path):
    """Issue 24's insurance set, 5 epochs: 17/20 in the format at step 60, 5/20 at step 150. The
    adapter the run ends with is the best check's, weight for weight; a cancelled run keeps its state."""
    import torch
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    from core.training.behaviour_probe import rank

    class SavedByTheJudge:  # JudgedModel's directory, where each check saves the adapter
        directory = tmp_path

        def close(self):
            pass

    def trained(cancelled=False):
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), LoraConfig(
            r=4, target_modules=["q_proj"], task_type="CAUSAL_LM", init_lora_weights=False))
        p = BehaviourProbe(None, [[{"role": "user", "content": "x"}]] * 20, PATTERN, heldout=20, every=10,
                           early_stopping=False, patience=2, max_new_tokens=8, judge=SavedByTheJudge(), keep_best=True,
                           cancelled=lambda: cancelled)
        best = CurvePoint(60, 240.0, 17, 20, bound=0.85, agreement=0.75)
        model.save_pretrained(str(tmp_path))
        p._consider_best(best)
        p.curve.append(best)
        at_best = {k: v.clone() for k, v in get_peft_model_state_dict(model).items()}
        with torch.no_grad():
            for name, weight in model.named_parameters():
                if "lora_" in name:
                    weight.add_(1.0)  # training goes on and gets worse
        worse = CurvePoint(150, 660.0, 5, 20, bound=0.25, agreement=0.633)
        model.save_pretrained(str(tmp_path))
        p._consider_best(worse)
        p.curve.append(worse)
        p.on_train_end(None, None, None, model=model)
        ended = get_peft_model_state_dict(model)
        return p, all(torch.equal(ended[k], at_best[k]) for k in at_best)

    probe, restored = trained()
    assert restored and probe.kept is probe.curve[0] and probe.best is probe.curve[0]
    cancelled, restored = trained(cancelled=True)
    assert not restored and cancelled.kept is None
    # A later check as good as the best is the one kept (it learnt more); the format ranks first.
    assert rank(CurvePoint(1, 0, 20, 20, bound=1.0, agreement=0.3)) > rank(CurvePoint(2, 0, 19, 20, bound=0.95, agreement=0.9))
