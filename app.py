"""Tuning Studio: the router. Page config, migrations once per process, sidebar, navigation."""

from __future__ import annotations

import argparse
import os
import sys

import streamlit as st

import core  # noqa: F401  (sets HF_HUB_OFFLINE before anything imports transformers)
from pages import common


def _db_from_argv() -> None:
    # `streamlit run app.py -- --db PATH` wins over STUDIO_DB; both end up in STUDIO_DB.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    known, _ = parser.parse_known_args(sys.argv[1:])
    if known.db:
        os.environ["STUDIO_DB"] = known.db


_db_from_argv()
st.set_page_config(page_title="Tuning Studio", page_icon="🎛️", layout="wide")
common.startup()
if not common.login_gate():
    st.stop()
common.sidebar()

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True, url_path="home"),
    st.Page("pages/author.py", title="Author", icon="✍️", url_path="author"),
    st.Page("pages/pii_check.py", title="PII check", icon="🛡️", url_path="pii"),
    st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train"),
    st.Page("pages/rate.py", title="Rate", icon="⚖️", url_path="rate"),
    st.Page("pages/results.py", title="Results", icon="📊", url_path="results"),
    st.Page("pages/settings.py", title="Settings", icon="⚙️", url_path="settings"),
]
st.navigation(PAGES).run()
