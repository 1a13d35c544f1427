"""Results page: train a preference round from a rated run, then start its blind A/B against the parent."""

import os

from streamlit.testing.v1 import AppTest

from core.platform import processes, store
from core.rating import pairs as answer_pairs
from core.rating import preferences
from core.training import rounds, runs
from tests.test_preferences import vote


def hold_the_slot(db, run_id: int) -> None:
    """A running playground request of this (live) process takes the one heavy-work slot, so what the
    page queues waits in the queue instead of starting a real worker during the test. (A running
    generation job of the rated run would withdraw its answers: only a succeeded job's are shown.)"""
    me = processes.ProcessId.of(os.getpid())
    db.execute("INSERT INTO playground_requests (run_id, prompt_json, settings_json, status, pid, pid_started, "
               "created_at) VALUES (?, '[]', '{}', 'running', ?, ?, '2026-01-01T00:00:00+00:00')",
               [run_id, me.pid, me.started])


def results_page() -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/results.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_results_offers_a_preference_round_and_then_its_blind_ab(rated_db):
    db = store.connect(rated_db)
    parent = runs.list_runs(db)[0]
    positions = [p.position for p in answer_pairs.pairs(db, parent.id) if not p.identical and "pii" not in p.flags]
    for position in positions[:5]:
        vote(db, "Riley", position, "tuned")
    vote(db, "Riley", positions[5], "tie")
    hold_the_slot(db, parent.id)
    at = results_page()
    shown = " ".join(m.value for m in at.markdown)
    assert "5 preference pairs (0 with a correction" in shown and "1 tie" in shown
    assert f"{len(positions) - 6} unrated" in shown

    next(b for b in at.button if b.label == "Train a preference round").click().run()
    assert not at.exception
    made = rounds.rounds_from(db, parent.id)
    assert [(r.kind, r.parent_run_id, r.status) for r in made] == [("dpo", parent.id, "queued")]
    assert made[0].votes_sha256 == preferences.votes_sha256(db, parent.id)
    assert len(rounds.pairs_of(db, made[0].id)) == 5

    # As if the round had trained: its adapter is the parent's (the A/B's mechanics, not its outcome).
    runs.finish_run(db, made[0], {"status": "succeeded", "adapter_path": parent.adapter_path,
                                  "adapter_sha256": parent.adapter_sha256}, "")
    at = results_page()
    label = f"Blind A/B: run {made[0].id} vs run {parent.id}"
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception
    job = answer_pairs.latest_job(db, made[0].id)
    # Only the held-out prompts the round never saw are answered.
    assert job is not None and job.status == "queued" and job.total == 20 - 5
