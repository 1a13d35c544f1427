"""Settings: base models, the team, rating and queue settings, and the audit log."""

import pandas as pd
import streamlit as st

from core import auth, models, permissions, rating, store, studio_settings, training
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
            common.success(f"Added {added.name}.")
        except (models.ModelUnavailable, permissions.PermissionDenied) as exc:
            common.error(str(exc))

st.subheader("Team")
if auth.load_users():
    st.write("Users and roles come from the users file (password gate on).")
else:
    with st.form("settings.team"):
        names = st.text_area("Team members, one per line", "\n".join(auth.team(db)))
        if st.form_submit_button("Save team"):
            try:
                studio_settings.set_team(db, names.splitlines(), actor=common.user())
                common.success("Saved.")
            except (ValueError, permissions.PermissionDenied) as exc:
                common.error(str(exc))

st.subheader("Rating and queue")
with st.form("settings.numbers"):
    k = st.number_input("Raters per pair", 1, 10, rating.raters_per_pair(db))
    concurrent = st.number_input("Training runs at once on this machine", 1, 8, training.max_concurrent(db))
    reference = st.checkbox("Show raters the reference answer beside each pair", studio_settings.show_reference(db),
                            help="Helps raters who are not experts; can anchor them on the reference's wording.")
    if st.form_submit_button("Save"):
        try:
            studio_settings.set_raters_per_pair(db, int(k), actor=common.user())
            studio_settings.set_max_concurrent_runs(db, int(concurrent), actor=common.user())
            studio_settings.set_show_reference(db, reference, actor=common.user())
            common.success("Saved.")
        except (ValueError, permissions.PermissionDenied) as exc:
            common.error(exc)

st.subheader("Audit log")
if common.allowed("studio_settings"):
    st.dataframe(pd.DataFrame(store.audit_entries(db)), hide_index=True)
else:
    # The log holds sign-off summaries and sign-in addresses: a rater mid-session must not read it.
    st.caption("The audit log is for admins.")
