"""The dataset's reusable system prompt, offered from its examples when they already share one.

Issue 25: every imported example carried the same system prompt, yet the dataset's "Reusable
system prompt" stayed empty unless the user copied it over by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from core.curation import examples

# A prompt most examples share is the dataset's; a few examples may carry a variant on purpose.
SHARED_FROM = 0.8


@dataclass(frozen=True)
class SharedPrompt:
    text: str
    used_by: int  # examples whose system turn is exactly this text
    examples: int  # examples in the dataset

    def sentence(self) -> str:
        return f"{self.used_by} of {self.examples} examples share this system prompt."


def shared_prompt(conversations: Iterable[list[dict[str, Any]]]) -> SharedPrompt | None:
    """The system prompt at least SHARED_FROM of the conversations open with, exactly; else None."""
    firsts: Counter[str] = Counter()
    total = 0
    for messages in conversations:
        total += 1
        system = next((m.get("content") for m in messages if m.get("role") == "system"), None)
        if isinstance(system, str) and system.strip():
            firsts[system] += 1
    if not firsts:
        return None
    text, count = firsts.most_common(1)[0]
    return SharedPrompt(text, count, total) if count >= SHARED_FROM * total else None


def offer(db: sqlite_utils.Database, dataset_id: int, current: str) -> SharedPrompt | None:
    """The shared prompt to offer for this dataset, unless it is already the reusable one."""
    found = shared_prompt(e.messages for e in examples.all_examples(db, dataset_id))
    return found if found is not None and found.text != current else None
