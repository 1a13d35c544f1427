"""Helpers shared by the pages: database per script run, current user, safe text display."""

from __future__ import annotations

import html
from typing import Any

import sqlite_utils
import streamlit as st

from core.curation import datasets
from core.models import registry
from core.platform import auth, permissions, store, text_safety
from core.rating import pairs
from core.training import runs as training

ROUTED_KEY = "studio.routed"
REQUESTED_KEY = "studio.requested_page"  # (page file, query params) of a first direct request
USER_KEY = "studio.user"
ROLE_KEY = "studio.role"
DATASET_KEY = "studio.dataset_id"


def through_app() -> None:
    """Send a page that Streamlit ran directly to the router first, keeping where the user was going.

    Streamlit treats a `pages/` folder as a legacy multipage app until the router's
    st.navigation has run once in the server process, so the very first request for a deep link
    (e.g. /train?dataset=1 after a restart) runs the page without the router's setup. The router
    then continues to the requested page with its query parameters (`continue_to_requested`);
    issue 25: it used to land on Home.
    """
    if st.session_state.get(ROUTED_KEY):
        return
    import inspect
    from pathlib import Path

    caller = inspect.stack()[1].filename  # the page file Streamlit ran
    params = st.query_params.to_dict()
    st.session_state[REQUESTED_KEY] = (f"pages/{Path(caller).name}", params)
    st.switch_page("app.py", query_params=params)


def continue_to_requested() -> None:
    """In the router, after st.navigation: go on to the page a direct first request asked for."""
    requested = st.session_state.pop(REQUESTED_KEY, None)
    if requested:
        path, params = requested
        # The sidebar may have added the dataset; the request's own parameters win.
        st.switch_page(path, query_params={**st.query_params.to_dict(), **params})


@st.cache_resource
def _startup_once(db_file: str) -> dict[str, Any]:
    """Per process: migrations, the default model, the demo project, and run reconciliation."""
    db = store.connect(db_file)
    try:
        model_dir = registry.ensure_default_model()
        model_error = ""
    except registry.ModelUnavailable as exc:
        model_dir, model_error = None, str(exc)
    from core.curation import demo

    demo.seed_demo(db)
    interrupted = training.reconcile(db)
    pairs.reconcile_jobs(db)
    from core.jobs import queue as work_queue

    work_queue.start_waiting(db)  # work left waiting when the studio stopped
    return {"model_dir": str(model_dir) if model_dir else "", "model_error": model_error,
            "interrupted": interrupted}


def startup() -> None:
    from core.platform.paths import db_path

    with st.spinner("Preparing the studio (first start converts the default model, ~30 s)…"):
        state = _startup_once(str(db_path()))
    if state["model_error"]:
        warning(f"Default model unavailable: {state['model_error']}")


def db() -> sqlite_utils.Database:
    """A fresh connection for this script run (never cached: SQLite connections are not shared)."""
    return store.connect()


def identity_provider_secrets() -> dict[str, Any] | None:
    """The secrets when an identity provider ([auth] in .streamlit/secrets.toml) is configured."""
    from core.platform import oidc

    if not st.secrets.load_if_toml_exists():
        return None
    secrets = st.secrets.to_dict()
    return secrets if oidc.configured(secrets) else None


def _oidc_gate(secrets: dict[str, Any]) -> bool:
    """Sign-in with the team's identity provider (st.login); the role comes from core.platform.oidc."""
    from core.platform import oidc

    auth.use_identity_provider(True)
    claims = st.user.to_dict()  # empty under AppTest, which has no auth context
    if not claims.get("is_logged_in"):
        st.title("Tuning Studio")
        for provider in oidc.providers(secrets):
            if st.button(f"Sign in with {provider or 'your identity provider'}", type="primary"):
                st.login(provider) if provider else st.login()
        return False
    try:
        name, role = oidc.role_for(claims, oidc.RoleMapping.from_secrets(secrets), auth.load_users())
    except ValueError as exc:
        error(exc)
        if st.button("Sign out"):
            st.logout()
        return False
    auth.admit(name, role)
    if st.session_state.get(USER_KEY) != name:
        auth.record_sign_in(db(), name, client_address(), method="oidc")
    st.session_state[USER_KEY], st.session_state[ROLE_KEY] = name, role
    return True


def login_gate() -> bool:
    """Identity provider when configured, else the optional password gate (users file present);
    without either, everyone picks a name."""
    secrets = identity_provider_secrets()
    if secrets:
        return _oidc_gate(secrets)
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
    """The browser's address for sign-in back-off: the peer's, or, when the peer is a trusted proxy
    configured in the studio settings, the address it forwarded (core.platform.auth.client_of)."""
    try:
        peer = str(st.context.ip_address or "unknown")
        forwarded = str(st.context.headers.get("X-Forwarded-For") or "")
    except (AttributeError, RuntimeError):  # not served over a websocket (AppTest)
        return "unknown"
    return auth.client_of(peer, forwarded, auth.trusted_proxies(db()))


def allowed(action: str) -> bool:
    """Whether the signed-in user's role may do this (the core function checks it again)."""
    return permissions.allowed(user(), action)


def sidebar() -> None:
    with st.sidebar:
        if auth.load_users() or auth.identity_provider_mode():
            st.caption(f"Signed in as **{md_escape(st.session_state[USER_KEY])}** ({st.session_state[ROLE_KEY]})")
            if st.button("Sign out"):
                st.session_state.pop(USER_KEY, None)
                st.session_state.pop(ROLE_KEY, None)
                if auth.identity_provider_mode():
                    st.logout()
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


def user_table(rows: list[dict[str, Any]], *, file_name: str, key: str) -> None:
    """A table that holds user text. Streamlit's own "Download as CSV" is off for the whole studio
    (`client.disableDataExport`): it writes a cell such as `=HYPERLINK(...)` as a live formula.
    The studio offers its own CSV instead, every cell neutralised (text_safety.csv_text)."""
    st.dataframe(rows, hide_index=True)
    if rows:
        st.download_button("Download CSV", text_safety.csv_text(rows), file_name=file_name, mime="text/csv",
                           key=key)


def heading(text: object) -> None:
    """A heading made of user text (a dataset name): shown as plain text, never Markdown, so a name
    holding a URL or an e-mail address is not turned into a live link (issue 23)."""
    st.html(f"<h3>{html.escape(str(text))}</h3>")


def md_escape(text: object) -> str:
    """User text inside Markdown (headings, captions, labels): see core.platform.text_safety."""
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


# ----------------------------------------------------------------------------- live panels
# Polling costs the server a script run each time (issue 16: one idle tab kept 12 % of a core busy).
# A live panel polls only while its work is live, and backs off while nothing changes.

POLL_BASE_S = 2.0
POLL_CEILING_S = 16.0
QUIET_POLLS_BEFORE_BACKOFF = 3


def poll_every(key: str, live: bool) -> float | None:
    """The run_every for a live panel: None (no polling) once its work is finished."""
    if not live:
        st.session_state.pop(f"poll.{key}", None)
        return None
    return float(st.session_state.setdefault(f"poll.{key}", POLL_BASE_S))


def polled(key: str, signature: object, live: bool) -> None:
    """Call inside the panel on every poll with what it shows. Three quiet polls double the interval
    (up to POLL_CEILING_S); a change after a quiet spell, or the work ending, goes back to the start.
    A new interval needs a full rerun to take effect, which happens only at those transitions."""
    state = st.session_state
    interval = float(state.get(f"poll.{key}", POLL_BASE_S))
    quiet = state.get(f"poll.quiet.{key}", 0)
    changed = signature != state.get(f"poll.sig.{key}")
    state[f"poll.sig.{key}"] = signature
    if not live:
        if state.pop(f"poll.{key}", None) is not None:
            st.rerun()  # the panel is declared again, without polling
        return
    if changed:
        state[f"poll.quiet.{key}"] = 0
        if interval > POLL_BASE_S:
            state[f"poll.{key}"] = POLL_BASE_S
            st.rerun()
        return
    state[f"poll.quiet.{key}"] = quiet + 1
    if quiet + 1 >= QUIET_POLLS_BEFORE_BACKOFF and interval < POLL_CEILING_S:
        state[f"poll.{key}"] = min(POLL_CEILING_S, interval * 2)
        state[f"poll.quiet.{key}"] = 0
        st.rerun()


def show_queue(db: sqlite_utils.Database, queue: list[Any], *, mine: tuple[str, int] | None = None) -> None:
    """The heavy-work queue (from work_queue.items): what runs, what waits, when waiting work should start."""
    from core.platform import slots

    if not queue:
        return

    def minutes(seconds: float | None) -> str:
        return "–" if seconds is None else f"~{max(1, round(seconds / 60))} min"

    rows = [{"": "▶" if mine == (i.kind, i.object_id) else "",
             "position": "running" if i.status == "running" else i.position, "work": i.label,
             "time left": minutes(i.seconds_left) if i.status == "running" else f"takes {minutes(i.seconds_left)}",
             "expected start": "now" if i.status == "running" else f"in {minutes(i.starts_in_s)}"} for i in queue]
    st.caption(f"Heavy-work queue: {slots.capacity(db)} at a time on this machine (Settings). "
               "Training and answer generation share it, first come first served.")
    st.dataframe(rows, hide_index=True)
