"""Exact and near-duplicate detection (word-shingle MinHash with LSH banding, verified by Jaccard)."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NEAR_DUPLICATE_JACCARD = 0.7
SHINGLE_WORDS = 3
_PERMUTATIONS = 64
_BANDS = 32  # 32 bands x 2 rows: pairs at Jaccard 0.7 become candidates with p > 0.99
_PRIME = (1 << 61) - 1
_rng = np.random.default_rng(7)
_A = _rng.integers(1, _PRIME, _PERMUTATIONS, dtype=np.uint64)
_B = _rng.integers(0, _PRIME, _PERMUTATIONS, dtype=np.uint64)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class DuplicatePair:
    first_id: int
    second_id: int
    similarity: float
    kind: str  # "exact" | "near"


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


def shingles(text: str) -> set[str]:
    words = normalise(text).split()
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _signature(items: set[str]) -> np.ndarray:
    if not items:
        return np.zeros(_PERMUTATIONS, dtype=np.uint64)
    hashed = np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=7).digest(), "little") for s in items),
        dtype=np.uint64, count=len(items))
    # Universal hashing a*x+b mod p; uint64 overflow wraps, which keeps it a fine permutation proxy.
    values = (np.outer(hashed, _A) + _B) % np.uint64(_PRIME)
    return values.min(axis=0)


def find_near_duplicates(texts: Sequence[tuple[int, str]], *,
                         threshold: float = NEAR_DUPLICATE_JACCARD,
                         between: tuple[set[int], set[int]] | None = None) -> list[DuplicatePair]:
    """Pairs of ids whose texts are exact or near duplicates.

    With `between=(left_ids, right_ids)` only pairs with one side in each set are reported
    (training vs held-out leakage).
    """
    shingle_sets = {item_id: shingles(text) for item_id, text in texts}
    normalised = {item_id: normalise(text) for item_id, text in texts}
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    rows = _PERMUTATIONS // _BANDS
    for item_id, items in shingle_sets.items():
        signature = _signature(items)
        for band in range(_BANDS):
            buckets[(band, signature[band * rows:(band + 1) * rows].tobytes())].append(item_id)
    candidates: set[tuple[int, int]] = set()
    for members in buckets.values():
        if len(members) < 2:
            continue
        for i, first in enumerate(members):
            for second in members[i + 1:]:
                candidates.add((min(first, second), max(first, second)))
    pairs = []
    for first, second in sorted(candidates):
        if between is not None:
            left, right = between
            if not ((first in left and second in right) or (first in right and second in left)):
                continue
        if normalised[first] == normalised[second]:
            pairs.append(DuplicatePair(first, second, 1.0, "exact"))
            continue
        similarity = jaccard(shingle_sets[first], shingle_sets[second])
        if similarity >= threshold:
            pairs.append(DuplicatePair(first, second, round(similarity, 3), "near"))
    return pairs
