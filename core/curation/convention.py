"""A dataset's output convention: whether an answer follows the house format."""

from __future__ import annotations

import re


def convention_ok(pattern: str, text: str) -> bool:
    """True when the whole answer (stripped) matches the dataset's convention pattern."""
    return bool(pattern) and re.fullmatch(pattern, text.strip()) is not None
