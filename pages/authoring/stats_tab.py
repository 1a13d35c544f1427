"""Author → Statistics & duplicates: lengths, leakage, near-duplicates and the split."""

from __future__ import annotations

import pandas as pd
import sqlite_utils
import streamlit as st

from core.curation import datasets, examples
from core.curation import stats_dataset as dstats
from core.models import registry
from pages import common
from pages.authoring import state


def show(db: sqlite_utils.Database, dataset: datasets.Dataset) -> None:
    """Statistics on demand, held-out leakage, near-duplicates, and a random split."""
    if st.button("Compute statistics"):
        everything = examples.all_examples(db, dataset.id)
        stats = dstats.compute(everything, registry.DEFAULT_MODEL)
        st.info(stats.advice)
        st.plotly_chart(dstats.histograms(stats), width="stretch")
        st.dataframe(pd.DataFrame([{"examples": stats.examples, "missing system": stats.missing_system,
                                    "missing user": stats.missing_user, "over max length": stats.over_length}]),
                     hide_index=True)
    leaks = state.freeze_check(dataset.id, examples.content_signature(db, dataset.id)).leakage
    st.subheader("Held-out leakage")
    st.write("Held-out prompts that nearly duplicate training prompts block freezing." if leaks else "No leakage found.")
    if leaks:
        st.dataframe(pd.DataFrame([vars(p) for p in leaks]), hide_index=True)
    st.subheader("Near-duplicates in training")
    if st.button("Find near-duplicates"):
        near = examples.near_duplicates(db, dataset.id)
        st.write(f"{len(near)} pair(s)." if near else "None found.")
        if near:
            st.dataframe(pd.DataFrame([vars(p) for p in near]), hide_index=True)
    c = st.columns(3)
    fraction = c[0].slider("Held-out fraction", 0.05, 0.5, 0.2)
    seed = c[1].number_input("Seed", value=0, step=1)
    if c[2].button("Random split"):
        train_n, held_n = examples.random_split(db, dataset.id, fraction, int(seed), author=common.user())
        common.success(f"{train_n} train / {held_n} held-out.")
