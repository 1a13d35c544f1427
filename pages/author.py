"""Author: import, edit and curate chat examples; splits, duplicates, statistics, versions, export.

The page lays out the tabs; each tab is one view function in pages/authoring/.
"""

import streamlit as st

from core.curation import datasets
from pages import common
from pages.authoring import (
    editor_tab,
    examples_tab,
    import_tab,
    quarantine_tab,
    settings_tab,
    state,
    stats_tab,
    versions_tab,
)

common.through_app()

NEW_DATASET_KEY = "author.new_dataset_open"
CREATED_KEY = "author.created"

st.title("Author")
db = common.db()

if st.session_state.get(CREATED_KEY):
    st.session_state[NEW_DATASET_KEY] = False  # the form closes once its dataset exists (issue 25)
with st.expander("New dataset", expanded=not datasets.list_datasets(db), key=NEW_DATASET_KEY, on_change="rerun"):
    with st.form("author.new_dataset", clear_on_submit=True):
        name = st.text_input("Name")
        description = st.text_area("What should the model learn?")
        if st.form_submit_button("Create dataset"):
            try:
                created = datasets.create_dataset(db, name, description=description, actor=common.user())
                st.session_state[common.DATASET_KEY] = created.id
                st.session_state[CREATED_KEY] = created.name
                st.rerun()
            except datasets.DatasetError as exc:
                common.error(str(exc))
if st.session_state.get(CREATED_KEY):
    common.success(f"Created dataset {st.session_state.pop(CREATED_KEY)}; it is now selected.")

dataset = common.require_dataset()
st.text(f"Dataset: {dataset.name}")  # plain text: a name holding a URL is no link
if not common.allowed("edit_examples"):
    st.info("You can read this dataset; changing it needs the author or admin role.")

VIEWS = {"Examples": examples_tab.show, "Editor": editor_tab.show, "Import": import_tab.show,
         "Quarantine": quarantine_tab.show, "Statistics & duplicates": stats_tab.show,
         "Versions & export": versions_tab.show, "Dataset settings": settings_tab.show}
for tab, show in zip(st.tabs(list(VIEWS), key=state.TAB_KEY, on_change="rerun"), VIEWS.values(), strict=True):
    with tab:
        show(db, dataset)
