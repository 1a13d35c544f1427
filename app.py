"""Tuning Studio: the router. Page config, migrations once per process, sidebar, navigation."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

import streamlit as st

import core  # noqa: F401  (sets HF_HUB_OFFLINE before anything imports transformers)
from core.platform import auth, permissions
from pages import common

LOOPBACK = ("127.0.0.1", "localhost", "::1")
log = logging.getLogger("tuning_studio")


def _db_from_argv() -> None:
    # `streamlit run app.py -- --db PATH` wins over STUDIO_DB; both end up in STUDIO_DB.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    known, _ = parser.parse_known_args(sys.argv[1:])
    if known.db:
        os.environ["STUDIO_DB"] = known.db


_db_from_argv()
# A local icon file: a Material icon as page_icon makes the browser fetch it from Google.
st.set_page_config(page_title="Tuning Studio", page_icon=str(Path(__file__).parent / ".streamlit" / "icon.png"),
                   layout="wide")
if (not auth.load_users() and not common.identity_provider_secrets()
        and (st.get_option("server.address") or "") not in LOOPBACK):
    # Without a users file nobody signs in, so the studio must not be reachable from other machines.
    st.error("No users file and no identity provider: the studio is single-user and only listens on "
             "127.0.0.1. To open it to a team, create .streamlit/users.toml or configure [auth] in "
             ".streamlit/secrets.toml (see the README) and start it with "
             "`make run ADDRESS=0.0.0.0`.")
    st.stop()
common.startup()
if not common.login_gate():
    st.stop()
menu = st.sidebar.container()  # filled below, once the pages are declared: the menu sits on top
common.sidebar()
st.session_state[common.ROUTED_KEY] = True

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True, url_path="home"),
    st.Page("pages/author.py", title="Author", icon=":material/edit_note:", url_path="author"),
    st.Page("pages/pii_check.py", title="PII check", icon=":material/shield:", url_path="pii"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/rate.py", title="Rate", icon=":material/balance:", url_path="rate"),
    st.Page("pages/results.py", title="Results", icon=":material/monitoring:", url_path="results"),
    st.Page("pages/playground.py", title="Playground", icon=":material/chat:", url_path="playground"),
    st.Page("pages/settings.py", title="Settings", icon=":material/settings:", url_path="settings"),
]
navigation = st.navigation(PAGES)
with menu:
    for page in PAGES:
        st.page_link(page)
common.continue_to_requested()
try:
    navigation.run()
except permissions.PermissionDenied as exc:
    common.error(exc)
except Exception:
    # The browser gets one line and an id; the traceback (with server paths) stays in the log.
    error_id = secrets.token_hex(4)
    log.exception("error id %s", error_id)
    if os.environ.get("STUDIO_RAISE_ERRORS"):  # tests: fail loudly instead of showing the line
        raise
    st.error(f"Something went wrong (error id {error_id}). An admin finds the details in the server log.")
