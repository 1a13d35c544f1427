"""Blinding across runs, second pass (issue 23): the look and the session are checked and written in
one transaction, and a first look counts for every run on the same base model and prompts."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from core.curation import demo
from core.pii import scan
from core.platform import permissions, store
from core.rating import blinding, playground, sessions
from core.reports import export
from core.training import versions
from tests.conftest import hand_run

PROMPTS = ["Where is my parcel?", "Can I change my delivery address?", "Why was I charged twice?"]


@pytest.fixture
def version_id(db, model_dir) -> int:
    """A frozen demo version (scanned with the real Presidio) for hand-made runs to point at."""
    dataset = demo.seed_demo(db)
    assert dataset is not None
    scan.scan_dataset(db, dataset.id)
    return versions.freeze(db, dataset, actor=permissions.SYSTEM_ACTOR).id


def run_in_thread_until_it_waits_for_the_write_lock(db_path: Path, call) -> tuple[threading.Thread, dict, threading.Event]:
    """Run `call(db)` on a second connection in a thread; the event is set when that connection
    asks for the write lock (BEGIN IMMEDIATE), after anything it read before asking."""
    outcome: dict[str, object] = {}
    asking = threading.Event()

    def body() -> None:
        other = store.connect(db_path)
        other.conn.set_trace_callback(lambda sql: asking.set() if sql.startswith("BEGIN IMMEDIATE") else None)
        try:
            outcome["returned"] = call(other)
        except (sessions.RatingError, permissions.PermissionDenied) as exc:
            outcome["refused"] = str(exc)
        finally:
            other.conn.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread, outcome, asking


def test_a_look_recorded_while_a_session_starts_refuses_the_session(db, db_path, version_id, random_adapter,
                                                                   team_users):
    """Interleaving: boss opens run R's open results (recorded, not yet committed) while boss's
    start_session on R runs on another connection. Before the fix start_session read the looks before
    its transaction, saw none, and wrote the session: boss rated R after seeing its standing."""
    rid = hand_run(db, version_id, random_adapter, PROMPTS)
    db.execute("BEGIN IMMEDIATE")
    blinding.open_outcome(db, rid, "boss")  # joins the open transaction: recorded, not yet committed
    thread, outcome, asking = run_in_thread_until_it_waits_for_the_write_lock(
        db_path, lambda other: sessions.start_session(other, rid, "boss"))
    assert asking.wait(60)
    db.execute("COMMIT")
    thread.join(120)
    assert "returned" not in outcome
    assert "saw run" in str(outcome["refused"]) and "would not be blind" in str(outcome["refused"])
    assert db.execute("SELECT count(*) FROM rating_sessions WHERE run_id = ?", [rid]).fetchone()[0] == 0


def test_a_session_started_while_the_outcome_opens_refuses_the_look(db, db_path, version_id, random_adapter,
                                                                   team_users):
    """Interleaving: boss starts rating run R (written, not yet committed) while boss opens R's
    results on another connection. Before the fix open_outcome asked the rule before its transaction,
    saw no session, and showed the open outcome to someone now rating the run."""
    rid = hand_run(db, version_id, random_adapter, PROMPTS)
    db.execute("BEGIN IMMEDIATE")
    sessions.start_session(db, rid, "boss")  # joins the open transaction
    thread, outcome, asking = run_in_thread_until_it_waits_for_the_write_lock(
        db_path, lambda other: blinding.open_outcome(other, rid, "boss"))
    assert asking.wait(60)
    db.execute("COMMIT")
    thread.join(120)
    assert "returned" not in outcome
    assert f"You are rating run {rid}" in str(outcome["refused"])
    assert db.execute("SELECT count(*) FROM outcome_views WHERE run_id = ?", [rid]).fetchone()[0] == 0


def refusals(db, actor: str) -> list[str]:
    return [json.loads(r["detail_json"])["reason"] for r in store.audit_entries(db)
            if r["action"] == "rating_refused" and r["actor"] == actor]


def test_a_first_look_counts_for_every_run_on_the_same_base_model_and_prompts(db, version_id, random_adapter,
                                                                              team_users):
    first = hand_run(db, version_id, random_adapter, PROMPTS)
    shared = hand_run(db, version_id, random_adapter, PROMPTS[1:])  # one prompt in common is enough
    apart = hand_run(db, version_id, random_adapter, [p + " (reworded)" for p in PROMPTS])
    elsewhere = hand_run(db, version_id, random_adapter, PROMPTS, base_model="another/base-model")
    # Dana rates `first` to the end: her revealed identities label its base answers.
    dana = sessions.start_session(db, first, "Dana")
    while (position := sessions.next_position(db, dana)) is not None:
        sessions.record_rating(db, dana, position, "A")
    for run in (first, apart, elsewhere):
        sessions.close_rating(db, run, actor="boss")

    assert "**Base model**" in export.render(db, first, "md", "Sam")  # a closed run's report: open to Sam
    with pytest.raises(sessions.RatingError, match=f"seen run {first}'s results or labelled answers, which share "
                                                   f"run {shared}'s base model and prompts"):
        sessions.start_session(db, shared, "Sam")
    assert len(refusals(db, "Sam")) == 1 and f"run {first}" in refusals(db, "Sam")[0]
    with pytest.raises(sessions.RatingError, match=f"seen run {first}'s results or labelled answers"):
        sessions.start_session(db, shared, "Dana")

    # ana asked the playground of `apart` (same base model) one of `shared`'s prompts.
    playground.ask(db, apart, PROMPTS[2], "ana", launch=False)
    with pytest.raises(sessions.RatingError, match=f"asked the playground of run {apart}, on run {shared}'s base "
                                                   "model, one of run "):
        sessions.start_session(db, shared, "ana")

    # Riley looked only at runs that tell nothing about `shared`'s base answers: other prompts, or
    # another base model; a playground prompt that `shared` does not hold.
    export.render(db, apart, "md", "Riley")
    export.render(db, elsewhere, "md", "Riley")
    playground.ask(db, apart, PROMPTS[0], "Riley", launch=False)
    assert sessions.start_session(db, shared, "Riley").rater == "Riley"
    assert refusals(db, "Riley") == []


def test_using_a_runs_own_playground_bars_rating_it(db, version_id, random_adapter, team_users):
    """Found in review: the playground of an open run showed its answers by name, and its user could
    then rate that run blind (a playground look records its request, not an outcome view)."""
    run = hand_run(db, version_id, random_adapter, PROMPTS)
    playground.ask(db, run, "Something else entirely?", "boss", launch=False)
    with pytest.raises(sessions.RatingError, match=f"used run {run}'s playground"):
        sessions.start_session(db, run, "boss")
    assert sessions.start_session(db, run, "Sam").rater == "Sam"


def test_reading_a_rounds_report_bars_rating_its_parent(db, version_id, random_adapter, team_users):
    """Found in review: a preference round's report names its parent's answers word for word, so a
    reader of that report could rate the (still open) parent blind."""
    from core.rating import pairs as answer_pairs
    from core.training import rounds, runs
    from tests.conftest import publish_generations

    prompts = PROMPTS + ["How do I return an item?", "Do you ship abroad?", "Can I pay by invoice?"]
    parent = hand_run(db, version_id, random_adapter, prompts)
    learned = [rounds.PreferencePair(p.position, p.prompt, p.tuned_text, p.base_text, "votes")
               for p in answer_pairs.pairs(db, parent)[:rounds.MINIMUM_PAIRS]]
    made = rounds.start_round(db, parent, learned, rating_run_id=parent, votes_sha256="ab" * 32, actor="boss",
                              launch=False)
    parent_run = runs.get_run(db, parent)
    runs.finish_run(db, made, {"status": "succeeded", "adapter_path": parent_run.adapter_path,
                               "adapter_sha256": parent_run.adapter_sha256}, "")
    with store.transaction(db):
        for position, prompt in list(enumerate(prompts))[rounds.MINIMUM_PAIRS:]:  # prompts it did not learn from
            for side, text in (("base", f"Run {parent} answers {prompt}"), ("tuned", f"Round {position}")):
                db.table("generations").insert({
                    "run_id": made.id, "position": position,
                    "prompt_json": json.dumps([{"role": "user", "content": prompt}]),
                    "reference": "", "side": side, "text": text, "settings_json": "{}", "created_at": store.now()})
    publish_generations(db, made.id)
    sessions.close_rating(db, made.id, actor="boss")
    export.render(db, made.id, "md", "Riley")
    with pytest.raises(sessions.RatingError, match=f"seen run {made.id}'s results or labelled answers"):
        sessions.start_session(db, parent, "Riley")
