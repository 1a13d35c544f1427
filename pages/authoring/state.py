"""Session-state keys and the cached freeze check that several Author tabs share."""

from __future__ import annotations

import streamlit as st

from core.training import versions
from pages import common

EDIT_KEY = "author.editing_id"
PAGE_KEY = "author.page"
TAB_KEY = "author.tab"
TURNS_PREFIX = "author.turns"
DRAFT_PREFIX = "author.draft_no"  # bumped for every new example, so its widgets start empty


def turns_key(dataset_id: int) -> str:
    return f"{TURNS_PREFIX}.{dataset_id}"  # the editor's draft belongs to one dataset


def draft_key(dataset_id: int) -> str:
    return f"{DRAFT_PREFIX}.{dataset_id}"


def open_in_editor(dataset_id: int, example_id: int | None) -> None:
    """Callback (runs before the page): the editor shows this example, or a fresh empty one."""
    if example_id is None:
        st.session_state.pop(EDIT_KEY, None)
        st.session_state[draft_key(dataset_id)] = st.session_state.get(draft_key(dataset_id), 0) + 1
    else:
        st.session_state[EDIT_KEY] = example_id
    st.session_state.pop(turns_key(dataset_id), None)
    st.session_state[TAB_KEY] = "Editor"


@st.cache_data(ttl=600, show_spinner="Checking duplicates and the PII gate…", max_entries=16)
def freeze_check(dataset_id: int, signature: tuple) -> versions.FreezeCheck:
    """Near-duplicate and leakage checks are O(examples); recompute only when the data changes."""
    del signature  # part of the cache key only
    return versions.freeze_check(common.db(), dataset_id)
