"""Blind rating: answer pairs, sessions and votes, the playground."""

# Importing any rating module registers the blinding rule, so `allowed(..., "see_outcome", run=...)`
# never meets an unregistered rule (it would raise rather than answer).
from core.rating import blinding  # noqa: E402,F401
