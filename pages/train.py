"""Train: launch background QLoRA runs on frozen versions, watch them live, cancel, resume, compare."""

import time
from dataclasses import asdict, fields

import pandas as pd
import streamlit as st

from core.curation import datasets
from core.jobs import queue
from core.models import registry
from core.platform import permissions
from core.reports import charts
from core.training import config as training_config
from core.training import runs as training
from core.training import versions
from pages import common

common.through_app()

RUN_KEY = "train.run_id"

@st.cache_data(ttl=3600, max_entries=64, show_spinner="Counting tokens…")
def cached_estimate(version_id: int, config_json: str, base_model: str, throughput: float) -> training_config.Estimate:
    """Versions are immutable, so an estimate only changes with the config, model or measured speed."""
    del throughput  # cache key only
    live = common.db()
    return training_config.estimate(live, versions.version_by_id(live, version_id),
                                    training_config.TrainingConfig.from_json(config_json), base_model)


st.title("Train")
db = common.db()
dataset = common.require_dataset()
frozen = versions.list_versions(db, dataset.id)

# Only the open tab runs (on_change="rerun"), so the live panels poll only while "Runs" is shown.
tab_new, tab_runs, tab_compare = st.tabs(["New run", "Runs", "Compare"], key="train.tab", on_change="rerun")
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
        c = st.columns(4)
        c[0].metric("Training tokens", f"{estimate.train_tokens:,}")
        c[1].metric("Optimizer steps", estimate.steps)
        c[2].metric("Peak memory (est.)", f"{estimate.peak_memory_mb:,} MB")
        c[3].metric("Duration (est.)", f"{estimate.duration_s // 60:.0f} min {estimate.duration_s % 60:.0f} s")
        common.caption(f"Duration at {estimate.tokens_per_s:g} training tokens/s: {estimate.basis}.")
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
            st.dataframe(pd.DataFrame([{
                "run": r.id, "status": r.status + (f" ({r.phase})" if r.phase and not r.finished else ""),
                "preset": r.preset, "version": r.dataset_version_id, "approval": r.approval or "–",
                "train loss": "–" if r.metrics.get("train_loss") is None else f"{r.metrics['train_loss']:.3f}",
                "held-out loss": "–" if r.metrics.get("eval_loss") is None else f"{r.metrics['eval_loss']:.3f}",
                "queued at": r.queued_at} for r in current]), hide_index=True)

        runs_table(dataset.id)
        ids = [r.id for r in runs]
        chosen = st.session_state.get(RUN_KEY)
        run_id = st.selectbox("Run", ids, index=ids.index(chosen) if chosen in ids else 0, format_func=lambda i: f"Run {i}")
        st.session_state[RUN_KEY] = run_id

        @st.fragment(run_every=common.poll_every("train.live", not training.get_run(db, run_id).finished))
        def live(run_id: int) -> None:
            live_db = common.db()
            training.reconcile(live_db)
            run = training.get_run(live_db, run_id)
            events = training.run_events(live_db, run_id)
            last = events[-1] if events else None
            common.polled("train.live", (run.status, run.phase, last.step if last else None, run.error[:80]),
                          not run.finished)
            cols = st.columns(5)
            cols[0].metric("Status", run.status)
            cols[1].metric("Step", f"{last.step if last else 0}/{run.total_steps or '?'}")
            cols[2].metric("Epoch", f"{(last.epoch or 0):.2f}" if last else "0")
            cols[3].metric("Tokens/s", f"{last.tokens_per_s or 0:.0f}" if last else "–")
            cols[4].metric("Peak memory", f"{last.memory_mb or 0:,.0f} MB" if last else "–")
            if run.status == "running":
                elapsed, left = training.time_left_s(run, events, time.time())
                eta = "time left: measuring…" if left is None else f"about {left // 60:.0f} min {left % 60:.0f} s left"
                if left is not None and run.config.early_stopping and run.config.behaviour_checks:
                    eta = f"at most {left // 60:.0f} min {left % 60:.0f} s left (early stopping may end it sooner)"
                st.progress(min(1.0, (last.step if last else 0) / (run.total_steps or 1)),
                            text=f"{run.phase or 'running'} · {elapsed // 60:.0f} min {elapsed % 60:.0f} s elapsed · {eta}")
            if events:
                # A stable key lets the chart update in place instead of being rebuilt each poll.
                st.plotly_chart(charts.training_curves({f"run {run_id}": events}), width="stretch",
                                key=f"train.curves.{run_id}")
            if run.error:
                common.error(run.error.split("\n\n")[0])
                with st.expander("Traceback"):
                    st.code(run.error, language=None)
            if run.log_tail or run.status == "running":
                with st.expander("Log tail"):
                    st.code(run.log_tail[-3000:] or "(written when the run ends)", language=None)
            curve = run.metrics.get("behaviour_curve")
            if curve:
                common.caption("Behaviour during training: held-out format compliance on the probe prompts and "
                               "held-out loss at each check." + (f" Stopped early: {run.metrics['stopped_early']}."
                                                                 if run.metrics.get("stopped_early") else ""))
                st.dataframe(pd.DataFrame(curve), hide_index=True)
            if run.metrics:
                st.json({k: v for k, v in run.metrics.items() if k != "behaviour_curve"})

        live(run_id)
        run = training.get_run(db, run_id)
        actions = st.columns(3)
        if run.status in ("queued", "running") and actions[0].button("Cancel"):
            training.cancel_run(db, run_id, actor=common.user())
            st.info("Cancel requested: the run saves and stops at the next step.")
        if run.status in ("interrupted", "cancelled", "failed") and actions[1].button("Resume"):
            training.resume_run(db, run_id, actor=common.user())
            st.rerun()
        if run.finished and common.allowed("delete_run") and actions[2].button("Delete run"):
            training.delete_run(db, run_id, actor=common.user())
            st.rerun()
        if run.adapter_path:
            common.caption(f"Adapter: {run.adapter_path} · sha256 {run.adapter_sha256}")

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
