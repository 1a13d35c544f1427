"""Author → Dataset settings: description, system prompt, guidelines, convention, criteria."""

from __future__ import annotations

import sqlite_utils
import streamlit as st

from core.curation import datasets, system_prompt
from core.platform import permissions
from pages import common, convention_view


def offer_system_prompt(db: sqlite_utils.Database, dataset: datasets.Dataset, where: str) -> None:
    """When most examples already share a system prompt and the dataset has none (or another), offer it."""
    offer = system_prompt.offer(db, dataset.id, dataset.system_prompt)
    if offer is None:
        return
    common.info(f"{offer.sentence()} Make it the reusable system prompt (pre-filled in new examples)?")
    common.show_text(offer.text)
    if st.button("Use this system prompt", key=f"author.use_system_prompt.{where}"):
        try:
            datasets.update_dataset(db, dataset.id, actor=common.user(), system_prompt=offer.text)
            st.rerun()
        except (datasets.DatasetError, permissions.PermissionDenied) as exc:
            common.error(str(exc))


def show(db: sqlite_utils.Database, dataset: datasets.Dataset) -> None:
    """The dataset's settings form, after the system prompt its examples share (if any)."""
    offer_system_prompt(db, dataset, "settings")
    with st.form("author.settings"):
        description = st.text_area("Description", dataset.description)
        system_prompt = st.text_area("Reusable system prompt (pre-filled in new examples)", dataset.system_prompt)
        guidelines = st.text_area("Authoring guidelines", dataset.guidelines, height=160)
        convention = st.text_input("Output convention (regular expression the answers must match)",
                                   dataset.convention_regex)
        criteria = st.text_input("Rating criteria (comma separated)", ", ".join(dataset.criteria))
        glossary = st.text_input("Glossary terms (comma separated)", ", ".join(dataset.glossary))
        if st.form_submit_button("Save settings"):
            try:
                datasets.update_dataset(db, dataset.id, actor=common.user(), description=description,
                                        system_prompt=system_prompt, guidelines=guidelines,
                                        convention_regex=convention, criteria=criteria.split(","),
                                        glossary=glossary.split(","))
                common.success("Saved.")
            except datasets.DatasetError as exc:
                common.error(str(exc))
    convention_view.render(db, dataset)
