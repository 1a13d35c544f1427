"""Author → Examples: filter, page through and edit the examples as a table."""

from __future__ import annotations

import pandas as pd
import sqlite_utils
import streamlit as st

from core.curation import datasets, examples
from pages import common
from pages.authoring import state

PAGE_SIZE = 25


def show(db: sqlite_utils.Database, dataset: datasets.Dataset) -> None:
    """Filters, a page of examples as an editable table, and a way into the editor."""
    cols = st.columns(6)
    flt = examples.ExampleFilter(
        text=cols[0].text_input("Search text"), tag=cols[1].text_input("Tag"),
        status=cols[2].selectbox("Status", ["", "draft", "ready"], format_func=lambda v: v or "any"),
        split=cols[3].selectbox("Split", ["", "train", "heldout"], format_func=lambda v: v or "any"),
        has_pii=cols[4].checkbox("Has open PII"), has_problem=cols[5].checkbox("Has problem"))
    page = st.session_state.setdefault(state.PAGE_KEY, 0)
    rows, total = examples.list_examples(db, dataset.id, flt, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    nav = st.columns([1, 1, 4])
    if nav[0].button("◀ Previous", disabled=page == 0):
        st.session_state[state.PAGE_KEY] = page - 1
        st.rerun()
    if nav[1].button("Next ▶", disabled=page >= pages - 1):
        st.session_state[state.PAGE_KEY] = page + 1
        st.rerun()
    nav[2].write(f"{total} matching · page {page + 1} of {pages}")
    table = pd.DataFrame([{
        "id": e.id, "prompt": e.first_user_text[:120], "split": e.split, "status": e.status,
        "tags": ", ".join(e.tags), "author": e.author, "problems": ", ".join(e.problem_codes),
        "revision": e.revision, "delete": False} for e in rows])
    if not table.empty:
        edited = st.data_editor(
            table, key=f"author.table.{page}", hide_index=True, width="stretch",
            disabled=["id", "prompt", "author", "problems", "revision"],
            column_config={"split": st.column_config.SelectboxColumn(options=["train", "heldout"]),
                           "status": st.column_config.SelectboxColumn(options=["draft", "ready"])})
        buttons = st.columns(3)
        if buttons[0].button("Save table edits"):
            try:
                changed, deleted = examples.apply_table_edits(db, table.to_dict("records"), edited.to_dict("records"),
                                                              author=common.user())
                common.success(f"Saved {changed} change(s), deleted {deleted}.")
                st.rerun()
            except datasets.DatasetError as exc:
                common.error(str(exc))
        chosen = buttons[1].selectbox("Open in editor", [None] + [e.id for e in rows],
                                      format_func=lambda i: "—" if i is None else f"Example {i}")
        buttons[2].button("Edit", key="author.open", disabled=chosen is None, on_click=state.open_in_editor,
                          args=(dataset.id, chosen),
                          help="Opens the example in the Editor tab")
