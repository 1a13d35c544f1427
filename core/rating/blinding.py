"""The blinding rule: who may see a run's outcome, registered as permissions' `see_outcome` rule,
and the door every read of an outcome goes through (open_outcome, which records a first look)."""

from __future__ import annotations

import json

import sqlite_utils

from core.platform import permissions
from core.platform.store import audit, now, transaction
from core.rating.sessions import rating_closed, saw_open_outcome


def _blinding_sessions(db: sqlite_utils.Database, viewer: str) -> list[tuple[int, str]]:
    """(run id, base model) of the viewer's unfinished sessions on runs whose rating is open."""
    return [(r[0], r[1]) for r in db.execute(
        "SELECT s.run_id, r.base_model FROM rating_sessions s JOIN runs r ON r.id = s.run_id "
        "WHERE s.rater = ? AND s.completed_at IS NULL AND s.run_id NOT IN (SELECT run_id FROM rating_closures)",
        [viewer]).fetchall()]


def _prompts(db: sqlite_utils.Database, run_id: int) -> set[str]:
    # The whole prompt (system turn included) decides the base model's greedy answer; compared
    # parsed, so two spellings of the same JSON are the same prompt.
    return {json.dumps(json.loads(r[0]), sort_keys=True, ensure_ascii=False) for r in db.execute(
        "SELECT prompt_json FROM generations WHERE run_id = ? AND side = 'base'", [run_id])}


def _share_prompts(db: sqlite_utils.Database, run_id: int, other_id: int) -> bool:
    return not _prompts(db, run_id).isdisjoint(_prompts(db, other_id))


def sibling_conflict(db: sqlite_utils.Database, viewer: str, run_id: int, *, any_prompt: bool = False) -> str | None:
    """Why labelled answers of this run would unblind another run the viewer is still rating (same
    base model and a shared prompt), or None. Also asked by sessions.reveal: identities revealed for
    one run tell which side is the base in its siblings."""
    viewer = (viewer or "").strip()
    target = db.execute("SELECT base_model FROM runs WHERE id = ?", [run_id]).fetchone()
    for rated, base_model in _blinding_sessions(db, viewer):
        if rated != run_id and target and base_model == target[0] and (any_prompt or _share_prompts(db, rated, run_id)):
            shared = "base model" if any_prompt else "base model and prompts"
            return (f"You are rating run {rated}, which shares its {shared} with run {run_id}: run {run_id}'s results, "
                    f"exports and labelled answers open to you when your own session on run {rated} is complete, "
                    "since the base model's answers would tell you which side is which.")
    return None


@permissions.resource_rule("see_outcome")
def outcome_rule(actor: str, role: str, run: permissions.Run) -> permissions.Decision:
    """The blinding rule, asked as `permissions.allowed(actor, "see_outcome", run=...)`.

    A viewer with an unfinished session on an open run R sees nothing of R's outcome, and no outcome
    or labelled answer of any run on R's base model that shares a prompt with R (whatever their
    role): base answers are the same text for the same base model and prompt, so one labelled base
    answer tells which side is which in R. The playground (`any_prompt`) shares every prompt.
    Otherwise admins see outcomes while rating is open; everyone sees them once it is closed.
    """
    db, viewer = run.db, (actor or "").strip()
    target = db.execute("SELECT base_model FROM runs WHERE id = ?", [run.id]).fetchone()
    if target is None:
        return permissions.Decision(False, f"There is no run {run.id}.")
    for rated, _base_model in _blinding_sessions(db, viewer):
        if rated == run.id:
            return permissions.Decision(False, f"You are rating run {run.id}: its results and exports open to you "
                                               "when your own session is complete, so your remaining votes stay blind.")
    conflict = sibling_conflict(db, viewer, run.id, any_prompt=run.any_prompt)
    if conflict:
        return permissions.Decision(False, conflict)
    if rating_closed(db, run.id) or permissions.allowed(actor, "view_open_results"):
        return permissions.Decision(True)
    return permissions.Decision(False, f"Rating of run {run.id} is still open: its results and exports are for "
                                       "admins until an admin closes rating (Results → Close rating).")


def open_outcome(db: sqlite_utils.Database, run_id: int, viewer: str, *, any_prompt: bool = False) -> None:
    """The door to a run's outcome (Results, exports, the CLI summary, sign-off, the playground).

    Raises PermissionDenied with the reason unless `allowed(viewer, "see_outcome", run=...)`.
    The first look is recorded, open or closed: whoever saw a run's open outcome may not then rate
    it blind, and whoever saw any outcome of a run may not rate a run on its base model and prompts
    (start_session asks `earlier_look`). A playground look records its prompts instead (its request).
    The rule is asked inside the transaction that records the look, so a rating session that starts
    at the same moment cannot slip in between the check and the record (issue 23).
    """
    run = permissions.Run(db, run_id, any_prompt)
    viewer = (viewer or "").strip()
    if any_prompt or db.execute("SELECT 1 FROM outcome_views WHERE run_id = ? AND viewer = ?",
                                [run_id, viewer]).fetchone():
        # Nothing to record, or recorded already: from that record on, start_session refuses this
        # viewer any session the look would unblind, so a read-only check cannot be overtaken.
        permissions.require(viewer, "see_outcome", run=run)
        return
    with transaction(db):
        permissions.require(viewer, "see_outcome", run=run)
        added = db.execute("INSERT OR IGNORE INTO outcome_views (run_id, viewer, seen_at) VALUES (?, ?, ?)",
                           [run_id, viewer, now()]).rowcount
        if added and not rating_closed(db, run_id):
            audit(db, viewer or "anonymous", "see_open_outcome", "run", run_id, {})


def earlier_look(db: sqlite_utils.Database, viewer: str, run_id: int) -> str | None:
    """Why the viewer may not rate this run blind, or None; asked by start_session inside the
    transaction that writes the session.

    Base answers are the same text for the same base model, prompt and decoding, so a first look is
    counted per base-model family, not per run: an outcome the viewer opened (results, exports) of
    another run on this run's base model that shares a prompt with it, the labelled answers revealed
    after their own completed session on such a run, or a playground answer to one of this run's
    prompts on a run of the same base model, each tells which side is the base here.

    The family is the runs rated against the base model itself, where the same base text recurs,
    and the runs rated against this one (their reports name this run's answers). Using this run's
    own playground bars rating it too. A run rated against another adapter (a preference round against its parent) shows no
    base answer, so only its own first look bars it. Known and accepted: a rater who saw the
    parent's answers revealed may recognise the parent's side; barring them would bar the very team
    whose votes trained the round from judging it (issue 28). docs/reliability.md says so.
    """
    viewer = (viewer or "").strip()
    target = db.execute("SELECT base_model, reference_run_id FROM runs WHERE id = ?", [run_id]).fetchone()
    if target is None:
        return None
    if saw_open_outcome(db, run_id, viewer):
        return (f"You saw run {run_id}'s results while its rating was open, so your votes on it would not be "
                "blind: ask another team member to rate it.")
    if db.execute("SELECT 1 FROM playground_requests WHERE created_by = ? AND run_id = ?", [viewer, run_id]).fetchone():
        # The playground of this very run shows both its models' answers under their names.
        return (f"You used run {run_id}'s playground, which shows its models' answers by name, so your votes on it "
                "would not be blind: ask another team member to rate it.")
    if target[1] is not None:
        return None
    # Runs rated against the base, and runs rated against this one (a round's report shows this
    # run's answers by name, word for word).
    family = [r[0] for r in db.execute(
        "SELECT id FROM runs WHERE base_model = ? AND id != ? AND (reference_run_id IS NULL OR reference_run_id = ?)",
        [target[0], run_id, run_id])]
    looked = {r[0] for r in db.execute(
        f"SELECT run_id FROM outcome_views WHERE viewer = ? AND run_id IN ({', '.join('?' * len(family)) or 'NULL'}) "
        "UNION SELECT run_id FROM rating_sessions WHERE rater = ? AND completed_at IS NOT NULL",
        [viewer, *family, viewer])}
    for other in sorted(looked & set(family)):
        if _share_prompts(db, other, run_id):
            return (f"You have seen run {other}'s results or labelled answers, which share run {run_id}'s base model "
                    f"and prompts: its base answers are the same text, so your votes on run {run_id} would not be "
                    "blind. Ask another team member to rate it.")
    prompts = _prompts(db, run_id)
    for other, prompt_json in db.execute(
            f"SELECT run_id, prompt_json FROM playground_requests WHERE created_by = ? AND run_id IN "
            f"({', '.join('?' * len(family)) or 'NULL'}) ORDER BY id", [viewer, *family]).fetchall():
        if json.dumps(json.loads(prompt_json), sort_keys=True, ensure_ascii=False) in prompts:
            return (f"You asked the playground of run {other}, on run {run_id}'s base model, one of run {run_id}'s "
                    f"prompts: its base answer is the same text, so your votes on run {run_id} would not be blind. "
                    "Ask another team member to rate it.")
    return None
