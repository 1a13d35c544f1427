"""Author → Versions & export: freeze a version behind its gates, download one."""

from __future__ import annotations

import pandas as pd
import sqlite_utils
import streamlit as st

from core.curation import datasets, examples
from core.platform import permissions
from core.platform.paths import safe_name
from core.training import versions
from pages import common
from pages.authoring import state


def show(db: sqlite_utils.Database, dataset: datasets.Dataset) -> None:
    """What blocks freezing, the freeze button, the versions, and a JSONL download."""
    check = state.freeze_check(dataset.id, examples.content_signature(db, dataset.id))
    st.write(f"Ready to freeze: {check.train} train, {check.heldout} held-out.")
    if check.drafts:
        common.warning(f"{check.drafts} draft example(s) will be left out of this version: mark them ready "
                       "(Examples tab) to include them.")
    for reason in check.blockers + check.pii_blockers:
        common.warning(reason)
    override = ""
    if check.pii_blockers and common.allowed("pii_override"):
        override = st.text_input("Admin override of the PII gate: reason (audit-logged)")
    if st.button("Freeze a version", type="primary", disabled=bool(check.blockers)):
        try:
            version = versions.freeze(db, dataset, actor=common.user(), override_reason=override)
            common.success(f"Version {version.number} frozen (sha256 {version.content_hash[:12]}…).")
        except datasets.DatasetError as exc:
            common.error(str(exc))
    frozen = versions.list_versions(db, dataset.id)
    if frozen:
        st.dataframe(pd.DataFrame([vars(v) for v in frozen]), hide_index=True)
        c = st.columns(2)
        number = c[0].selectbox("Export version", [v.number for v in reversed(frozen)])
        split_choice = c[1].selectbox("Split", ["all", "train", "heldout"])
        try:
            text = versions.export_jsonl(db, dataset, version=number, actor=common.user(),
                                         split=None if split_choice == "all" else split_choice)
            st.download_button("Download JSONL", text, file_name=f"{safe_name(dataset.name)}-v{number}-{split_choice}.jsonl",
                               mime="application/jsonl")
        except (datasets.DatasetError, permissions.PermissionDenied) as exc:
            common.error(str(exc))
