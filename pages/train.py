"""Train: launch background QLoRA runs on frozen versions, watch them live, cancel, resume, compare."""

import time
from dataclasses import asdict, fields
from datetime import datetime

import pandas as pd
import streamlit as st

from core.curation import datasets
from core.jobs import queue
from core.models import registry
from core.platform import permissions
from core.reports import charts
from core.training import config as training_config
from core.training import eta, versions
from core.training import run_card as run_card_words
from core.training import runs as training
from pages import common

common.through_app()

RUN_KEY = "train.run_id"  # common.choose_run's key for this page
CANCEL_ERROR_KEY = "train.cancel_error"
TABS = ["New run", "Runs", "Compare"]

@st.cache_data(ttl=3600, max_entries=64, show_spinner="Counting tokens…")
def cached_estimate(version_id: int, config_json: str, base_model: str, throughput: float) -> training_config.Estimate:
    """Versions are immutable, so an estimate only changes with the config, model or measured speed."""
    del throughput  # cache key only
    live = common.db()
    return training_config.estimate(live, versions.version_by_id(live, version_id),
                                    training_config.TrainingConfig.from_json(config_json), base_model)


@st.cache_data(ttl=20, show_spinner=False)
def machine_now() -> eta.MachineLoad:
    """What else this machine is doing; re-measured at most every 20 s (it samples CPU use for 1 s)."""
    return eta.machine_load()


st.title("Train")
db = common.db()
dataset = common.require_dataset()
frozen = versions.list_versions(db, dataset.id)

# Only the open tab runs, so the live panels poll only while "Runs" is shown. The tab a user picks lives
# in the URL (?tab=Runs&run=3), so a reload keeps it; without one, a live run opens first. The default stays
# fixed: the tabs' identity includes it, so a default that followed the live run reset the tabs to
# "New run" the moment a watched run finished (issue 28's browser journey).
if "tab" not in st.session_state and "tab" not in st.query_params \
        and any(not r.finished for r in training.list_runs(db, dataset.id)):
    st.session_state["tab"] = "Runs"
tab_new, tab_runs, tab_compare = st.tabs(TABS, key="tab", bind="query-params", default="New run")
with tab_new:
    if not frozen:
        st.info("Freeze a PII-clean version on the Author page first.")
    else:
        number = st.selectbox("Dataset version", [v.number for v in reversed(frozen)],
                              format_func=lambda n: f"v{n}")
        version = next(v for v in frozen if v.number == number)
        available = [m for m in registry.list_models(db) if m.ready]
        base = st.selectbox("Base model", [m.name for m in available])
        preset = st.selectbox("Preset", list(training_config.PRESETS), index=list(training_config.PRESETS).index(training_config.DEFAULT_PRESET),
                              help="small-data: our default for 50–500 examples. seed-article: the article's recipe.")
        defaults = asdict(training_config.PRESETS[preset])
        values = {}
        with st.expander("Every knob", expanded=False):
            cols = st.columns(3)
            for i, field in enumerate(fields(training_config.TrainingConfig)):
                col = cols[i % 3]
                key = f"train.{preset}.{field.name}"
                default = defaults[field.name]
                helptext = training_config.FIELD_HELP[field.name]
                if field.name == "method":
                    values[field.name] = col.selectbox(field.name, ["qlora", "lora"], index=["qlora", "lora"].index(default), key=key, help=helptext)
                elif field.name == "lr_scheduler":
                    values[field.name] = col.selectbox(field.name, ["cosine", "linear", "constant"],
                                                       index=["cosine", "linear", "constant"].index(default), key=key, help=helptext)
                elif isinstance(default, bool):
                    values[field.name] = col.checkbox(field.name, default, key=key, help=helptext)
                elif isinstance(default, int):
                    values[field.name] = int(col.number_input(field.name, value=default, step=1, key=key, help=helptext))
                elif isinstance(default, float):
                    values[field.name] = float(col.number_input(field.name, value=default, format="%g", key=key, help=helptext))
                else:
                    values[field.name] = col.text_input(field.name, default, key=key, help=helptext)
        try:
            config = training_config.TrainingConfig(**values)
        except ValueError as exc:
            common.error(str(exc))
            st.stop()
        try:
            estimate = cached_estimate(version.id, config.to_json(), base, training_config.measured_throughput(db))
        except registry.ModelUnavailable as exc:
            common.error(exc)
            st.stop()
        load = machine_now()
        estimate = eta.on_this_machine(estimate, load)
        c = st.columns(4)
        c[0].metric("Training tokens", f"{estimate.train_tokens:,}")
        c[1].metric("Optimizer steps", estimate.steps)
        c[2].metric("Peak memory (est.)", f"{estimate.peak_memory_mb:,} MB")
        c[3].metric("Duration (est.)", eta.duration_words(estimate.duration_s),
                    help=f"Started now, it should finish around "
                         f"{datetime.fromtimestamp(time.time() + estimate.duration_s):%H:%M}.")
        if load.busy:
            common.warning(load.sentence())
        common.caption(f"Duration at {estimate.tokens_per_s:g} training tokens/s: {estimate.basis}. Started now, "
                       f"it should finish around {datetime.fromtimestamp(time.time() + estimate.duration_s):%H:%M}.")
        if not estimate.fits:
            common.warning(f"Estimated peak memory exceeds the {estimate.available_memory_mb:,} MB available here.")
        st.caption("Build vs buy: the same training tokens at hosted fine-tuning rates (edit the rates)")
        rates = st.data_editor(pd.DataFrame([{"service": k, "$ per 1M tokens": v}
                                             for k, v in training_config.HOSTED_RATES_PER_MILLION.items()]),
                               hide_index=True, key="train.rates", num_rows="dynamic")
        costs = training_config.hosted_costs(estimate.train_tokens, dict(zip(rates["service"], rates["$ per 1M tokens"])))
        st.dataframe(pd.DataFrame([{"service": k, "cost $": v} for k, v in costs.items()]), hide_index=True)
        again = st.checkbox("Start another run even if an identical one is queued or running",
                            help="Without this, a second click on Start training does not queue a duplicate.")
        if st.button("Start training", type="primary"):
            try:
                with st.spinner("Queuing the run and starting its worker…"):
                    run = training.start_run(db, version, base_model=base, preset=preset, config=config,
                                             actor=common.user(), allow_duplicate=again,
                                             estimated_s=estimate.duration_s)
                st.session_state[RUN_KEY] = run.id
                common.success(f"Run {run.id} queued; it keeps running if you close the browser.")
            except (datasets.DatasetError, training.RunError, registry.ModelUnavailable, permissions.PermissionDenied) as exc:
                common.error(str(exc))

def cancel(run_id: int) -> None:
    """Callback: runs before the next script or fragment run, so a poll cannot swallow the click."""
    try:
        training.cancel_run(common.db(), run_id, actor=common.user())
    except permissions.PermissionDenied as exc:
        st.session_state[CANCEL_ERROR_KEY] = str(exc)


def run_card(run: training.TrainingRun, events: list) -> None:
    """A finished run in words; the numbers and the raw log behind "Technical details"."""
    with st.container(border=True):
        for title, text in run_card_words.describe(run, events).lines():
            st.markdown(f"**{title}:** {common.md_escape(text)}")


def technical_details(run: training.TrainingRun) -> None:
    with st.expander("Technical details"):
        if run.metrics:
            st.dataframe(pd.DataFrame([{"metric": k, "value": str(v)} for k, v in run.metrics.items()
                                       if k != "behaviour_curve" and v is not None]), hide_index=True)
        if run.error:
            st.code(run.error, language=None)
        log = run_card_words.readable_log(run.log_tail)
        if log:
            st.caption("Log (progress bars and library warnings left out)")
            st.code(log[-3000:], language=None)


def live_panel(run_id: int) -> None:
    """Progress, actions and the finished card of one run; polled while the run is live."""
    live_db = common.db()
    training.reconcile(live_db)
    run = training.get_run(live_db, run_id)
    events = training.run_events(live_db, run_id)
    last = events[-1] if events else None
    common.polled("train.live", (run.status, run.phase, run.cancel_requested, last.step if last else None,
                                 run.error[:80]), not run.finished)
    cols = st.columns(5)
    cols[0].metric("Status", run.status)
    cols[1].metric("Step", f"{last.step if last else 0}/{run.total_steps or '?'}")
    cols[2].metric("Epoch", f"{(last.epoch or 0):.2f}" if last else "0")
    cols[3].metric("Tokens/s", f"{last.tokens_per_s or 0:.0f}" if last else "–")
    cols[4].metric("Peak memory", f"{last.memory_mb or 0:,.0f} MB" if last else "–")
    if run.status == "running":
        left = eta.time_left(run, events, time.time())
        at_most = left.basis == "measured" and run.config.early_stopping and run.config.behaviour_checks
        st.progress(min(1.0, (last.step if last else 0) / (run.total_steps or 1)),
                    text=f"{run.phase or 'running'} · {eta.duration_words(left.elapsed_s)} elapsed · "
                         f"{left.sentence(at_most)}")
    # The confirmation comes from the database, so it stays through every refresh until the run stops.
    if run.cancel_requested and not run.finished:
        st.info("Cancelling — stops at the next step (the adapter trained so far is saved).")
    if st.session_state.get(CANCEL_ERROR_KEY):
        common.error(st.session_state.pop(CANCEL_ERROR_KEY))
    actions = st.columns(3)
    if not run.finished:
        actions[0].button("Cancel", key=f"train.cancel.{run_id}", on_click=cancel, args=(run_id,),
                          disabled=run.cancel_requested)
    if events:
        # A stable key lets the chart update in place instead of being rebuilt each poll.
        st.plotly_chart(charts.training_curves({f"run {run_id}": events}), width="stretch",
                        key=f"train.curves.{run_id}")
    if run.finished:
        run_card(run, events)
    elif run.error:
        common.error(run.error.split("\n\n")[0])
    curve = run.metrics.get("behaviour_curve")
    if curve:
        common.caption("Behaviour during training, at each check: held-out answers in the format (compliant of "
                       "probed) and the lower bound that shows for the whole held-out split, similarity to the "
                       "reference answers (chrF), the share of closed-set values equal to the reference's "
                       "(agreement), the held-out loss, and the seconds the check took.")
        st.dataframe(pd.DataFrame(curve), hide_index=True)
    if run.finished or run.log_tail:
        technical_details(run)
    if run.finished and run.status in ("interrupted", "cancelled", "failed") and actions[1].button("Resume"):
        training.resume_run(live_db, run_id, actor=common.user())
        st.rerun()
    if run.finished and common.allowed("delete_run") and actions[2].button("Delete run"):
        training.delete_run(live_db, run_id, actor=common.user())
        st.session_state.pop(RUN_KEY, None)
        st.query_params.pop("run", None)
        st.rerun()
    if run.adapter_path:
        common.caption(f"Adapter: {run.adapter_path} · sha256 {run.adapter_sha256}")


with tab_runs:
    runs = training.list_runs(db, dataset.id) if tab_runs.open else []
    if tab_runs.open and not runs:
        st.write("No runs yet.")
    elif runs:
        active = any(not r.finished for r in runs)

        # Refreshed on its own while a run is queued or running, so a status never stays stale.
        @st.fragment(run_every=common.poll_every("train.runs", active))
        def runs_table(dataset_id: int) -> None:
            live_db = common.db()
            current = training.list_runs(live_db, dataset_id)
            common.show_queue(live_db, queue.items(live_db))
            common.polled("train.runs", [(r.id, r.status, r.phase, r.metrics.get("eval_loss")) for r in current],
                          any(not r.finished for r in current))

            def train_loss(r: training.TrainingRun) -> str:
                loss = r.metrics.get("train_loss")
                if loss is None and not r.finished:  # while running: the latest step's loss
                    loss = next((e.loss for e in reversed(training.run_events(live_db, r.id)) if e.loss is not None),
                                None)
                return "–" if loss is None else f"{loss:.3f}"

            st.dataframe(pd.DataFrame([{
                "run": r.id, "status": r.status + (f" ({r.phase})" if r.phase and not r.finished else ""),
                "preset": r.preset, "version": r.dataset_version_id, "approval": r.approval or "–",
                "train loss": train_loss(r),
                "held-out loss": "–" if r.metrics.get("eval_loss") is None else f"{r.metrics['eval_loss']:.3f}",
                "queued at": r.queued_at} for r in current]), hide_index=True)

        runs_table(dataset.id)
        # This session's choice, else the URL's run, else a live run, else the newest (kept in the URL).
        run_id = common.choose_run("train", runs, prefer=[r.id for r in runs if not r.finished])
        live = st.fragment(run_every=common.poll_every("train.live", not training.get_run(db, run_id).finished))(
            live_panel)
        live(run_id)

with tab_compare:
    runs = training.list_runs(db, dataset.id)
    chosen_runs = st.multiselect("Runs to compare", [r.id for r in runs], format_func=lambda i: f"Run {i}")
    if len(chosen_runs) >= 2:
        picked = [training.get_run(db, i) for i in chosen_runs]
        diff = training_config.config_diff(picked[0].config, picked[1].config)
        st.dataframe(pd.DataFrame([{"setting": k, f"run {picked[0].id}": a, f"run {picked[1].id}": b}
                                   for k, (a, b) in diff.items()]), hide_index=True)
        st.plotly_chart(charts.training_curves({f"run {r.id}": training.run_events(db, r.id) for r in picked}),
                        width="stretch")
