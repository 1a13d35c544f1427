"""Helpers shared by the pages: database per script run, current user, safe text display."""

from __future__ import annotations

from typing import Any

import sqlite_utils
import streamlit as st

from core import answer_pairs, auth, datasets, models, permissions, store, text_safety, training

ROUTED_KEY = "studio.routed"
USER_KEY = "studio.user"
ROLE_KEY = "studio.role"
DATASET_KEY = "studio.dataset_id"


def through_app() -> None:
    """Send a page that Streamlit ran directly to the router first.

    Streamlit treats a `pages/` folder as a legacy multipage app until the router's
    st.navigation has run once in the server process, so the very first request for a deep link
    (e.g. /author after a restart) would run the page without the router's setup.
    """
    if not st.session_state.get(ROUTED_KEY):
        st.switch_page("app.py")


@st.cache_resource
def _startup_once(db_file: str) -> dict[str, Any]:
    """Per process: migrations, the default model, the demo project, and run reconciliation."""
    db = store.connect(db_file)
    try:
        model_dir = models.ensure_default_model()
        model_error = ""
    except models.ModelUnavailable as exc:
        model_dir, model_error = None, str(exc)
    from core import demo

    demo.seed_demo(db)
    interrupted = training.reconcile(db)
    answer_pairs.reconcile_jobs(db)
    return {"model_dir": str(model_dir) if model_dir else "", "model_error": model_error,
            "interrupted": interrupted}


def startup() -> None:
    from core.paths import db_path

    with st.spinner("Preparing the studio (first start converts the default model, ~30 s)…"):
        state = _startup_once(str(db_path()))
    if state["model_error"]:
        warning(f"Default model unavailable: {state['model_error']}")


def db() -> sqlite_utils.Database:
    """A fresh connection for this script run (never cached: SQLite connections are not shared)."""
    return store.connect()


def login_gate() -> bool:
    """Optional password gate (users file present); without it everyone picks a name."""
    users = auth.load_users()
    if not users:
        st.session_state.setdefault(ROLE_KEY, "admin")
        return True
    if st.session_state.get(USER_KEY) and st.session_state.get(ROLE_KEY):
        return True
    st.title("Tuning Studio")
    with st.form("login"):
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            try:
                user = auth.sign_in(db(), users, name, password, client_address())
            except auth.SignInRefused as exc:
                error(exc)
                return False
            if user is None:
                st.error("Unknown user or wrong password.")
            else:
                st.session_state[USER_KEY] = user.name
                st.session_state[ROLE_KEY] = user.role
                st.rerun()
    return False


def client_address() -> str:
    """The browser's address as Streamlit sees it (behind a proxy: the proxy's)."""
    try:
        return str(st.context.ip_address or "unknown")
    except (AttributeError, RuntimeError):  # not served over a websocket (AppTest)
        return "unknown"


def allowed(action: str) -> bool:
    """Whether the signed-in user's role may do this (the core function checks it again)."""
    return permissions.allowed(user(), action)


def sidebar() -> None:
    with st.sidebar:
        if auth.load_users():
            st.caption(f"Signed in as **{md_escape(st.session_state[USER_KEY])}** ({st.session_state[ROLE_KEY]})")
            if st.button("Sign out"):
                st.session_state.pop(USER_KEY, None)
                st.session_state.pop(ROLE_KEY, None)
                st.rerun()
        else:
            team = auth.team(db())
            current = st.session_state.get(USER_KEY) or (team[0] if team else "")
            st.session_state[USER_KEY] = st.selectbox(
                "You are", team, index=team.index(current) if current in team else 0,
                help="Names come from Settings → Team. Used for authorship, audit log and rating.")
        all_sets = datasets.list_datasets(db())
        if all_sets:
            ids = [d.id for d in all_sets]
            # This session's choice, else the URL's (a shared link, a reload, a new tab).
            chosen = st.session_state.get(DATASET_KEY) or _int_param("dataset")
            st.session_state[DATASET_KEY] = st.selectbox(
                "Dataset", ids, index=ids.index(chosen) if chosen in ids else 0,
                format_func=lambda i: next(d.name for d in all_sets if d.id == i))
            st.query_params["dataset"] = str(st.session_state[DATASET_KEY])


def _int_param(name: str) -> int | None:
    value = st.query_params.get(name)
    return int(value) if value and str(value).isdigit() else None


def choose_run(page: str, runs: list[training.TrainingRun], prefer: list[int] | None = None) -> int:
    """The run picker of Rate and Results: this session's choice, else the URL's run, else the
    first preferred one (with answers, or being rated), else the newest; kept in the URL."""
    ids = [r.id for r in runs]
    state_key = f"{page}.run_id"
    candidates = [st.session_state.get(state_key), _int_param("run"), *(prefer or [])]
    chosen = next((c for c in candidates if c in ids), ids[0])
    run_id = int(st.selectbox("Run", ids, index=ids.index(chosen), format_func=lambda i: f"Run {i}"))
    st.session_state[state_key] = run_id
    st.query_params["run"] = str(run_id)
    return run_id


def user() -> str:
    return str(st.session_state.get(USER_KEY) or "anonymous")


def current_dataset() -> datasets.Dataset | None:
    dataset_id = st.session_state.get(DATASET_KEY)
    if dataset_id is None:
        return None
    try:
        return datasets.get_dataset(db(), int(dataset_id))
    except datasets.DatasetError:
        return None


def require_dataset() -> datasets.Dataset:
    dataset = current_dataset()
    if dataset is None:
        st.info("Create or import a dataset on the Author page first.")
        st.stop()
    return dataset


def finished_runs(db: sqlite_utils.Database, dataset: datasets.Dataset) -> list[training.TrainingRun]:
    """The dataset's succeeded runs; stops the page with a hint when there are none."""
    runs = [r for r in training.list_runs(db, dataset.id) if r.status == "succeeded"]
    if not runs:
        st.info("No finished run yet: train one on the Train page.")
        st.stop()
    return runs


def show_text(text: str, *, key: str | None = None) -> None:
    """User or model text, shown inert: never as HTML or markdown (no links, images or scripts)."""
    st.code(text, language=None, wrap_lines=True)


def role_label(role: str) -> str:
    return {"system": "System", "user": "User", "assistant": "Assistant"}.get(role, role)


def show_conversation(messages: list[dict[str, Any]]) -> None:
    for message in messages:
        st.caption(role_label(message["role"]))
        show_text(message["content"])


def md_escape(text: object) -> str:
    """User text inside Markdown (headings, captions, labels): see core.text_safety."""
    return text_safety.markdown_inline(text)


# Alerts and captions render Markdown; every message that may carry user text (a dataset name,
# a bad line's role, an error naming a user) goes through these, so it is shown as text.
def error(message: object) -> None:
    st.error(md_escape(message))


def success(message: object) -> None:
    st.success(md_escape(message))


def warning(message: object) -> None:
    st.warning(md_escape(message))


def info(message: object) -> None:
    st.info(md_escape(message))


def caption(message: object) -> None:
    st.caption(md_escape(message))
