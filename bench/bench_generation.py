"""A/B generation: one model with the adapter toggled and batched, vs the seed's loop (one prompt
at a time, a second model copy for the tuned side). Uses a real adapter with random LoRA weights."""

from __future__ import annotations

import json
import sys
import tempfile

from bench.measure import REPO, run_child

MAKE_ADAPTER = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[1])
import core
from core import models
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
torch.manual_seed(0)
base = AutoModelForCausalLM.from_pretrained(str(models.ensure_default_model()))
m = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False,
                                    task_type="CAUSAL_LM"))
m.save_pretrained(sys.argv[2]); print(json.dumps({}))
"""

PROMPTS = r"""
import json
from core.curation.demo import DEMO_DIR
PROMPTS = [json.loads(l)["messages"][:-1] for l in (DEMO_DIR / "heldout.jsonl").read_text().splitlines()]
"""

OURS = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import core
from core import generation, models
""" + PROMPTS + r"""
t = time.time()
model, tok = generation.load_with_adapter(models.DEFAULT_MODEL, sys.argv[2])
cfg = generation.GenerationConfig(max_new_tokens=64, batch_size=10)
base = generation.generate(model, tok, PROMPTS, cfg, side="base")
tuned = generation.generate(model, tok, PROMPTS, cfg, side="tuned")
print(json.dumps({"answers": len(base) + len(tuned), "seconds": time.time() - t}))
"""

SEED = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
import core
from core import models
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
""" + PROMPTS + r"""
t = time.time()
path = models.resolve(models.DEFAULT_MODEL)
tok = AutoTokenizer.from_pretrained(path)
base_model = AutoModelForCausalLM.from_pretrained(path)
# The seed's fix for its own bug would need a second copy: one stays base, one gets the adapter.
tuned_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), sys.argv[2])
answers = 0
for model in (base_model, tuned_model):
    for p in PROMPTS:
        ids = tok.apply_chat_template(p, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            model.generate(**ids, max_new_tokens=64, do_sample=False, pad_token_id=tok.pad_token_id)
        answers += 1
print(json.dumps({"answers": answers, "seconds": time.time() - t}))
"""


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        adapter = f"{tmp}/adapter"
        run_child(MAKE_ADAPTER, str(REPO), adapter)
        ours = run_child(OURS, str(REPO), adapter)
        seed = run_child(SEED, str(REPO), adapter)
    for r in (ours, seed):
        r["answers_per_s"] = round(r["answers"] / r["seconds"], 3)
    return {"ours": ours, "seed": seed}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2), file=sys.stderr)
