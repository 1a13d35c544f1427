"""Author → Import: a JSONL file in, a verdict for every line."""

from __future__ import annotations

import sqlite_utils
import streamlit as st

from core.curation import datasets, importing
from core.models import registry, templating
from pages import common, import_view
from pages.authoring.settings_tab import offer_system_prompt


def show(db: sqlite_utils.Database, dataset: datasets.Dataset) -> None:
    """Upload and import, then the last import's report. Other import views add their own section here."""
    st.write("OpenAI chat JSONL (`{\"messages\": [...]}`) — Alpaca, ShareGPT and prompt/completion lines "
             "are detected and converted. Every line gets a verdict; bad lines go to Quarantine.")
    upload = st.file_uploader("JSONL file", type=["jsonl", "json", "txt"], key="author.upload")
    # One split choice per dataset (it used to carry over, sending a file into held-out unnoticed).
    into = st.selectbox("Import into split", ["train", "heldout"], key=f"author.import_split.{dataset.id}")
    report_key = f"author.import_report.{dataset.id}"  # the last report stays until the next import
    if upload is not None and st.button("Import", type="primary"):
        try:
            with st.spinner("Validating every line…"):
                report = importing.import_jsonl(db, dataset, upload.getvalue(), source=upload.name,
                                                author=common.user(), split=into,
                                                count_tokens=templating.token_counter(registry.DEFAULT_MODEL))
            st.session_state[report_key] = {"file": upload.name, "split": into, **report.to_dict(),
                                            "problems": [{**p.to_dict(), "severity": p.severity}
                                                         for p in report.errors + report.warnings]}
        except (datasets.DatasetError, registry.ModelUnavailable) as exc:
            common.error(str(exc))
    last = st.session_state.get(report_key)
    if last:
        common.success(f"{last['file']} into {last['split']}: imported {last['imported']}; "
                       f"{last['quarantined']} quarantined; {last['duplicates']} duplicates skipped; "
                       f"{last['blank']} blank lines. Formats: "
                       f"{', '.join(f'{k} ({v})' for k, v in last['formats'].items()) or 'none'}.")
        if last["problems"]:
            common.user_table(sorted(last["problems"], key=lambda p: p["line"]), file_name="import-problems.csv",
                              key="author.problems_csv")
        offer_system_prompt(db, dataset, "import")  # the imported lines may all share one
    import_view.spreadsheet_import(db, dataset)
