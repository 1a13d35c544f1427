"""Results: evaluation summary with honest statistics, charts, exports and sign-off."""

import pandas as pd
import streamlit as st

from core.platform import permissions
from core.rating import blinding, preferences, sessions
from core.rating import pairs as answer_pairs
from core.reports import charts, export, report_format, standings
from core.reports import summary as stats
from core.training import rounds
from core.training import runs as runs_module
from pages import common, export_view

common.through_app()

@st.cache_data(ttl=600, show_spinner="Computing statistics…", max_entries=32)
def summary_for(run_id: int, ratings_signature: tuple) -> stats.Summary:
    del ratings_signature  # cache key only: recomputed when ratings change
    return stats.summarize(common.db(), run_id)


@st.cache_data(ttl=600, show_spinner="Scoring every adapter against the base…", max_entries=8)
def strengths_for(dataset_id: int, viewer: str, ranked: tuple, ratings_signature: tuple) -> list:
    # `ranked` (the runs this viewer may see ranked) is a key: blinding changes without a rating.
    del ranked, ratings_signature
    return standings.scores_against_base(common.db(), dataset_id, viewer)


@st.cache_data(ttl=600, show_spinner="Fitting Bradley–Terry on every pairwise comparison…", max_entries=8)
def pairwise_for(dataset_id: int, viewer: str, ranked: tuple, ratings_signature: tuple) -> list:
    del ranked, ratings_signature  # cache keys only
    return standings.strengths(common.db(), dataset_id, viewer)


st.title("Results")
db = common.db()
dataset = common.require_dataset()
runs = common.finished_runs(db, dataset)
approved = [r.id for r in runs if r.approval == "approved"]
if approved:
    common.success(f"Approved adapter for this dataset: run {approved[0]}")
rated = sessions.rated_runs(db, [r.id for r in runs])
run_id = common.choose_run("results", runs, prefer=[r.id for r in runs if r.id in rated])
closed = sessions.rating_closed(db, run_id)
if closed:
    st.caption("Rating of this run is closed: votes are final.")
elif common.allowed("close_rating"):
    if st.button("Close rating", help="Votes freeze and everyone may see this run's results."):
        sessions.close_rating(db, run_id, actor=common.user())
        st.rerun()
# Blinding is decided in core (allowed(viewer, "see_outcome", run=...)); the page only says what it decided.
try:
    blinding.open_outcome(db, run_id, common.user())
except permissions.PermissionDenied as exc:
    common.info(str(exc))
    st.stop()
summary = summary_for(run_id, stats.ratings_signature(db, run_id))
common.info(summary.verdict_text)
po, o = summary.prompt_outcomes, summary.outcomes
labels = answer_pairs.model_labels(db, run_id)  # the two models' names, now that results may be seen
st.caption(f"Compared blind: {labels['tuned']} (challenger) against {labels['base']} (reference).")
c = st.columns(6)
c[0].metric(f"Prompts: {labels['tuned']} better", po.wins)
c[1].metric(f"Prompts: {labels['base']} better", po.losses)
c[2].metric("Prompts: tied", po.ties, help=f"{po.automatic_ties} identical answer pairs count as ties")
c[3].metric("Prompts: both bad", po.both_bad, help="prompts neither model got right: " + summary.definitions["prompt outcome"])
c[4].metric("Win rate (prompts)", "–" if summary.win_rate is None else f"{summary.win_rate:.0%}",
            help=summary.definitions["win_rate"])
c[5].metric("Evidence (e-value)", report_format.e_value(summary.log10_e_value), help=summary.definitions["e_value"])
for line in report_format.statistics_lines(summary):
    st.markdown(line)  # numbers and our own words only
st.caption(f"Unit: {summary.definitions['unit']}. Score: {summary.definitions['score']}. The verdict uses "
           "the e-value and its confidence sequence, which stay valid while you watch votes arrive.")
st.plotly_chart(charts.outcome_bars(summary), width="stretch")
if summary.per_criterion:
    st.plotly_chart(charts.criterion_comparison(summary), width="stretch")
    st.caption(report_format.criterion_note(summary))
    st.dataframe(pd.DataFrame([dict(zip(report_format.criterion_header(summary.names),
                                        [r["criterion"], *report_format.criterion_cells(r)]))
                               for r in summary.per_criterion]), hide_index=True)
if summary.per_rater:  # no empty section headings (issue 25)
    st.subheader("Per rater (votes)")
    common.user_table([{**r, "position_bias_p": report_format.p_value(r["position_bias_p"])} for r in summary.per_rater], file_name=f"run-{run_id}-raters.csv", key="results.raters_csv")
st.subheader("Agreement (calibration prompts every rater rates)")
for line in export.agreement_lines(summary.agreement):
    st.markdown(line)  # names inside are escaped by export.agreement_lines
if summary.agreement.get("pairwise"):
    st.plotly_chart(charts.agreement_heatmap(summary), width="stretch")
checks = report_format.checks_table(summary.checks, summary.names)
if checks:
    st.subheader("Automatic checks")
    st.dataframe(pd.DataFrame(checks).rename(columns={"base": summary.names["base"], "tuned": summary.names["tuned"]}),
                 hide_index=True)
else:
    st.caption("No automatic checks: the dataset has no output convention or glossary, and no losses were measured.")
viewer = common.user()
strengths = strengths_for(dataset.id, viewer, tuple(standings.ranked_runs(db, dataset.id, viewer)),
                          stats.ratings_signature(db))
if len(strengths) > 1:
    st.subheader("Each adapter against the shared base (score over prompts, one scale)")
    st.caption("Adapters were each compared with the base model, never with each other: scores side by side, "
               "with prompt-bootstrap intervals; log-odds on the same scale.")
    st.dataframe(pd.DataFrame(strengths), hide_index=True)
pairwise = pairwise_for(dataset.id, viewer, tuple(standings.ranked_runs(db, dataset.id, viewer)), stats.ratings_signature(db))
if len(pairwise) > 2:
    st.subheader("Every rated model on one scale (Bradley–Terry)")
    st.caption("Fitted on the real pairwise comparisons, one per prompt (an adapter against the base or against "
               "another adapter); strength is the log-odds of beating the base model, with prompt-bootstrap "
               "95 % intervals.")
    st.dataframe(pd.DataFrame([{**r, "strength": report_format.number(r["strength"], "+.2f"),
                                "strength_ci": report_format.number(r["strength_ci"][0], "+.2f") + " to "
                                + report_format.number(r["strength_ci"][1], "+.2f") if r["strength_ci"] else "–"}
                               for r in pairwise]), hide_index=True)

st.subheader("Export")
cols = st.columns(4)
for col, fmt in zip(cols, export.FORMATS):
    # Rendered only when clicked (the HTML report inlines plotly.js, several MB).
    col.download_button(f"Download {fmt.upper()}",
                        lambda fmt=fmt, viewer=viewer: export.render(common.db(), run_id, fmt, viewer, summary),
                        file_name=f"run-{run_id}-evaluation.{fmt}", key=f"results.dl.{fmt}")

if common.allowed("export_dataset"):
    st.download_button("Download the adapter (zip with its model card)",
                       lambda: export.adapter_zip(common.db(), run_id, common.user()),
                       file_name=f"run-{run_id}-adapter.zip", mime="application/zip", key="results.dl.adapter")
export_view.take_out(db, run_id)

st.subheader("Preference round")
# The votes as DPO pairs (issue 28): chosen = the preferred answer, or a rater's correction.
pref = preferences.build(db, run_id, viewer=common.user())
left = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in pref.left_out.items() if n) or "nothing"
st.write(f"{len(pref.pairs)} preference pairs ({pref.corrections} with a correction as the chosen answer); "
         f"prompts left out: {left}. Votes sha256 `{pref.votes_sha256[:12]}`.")
if common.allowed("start_run") and st.button("Train a preference round", key="results.round",
                                             help="DPO from this run's adapter on these pairs (preset "
                                                  "preference-round), as a background run on the Train page."):
    try:
        started = rounds.start_round(db, run_id, pref.pairs, rating_run_id=run_id, votes_sha256=pref.votes_sha256,
                                     actor=common.user())
        common.success(f"Preference round queued as run {started.id}.")
    except (runs_module.RunError, permissions.PermissionDenied) as exc:
        common.error(str(exc))
for made in rounds.rounds_from(db, run_id):
    st.write(f"Run {made.id}: preference round from run {made.parent_run_id}, {made.status}.")
    if made.status == "succeeded" and not answer_pairs.pairs(db, made.id) and common.allowed("start_run") \
            and st.button(f"Blind A/B: run {made.id} vs run {made.parent_run_id}", key=f"results.ab.{made.id}",
                          help="Answer the held-out prompts the round never saw with both adapters; "
                               "then rate them on the Rate page."):
        try:
            answer_pairs.start_generation(db, made.id, actor=common.user())
            common.success(f"Answers for run {made.id} vs run {made.parent_run_id} are being generated.")
        except (answer_pairs.AnswerPairsError, permissions.PermissionDenied) as exc:
            common.error(str(exc))

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
