"""The playground answers a new prompt with both models, in the worker, under the blinding rule."""

from __future__ import annotations

import time

import pytest

from core.platform import permissions, store
from core.rating import playground, sessions
from core.training import runs


def test_a_new_prompt_is_answered_by_both_models_in_the_background(rated_db):
    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    started = time.time()
    request = playground.ask(db, run_id, "Where is my order HP-4242? It is late.", "admin", max_new_tokens=12)
    assert time.time() - started < 10 and request.status in ("queued", "running")  # the page is not kept waiting
    deadline = time.time() + 240
    while (request := playground.get(db, request.id)).status in ("queued", "running") and time.time() < deadline:
        time.sleep(0.5)
    assert request.status == "succeeded", request.error
    assert request.base_text.strip() and request.tuned_text.strip()
    assert request.base_text != request.tuned_text  # the adapter (random, non-zero) changes the answer


def test_the_playground_keeps_blinding_and_refuses_empty_prompts(rated_db, team_users):
    db = store.connect(rated_db)
    run_id = runs.list_runs(db)[0].id
    session = sessions.start_session(db, run_id, "Sam")
    sessions.record_rating(db, session, session.order[0][0], "A")
    with pytest.raises(permissions.PermissionDenied, match="your own session is complete"):
        playground.ask(db, run_id, "Which one is tuned?", "Sam", launch=False)
    with pytest.raises(playground.PlaygroundError, match="Type a prompt"):
        playground.ask(db, run_id, "   ", "boss", launch=False)
