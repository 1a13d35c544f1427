"""The base model's own tokenizer and chat template: token counts and trained-token masks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from core.models.registry import resolve

Messages = list[dict[str, Any]]

# Tokens per example after the chat template that the default training preset keeps: what the import
# check and the Author page warn about. TrainingConfig.max_length defaults to it.
DEFAULT_MAX_LENGTH = 512


@dataclass(frozen=True)
class TemplatedExample:
    """One example as the model sees it: token ids and which of them carry the loss."""
    input_ids: list[int]
    assistant_mask: list[int]
    text: str
    # (start, end, trained) character spans of `text`, for the preview
    spans: list[tuple[int, int, bool]]

    @property
    def token_count(self) -> int:
        return len(self.input_ids)


@lru_cache(maxsize=4)
def load_tokenizer(model: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve(model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def render(tokenizer: Any, messages: Messages, *, add_generation_prompt: bool = False) -> str:
    clean = [{"role": m["role"], "content": m["content"]} for m in messages]
    return str(tokenizer.apply_chat_template(clean, tokenize=False,
                                             add_generation_prompt=add_generation_prompt))


def template_example(tokenizer: Any, messages: Messages) -> TemplatedExample:
    """Tokenise the chat-templated text, marking assistant turns (content and end token).

    Each assistant turn's span is found by rendering the conversation up to it with and without
    the turn, which works for any template that renders prefixes consistently (ChatML, Llama,
    Mistral) and does not need `{% generation %}` markers in the template.
    """
    text = render(tokenizer, messages)
    trained: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(render(tokenizer, messages[:i], add_generation_prompt=True))
        end = len(render(tokenizer, messages[:i + 1]))
        trained.append((start, end))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [1 if any(s <= begin < e for s, e in trained) else 0
            for begin, _end in encoded["offset_mapping"]]
    spans: list[tuple[int, int, bool]] = []
    cursor = 0
    for s, e in trained:
        if s > cursor:
            spans.append((cursor, s, False))
        spans.append((s, e, True))
        cursor = e
    if cursor < len(text):
        spans.append((cursor, len(text), False))
    return TemplatedExample(list(encoded["input_ids"]), mask, text, spans)


def count_tokens(model: str, messages: Messages) -> int:
    tokenizer = load_tokenizer(model)
    return len(tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"])


def token_counter(model: str) -> Any:
    """A counter bound to one model. The shipped model is converted on demand (a CLI import before
    `init`); any other unavailable model raises ModelUnavailable: the length check is never
    silently switched off (issue 15)."""
    from core.models import registry

    if model == registry.DEFAULT_MODEL:
        registry.ensure_default_model()
    try:
        load_tokenizer(model)
    except OSError as exc:  # transformers reports a missing or unreadable tokenizer as OSError
        raise registry.ModelUnavailable(f"Cannot count tokens with {model}: {exc}") from exc
    return lambda messages: count_tokens(model, messages)
