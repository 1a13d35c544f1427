"""Playground: a new prompt, the base and tuned answers side by side (not blind, not counted)."""

import streamlit as st

from core.jobs import queue as work_queue
from core.platform import permissions
from core.rating import playground
from pages import common

common.through_app()

REQUEST_KEY = "playground.request_id"

st.title("Playground")
st.caption("Try a prompt of your own on a finished run. Both answers are labelled and nothing here counts "
           "as a rating. Answers are generated in the background, so the page stays responsive.")
db = common.db()
dataset = common.require_dataset()
runs = common.finished_runs(db, dataset)
run_id = common.choose_run("playground", runs)
with st.form("playground.ask"):
    prompt = st.text_area("Prompt", height=140, placeholder="Paste a ticket, a question, a clause…")
    max_new = st.number_input("Max new tokens", 16, 1024, 160)
    use_system = st.checkbox("Use the dataset's system prompt", value=bool(dataset.system_prompt))
    if st.form_submit_button("Answer with both models", type="primary"):
        try:
            with st.spinner("Queuing…"):
                request = playground.ask(db, run_id, prompt, common.user(), max_new_tokens=int(max_new),
                                         system_prompt=dataset.system_prompt if use_system else "")
            st.session_state[REQUEST_KEY] = request.id
        except (playground.PlaygroundError, permissions.PermissionDenied) as exc:
            common.error(exc)

request_id = st.session_state.get(REQUEST_KEY)
if request_id:
    pending = playground.get(db, int(request_id)).status in ("queued", "running")

    # Polls only while the answer is pending; a finished answer is drawn once and left alone.
    @st.fragment(run_every=common.poll_every("playground", pending))
    def answers(request_id: int) -> None:
        live = common.db()
        playground.reconcile(live)
        try:  # the viewer may have started rating a run on this base model since asking
            request = playground.shown_to(live, request_id, common.user())
        except permissions.PermissionDenied as exc:
            common.info(str(exc))
            return
        common.polled("playground", request.status, request.status in ("queued", "running"))
        if request.status in ("queued", "running"):
            # A prompt loads a model, so it waits for a heavy-work slot like training does.
            waiting = work_queue.waiting_for(work_queue.items(live), "playground", request_id)
            if waiting:
                mine, ahead = waiting
                st.info(f"Waiting for a heavy-work slot (position {mine.position}) behind "
                        + ", ".join(i.label for i in ahead) + ".")
            else:
                st.info("Loading the model and answering (a few seconds on a CPU)…")
            return
        if request.status == "failed":
            common.error(request.error.splitlines()[0] if request.error else "The request failed.")
            return
        left, right = st.columns(2)
        with left:
            st.markdown("**Base model**")
            common.show_text(request.base_text)
        with right:
            st.markdown(f"**Tuned (run {request.run_id})**")
            common.show_text(request.tuned_text)

    answers(int(request_id))
