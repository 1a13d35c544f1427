"""Author → Import: spreadsheets and Hugging Face files with a preview and a column mapping (issue 27)."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlite_utils
import streamlit as st

from core.curation import datasets, importing, tabular
from core.models import registry, templating
from pages import common

PARTS = ("user", "assistant", "system", "tags", "split", "category")
_DETECT = "detect (UTF-8 only)"


def spreadsheet_import(db: sqlite_utils.Database, dataset: datasets.Dataset) -> None:
    """Upload a CSV, .xlsx, .parquet or .arrow file; spreadsheets show their first rows and a
    column mapping (remembered per dataset) before the import."""
    st.subheader("Spreadsheet or Hugging Face file")
    st.write("CSV or Excel (.xlsx): choose which column holds the question (user), the answer (assistant) "
             "and optionally a system prompt, tags, split and category. Parquet or Arrow files from "
             "Hugging Face `datasets` with `messages`, `conversations` (ShareGPT) or "
             "`instruction/input/output` (Alpaca) columns need no mapping. Every row gets a verdict; bad "
             "rows go to Quarantine.")
    upload = st.file_uploader("CSV, Excel, Parquet or Arrow file", type=["csv", "xlsx", "parquet", "arrow"],
                              key="author.table.upload")
    report_key = f"author.table.report.{dataset.id}"
    if upload is not None:
        _import_form(db, dataset, upload.name, upload.getvalue(), report_key)
    _show_report(st.session_state.get(report_key))


def _import_form(db: sqlite_utils.Database, dataset: datasets.Dataset, name: str, data: bytes,
                 report_key: str) -> None:
    into = st.selectbox("Import into split", ["train", "heldout"], key=f"author.table.split.{dataset.id}",
                        help="A mapped split column overrides this per row.")
    counter = templating.token_counter(registry.DEFAULT_MODEL)
    if Path(name).suffix.lower() not in tabular.SPREADSHEET_SUFFIXES:
        if st.button("Import", type="primary", key="author.table.import_hf"):
            _run(report_key, name, into, lambda: tabular.import_hf_upload(
                db, dataset, data, name, author=common.user(), split=into, count_tokens=counter))
        return
    encoding = ""
    if name.lower().endswith(".csv"):
        choice = st.selectbox("Text encoding", [_DETECT, *tabular.ENCODINGS], key="author.table.encoding",
                              format_func=lambda e: tabular.ENCODINGS.get(e, e),
                              help="UTF-8 is recognised; Windows-1252 (Excel's 'CSV' on Western Windows) "
                                   "must be chosen, because it cannot be told apart from other code pages.")
        encoding = "" if choice == _DETECT else choice
    try:
        table = tabular.read_spreadsheet(data, name, encoding=encoding)
    except datasets.DatasetError as exc:
        common.error(str(exc))
        return
    common.caption(f"{name}: {table.note}; {len(table.rows)} rows, {table.blank} blank. First rows:")
    st.dataframe(pd.DataFrame(table.preview()), hide_index=True)  # cells shown as text
    remembered = tabular.remembered_mapping(db, dataset.id)
    options = ["", *table.columns]
    cols = st.columns(3)
    chosen: dict[str, str] = {}
    for i, part in enumerate(PARTS):
        previous = getattr(remembered, part, "") if remembered else ""
        chosen[part] = cols[i % 3].selectbox(
            part + (" (required)" if part in ("user", "assistant") else ""), options,
            index=options.index(previous) if previous in options else 0,
            format_func=lambda c: c or "—", key=f"author.table.map.{dataset.id}.{part}")
    if st.button("Import", type="primary", key="author.table.import"):
        def run() -> importing.ImportReport:
            mapping = tabular.ColumnMapping(**chosen)
            return tabular.import_spreadsheet(db, dataset, table, mapping, source=name, author=common.user(),
                                              split=into, count_tokens=counter)
        _run(report_key, name, into, run)


def _run(report_key: str, name: str, into: str, action: Callable[[], importing.ImportReport]) -> None:
    try:
        with st.spinner("Checking every row…"):
            report = action()
    except (datasets.DatasetError, registry.ModelUnavailable) as exc:
        common.error(str(exc))
        return
    st.session_state[report_key] = {"file": name, "split": into, **report.to_dict(),
                                    "problems": [{**p.to_dict(), "severity": p.severity}
                                                 for p in report.errors + report.warnings]}


def _show_report(last: dict | None) -> None:
    if not last:
        return
    common.success(f"{last['file']} into {last['split']}: imported {last['imported']}; "
                   f"{last['quarantined']} quarantined; {last['duplicates']} duplicates skipped; "
                   f"{last['blank']} blank rows. {' '.join(n[:1].upper() + n[1:] + '.' for n in last['notes'])}")
    if last["problems"]:
        st.dataframe(pd.DataFrame(sorted(last["problems"], key=lambda p: p["line"])).rename(columns={"line": "row"}),
                     hide_index=True)
