"""Answers from the base and the tuned model: one model in memory, the adapter switched off for base."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.models import registry
from core.platform.paths import REPO_ROOT

Messages = list[dict[str, Any]]
# Phrases that would reveal which side is which to a rater.
IDENTITY_LEAK = re.compile(r"fine[- ]?tun|SmolLM|language model|\bAI assistant\b|Hugging ?Face|"
                           r"\bbase model\b|\badapter\b|\bLoRA\b", re.IGNORECASE)


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 160
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    # 16 answers a forward pass: on 2 cores a small model's generation step costs about the same for 8
    # or 16 sequences (per-operation overhead, not arithmetic), so 16 halves the time of 8 — 30 held-out
    # answers 33.4 s -> 17.1 s (32: 14.4 s, with twice the cache memory of 16 for big models).
    # The answers were the same at 8, 16 and 32. The behaviour checks use this same value (issue 24).
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise ValueError("max_new_tokens must be between 1 and 4096")
        if self.do_sample and not 0 < self.temperature <= 2:
            raise ValueError("temperature must be in (0, 2]")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_base(base_model: str) -> tuple[Any, Any]:
    """Full-precision base model and tokenizer (left padding for batched generation)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    location = registry.resolve(base_model)
    tokenizer = AutoTokenizer.from_pretrained(location)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if device() == "cuda" else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
    model = model.to(device())
    model.eval()
    return model, tokenizer


REFERENCE_ADAPTER = "reference"


def load_with_adapter(base_model: str, adapter_dir: str | Path,
                      reference_dir: str | Path | None = None) -> tuple[Any, Any]:
    """One model with the adapter attached; `generate(..., side="base")` switches it off, or, with a
    reference adapter (another run's, on the same base: issue 28), switches to that one instead."""
    from peft import PeftModel

    model, tokenizer = load_base(base_model)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    if reference_dir is not None:
        model.load_adapter(str(reference_dir), adapter_name=REFERENCE_ADAPTER)
        model.set_adapter("default")
    return model, tokenizer


def answering_as(model: Any, side: str) -> Any:
    """A context in which `model` answers as one side of a pair: "tuned" is its own adapter; "base"
    is the reference adapter when one is loaded, else the base weights (adapter disabled)."""
    import contextlib

    if not hasattr(model, "disable_adapter"):
        return contextlib.nullcontext()
    if REFERENCE_ADAPTER in getattr(model, "peft_config", {}):
        model.set_adapter(REFERENCE_ADAPTER if side == "base" else "default")
        return contextlib.nullcontext()
    return model.disable_adapter() if side == "base" else contextlib.nullcontext()


def generate(model: Any, tokenizer: Any, prompts: list[Messages], config: GenerationConfig,
             *, side: str = "tuned", stop_if: Callable[[str], bool] | None = None) -> list[str]:
    """Batched greedy (or seeded sampling) answers. `side="base"` disables the adapter, so the
    base answers really come from the base weights (the seed article's snippet got this wrong).
    `stop_if(text so far)` ends an answer early once it returns True (the behaviour checks)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopIf(StoppingCriteria):
        """Per answer: done once `predicate` holds for its text so far (new tokens only)."""

        def __init__(self, start: int, predicate: Callable[[str], bool]) -> None:
            self.start, self.predicate = start, predicate

        def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
            so_far = tokenizer.batch_decode(input_ids[:, self.start:], skip_special_tokens=True)
            return torch.tensor([self.predicate(t) for t in so_far], device=input_ids.device)

    switch = answering_as(model, side)
    answers: list[str] = []
    with switch, torch.inference_mode():
        for start in range(0, len(prompts), config.batch_size):
            batch = prompts[start:start + config.batch_size]
            texts = [tokenizer.apply_chat_template([{"role": m["role"], "content": m["content"]} for m in p],
                                                   tokenize=False, add_generation_prompt=True) for p in batch]
            encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            kwargs: dict[str, Any] = {"max_new_tokens": config.max_new_tokens,
                                      "pad_token_id": tokenizer.pad_token_id}
            if stop_if is not None:
                kwargs["stopping_criteria"] = StoppingCriteriaList([StopIf(encoded["input_ids"].shape[1], stop_if)])
            if config.do_sample:
                torch.manual_seed(config.seed + start)
                kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            output = model.generate(**encoded, **kwargs)
            new_tokens = output[:, encoded["input_ids"].shape[1]:]
            answers.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return answers


def prompt_of(messages: Messages) -> tuple[Messages, str]:
    """The conversation up to the last assistant turn, and that turn (the reference answer)."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:last], messages[last]["content"]


def flags_for(text: str, other: str) -> list[str]:
    flags = []
    if IDENTITY_LEAK.search(text):
        flags.append("names_model")
    if text.strip() == other.strip():
        flags.append("identical")
    if not text.strip():
        flags.append("empty")
    return flags


def adapter_sha256(directory: str | Path) -> str:
    """Hash of the adapter's weights and config, so ratings name exactly what was rated."""
    digest = hashlib.sha256()
    root = Path(directory)
    for path in sorted(root.iterdir()):
        if path.name in ("adapter_model.safetensors", "adapter_config.json"):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


GENERAL_TEXT = REPO_ROOT / "data" / "general" / "general.txt"


def mean_loss(model: Any, tokenizer: Any, conversations: list[Messages] | None = None,
              texts: list[str] | None = None, *, side: str = "tuned") -> float:
    """Mean token loss on assistant turns of conversations, or on whole plain texts.

    Held-out loss says how well each model predicts the reference answers; the loss on general
    text is a forgetting probe (fine-tuning can degrade general ability).
    """
    import torch

    from core.models import templating

    switch = answering_as(model, side)
    total, count = 0.0, 0
    with switch, torch.inference_mode():
        items: list[tuple[list[int], list[int]]] = []
        for messages in conversations or []:
            t = templating.template_example(tokenizer, messages)
            items.append((t.input_ids, t.assistant_mask))
        for text in texts or []:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            items.append((ids, [1] * len(ids)))
        for ids, mask in items:
            input_ids = torch.tensor([ids], device=model.device)
            labels = torch.tensor([[i if m else -100 for i, m in zip(ids, mask)]], device=model.device)
            n = int((labels[:, 1:] != -100).sum())
            if n == 0:
                continue
            out = model(input_ids=input_ids, labels=labels)
            total += float(out.loss) * n
            count += n
    return total / count if count else float("nan")
