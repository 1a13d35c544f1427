"""The dataset's output convention on the Author page: what the studio inferred from the training
answers, in plain words, for the author to accept or edit (issue 24). The regex stays an expert option."""

from __future__ import annotations

import pandas as pd
import sqlite_utils
import streamlit as st

from core.curation import convention, datasets, examples
from core.platform import permissions
from pages import common


@st.cache_data(ttl=600, max_entries=16)
def _inferred(dataset_id: int, signature: tuple) -> convention.Convention:
    """Inference reads every ready training answer: only again when the data changed."""
    del signature  # part of the cache key only
    return convention.infer(convention.ready_training_answers(common.db(), dataset_id))


def render(db: sqlite_utils.Database, dataset: datasets.Dataset) -> None:
    st.subheader("Output convention")
    inferred = _inferred(dataset.id, examples.content_signature(db, dataset.id))
    accepted = convention.Convention.from_json(dataset.convention_json) if dataset.convention_json else None
    shown = accepted or inferred
    if dataset.convention_regex:
        common.info("The expert regular expression in the settings above judges the answers; clear it to use "
                    "this convention instead.")
    common.caption("Accepted for this dataset:" if accepted else
                   "Inferred from the ready training answers (not accepted yet; training and the summary use it "
                   "until you accept or edit it):")
    common.show_text(shown.describe())
    if accepted and inferred.structured and inferred.regex() != accepted.regex():
        common.caption("The training answers now suggest: " + inferred.describe())
    if not shown.structured:
        return
    common.caption("Edit a line's allowed values (comma separated; empty means free text) or its length, then accept.")
    table = st.data_editor(pd.DataFrame(convention.rows_of(shown)), num_rows="dynamic", hide_index=True,
                           key=f"author.convention.{dataset.id}.{len(dataset.convention_json)}")
    c = st.columns(2)
    if c[0].button("Accept this convention", key="author.convention.accept"):
        try:
            chosen = convention.edited(shown, table.fillna("").to_dict("records"))
            datasets.update_dataset(db, dataset.id, actor=common.user(), convention_json=chosen.to_json())
            common.success("Accepted: " + chosen.describe())
        except (ValueError, datasets.DatasetError, permissions.PermissionDenied) as exc:
            common.error(str(exc))
    if accepted and c[1].button("Forget it (infer from the answers again)", key="author.convention.forget"):
        try:
            datasets.update_dataset(db, dataset.id, actor=common.user(), convention_json="")
            common.success("Forgotten: the convention is inferred from the training answers again.")
        except permissions.PermissionDenied as exc:
            common.error(str(exc))
