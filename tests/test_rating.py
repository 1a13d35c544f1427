"""Blind rating sessions, hidden identities, concurrency, and the loop back to curation."""

import dataclasses
import json
import multiprocessing
from dataclasses import asdict
from datetime import datetime

import pytest

from core.curation import datasets, examples
from core.platform import processes, store
from core.rating import pairs as answer_pairs
from core.rating import sessions
from core.training import eta, runs, versions


def run_id(db) -> int:
    return runs.list_runs(db)[0].id


def test_generated_pairs_are_stored_with_settings_and_checks(rated_db):
    db = store.connect(rated_db)
    run = runs.get_run(db, run_id(db))
    pairs = answer_pairs.pairs(db, run.id)
    assert len(pairs) == 20
    row = next(iter(db.query("SELECT * FROM generations LIMIT 1")))
    assert json.loads(row["settings_json"])["max_new_tokens"] == 12
    assert row["adapter_sha256"] == run.adapter_sha256
    for key in ("heldout_loss_base", "heldout_loss_tuned", "general_loss_base", "general_loss_tuned"):
        assert isinstance(run.metrics[key], float)


def test_blind_pair_reveals_nothing_before_the_vote(rated_db):
    db = store.connect(rated_db)
    session = sessions.start_session(db, run_id(db), "Dana")
    position = sessions.next_position(db, session)
    blind = sessions.blind_pair(db, session, position)
    visible = json.dumps(asdict(blind))
    assert "base" not in visible and "tuned" not in visible
    pair = next(p for p in answer_pairs.pairs(db, session.run_id) if p.position == position)
    assert {blind.text_a, blind.text_b} == {pair.base_text, pair.tuned_text}


def test_whole_session_with_resume_change_and_reveal(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    session = sessions.start_session(db, rid, "Dana")
    done, total = sessions.progress(db, session)
    assert done == 0 and total >= 1
    with pytest.raises(sessions.RatingError, match="revealed when your session is complete"):
        sessions.reveal(db, session)
    first = sessions.next_position(db, session)
    saved = sessions.record_rating(db, session, first, "A", scores={"A": {"tone": 4}, "B": {"tone": 2}},
                                 comment="A reads better", seconds_spent=3.5)
    assert saved.preferred == dict(session.order)[first]
    assert saved.scores[saved.preferred] == {"tone": 4}
    # Resume in a "new browser": the same session, same order, progress kept.
    again = sessions.start_session(store.connect(rated_db), rid, "Dana")
    assert again.id == session.id and again.order == session.order
    assert sessions.progress(db, again)[0] == 1
    # Change the last rating: updated in place, not duplicated.
    sessions.record_rating(db, again, first, "B", seconds_spent=1.0)
    assert db.execute("SELECT count(*), sum(seconds_spent) FROM ratings").fetchone() == (1, 4.5)
    while (position := sessions.next_position(db, again)) is not None:
        sessions.record_rating(db, again, position, "tie")
    revealed = sessions.reveal(db, again)
    assert len(revealed) == total and all(r.left_side in ("base", "tuned") for r in revealed)
    assert db.table("rating_sessions").get(again.id)["completed_at"]


def test_k_raters_per_pair(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    store.set_setting(db, "raters_per_pair", "1")
    first = sessions.start_session(db, rid, "Dana")
    while (position := sessions.next_position(db, first)) is not None:
        sessions.record_rating(db, first, position, "A")
    second = sessions.start_session(db, rid, "Sam")
    # Every pair has its one rating, but the calibration pairs are for everyone: the second rater
    # is never told "0 of 0, you are done" (overlap, so agreement can be measured).
    calibration = sessions.calibration_positions(db, rid)
    assert len(calibration) == min(len(first.order), max(10, -(-len(first.order) // 5)))
    assert set(sessions.session_positions(db, second)) == calibration
    assert sessions.progress(db, second) == (0, len(calibration))
    store.set_setting(db, "raters_per_pair", "2")
    assert len(sessions.session_positions(db, second)) == len(second.order)


def _rate_many(args: tuple[str, int, str]) -> int:
    path, rid, rater = args
    db = store.connect(path)
    session = sessions.start_session(db, rid, rater)
    positions = [p for p, _ in session.order]
    saved = 0
    # Changing votes keeps the last pair open: finishing a session reveals identities and freezes votes.
    open_positions = positions[:-1]
    for i in range(200):
        sessions.record_rating(db, session, open_positions[i % len(open_positions)], ("A", "B", "tie")[i % 3],
                             seconds_spent=1)
        saved += 1
    return saved


def test_eight_processes_writing_200_ratings_each_lose_nothing(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    store.set_setting(db, "raters_per_pair", "8")
    raters = [f"rater-{i}" for i in range(8)]
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        results = pool.map(_rate_many, [(str(rated_db), rid, r) for r in raters])
    assert results == [200] * 8
    pairs_per_rater = len(sessions.start_session(db, rid, "rater-0").order)
    rows = db.execute("SELECT rater, count(*), sum(seconds_spent) FROM ratings GROUP BY rater").fetchall()
    assert rows == [(r, pairs_per_rater - 1, 200.0) for r in raters]
    assert db.execute("SELECT count(*) FROM (SELECT run_id, position, rater FROM ratings GROUP BY 1, 2, 3 "
                      "HAVING count(*) > 1)").fetchone()[0] == 0


def test_corrected_answer_becomes_a_draft_example(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    pair = answer_pairs.pairs(db, rid)[0]
    example = sessions.make_training_example(db, rid, pair.position, "Category: Billing\nPriority: P2\n"
                                           "Summary: Fixed.\nReply: Send the fix.", author="Dana")
    assert example.status == "draft" and example.messages[-1]["content"].startswith("Category: Billing")
    assert example.messages[:-1] == pair.prompt
    assert f"from-rating-run-{rid}" in example.tags
    assert examples.get_example(db, example.id).author == "Dana"


def test_flags_never_point_at_one_model(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    session = sessions.start_session(db, rid, "Dana")
    position, _left = session.order[0]
    # As a PII scan of the answers would: only the base answer carries the flag.
    db.execute("UPDATE generations SET flags_json = '[\"pii\"]' WHERE run_id = ? AND position = ? AND side = 'base'",
               [rid, position])
    pair = sessions.blind_pair(db, session, position)
    assert pair.flags_a == pair.flags_b == ["pii"]


def test_going_back_shows_the_earlier_verdict_and_scores_on_the_same_sides(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    session = sessions.start_session(db, rid, "Dana")
    position = session.order[0][0]
    sessions.record_rating(db, session, position, "B", scores={"A": {"tone": 2}, "B": {"tone": 5}}, comment="B reads better")
    earlier = sessions.earlier_vote(db, session, position)
    assert earlier == sessions.EarlierVote("B", {"A": {"tone": 2}, "B": {"tone": 5}}, "B reads better")


def test_the_whole_runs_progress_counts_pairs_with_enough_votes(rated_db):
    db = store.connect(rated_db)
    rid = run_id(db)
    store.set_setting(db, "raters_per_pair", "1")
    dana = sessions.start_session(db, rid, "Dana")
    rateable = len(dana.order)
    assert sessions.run_progress(db, rid) == (0, rateable)
    for position, _left in dana.order:
        sessions.record_rating(db, dana, position, "tie")
    assert sessions.run_progress(db, rid) == (rateable, rateable)
    assert sessions.calibration_progress(db, rid).complete == 1
    # Issue 25: a second rater joining does not undo the whole run's progress; calibration says its own.
    sam = sessions.start_session(db, rid, "Sam")
    calibration = sessions.calibration_positions(db, rid)
    assert sessions.run_progress(db, rid) == (rateable, rateable)
    assert sessions.calibration_progress(db, rid) == sessions.CalibrationProgress(len(calibration), 2, 1)
    assert sessions.calibration_progress(db, rid).sentence().endswith("1 of 2 raters have rated all of them.")
    if len(calibration) < rateable:  # Sam only gets the calibration pairs: the others have their vote
        assert sessions.session_sentence(db, sam).startswith(
            f"You rate {len(calibration)} of the {rateable} pairs: the {len(calibration)} calibration pairs")
    for position in calibration:
        sessions.record_rating(db, sam, position, "tie")
    assert sessions.calibration_progress(db, rid).complete == 2


def test_time_left_comes_from_measured_step_times(db, model_dir):
    from core.curation import examples
    from core.pii import scan

    dataset = datasets.create_dataset(db, "eta")
    examples.save_example(db, dataset, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
                          status="ready")
    scan.scan_dataset(db, dataset.id)
    version = versions.freeze(db, dataset)
    queued = runs.start_run(db, version, preset="smoke-test", launch=False)
    runs.claim_run(db, queued.id, processes.ProcessId.current())
    run = runs.get_run(db, queued.id)
    run = dataclasses.replace(run, total_steps=10, started_at="2026-12-01T10:00:00+00:00")
    events = [runs.RunEvent(1, 0.1, 2.0, None, 1e-4, 50.0, 900.0, "2026-12-01T10:01:00+00:00"),
              runs.RunEvent(5, 0.5, 1.5, None, 1e-4, 50.0, 900.0, "2026-12-01T10:01:40+00:00")]
    now = datetime.fromisoformat("2026-12-01T10:02:00+00:00").timestamp()
    # 10 s a step, 5 steps to go, 20 s into the next one: 30 s, floored at the 4 steps after it.
    left = eta.time_left(run, events, now)
    assert (left.elapsed_s, left.left_s, left.basis) == (120.0, 40.0, "measured")
    assert (eta.time_left(run, events[:1], now).elapsed_s, eta.time_left(run, events[:1], now).left_s) == (120.0, None)
