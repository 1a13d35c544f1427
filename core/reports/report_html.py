"""The evaluation as a self-contained HTML document a team lead can hand round (opens offline).

Structure: headline sentence, outcome chart, a table per section with one-line explanations,
example pairs with every vote, definitions, lineage. Every piece of user or model text goes
through html.escape; charts come from core.reports.charts with escaped labels; a Content-Security-Policy
forbids fetching anything.
"""

from __future__ import annotations

import json
from html import escape

from core.reports import charts, report_format
from core.reports.summary import Summary, checks_table

STYLE = """
body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.7rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.headline{font-size:1.15rem;background:#eef6f4;border-left:4px solid #2a9d8f;padding:.8rem 1rem}
table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;
vertical-align:top}th{background:#f6f6f6}.note{color:#666;font-size:.9rem}
pre{white-space:pre-wrap;background:#f8f8f8;padding:.5rem;margin:0;font-size:.85rem}
table.pairs{width:100%;table-layout:fixed}
"""


def _table(header: list[str], rows: list[list[str]], css_class: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    attribute = f" class='{css_class}'" if css_class else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _note(text: str) -> str:
    return f"<p class='note'>{escape(text)}</p>"


def render(summary: Summary) -> str:
    s, o, po = summary, summary.outcomes, summary.prompt_outcomes
    parts = [f"<h1>Evaluation of run {s.run_id}</h1>", f"<p class='headline'>{escape(s.verdict_text)}</p>"]
    parts.append(charts.outcome_bars(s).to_html(full_html=False, include_plotlyjs="inline"))
    parts += ["<h2>Outcomes</h2>", _table(
        ["unit", "tuned better", "base better", "ties (identical answers)", "both bad", "total"],
        [["prompts", str(po.wins), str(po.losses), f"{po.ties} ({po.automatic_ties})", str(po.both_bad), str(po.total)],
         ["votes", str(o.wins), str(o.losses), f"{o.ties} ({o.automatic_ties})", str(o.both_bad), str(o.total)]]),
        f"<ul>{''.join(f'<li>{escape(line[2:])}</li>' for line in report_format.statistics_lines(s))}</ul>"]
    if s.per_criterion:
        parts += ["<h2>Scores per criterion</h2>", _note(report_format.criterion_note(s)),
                  charts.criterion_comparison(s).to_html(full_html=False, include_plotlyjs=False),
                  _table(report_format.CRITERION_HEADER,
                         [[escape(c["criterion"]), *report_format.criterion_cells(c)] for c in s.per_criterion])]
    parts += ["<h2>Raters</h2>", _note("Per rater, in votes. A left-pick rate far from 50 % suggests position bias."),
              _table(["rater", "votes", "win rate", "left-pick rate", "position-bias p", "median time"],
                     [[escape(r["rater"]), str(r["ratings"]), report_format.pct(r["win_rate"]), report_format.pct(r["left_pick_rate"]),
                       report_format.p_value(r["position_bias_p"]), "–" if r["median_seconds"] is None else f"{r['median_seconds']:.1f} s"]
                      for r in s.per_rater])]
    a = s.agreement
    parts.append("<h2>Agreement</h2>")
    parts += [f"<p>{escape(line)}</p>" for line in report_format.agreement_lines(a, name=str)]
    if s.example_pairs:
        parts += ["<h2>Example pairs</h2>", _note("Prompts where raters split first; every vote shown.")]
        for ex in s.example_pairs:
            votes = ", ".join(f"{escape(r)}: {escape(v.replace('_', ' '))}" for r, v in ex["votes"].items())
            parts.append(_table(["prompt", "base model", "tuned model"],
                                [[f"<pre>{escape(ex['prompt'])}</pre>", f"<pre>{escape(ex['base'])}</pre>",
                                  f"<pre>{escape(ex['tuned'])}</pre>"]], "pairs") + f"<p class='note'>Votes — {votes}</p>")
    rows = checks_table(s.checks)
    parts += ["<h2>Automatic checks</h2>",
              _table(["check", "base", "tuned", "what it tells you"],
                     [[escape(r["check"]), escape(r["base"]), escape(r["tuned"]), escape(r["what it tells you"])]
                      for r in rows]),
              "<h2>Definitions</h2>", "<dl>" + "".join(f"<dt><b>{escape(k)}</b></dt><dd>{escape(v)}</dd>"
                                                       for k, v in s.definitions.items()) + "</dl>",
              "<h2>Lineage</h2>", f"<pre>{escape(json.dumps(s.lineage, indent=2, default=str))}</pre>"]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; script-src 'unsafe-inline' "
            "'unsafe-eval'; style-src 'unsafe-inline'; img-src data:\">"
            f"<title>Evaluation of run {s.run_id}</title><style>{STYLE}</style></head><body>"
            + "".join(parts) + "</body></html>")
