"""Author → Quarantine: fix or discard the lines an import could not take."""

from __future__ import annotations

import sqlite_utils
import streamlit as st

from core.curation import datasets, importing, validation
from pages import common


def show(db: sqlite_utils.Database, dataset: datasets.Dataset) -> None:
    """Each held line, editable turn by turn or as raw JSON, re-validated on import."""
    held = importing.list_quarantine(db, dataset.id)
    if not held:
        st.write("Nothing in quarantine.")
    for row in held[:50]:
        with st.container(border=True):
            common.caption(f"{row['source']} line {row['line_no']} · {row['code']}")
            st.text(row["message"])
            turns_key = f"author.qturns.{row['id']}"
            if turns_key not in st.session_state:
                st.session_state[turns_key] = importing.quarantined_turns(row["raw_text"])
            turns = st.session_state[turns_key]
            as_json = turns is None or st.toggle("Edit the raw line", key=f"author.qraw.{row['id']}")
            if as_json:
                fixed = st.text_area("Fix the line", row["raw_text"], key=f"author.q.{row['id']}", height=100)
            else:
                assert turns is not None
                for i, turn in enumerate(turns):
                    t = st.columns([0.2, 0.8])
                    roles = list(validation.ROLES)
                    turn["role"] = t[0].selectbox("Role", roles, index=roles.index(turn["role"]) if turn["role"] in roles
                                                  else 1, key=f"author.qrole.{row['id']}.{i}")
                    turn["content"] = t[1].text_area("Content", turn["content"], key=f"author.qcontent.{row['id']}.{i}",
                                                     height=80)
                if st.button("+ Assistant answer", key=f"author.qadd.{row['id']}"):
                    turns.append({"role": "assistant", "content": ""})
                    st.rerun()
                fixed = importing.turns_line(turns)
            c = st.columns(2)
            if c[0].button("Re-validate and import", key=f"author.qfix.{row['id']}"):
                remaining = importing.fix_quarantined(db, row["id"], fixed, author=common.user())
                if remaining:
                    common.error("; ".join(p.message for p in remaining))
                else:
                    st.rerun()
            sure = c[1].checkbox("Discard this line for good", key=f"author.qsure.{row['id']}")
            if c[1].button("Discard", key=f"author.qdel.{row['id']}", disabled=not sure):
                importing.discard_quarantined(db, row["id"], author=common.user())
                st.rerun()
