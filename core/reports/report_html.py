"""The evaluation as a self-contained HTML document for a partner (opens offline, prints well).

Order (issue 25): the plain finding (what changed, on how many held-out requests, who rated, when),
then examples, then the numbers; statistics, definitions and lineage in an appendix written for
people. No script: the outcome chart is drawn in HTML, so the file stays a few tens of kilobytes
(it inlined plotly.js, 4.8 MB). Print CSS: readable type, rows never cut, the appendix and the
lineage each on a new page; a PDF is the browser's "Save as PDF" (no PDF library to ship). Every
piece of user or model text goes through html.escape; a Content-Security-Policy forbids fetching or
running anything.
"""

from __future__ import annotations

from html import escape
from typing import Any

from core.reports import report_format
from core.reports.report_format import checks_table
from core.reports.summary import Summary

STYLE = """
body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;
padding-bottom:.2rem}.byline{color:#555;margin-top:0}
.headline{font-size:1.15rem;background:#eef6f4;border-left:4px solid #2a9d8f;padding:.8rem 1rem}
table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;
vertical-align:top}th{background:#f6f6f6}.note{color:#666;font-size:.9rem}
pre{white-space:pre-wrap;background:#f8f8f8;padding:.5rem;margin:0;font-size:.85rem}
table.pairs{width:100%;table-layout:fixed}
.bar{display:flex;height:1.6rem;border-radius:.2rem;overflow:hidden;margin:.6rem 0;font-size:.8rem;color:#fff}
.bar span{display:flex;align-items:center;justify-content:center;white-space:nowrap;overflow:hidden}
.tuned{background:#2a9d8f}.base{background:#e76f51}.tie{background:#8d99ae}.bothbad{background:#6d597a}
.legend span{margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}
.screen-only{background:#fff8e1;border:1px solid #f0d78c;padding:.4rem .8rem}
/* Printing (issue 25): a partner prints this or saves it as PDF from the browser's print dialog.
   Paper size follows the printer (A4 or Letter); widths are relative so the outcome bar and tables fit
   either. Rows are never cut; the appendix and the lineage each start a new page. */
@page{size:auto;margin:1.6cm 1.5cm}
@media print{
body{margin:0;max-width:none;padding:0;font:10.5pt/1.4 Georgia,"Times New Roman",serif;color:#000}
h1{font-size:18pt}h2{font-size:13pt}h3{font-size:11.5pt}.note,.byline{color:#333}
.screen-only{display:none}
a{color:inherit;text-decoration:none}
.appendix,.lineage{break-before:page;page-break-before:always}
h2,h3{break-after:avoid;page-break-after:avoid}
tr,.example,.headline,.bar,dt,dd{break-inside:avoid;page-break-inside:avoid}
thead{display:table-header-group}
table{width:100%}pre{font-size:8.5pt;overflow-wrap:anywhere}
.bar{width:100%;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.legend i,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def _table(header: list[str], rows: list[list[str]], css_class: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    attribute = f" class='{css_class}'" if css_class else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _note(text: str) -> str:
    return f"<p class='note'>{escape(text)}</p>"


def _finding(s: Summary) -> str:
    """What changed, on how many held-out requests, who rated, when: in words, before any statistic."""
    po, lin, names = s.prompt_outcomes, s.lineage, s.names
    raters = lin.get("raters") or []
    who = (f"{len(raters)} rater{'s' if len(raters) != 1 else ''} ({', '.join(raters)})" if raters else "nobody yet")
    first, last = (lin.get("first_rating") or "")[:10], (lin.get("last_rating") or "")[:10]
    when = f" on {first}" if first and first == last else (f" between {first} and {last}" if first else "")
    return (f"{report_format.sentence_start(names['tuned_model'])}'s answer was preferred on {po.wins} of the "
            f"{po.total} held-out requests and {names['base_model']}'s on {po.losses}; {po.ties} came out even, and "
            f"on {po.both_bad} neither model's answer was right. Rated blind by {who}{when}, without knowing "
            "which model wrote which answer.")


def _outcome_bar(s: Summary) -> str:
    """The prompt outcomes as one stacked bar, in HTML (no charting script in a document)."""
    po, names = s.prompt_outcomes, s.names
    parts = [("tuned", f"{names['tuned']} better", po.wins), ("base", f"{names['base']} better", po.losses),
             ("tie", "even", po.ties)]
    total = max(1, sum(n for _c, _l, n in parts))
    bar = "".join(f"<span class='{c}' style='width:{100 * n / total:.1f}%'>{n}</span>" for c, _l, n in parts if n)
    legend = "".join(f"<span><i class='{c}'></i>{escape(label)}: {n}</span>" for c, label, n in parts)
    return f"<div class='bar' role='img' aria-label='prompt outcomes'>{bar}</div><p class='legend note'>{legend}</p>"


def _lineage(lin: dict[str, Any]) -> str:
    """Where the result comes from, as sentences and a short table (not a JSON dump)."""
    config = lin.get("run_config") or {}
    rows = [["Dataset", escape(f"{lin.get('dataset')}, version {lin.get('dataset_version')}")],
            ["Dataset fingerprint (sha256)", escape(str(lin.get("dataset_version_sha256") or "–"))],
            ["Base model", escape(str(lin.get("base_model")))],
            *([["Compared with", escape(f"run {lin['reference_run_id']}")]] if lin.get("reference_run_id") else []),
            *([["Preference round", escape(f"from run {lin.get('parent_run_id')}'s adapter, on the blind votes of run "
                                           f"{lin.get('rating_run_id')} (votes sha256 {lin.get('votes_sha256')})")]]
              if lin.get("kind") == "dpo" else []),
            ["Training recipe", escape(f"preset {lin.get('preset')}: " + ", ".join(
                f"{k} {config[k]}" for k in ("method", "epochs", "learning_rate", "lora_r") if k in config))],
            ["Adapter fingerprint (sha256)", escape(str(lin.get("adapter_sha256") or "–"))],
            ["Raters", escape(", ".join(lin.get("raters") or []) or "–")],
            ["Ratings", escape(f"{lin.get('first_rating') or '–'} to {lin.get('last_rating') or '–'}")]]
    if lin.get("pii_override"):
        rows.append(["PII gate overridden because", escape(str(lin["pii_override"]))])
    return _table(["", ""], rows)


def render(summary: Summary) -> str:
    s, o, po = summary, summary.outcomes, summary.prompt_outcomes
    dataset = str(s.lineage.get("dataset") or "")
    names = s.names
    title = f"{dataset}: {report_format.question(names)}" if dataset else f"Evaluation of run {s.run_id}"
    byline = (f"Run {s.run_id} · dataset version {s.lineage.get('dataset_version')} · base model "
              f"{s.lineage.get('base_model')} · last rating {(s.lineage.get('last_rating') or '–')[:10]}")
    parts = [f"<h1>{escape(title)}</h1>", f"<p class='byline'>{escape(byline)}</p>",
             "<p class='screen-only note'>To keep a PDF, print this page and choose “Save as PDF”: the "
             "appendix and the lineage start on their own pages.</p>",
             f"<p class='headline'>{escape(_finding(s))}</p>", f"<p>{escape(s.verdict_text)}</p>", _outcome_bar(s)]
    if s.example_pairs:
        parts += ["<h2>Examples</h2>", _note("Prompts where raters split first; every vote shown.")]
        for ex in s.example_pairs:
            votes = ", ".join(f"{escape(r)}: {escape(report_format.vote_name(v, names))}" for r, v in ex["votes"].items())
            parts.append("<div class='example'>" + _table(
                ["request", names["base_model"].removeprefix("the "), names["tuned_model"].removeprefix("the ")],
                [[f"<pre>{escape(ex['prompt'])}</pre>", f"<pre>{escape(ex['base'])}</pre>",
                  f"<pre>{escape(ex['tuned'])}</pre>"]], "pairs") + f"<p class='note'>Votes — {votes}</p></div>")
    parts += ["<h2>The numbers</h2>", _table(
        ["unit", f"{names['tuned']} better", f"{names['base']} better", "ties (identical answers)", "both bad", "total"],
        [["prompts", str(po.wins), str(po.losses), f"{po.ties} ({po.automatic_ties})", str(po.both_bad), str(po.total)],
         ["votes", str(o.wins), str(o.losses), f"{o.ties} ({o.automatic_ties})", str(o.both_bad), str(o.total)]])]
    if s.per_criterion:
        parts += ["<h3>Scores per criterion</h3>", _note(report_format.criterion_note(s)),
                  _table(report_format.criterion_header(names),
                         [[escape(c["criterion"]), *report_format.criterion_cells(c)] for c in s.per_criterion])]
    rows = checks_table(s.checks, names)
    if rows:  # no empty section headings
        parts += ["<h3>Automatic checks</h3>",
                  _table(["check", names["base"], names["tuned"], "what it tells you"],
                         [[escape(r["check"]), escape(r["base"]), escape(r["tuned"]), escape(r["what it tells you"])]
                          for r in rows])]
    # The appendix: statistics, raters, agreement, definitions and lineage, for whoever checks the work.
    parts += ["<section class='appendix'><h2>Appendix: how sure we are</h2>",
              _note("For readers who want to check the result. The finding above does not depend on reading this."),
              f"<ul>{''.join(f'<li>{escape(line[2:])}</li>' for line in report_format.statistics_lines(s))}</ul>"]
    if s.per_rater:
        parts += ["<h3>Raters</h3>", _note("Per rater, in votes. A left-pick rate far from 50 % suggests position bias."),
                  _table(["rater", "votes", "win rate", "left-pick rate", "position-bias p", "median time"],
                         [[escape(r["rater"]), str(r["ratings"]), report_format.pct(r["win_rate"]), report_format.pct(r["left_pick_rate"]),
                           report_format.p_value(r["position_bias_p"]), "–" if r["median_seconds"] is None else f"{r['median_seconds']:.1f} s"]
                          for r in s.per_rater])]
    a = s.agreement
    parts.append("<h3>Agreement between raters</h3>")
    parts += [f"<p>{escape(line)}</p>" for line in report_format.agreement_lines(a, name=str)]
    parts += ["<h3>Definitions</h3>", "<dl>" + "".join(f"<dt><b>{escape(k)}</b></dt><dd>{escape(v)}</dd>"
                                                       for k, v in s.definitions.items()) + "</dl>",
              "</section>",
              "<section class='lineage'><h2>Appendix: where this result comes from</h2>", _lineage(s.lineage),
              "</section>"]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            + "".join(parts) + "</body></html>")
