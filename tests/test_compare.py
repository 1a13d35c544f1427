"""Any two models blind: the "base" side answers with a reference run's adapter when one is chosen (issue 28)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.models import generation, registry
from core.platform import store
from core.rating import pairs as answer_pairs
from core.training import runs

REPO = Path(__file__).resolve().parent.parent
PROMPTS = [[{"role": "user", "content": "My tent pole snapped on day one. Order HP-12345."}],
           [{"role": "user", "content": "Where is my refund for the stove?"}]]


@pytest.fixture(scope="module")
def other_adapter(tmp_path_factory, model_dir):
    """A second adapter with other non-zero weights than `random_adapter`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(model_dir)),
                           LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False, task_type="CAUSAL_LM"))
    out = tmp_path_factory.mktemp("other") / "adapter"
    model.save_pretrained(str(out))
    return out


def test_reference_side_answers_with_the_reference_adapter(model_dir, random_adapter, other_adapter):
    config = generation.GenerationConfig(max_new_tokens=10)
    both, tokenizer = generation.load_with_adapter(registry.DEFAULT_MODEL, random_adapter, other_adapter)
    challenger = generation.generate(both, tokenizer, PROMPTS, config, side="tuned")
    reference = generation.generate(both, tokenizer, PROMPTS, config, side="base")
    alone, _ = generation.load_with_adapter(registry.DEFAULT_MODEL, other_adapter)
    mine, _ = generation.load_with_adapter(registry.DEFAULT_MODEL, random_adapter)
    # Token for token what each adapter answers when it is loaded alone, whatever was asked before.
    assert reference == generation.generate(alone, tokenizer, PROMPTS, config, side="tuned")
    assert challenger == generation.generate(mine, tokenizer, PROMPTS, config, side="tuned")
    assert challenger != reference
    assert generation.generate(both, tokenizer, PROMPTS, config, side="tuned") == challenger


def test_reference_is_chosen_before_answers_and_named_after_the_reveal(rated_db, random_adapter):
    db = store.connect(rated_db)
    rated = runs.list_runs(db)[0]
    fresh = runs.import_adapter(db, random_adapter, rated.dataset_version_id, actor="test")
    assert answer_pairs.model_labels(db, fresh.id) == {"base": "base model", "tuned": f"run {fresh.id}"}
    runs.set_reference(db, fresh.id, rated.id, actor="test")
    assert answer_pairs.model_labels(db, fresh.id) == {"base": f"run {rated.id}", "tuned": f"run {fresh.id}"}
    with pytest.raises(runs.RunError, match="compared with itself"):
        runs.set_reference(db, fresh.id, fresh.id)
    out = subprocess.run([sys.executable, "-m", "core", "--db", str(rated_db), "compare", str(rated.id),
                          "--against", str(fresh.id)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "already has answer pairs" in out.stderr
    runs.set_reference(db, fresh.id, 999, actor="test")
    with pytest.raises(answer_pairs.AnswerPairsError, match="run 999, which is gone"):
        answer_pairs.start_generation(db, fresh.id, launch=False)
    out = subprocess.run([sys.executable, "-m", "core", "--db", str(rated_db), "compare", str(fresh.id), "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert json.loads(out.stdout) == {"run": fresh.id, "reference_run_id": None}
