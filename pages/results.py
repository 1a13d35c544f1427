"""Results: evaluation summary with honest statistics, charts, exports and sign-off."""

import pandas as pd
import streamlit as st

from core import charts, export, permissions, rating, stats
from pages import common

common.through_app()

@st.cache_data(ttl=600, show_spinner="Computing statistics…", max_entries=32)
def summary_for(run_id: int, ratings_signature: tuple) -> stats.Summary:
    del ratings_signature  # cache key only: recomputed when ratings change
    return stats.summarize(common.db(), run_id)


@st.cache_data(ttl=600, show_spinner="Fitting Bradley–Terry strengths…", max_entries=8)
def strengths_for(dataset_id: int, ratings_signature: tuple) -> list:
    del ratings_signature
    return stats.bradley_terry(common.db(), dataset_id)


st.title("Results")
db = common.db()
dataset = common.require_dataset()
runs = common.finished_runs(db, dataset)
approved = [r.id for r in runs if r.approval == "approved"]
if approved:
    common.success(f"Approved adapter for this dataset: run {approved[0]}")
run_id = st.selectbox("Run", [r.id for r in runs], format_func=lambda i: f"Run {i}")
# Blinding is decided in core (rating.results_access); the page only says what it decided.
access = rating.results_access(db, run_id, common.user())
closed = rating.rating_closed(db, run_id)
if closed:
    st.caption("Rating of this run is closed: votes are final.")
elif common.allowed("close_rating"):
    if st.button("Close rating", help="Votes freeze and everyone may see this run's results."):
        rating.close_rating(db, run_id, actor=common.user())
        st.rerun()
if not access.allowed:
    common.info(access.reason)
    st.stop()
summary = summary_for(run_id, stats.ratings_signature(db, run_id))
common.info(summary.verdict_text)
o = summary.outcomes
c = st.columns(5)
c[0].metric("Tuned better", o.wins)
c[1].metric("Base better", o.losses)
c[2].metric("Ties", o.ties, help=f"{o.automatic_ties} identical pairs counted automatically")
c[3].metric("Both bad", o.both_bad)
c[4].metric("Win rate", "–" if summary.win_rate is None else f"{summary.win_rate:.0%}")
st.write(f"Wilson 95 % CI: {export._ci(summary.win_rate_ci)} · sign test p = "
         f"{'–' if summary.sign_test_p is None else f'{summary.sign_test_p:.3g}'} · "
         f"score {export._pct(summary.score)} (bootstrap CI {export._ci(summary.score_ci)}) · "
         f"tie rate {export._pct(summary.tie_rate)} · both-bad rate {export._pct(summary.both_bad_rate)}")
st.caption(f"Score = {stats.SCORE_DEFINITION}.")
st.plotly_chart(charts.outcome_bars(summary), width="stretch")
if summary.per_criterion:
    st.plotly_chart(charts.criterion_comparison(summary), width="stretch")
st.subheader("Per rater")
if summary.per_rater:
    st.dataframe(pd.DataFrame(summary.per_rater), hide_index=True)
if summary.agreement.get("pairwise"):
    st.plotly_chart(charts.agreement_heatmap(summary), width="stretch")
    st.json({k: v for k, v in summary.agreement.items() if k != "pairwise"})
st.subheader("Automatic checks")
st.json(summary.checks)
strengths = strengths_for(dataset.id, stats.ratings_signature(db))
if len(strengths) > 1:
    st.subheader("Which adapter is best (Bradley–Terry, log-odds vs base)")
    st.dataframe(pd.DataFrame(strengths), hide_index=True)

st.subheader("Export")
cols = st.columns(4)
for col, fmt in zip(cols, export.FORMATS):
    # Rendered only when clicked (the HTML report inlines plotly.js, several MB).
    viewer = common.user()
    col.download_button(f"Download {fmt.upper()}",
                        lambda fmt=fmt, viewer=viewer: export.render(common.db(), run_id, fmt, viewer, summary),
                        file_name=f"run-{run_id}-evaluation.{fmt}", key=f"results.dl.{fmt}")

st.subheader("Sign-off")
if common.allowed("approve"):
    note = st.text_input("Decision note")
    a, b = st.columns(2)
    for col, decision in ((a, "approved"), (b, "rejected")):
        if col.button(decision.capitalize()):
            try:
                export.approve(db, run_id, decision, note, common.user())
                common.success(f"Run {run_id} {decision}.")
            except (ValueError, permissions.PermissionDenied) as exc:
                common.error(str(exc))
else:
    st.caption("Only admins can approve or reject a run.")
