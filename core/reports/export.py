"""Exports of an evaluation: ratings CSV, JSON summary, Markdown and a self-contained HTML report."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import sqlite_utils

from core.platform import permissions
from core.platform.text_safety import csv_cell, markdown_cell
from core.rating import blinding, sessions
from core.rating import pairs as answer_pairs
from core.reports import report_format, report_html
from core.reports import summary as stats
from core.training import runs

FORMATS = ("json", "csv", "md", "html")


# Per-prompt columns repeated on each of its rows, so that the verdict, κ and α can be recomputed
# from this file alone (bench/recompute_from_csv.py; docs/statistics.md, "How to recompute").
CSV_COLUMNS = ["run_id", "position", "rater", "shown_as_A", "verdict", "preferred", "scores_json", "comment",
               "seconds_spent", "created_at", "vote_order", "raters_per_pair", "rating_closed", "calibration",
               "entered_e_value", "entered_value", "adapter_sha256", "generation_settings",
               # The sides by name after the reveal: the runs' numbers when an adapter was rated
               # against another (issue 28); "tuned"/"base" against the base model.
               "shown_as_A_model", "preferred_model"]


def ratings_csv(db: sqlite_utils.Database, run_id: int, viewer: str) -> str:
    """Every rating with revealed identities and the generation settings (blinding rules apply),
    plus what the statistics need per prompt: k as planned, closure, the calibration flag, whether
    and with which value the prompt entered the e-value, and each vote's place in time order."""
    blinding.open_outcome(db, run_id, viewer)
    run = runs.get_run(db, run_id)
    names = stats.model_names(run)
    settings = db.execute("SELECT settings_json FROM generations WHERE run_id = ? LIMIT 1", [run_id]).fetchone()
    k, closed = sessions.planned_raters_per_pair(db, run_id), sessions.rating_closed(db, run_id)
    calibration, entries = sessions.calibration_positions(db, run_id), sessions.evalue_entries(db, run_id)
    order = {(row[0], row[1]): row[2] for row in db.execute(
        "SELECT position, rater, row_number() OVER (PARTITION BY position ORDER BY created_at, id) FROM ratings "
        "WHERE run_id = ?", [run_id]).fetchall()}
    out = io.StringIO()
    writer = _SafeWriter(csv.writer(out))
    writer.writerow(CSV_COLUMNS)

    def prompt_columns(position: int) -> list[Any]:
        entered = position in entries
        return [k, int(closed), int(position in calibration), int(entered), entries[position] if entered else ""]

    for r in sessions.ratings_for_run(db, run_id):
        writer.writerow([r.run_id, r.position, r.rater, r.left_side, r.verdict, r.preferred,
                         json.dumps(r.scores, sort_keys=True), r.comment, r.seconds_spent, r.created_at,
                         order[(r.position, r.rater)], *prompt_columns(r.position),
                         run.adapter_sha256, settings[0] if settings else "",
                         names.get(r.left_side, r.left_side), names.get(r.preferred, r.preferred)])
    for p in answer_pairs.pairs(db, run_id):
        if p.identical:  # counted as ties without asking anyone; in the e-value as a tie from the start
            writer.writerow([run_id, p.position, "(identical answers)", "", "tie", "tie", "{}", "", 0, "", 1,
                             k, int(closed), 0, 1, 0.5, run.adapter_sha256, settings[0] if settings else "", "", "tie"])
    return out.getvalue()


class _SafeWriter:
    """A csv writer whose cells are neutralised against formula injection (OWASP)."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: list[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])


def summary_json(summary: stats.Summary) -> str:
    """Strict JSON (allow_nan=False): no Infinity or NaN, which strict parsers reject."""
    return json.dumps(summary.to_dict(), indent=2, default=str, allow_nan=False)


agreement_lines = report_format.agreement_lines  # Results shows the same sentences


def summary_markdown(summary: stats.Summary) -> str:
    o, po = summary.outcomes, summary.prompt_outcomes
    dataset = summary.lineage.get("dataset")
    names = summary.names
    header, criteria = report_format.outcome_header(names), report_format.criterion_header(names)
    title = f"{markdown_cell(dataset)}: {report_format.question(names)} (run {summary.run_id})" if dataset else \
        f"Evaluation of run {summary.run_id}"
    lines = [f"# {title}", "", summary.verdict_text, "",
             "## Outcomes", "",
             "| " + " | ".join(markdown_cell(h) for h in header) + " |", "|---|---|---|---|---|---|",
             f"| prompts | {po.wins} | {po.losses} | {po.ties} ({po.automatic_ties}) | {po.both_bad} | {po.total} |",
             f"| votes | {o.wins} | {o.losses} | {o.ties} ({o.automatic_ties}) | {o.both_bad} | {o.total} |", "",
             *report_format.statistics_lines(summary), "",
             "## Per criterion (prompts)", "", report_format.criterion_note(summary), "",
             "| " + " | ".join(markdown_cell(h) for h in criteria) + " |", "|" + "---|" * len(criteria)]
    for c in summary.per_criterion:
        lines.append(f"| {markdown_cell(c['criterion'])} | " + " | ".join(report_format.criterion_cells(c)) + " |")
    lines += ["", "## Per rater (votes)", "",
              "| rater | votes | win rate | left-pick rate | position-bias p | median time |", "|---|---|---|---|---|---|"]
    for r in summary.per_rater:
        lines.append(f"| {markdown_cell(r['rater'])} | {r['ratings']} | {report_format.pct(r['win_rate'])} | "
                     f"{report_format.pct(r['left_pick_rate'])} | {report_format.p_value(r['position_bias_p'])} | {report_format.seconds(r['median_seconds'])} |")
    lines += ["", "## Agreement (calibration prompts)", "", *agreement_lines(summary.agreement),
              "", "## Example pairs (split votes first)", "", *_example_lines(summary.example_pairs, names),
              "", "## Automatic checks", "", *_checks_lines(summary),
              "", "## Definitions", "", *[f"- **{k}**: {markdown_cell(v)}" for k, v in summary.definitions.items()],
              "", "## Lineage", "", "```json", json.dumps(summary.lineage, indent=2, default=str), "```", ""]
    return "\n".join(lines)


def _checks_lines(summary: stats.Summary) -> list[str]:
    """The automatic checks as a table with the models' names (the raw numbers are in the JSON export)."""
    rows = report_format.checks_table(summary.checks, summary.names)
    if not rows:
        return ["No automatic checks: no output convention or glossary, and no losses measured."]
    header = ["check", summary.names["base"], summary.names["tuned"], "what it tells you"]
    return ["| " + " | ".join(markdown_cell(h) for h in header) + " |", "|---|---|---|---|",
            *["| " + " | ".join(markdown_cell(r[k]) for k in ("check", "base", "tuned", "what it tells you")) + " |"
              for r in rows]]


def _example_lines(pairs: list[dict[str, Any]], names: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for ex in pairs:
        votes = ", ".join(f"{markdown_cell(r)}: {markdown_cell(report_format.vote_name(v, names))}"
                          for r, v in ex["votes"].items())
        # Model and user text inside fenced blocks: shown as text by any Markdown viewer.
        for title, text in (("Prompt", ex["prompt"]), (report_format.capital(names["base_model"]), ex["base"]),
                            (report_format.capital(names["tuned_model"]), ex["tuned"])):
            lines += [f"**{markdown_cell(title)}**", "", "~~~~text", text.replace("~~~~", "~ ~ ~ ~"), "~~~~", ""]
        lines += [f"Votes — {votes}", "", "---", ""]
    return lines or ["No rated pairs yet."]


def summary_html(summary: stats.Summary) -> str:
    """One file, a real document (report_html), charts embedded with plotly.js inline: opens offline."""
    return report_html.render(summary)


def render(db: sqlite_utils.Database, run_id: int, fmt: str, viewer: str,
           summary: stats.Summary | None = None) -> str:
    """One export of a run's evaluation, for a viewer the blinding rule allows (allowed(viewer, "see_outcome"))."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    blinding.open_outcome(db, run_id, viewer)
    if fmt == "csv":
        return ratings_csv(db, run_id, viewer)
    summary = summary or stats.summarize(db, run_id)
    return {"json": summary_json, "md": summary_markdown, "html": summary_html}[fmt](summary)


def approve(db: sqlite_utils.Database, run_id: int, decision: str, note: str, actor: str) -> None:
    """Sign-off: admins approve or reject a run with its summary attached (audit log + model card)."""
    from pathlib import Path

    from core.platform.store import audit, now, transaction

    permissions.require(actor, "approve")
    blinding.open_outcome(db, run_id, actor)  # the summary goes into the audit log and the model card
    if decision not in ("approved", "rejected"):
        raise ValueError("decision must be approved or rejected")
    if not note.strip():
        raise ValueError("Write a decision note: what was compared and why this decision (it goes on the model card).")
    summary = stats.summarize(db, run_id)
    if summary.outcomes.total == 0:
        raise ValueError("Rate the run before signing it off: the summary is empty.")
    run = runs.get_run(db, run_id)
    with transaction(db):
        runs.set_approval(db, run_id, decision, note)
        audit(db, actor, f"run_{decision}", "run", run_id, {"note": note, "summary": summary.verdict_text})
    if run.adapter_path and Path(run.adapter_path).exists():
        card = Path(run.adapter_path) / "README.md"
        with open(card, "a", encoding="utf-8") as f:
            f.write(f"\n## Sign-off\n\n{decision} by {actor} on {now()}: {note}\n\n{summary_markdown(summary)}\n")


def adapter_zip(db: sqlite_utils.Database, run_id: int, actor: str) -> bytes:
    """The run's adapter as a zip (weights, config, model card with lineage and sign-off), ready for
    `PeftModel.from_pretrained` after unzipping. Authors and admins: it carries what was learned."""
    import zipfile
    from pathlib import Path

    permissions.require(actor, "export_dataset")
    if runs.get_run(db, run_id).approval:  # its card carries the sign-off's summary: an outcome
        blinding.open_outcome(db, run_id, actor)
    run = runs.get_run(db, run_id)
    if not run.adapter_path or not Path(run.adapter_path).is_dir():
        raise ValueError(f"Run {run_id} has no adapter to download.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(run.adapter_path).iterdir()):
            if path.is_file() and not path.is_symlink():
                archive.write(path, f"run-{run_id}-adapter/{path.name}")
    return buffer.getvalue()
