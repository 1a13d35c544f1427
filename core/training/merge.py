"""Merge a LoRA adapter into its full-precision base: one safetensors model serving tools can load.

Issue 27: teams deploy with serving tools (vLLM, TGI, llama.cpp converters) that want one model,
not a base plus an adapter. `merge_and_unload` adds the adapter's low-rank update to the base
weights; the folder gets the tokenizer (with its chat template), a generation config and the model
card the caller wrote. Written beside `out` and renamed at the end, so a crash never leaves a
folder that looks complete.
"""

from __future__ import annotations

from pathlib import Path

from core.models import registry
from core.platform.paths import published_folder

MERGED_DTYPE = "float32"  # the dtype adapter-on-base answers are computed in on CPU (generation.load_base)


def merge_adapter(base_model: str, adapter_dir: Path, out: Path, card: str) -> Path:
    """Write the merged model to `out` (which must not exist or be empty); returns `out`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} already exists and is not empty; choose a new folder.")
    location = registry.resolve(base_model)
    # Full precision (never the 4-bit base QLoRA trained against): merging into NF4 weights would
    # round the update away, and serving tools expect plain weights.
    base = AutoModelForCausalLM.from_pretrained(location, dtype=getattr(torch, MERGED_DTYPE))
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.eval()
    tokenizer = AutoTokenizer.from_pretrained(location)
    if merged.generation_config is None:
        merged.generation_config = GenerationConfig.from_model_config(merged.config)
    with published_folder(out) as staging:
        merged.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))  # tokenizer_config.json / chat_template.jinja carry the template
        merged.generation_config.save_pretrained(str(staging))
        (staging / "README.md").write_text(card, encoding="utf-8")
    return out
