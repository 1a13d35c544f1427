"""Settings: base models, the team, rating and queue settings, and the audit log."""

import pandas as pd
import streamlit as st

from core import auth, models, store
from pages import common

common.through_app()

st.title("Settings")
db = common.db()

st.subheader("Base models")
st.dataframe(pd.DataFrame([vars(m) for m in models.list_models(db)]), hide_index=True)
with st.form("settings.add_model"):
    location = st.text_input("Add a local model directory or a hub id (org/name)")
    if st.form_submit_button("Add model"):
        try:
            added = models.add_model(db, location, actor=common.user())
            st.success(f"Added {added.name}.")
        except models.ModelUnavailable as exc:
            st.error(str(exc))

st.subheader("Team")
if auth.load_users():
    st.write("Users and roles come from the users file (password gate on).")
else:
    with st.form("settings.team"):
        names = st.text_area("Team members, one per line", "\n".join(auth.team(db)))
        if st.form_submit_button("Save team"):
            try:
                auth.set_team(db, names.splitlines())
                st.success("Saved.")
            except ValueError as exc:
                st.error(str(exc))

st.subheader("Rating and queue")
with st.form("settings.numbers"):
    k = st.number_input("Raters per pair", 1, 10, int(store.get_setting(db, "raters_per_pair", "1") or 1))
    concurrent = st.number_input("Training runs at once on this machine", 1, 8,
                                 int(store.get_setting(db, "max_concurrent_runs", "1") or 1))
    if st.form_submit_button("Save"):
        store.set_setting(db, "raters_per_pair", str(int(k)))
        store.set_setting(db, "max_concurrent_runs", str(int(concurrent)))
        st.success("Saved.")

st.subheader("Audit log")
st.dataframe(pd.DataFrame(store.audit_entries(db)), hide_index=True)
