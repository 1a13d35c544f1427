"""The HTML report a partner prints (issue 25 item 5): print rules that exist and reach the right
sections, a size proportionate to the evaluation, and Chromium's PDF of it with the appendix and
the lineage each starting a page. The HTML is read with lxml and the CSS with a small brace
tokenizer, never with regular expressions."""

from __future__ import annotations

import pytest
from lxml import html as lxml_html

from core.platform import store
from core.rating import sessions
from core.reports import export
from core.training import runs
from tests.browser import require_chromium

VERDICTS = ("A", "B", "tie", "both_bad")


def _rated_report(rated_db) -> tuple[str, int]:
    """Every pair of the demo's held-out set (20 prompts, answers from the real model) rated by two
    raters, with a comment on each vote; the report as the admin downloads it, and the pair count."""
    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    store.set_setting(db, "raters_per_pair", "2")
    for r, rater in enumerate(("Dana", "Sam")):
        session = sessions.start_session(db, rid, rater)
        for i, (position, _side) in enumerate(session.order):
            sessions.record_rating(db, session, position, VERDICTS[(i + r) % len(VERDICTS)],
                                   comment=f"{rater} on prompt {position}: the reply misses the priority line.",
                                   seconds_spent=12.0)
        pairs = len(session.order)
    return export.render(db, rid, "html", "admin"), pairs


def _strip_comments(css: str) -> str:
    out, at = [], 0
    while (start := css.find("/*", at)) >= 0:
        out.append(css[at:start])
        at = css.index("*/", start) + 2
    return "".join(out) + css[at:]


def _blocks(css: str) -> list[tuple[str, str]]:
    """Top-level `prelude { body }` pairs, with nested braces kept inside the body."""
    blocks, depth, start, prelude = [], 0, 0, ""
    for i, ch in enumerate(css):
        if ch == "{":
            if depth == 0:
                prelude, start = css[start:i].strip(), i + 1
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                blocks.append((prelude, css[start:i]))
                start = i + 1
    return blocks


def _rules(css: str) -> dict[str, dict[str, str]]:
    """selector → {property: value} for plain rules (declarations of repeated selectors merged)."""
    rules: dict[str, dict[str, str]] = {}
    for prelude, body in _blocks(css):
        declarations = dict((name.strip(), value.strip()) for name, _, value in
                            (d.partition(":") for d in body.split(";") if ":" in d))
        for selector in prelude.split(","):
            rules.setdefault(selector.strip(), {}).update(declarations)
    return rules


def print_rules(page: str) -> dict[str, dict[str, str]]:
    doc = lxml_html.fromstring(page)
    css = _strip_comments("".join(doc.xpath("//style/text()")))
    media = [body for prelude, body in _blocks(css) if prelude == "@media print"]
    assert len(media) == 1, "one @media print block"
    return _rules(media[0])


def by_class(doc, name: str) -> list:
    return doc.xpath(f"//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]")


def test_print_rules_start_the_appendix_and_lineage_on_new_pages_and_keep_rows_whole(rated_db):
    page, _pairs = _rated_report(rated_db)
    rules = print_rules(page)
    doc = lxml_html.fromstring(page)
    # Page breaks: every selector that breaks before a page names exactly one section, and those
    # sections are the statistics appendix and the lineage, in that order, at the end.
    breaking = [sel for sel, decl in rules.items() if decl.get("break-before") == "page"]
    assert sorted(breaking) == [".appendix", ".lineage"]
    appendix, lineage = (by_class(doc, sel[1:]) for sel in (".appendix", ".lineage"))
    assert len(appendix) == len(lineage) == 1 and appendix[0].tag == lineage[0].tag == "section"
    assert appendix[0].getnext() is lineage[0] and lineage[0].getnext() is None
    stats_text = appendix[0].text_content()
    assert "Appendix: how sure we are" in stats_text and "Anytime-valid test" in stats_text
    assert "Adapter fingerprint" in lineage[0].text_content() and "Adapter fingerprint" not in stats_text
    # Nothing of the finding, examples or numbers is pushed into the appendix.
    assert all(h.getparent().tag == "body" for h in doc.xpath("//h2") if h.text in ("Examples", "The numbers"))
    # Rows and example pairs are never cut; headings stay with what follows; table heads repeat.
    assert rules["tr"]["break-inside"] == rules[".example"]["break-inside"] == "avoid"
    assert rules["h2"]["break-after"] == "avoid" and rules["thead"]["display"] == "table-header-group"
    # Readable print type in points; the outcome bar spans the paper and keeps its colours.
    assert rules["body"]["max-width"] == "none" and "10.5pt" in rules["body"]["font"]
    assert rules[".bar"]["width"] == "100%" and rules[".bar"]["print-color-adjust"] == "exact"
    # No screen chrome on paper: the save-as-PDF hint is hidden, and the document has no script or form.
    assert rules[".screen-only"]["display"] == "none" and len(by_class(doc, "screen-only")) == 1
    assert not doc.xpath("//script | //form | //button | //input | //iframe")


def test_the_report_weighs_kilobytes_per_pair_on_real_answers(rated_db):
    """The issue saw 4.8 MB (a lineage JSON dump and plotly.js inline). Here 20 real pairs, two raters,
    a comment on every vote; bounded at 10 kB plus 1.5 kB a pair, and the lineage at 2 kB. (The timed
    walk's report, 12 pairs and two raters, weighed 18.9 kB.)"""
    page, pairs = _rated_report(rated_db)
    assert pairs == 20
    size = len(page.encode())
    assert size <= 10_000 + 1_500 * pairs, f"{size} bytes for {pairs} pairs"
    lineage = by_class(lxml_html.fromstring(page), "lineage")[0]
    assert len(lxml_html.tostring(lineage)) < 2_000


@pytest.mark.browser
def test_chromium_prints_the_report_with_the_appendix_on_its_own_pages(rated_db, tmp_path):
    """Chromium's own PDF: the whole report is as many pages as its three parts printed apart —
    the body, the statistics appendix, the lineage — so each appendix starts a fresh page."""
    from playwright.sync_api import sync_playwright

    page_html, _pairs = _rated_report(rated_db)
    report = tmp_path / "report.html"
    report.write_text(page_html, encoding="utf-8")

    def pages(pdf: bytes) -> int:
        # Chromium (Skia) writes each page dictionary uncompressed as "/Type /Page"; "/Pages" is the tree.
        return pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") + pdf.count(b"/Type /Page>")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_chromium(), headless=True, args=["--no-sandbox"])
        tab = browser.new_page()
        tab.goto(report.as_uri())
        counts = {}
        for name, keep in (("all", None), ("body", "body"), ("appendix", ".appendix"), ("lineage", ".lineage")):
            tab.reload()
            if keep == "body":
                tab.evaluate("document.querySelectorAll('.appendix, .lineage').forEach(e => e.remove())")
            elif keep:
                tab.evaluate("k => { const s = document.querySelector(k); document.body.replaceChildren(s); }", keep)
            counts[name] = pages(tab.pdf(format="A4"))
        letter = pages(tab.pdf(format="Letter"))
        browser.close()
    assert counts["body"] >= 1 and counts["appendix"] >= 1 and counts["lineage"] == 1 and letter == 1
    assert counts["all"] == counts["body"] + counts["appendix"] + counts["lineage"], counts
