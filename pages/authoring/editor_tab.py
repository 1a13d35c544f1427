"""Author → Editor: one example turn by turn, with what the model trains on."""

from __future__ import annotations

import sqlite_utils
import streamlit as st

from core.curation import datasets, examples, validation
from core.models import registry, templating
from pages import common
from pages.authoring import state


def show(db: sqlite_utils.Database, dataset: datasets.Dataset) -> None:
    """The example being edited (or a new one), its checks, and its templated, trained-on text."""
    TURNS_KEY, DRAFT_KEY = state.turns_key(dataset.id), state.draft_key(dataset.id)
    editing = st.session_state.get(state.EDIT_KEY)
    current = examples.get_example(db, editing) if editing else None
    slot = editing or f"new{st.session_state.get(DRAFT_KEY, 0)}"  # widget keys: one set per example
    if TURNS_KEY not in st.session_state:
        st.session_state[TURNS_KEY] = [dict(m) for m in current.messages] if current else (
            ([{"role": "system", "content": dataset.system_prompt}] if dataset.system_prompt else [])
            + [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}])
    turns = st.session_state[TURNS_KEY]
    left, right = st.columns([0.62, 0.38])
    with left:
        st.subheader(f"Editing example {editing}" if editing else "New example")
        for i, turn in enumerate(turns):
            c = st.columns([0.2, 0.7, 0.1])
            turn["role"] = c[0].selectbox("Role", list(validation.ROLES), key=f"author.role.{dataset.id}.{slot}.{i}",
                                          index=list(validation.ROLES).index(turn["role"]) if turn["role"] in validation.ROLES else 1)
            turn["content"] = c[1].text_area("Content", turn["content"], key=f"author.content.{dataset.id}.{slot}.{i}", height=110)
            if c[2].button("✕", key=f"author.remove.{dataset.id}.{slot}.{i}", help="Remove this turn"):
                turns.pop(i)
                st.rerun()
        add = st.columns(3)
        if add[2].button("+ System turn", disabled=any(t["role"] == "system" for t in turns)):
            turns.insert(0, {"role": "system", "content": dataset.system_prompt})
            st.rerun()
        if add[0].button("+ User turn"):
            turns.append({"role": "user", "content": ""})
            st.rerun()
        if add[1].button("+ Assistant turn"):
            turns.append({"role": "assistant", "content": ""})
            st.rerun()
        problems = validation.check_messages(turns, 1)
        for p in problems:
            common.warning(p.message.removeprefix("line 1: "))
        meta = st.columns(3)
        split = meta[0].selectbox("Split", ["train", "heldout"], index=0 if not current or current.split == "train" else 1)
        status = meta[1].selectbox("Status", ["draft", "ready"], index=1 if current and current.status == "ready" else 0)
        tags = meta[2].text_input("Tags (comma separated)", ", ".join(current.tags) if current else "")
        actions = st.columns(4)
        if actions[0].button("Save", type="primary"):
            try:
                saved = examples.save_example(db, dataset, turns, example_id=editing, author=common.user(),
                                              split=split, status=status, tags=[t.strip() for t in tags.split(",") if t.strip()])
                st.session_state[state.EDIT_KEY] = saved.id
                common.success(f"Saved example {saved.id} (revision {saved.revision}).")
            except datasets.DatasetError as exc:
                common.error(str(exc))
        if editing and actions[1].button("Duplicate"):
            copy = examples.duplicate_example(db, dataset, editing, author=common.user())
            st.session_state[state.EDIT_KEY] = copy.id
            st.session_state.pop(TURNS_KEY, None)
            st.rerun()
        if editing and actions[2].button("Delete"):
            examples.delete_examples(db, [editing], author=common.user())
            st.session_state.pop(state.EDIT_KEY, None)
            st.session_state.pop(TURNS_KEY, None)
            st.rerun()
        actions[3].button("New example", on_click=state.open_in_editor, args=(dataset.id, None),
                          help="An empty example, with the dataset's system prompt when it has one")
    with right:
        st.subheader("Guidelines")
        common.show_text(dataset.guidelines or "No guidelines yet (Dataset settings tab).")
        st.subheader("What the model trains on")
        if not problems:
            try:
                tokenizer = templating.load_tokenizer(registry.DEFAULT_MODEL)
                templated = templating.template_example(tokenizer, turns)
                marked = "".join(("⟦" + templated.text[s:e] + "⟧") if trained else templated.text[s:e]
                                 for s, e, trained in templated.spans)
                st.caption(f"{templated.token_count} tokens, {sum(templated.assistant_mask)} trained "
                           f"(inside ⟦ ⟧). Training cuts at {templating.DEFAULT_MAX_LENGTH}.")
                common.show_text(marked)
            except registry.ModelUnavailable as exc:
                common.warning(str(exc))
