"""Settings: base models, the team, rating and queue settings, and the audit log."""

import pandas as pd
import streamlit as st

from core.models import registry
from core.platform import auth, permissions, slots, store, studio_settings
from core.rating import sessions
from pages import common

common.through_app()

st.title("Settings")
db = common.db()

st.subheader("Base models")
st.dataframe(pd.DataFrame([vars(m) for m in registry.list_models(db)]), hide_index=True)
with st.form("settings.add_model"):
    location = st.text_input("Add a local model directory or a hub id (org/name)")
    if st.form_submit_button("Add model"):
        try:
            added = registry.add_model(db, location, actor=common.user())
            common.success(f"Added {added.name}.")
        except (registry.ModelUnavailable, permissions.PermissionDenied) as exc:
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
    k = st.number_input("Raters per pair", 1, 10, sessions.raters_per_pair(db))
    concurrent = st.number_input("Heavy jobs at once on this machine", 1, 8, slots.capacity(db),
                                 help="Training runs and answer generation share these slots, first come first "
                                      "served. On 2 cores keep 1: two at once each run at less than half speed.")
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

st.subheader("Where runs execute")
target = studio_settings.run_target(db)
with st.form("settings.target"):
    kind = st.radio("Run target", ["local", "ray"], index=["local", "ray"].index(target.kind), horizontal=True,
                    format_func={"local": "This machine (a worker process)", "ray": "A Ray cluster"}.get)
    address = st.text_input("Ray address", target.address, placeholder="ray://head:10001, http://head:8265 or auto")
    gpus = st.number_input("GPUs per run (Ray)", 0.0, 64.0, float(target.num_gpus), 1.0)
    models_dir = st.text_input("Base models folder on the cluster nodes (optional)", target.models_dir,
                               help="STUDIO_MODELS_DIR for the Ray job: where the nodes keep converted base models.")
    common.caption("Ray is an optional extra: `.venv/bin/pip install -r requirements-ray.txt`. The README's "
                   "'Scaling out' section shows how to start a head and join a GPU worker.")
    if st.form_submit_button("Save target"):
        try:
            studio_settings.set_run_target(db, studio_settings.RunTarget(kind, address.strip(), float(gpus),
                                                                         models_dir.strip()), actor=common.user())
            common.success("Saved. New runs go to " + ("this machine." if kind == "local" else f"Ray at {address}."))
        except (ValueError, studio_settings.RayUnavailable, permissions.PermissionDenied) as exc:
            common.error(exc)

st.subheader("Audit log")
if common.allowed("studio_settings"):
    common.user_table(store.audit_entries(db), file_name="audit-log.csv", key="settings.audit_csv")
else:
    # The log holds sign-off summaries and sign-in addresses: a rater mid-session must not read it.
    st.caption("The audit log is for admins.")
