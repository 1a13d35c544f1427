"""Rate: blind A/B comparison of base and tuned answers on held-out prompts."""

import time

import streamlit as st

from core.curation import datasets
from core.jobs import queue as work_queue
from core.models import generation
from core.platform import permissions, studio_settings
from core.rating import pairs as answer_pairs
from core.rating import sessions
from pages import common

common.through_app()


def key(name: str, session_id: int) -> str:
    """Navigation state (position, skipped, started_at, advance) per rating session, so switching
    runs (or names) never carries one run's pair into another's session (issue 23)."""
    return f"rate.{session_id}.{name}"


st.title("Rate")
db = common.db()
dataset = common.require_dataset()
runs = common.finished_runs(db, dataset)
# Open on a run that has answers to rate (newest first), not on a fresh smoke test without any.
with_pairs = answer_pairs.runs_with_pairs(db, [r.id for r in runs])
run_id = common.choose_run("rate", runs, prefer=[r.id for r in runs if r.id in with_pairs])
answer_pairs.reconcile_jobs(db)  # a job whose worker died must not keep raters waiting forever
pairs = answer_pairs.pairs(db, run_id)
job = answer_pairs.latest_job(db, run_id)

if job and job.status in ("queued", "running"):
    # Raters wait until every answer is generated and PII-scanned.
    @st.fragment(run_every=common.poll_every("rate.job", True))
    def job_progress(job_id: int) -> None:
        live = common.db()
        answer_pairs.reconcile_jobs(live)
        current = answer_pairs.get_job(live, job_id)
        queue = work_queue.items(live)
        waiting = work_queue.waiting_for(queue, "answers", job_id)
        if waiting:
            mine, ahead = waiting
            start = "as soon as a slot frees" if mine.starts_in_s is None else f"in about {max(1, round(mine.starts_in_s / 60))} min"
            common.info(f"Waiting in the heavy-work queue (position {mine.position}) behind "
                        + ", ".join(i.label for i in ahead) + f"; expected to start {start}.")
            common.show_queue(live, queue, mine=("answers", job_id))
        else:
            label = "Scanning answers for PII…" if current.done >= current.total else "Generating answers"
            st.progress(current.done / max(current.total, 1), text=f"{label} {current.done}/{current.total}")
        live_now = current.status in ("running", "queued")
        common.polled("rate.job", (current.status, current.done, bool(waiting)), live_now)
        if not live_now:
            st.rerun()

    job_progress(job.id)
    st.stop()
if not pairs:
    if job and job.status == "failed":
        common.error(job.error.split("\n")[0])
    st.write("Generate base and tuned answers for every held-out prompt (greedy by default).")
    with st.form("rate.generate"):
        max_new = st.number_input("Max new tokens", 16, 1024, 160)
        sample = st.checkbox("Sample instead of greedy (seeded)")
        seed = st.number_input("Seed", value=0, step=1)
        if st.form_submit_button("Generate answer pairs", type="primary"):
            try:
                with st.spinner("Queuing the job and starting its worker…"):
                    answer_pairs.start_generation(db, run_id, generation.GenerationConfig(
                        max_new_tokens=int(max_new), do_sample=sample, seed=int(seed)), actor=common.user())
                st.rerun()
            except answer_pairs.AnswerPairsError as exc:
                common.error(str(exc))
    st.stop()

identical = sum(p.identical for p in pairs)
st.caption(f"{len(pairs)} pairs · {identical} identical pairs counted as ties without asking anyone")
rater = common.user()
try:
    session = sessions.start_session(db, run_id, rater)
except sessions.RatingError as exc:
    common.info(exc)
    st.stop()
POSITION_KEY, SKIPPED_KEY = key("position", session.id), key("skipped", session.id)
STARTED_KEY, ADVANCE_KEY = key("started_at", session.id), key("advance", session.id)
done, total = sessions.progress(db, session)
st.progress(done / max(total, 1), text=f"{done} of {total} rated by you")
common.caption(sessions.session_sentence(db, session))
covered, rateable = sessions.run_progress(db, run_id)
common.caption(f"Whole run: {covered} of {rateable} pairs have the {sessions.raters_per_pair(db)} vote(s) "
               f"each needs. {sessions.calibration_progress(db, run_id).sentence()}")

if done >= total:
    try:
        revealed = sessions.reveal(db, session)
    except sessions.RatingError as exc:  # another run you are rating shares these prompts
        common.success("Your session is complete.")
        common.info(f"Identities stay hidden for now. {exc}")
        st.stop()
    common.success("Your session is complete. Here is what you rated, with identities revealed.")
    names = {**answer_pairs.model_labels(db, run_id), "tie": "tie", "both_bad": "both bad"}
    seen_order = {position: i for i, (position, _side) in enumerate(session.order, start=1)}
    prompts = {p.position: next((m["content"] for m in p.prompt if m["role"] == "user"), "") for p in pairs}
    st.dataframe(sorted(({"#": seen_order[r.position], "prompt": prompts.get(r.position, "")[:120],
                          "A was": names[r.left_side], "your verdict": sessions.VERDICT_LABELS[r.verdict],
                          "you preferred": names[r.preferred]} for r in revealed), key=lambda row: row["#"]),
                 hide_index=True)
    st.stop()

skipped = st.session_state.setdefault(SKIPPED_KEY, set())
position = st.session_state.get(POSITION_KEY)
if position is None or sessions.my_rating(db, session, position) is not None and st.session_state.get(ADVANCE_KEY, True):
    position = sessions.next_position(db, session, skipped=skipped)
    st.session_state[POSITION_KEY] = position
    st.session_state[STARTED_KEY] = time.time()
if position is None:
    st.stop()
pair = sessions.blind_pair(db, session, position)
existing = sessions.earlier_vote(db, session, position)

st.subheader("Conversation")
if dataset.guidelines.strip():
    with st.expander("The dataset's guidelines (what a good answer looks like)"):
        common.show_text(dataset.guidelines)
common.show_conversation(pair.prompt)
if studio_settings.show_reference(db):
    reference = next(p.reference for p in pairs if p.position == position)
    with st.expander("Reference answer (from the dataset)"):
        common.show_text(reference)
left, right = st.columns(2)
# Flags belong to the pair, never to one side: a flag under one answer would point at a model.
if "pii" in pair.flags_a:
    common.warning("One of these answers may contain personal data.")
if "names_model" in pair.flags_a:
    common.warning("One of these answers mentions a model; judge the content only.")
for col, label, text in ((left, "A", pair.text_a), (right, "B", pair.text_b)):
    with col:
        st.markdown(f"**Answer {label}**")
        common.show_text(text)
if existing:
    st.info(f"Your earlier verdict: {sessions.VERDICT_LABELS[existing.verdict]}. Vote again to change it.")

dataset_criteria = dataset.criteria
with st.form(f"rate.form.{session.id}.{position}"):
    with st.expander("Optional scores (1–5) per criterion"):
        scores: dict[str, dict[str, int]] = {"A": {}, "B": {}}
        for criterion in dataset_criteria:
            c = st.columns(2)
            for col, label in zip(c, ("A", "B")):
                earlier = existing.scores.get(label, {}).get(criterion, 0) if existing else 0
                value = col.select_slider(f"{common.md_escape(criterion)} — {label}", options=[0, 1, 2, 3, 4, 5],
                                          value=earlier,
                                          format_func=lambda v: "–" if v == 0 else str(v))
                if value:
                    scores[label][criterion] = value
    comment = st.text_input("Comment (optional)", existing.comment if existing else "")
    verdict_cols = st.columns(4)
    chosen = None
    for key, (col, verdict) in enumerate(zip(verdict_cols, sessions.VERDICTS), start=1):
        if col.form_submit_button(sessions.VERDICT_LABELS[verdict], width="stretch", shortcut=str(key)):
            chosen = verdict
    if chosen:
        spent = time.time() - st.session_state.get(STARTED_KEY, time.time())
        try:
            sessions.record_rating(db, session, position, chosen, scores={k: v for k, v in scores.items() if v},
                                 comment=comment, seconds_spent=spent)
        except sessions.RatingError as exc:
            common.error(exc)
            st.stop()
        st.session_state[POSITION_KEY] = None
        st.session_state[ADVANCE_KEY] = True
        st.rerun()

nav = st.columns(3)
if nav[0].button("Skip for now", shortcut="S"):
    skipped.add(position)
    st.session_state[POSITION_KEY] = None
    st.rerun()
last = sessions.last_rated_position(db, session)
if last is not None and nav[1].button("Go back to my last rating", shortcut="Z"):
    st.session_state[POSITION_KEY] = last
    st.session_state[ADVANCE_KEY] = False
    st.session_state[STARTED_KEY] = time.time()
    st.rerun()
with st.expander("Make this a training example"):
    corrected = st.text_area("Corrected answer", key=f"rate.fix.{session.id}.{position}")
    if st.button("Add as draft example") and corrected.strip():
        try:
            example = sessions.make_training_example(db, run_id, position, corrected, author=rater)
            common.success(f"Draft example {example.id} added to the dataset.")
        except (datasets.DatasetError, permissions.PermissionDenied) as exc:
            common.error(str(exc))
st.caption("Keyboard: 1 = A better, 2 = B better, 3 = tie, 4 = both bad, S = skip, Z = back. "
           "Nobody sees which model wrote which answer until their session is complete.")
