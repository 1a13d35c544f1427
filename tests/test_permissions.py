"""The role x action table, walked in full against the core functions that write (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.curation import datasets, examples, importing
from core.models import registry
from core.pii import review, scan
from core.platform import permissions, store, studio_settings
from core.rating import pairs as answer_pairs
from core.rating import playground, sessions
from core.reports import export
from core.training import runs, versions

REPO = Path(__file__).resolve().parent.parent
USER_OF_ROLE = {"admin": "boss", "author": "ana", "rater": "Sam"}
LINE = json.dumps({"messages": [{"role": "user", "content": "Where is my parcel?"},
                                {"role": "assistant", "content": "On its way."}]}).encode()


def convo(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}]


class World:
    """A rated demo database plus a dataset with one open PII finding, all made by the studio."""

    def __init__(self, db: Any, random_adapter: Path, model_dir: Path) -> None:
        system = permissions.SYSTEM_ACTOR
        self.db = db
        self.demo = datasets.get_dataset(db, 1)
        self.run_id = runs.list_runs(db)[0].id
        self.version = versions.get_version(db, self.demo.id)
        self.position = answer_pairs.pairs(db, self.run_id)[0].position
        self.leaky = datasets.create_dataset(db, "leaky", actor=system)
        examples.save_example(db, self.leaky, convo("Mail me at lee.hart@example.org"), status="ready", author=system)
        scan.scan_dataset(db, self.leaky.id, actor=system)
        self.finding = review.open_findings(db, self.leaky.id)[0].id
        self.example = examples.save_example(db, self.demo, convo("Spare example"), author=system).id
        self.queued = runs.start_run(db, self.version, preset="smoke-test", actor=system, launch=False).id
        riley = sessions.start_session(db, self.run_id, "Riley")  # a vote, so sign-off has a summary
        self.closed = runs.import_adapter(db, random_adapter, self.version.id, actor=system).id
        sessions.close_rating(db, self.closed, actor=system)  # its outcome is open to every role
        sessions.record_rating(db, riley, riley.order[0][0], "A")
        self.random_adapter, self.model_dir = random_adapter, model_dir


CALLS: dict[str, Callable[[World, str], Any]] = {
    "create_dataset": lambda w, u: datasets.create_dataset(w.db, f"new by {u}", actor=u),
    "edit_dataset": lambda w, u: datasets.update_dataset(w.db, w.demo.id, actor=u, description="x"),
    "import_examples": lambda w, u: importing.import_jsonl(w.db, w.demo, LINE, author=u),
    "edit_examples": lambda w, u: examples.save_example(w.db, w.demo, convo(f"by {u}"), author=u),
    "delete_examples": lambda w, u: examples.delete_examples(w.db, [w.example], author=u),
    "pii_scan": lambda w, u: scan.scan_dataset(w.db, w.leaky.id, actor=u),
    "pii_anonymise": lambda w, u: review.anonymise(w.db, [w.finding], actor=u),
    "pii_dismiss": lambda w, u: review.dismiss(w.db, [w.finding], "a test address", actor=u),
    "pii_settings": lambda w, u: scan.save_config(w.db, scan.PiiConfig(), actor=u),
    "pii_override": lambda w, u: versions.freeze(w.db, w.leaky, actor=u, override_reason="synthetic"),
    "freeze": lambda w, u: versions.freeze(w.db, w.demo, actor=u),
    "export_dataset": lambda w, u: versions.export_jsonl(w.db, w.demo, current=True, actor=u),
    "start_run": lambda w, u: runs.start_run(w.db, w.version, preset="smoke-test", actor=u, launch=False,
                                                 allow_duplicate=True),
    "delete_run": lambda w, u: runs.delete_run(w.db, w.queued, actor=u),
    "import_adapter": lambda w, u: runs.import_adapter(w.db, w.random_adapter, w.version.id, actor=u),
    "manage_models": lambda w, u: registry.add_model(w.db, str(w.model_dir), actor=u),
    "rate": lambda w, u: sessions.start_session(w.db, w.run_id, u),
    "suggest_example": lambda w, u: sessions.make_training_example(w.db, w.run_id, w.position, "Fixed.", author=u),
    "see_outcome": lambda w, u: export.render(w.db, w.closed, "json", u),
    "view_open_results": lambda w, u: export.render(w.db, w.run_id, "json", u),
    "close_rating": lambda w, u: sessions.close_rating(w.db, w.run_id, actor=u),
    "approve": lambda w, u: export.approve(w.db, w.run_id, "approved", "looks right", u),
    "ask_playground": lambda w, u: playground.ask(w.db, w.closed, "Where is my order?", u, launch=False),
    "studio_settings": lambda w, u: studio_settings.set_raters_per_pair(w.db, 2, actor=u),
}


def test_every_action_in_the_table_is_walked():
    assert set(CALLS) == set(permissions.ACTIONS)


def test_the_documented_table_is_the_enforced_one():
    assert permissions.table_markdown() in (REPO / "docs" / "reliability.md").read_text()


@pytest.fixture
def world(rated_db, random_adapter, model_dir) -> World:
    return World(store.connect(rated_db), random_adapter, model_dir)


@pytest.mark.parametrize("role", ["admin", "author", "rater"])
@pytest.mark.parametrize("action", sorted(permissions.ACTIONS))
def test_role_table_is_enforced_in_core(world, team_users, role, action):
    user = USER_OF_ROLE[role]
    before = world.db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    if role in permissions.ACTIONS[action]:
        CALLS[action](world, user)  # allowed: it does its work
    else:
        # Results of an open run are refused by the blinding rule, which says why in its own words.
        expected = "still open" if action == "view_open_results" else f"{user} \\({role}\\) may not"
        with pytest.raises(permissions.PermissionDenied, match=expected):
            CALLS[action](world, user)
        assert world.db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before  # nothing written


@pytest.mark.parametrize("action", sorted(permissions.ACTIONS))
def test_without_a_users_file_the_single_user_may_do_everything(world, action):
    CALLS[action](world, "Dana")


def test_a_name_not_in_the_users_file_may_do_nothing(world, team_users):
    for action in ("create_dataset", "rate", "pii_dismiss"):
        with pytest.raises(permissions.PermissionDenied, match="not a user of this studio"):
            CALLS[action](world, "mallory")


def test_an_outcome_is_always_asked_about_a_run_and_an_unregistered_rule_fails_loudly(world):
    with pytest.raises(ValueError, match="asked about a run"):
        permissions.allowed("Dana", "see_outcome")
    run = permissions.Run(world.db, world.closed)
    assert permissions.allowed("Dana", "see_outcome", run=run)
    assert permissions.decide("Dana", "see_outcome", run=permissions.Run(world.db, 9999)).reason == "There is no run 9999."
    # The platform alone (rating never imported) has no rule for runs: it refuses to guess.
    probe = ("from core.platform import permissions\n"
             "try:\n    permissions.allowed('Dana', 'see_outcome', run=permissions.Run(None, 1))\n"
             "except LookupError as exc:\n    print('refused:', exc)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "STUDIO_USERS_FILE": str(REPO / "no-such-users.toml")})
    assert done.stdout.startswith("refused: No rule decides 'see_outcome' for a run"), done.stderr


def test_the_studio_name_is_reserved(tmp_path, monkeypatch):
    from core.platform import auth

    path = tmp_path / "users.toml"
    path.write_text(auth.add_user_line("studio", "rater", "pw"))
    with pytest.raises(ValueError, match="reserved"):
        auth.load_users(path)
