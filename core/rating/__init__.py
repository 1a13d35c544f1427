"""Blind rating: answer pairs, sessions and votes, the playground."""
