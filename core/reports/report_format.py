"""How numbers read in every report (Results, Markdown, HTML): one place, so they never disagree."""

from __future__ import annotations

from typing import Any


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def ci(interval: Any) -> str:
    return "–" if not interval else f"{interval[0]:.1%} – {interval[1]:.1%}"


def p_value(value: float | None) -> str:
    """A p-value to sensible precision."""
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def number(value: float | None, fmt: str = ".2f") -> str:
    return "–" if value is None else format(value, fmt)


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"
