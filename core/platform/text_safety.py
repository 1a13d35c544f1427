"""User text made inert for every sink: Markdown (alerts, captions, labels), charts, reports, CSV.

One helper per kind of sink, used everywhere (issue 12). Names that act as identifiers
(PII entities, rating criteria) are also held to a strict pattern where they are entered.
"""

from __future__ import annotations

import html
import re
from typing import Any

# Every ASCII punctuation character may be backslash-escaped in CommonMark. Escaping ':' and '@'
# as well stops GFM from autolinking bare URLs, www. names and e-mail addresses, and stops
# Streamlit's own :directive[...] and :emoji: shortcodes.
_MARKDOWN_SPECIAL = set("\\`*_{}[]()<>#+-.!|~$:@=^&\"'")

ENTITY_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{1,39}")
CRITERION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,39}")


def markdown_inline(text: Any) -> str:
    """Escape text for any Streamlit element that renders Markdown: no links, images, HTML,
    directives or emphasis; line breaks become spaces (a label or caption is one line)."""
    flat = " ".join(str(text).splitlines())
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in flat)


def markdown_cell(text: Any) -> str:
    """Escape text for one cell of a Markdown table (a bare '|' would split the row)."""
    return markdown_inline(text)


def chart_label(text: Any) -> str:
    """Plotly renders a subset of HTML (<a href>, <b>, <br>) in titles, ticks and legends."""
    return html.escape(str(text), quote=True)


# OWASP CSV injection guidance: a cell that starts with one of these is read as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """Neutralise a CSV cell that a spreadsheet would evaluate, by prefixing a single quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def check_entity_name(name: str) -> str:
    """A PII entity name (PERSON, EMPLOYEE_ID): capitals, digits and underscores."""
    cleaned = name.strip()
    if not ENTITY_PATTERN.fullmatch(cleaned):
        raise ValueError(f"Entity name {cleaned[:60]!r}: use 2 to 40 CAPITALS, digits and underscores, "
                         "starting with a letter (e.g. EMPLOYEE_ID).")
    return cleaned


def check_criterion_name(name: str) -> str:
    """A rating criterion: letters, digits, spaces, '-' and '_', up to 40 characters."""
    cleaned = " ".join(name.split())
    if not CRITERION_PATTERN.fullmatch(cleaned):
        raise ValueError(f"Criterion {cleaned[:60]!r}: use up to 40 letters, digits, spaces, '-' or '_'.")
    return cleaned


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV with every cell neutralised (csv_cell): what the studio offers instead of
    Streamlit's own table download, which writes formulas as they are (issue 23)."""
    import csv
    import io

    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(c) for c in columns])
    for row in rows:
        writer.writerow([csv_cell(row.get(c, "")) for c in columns])
    return out.getvalue()
