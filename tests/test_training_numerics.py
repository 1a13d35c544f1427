"""Training numerics on the real NF4 model: an evaluation must not change what training computes.

bitsandbytes repacks 4-bit weights for a CPU inference kernel the first time a layer runs in eval
mode without gradients, and its training forward then uses that kernel, which has no backward.
Before the fix every gradient through the base weights was zero after the first held-out evaluation.
"""

import pytest
import torch

from core.training import config as training_config
from core.training import trainer


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_an_evaluation_leaves_training_gradients_unchanged(model_dir, precision):
    from peft import LoraConfig, get_peft_model

    config = training_config.PRESETS["small-data"].with_overrides({"precision": precision})
    tokens = torch.randint(0, 40000, (2, 24), generator=torch.Generator().manual_seed(0))

    def gradient_norms(evaluate_first: bool) -> list[float]:
        model = trainer.load_for_training(str(model_dir), config, cuda=False)
        torch.manual_seed(1)
        # Non-zero B matrices, so every layer's gradient depends on the base weights above it.
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
                                                 task_type="CAUSAL_LM", init_lora_weights=False))
        if evaluate_first:
            model.eval()
            with torch.no_grad():
                model(input_ids=tokens)
        model.train()
        model(input_ids=tokens, labels=tokens).loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        return [float(grads[n].float().norm()) for n in sorted(grads) if ".layers.0." in n]

    clean, after_eval = gradient_norms(False), gradient_norms(True)
    assert all(g > 0 for g in clean)
    assert after_eval == pytest.approx(clean, rel=1e-5)


def test_checks_compute_what_a_training_step_computes_and_undo_restores(model_dir):
    from core.training.behaviour_probe import dequantise_base

    config = training_config.PRESETS["small-data"].with_overrides({"precision": "fp32"})
    model = trainer.load_for_training(str(model_dir), config, cuda=False)
    tokens = torch.randint(0, 40000, (2, 16), generator=torch.Generator().manual_seed(0))
    model.train()
    with torch.enable_grad():  # the path a training step takes: dequantise, then matmul
        training_logits = model(input_ids=tokens).logits.detach()
    undo = dequantise_base(model)
    model.eval()
    with torch.no_grad():
        check_logits = model(input_ids=tokens).logits
    undo()
    assert torch.allclose(check_logits, training_logits, atol=1e-4)
    assert not any("forward" in vars(m) for m in model.modules())  # the layers' own forward again
