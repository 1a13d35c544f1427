"""`make bench` rewrites its own part of docs/BENCHMARKS.md and keeps the sections measured by hand."""

import pytest

from bench.run_all import GENERATED_BELOW, with_hand_sections
from core.platform.paths import REPO_ROOT


def test_make_bench_keeps_the_hand_measured_sections_and_replaces_its_own():
    hand = "# Benchmarks\n\n## 0. A quiet-machine run\n\n| set | s |\n|---|---|\n| helpdesk | 95.1 |\n"
    first = with_hand_sections(hand + "\n" + GENERATED_BELOW + "\n\nold numbers\n", "## Measured by `make bench`\n\nnew numbers\n")
    assert first.startswith(hand) and "new numbers" in first and "old numbers" not in first
    assert with_hand_sections(first, "## Measured by `make bench`\n\nnew numbers\n") == first  # a second run changes nothing
    fresh = with_hand_sections("", "generated\n")
    assert fresh.startswith("# Benchmarks") and fresh.endswith(GENERATED_BELOW + "\n\ngenerated\n")
    # The marker edited away: refuse rather than drop the hand-measured sections.
    with pytest.raises(SystemExit, match="has no line"):
        with_hand_sections(hand, "new numbers\n")


def test_the_shipped_report_has_its_hand_sections_above_the_marker():
    text = (REPO_ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8")
    hand, generated = text.split(GENERATED_BELOW)
    assert "## 0. Time to behaviour" in hand and "## 0d." in hand
    assert generated.lstrip().startswith("## Measured by `make bench`")
