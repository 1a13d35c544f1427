"""The playground: type a new prompt and see the base and tuned answers side by side.

Not blind and not counted as ratings. Generation runs in the worker process (never inside a page
run) and waits for a heavy-work slot like training and answer generation (a few clicks must not load
several models beside a training run), the role table applies, and so does the blinding rule: whoever may not yet see a run's results may not use its
playground either, since side-by-side labelled answers would tell them which style is which.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass

import sqlite_utils

from core.models import generation
from core.platform import permissions, processes, slots
from core.platform.store import audit, insert_row, now, transaction
from core.rating import blinding
from core.training import runs

MAX_PROMPT_CHARS = 8_000


class PlaygroundError(Exception):
    """A playground request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class PlaygroundRequest:
    id: int
    run_id: int
    prompt: str
    status: str
    base_text: str
    tuned_text: str
    error: str


def ask(db: sqlite_utils.Database, run_id: int, prompt: str, actor: str, *, system_prompt: str = "",
        max_new_tokens: int = 160, launch: bool = True) -> PlaygroundRequest:
    """Queue one prompt for the base and tuned models of a finished run; returns at once."""
    permissions.require(actor, "ask_playground")
    # The viewer picks the prompt, so every run on the same base model shares it (any_prompt).
    blinding.open_outcome(db, run_id, actor, any_prompt=True)
    prompt = prompt.strip()
    if not prompt or len(prompt) > MAX_PROMPT_CHARS:
        raise PlaygroundError(f"Type a prompt of 1 to {MAX_PROMPT_CHARS:,} characters.")
    run = runs.get_run(db, run_id)
    if run.status != "succeeded" or not run.adapter_path:
        raise PlaygroundError(f"Run {run_id} has no adapter yet; the playground needs a finished run.")
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt.strip() else []) + [
        {"role": "user", "content": prompt}]
    config = generation.GenerationConfig(max_new_tokens=max_new_tokens)
    with transaction(db):
        request_id = insert_row(db, "playground_requests", {
            "run_id": run_id, "prompt_json": json.dumps(messages), "settings_json": config.to_json(),
            "created_by": actor, "created_at": now()})
        audit(db, actor, "playground", "run", run_id, {"request": request_id})
    if launch:
        launch_next(db)
    return get(db, request_id)


def launch_next(db: sqlite_utils.Database) -> int | None:
    """Start the oldest waiting request if a heavy-work slot is free and no other heavy job has
    waited longer (core.platform.slots); returns its id. Through the one launcher (processes.launch)."""
    if slots.next_in_line(db) is None:
        return None  # nothing waits: no write lock taken

    def claim(me: processes.ProcessId) -> int | None:
        request_id = slots.turn_of(db, "playground")
        if request_id is not None:
            db.execute("UPDATE playground_requests SET pid = ?, pid_started = ? WHERE id = ?",
                       [me.pid, me.started, request_id])
        return request_id

    def record(request_id: int, me: processes.ProcessId, worker: processes.ProcessId) -> None:
        db.execute("UPDATE playground_requests SET pid = ?, pid_started = ? WHERE id = ? AND status = 'queued' "
                   "AND pid = ?", [worker.pid, worker.started, request_id, me.pid])

    def release(request_id: int, me: processes.ProcessId, error: BaseException) -> None:
        _end(db, request_id, {"status": "failed", "error": f"The worker could not be started: {error}"})

    return processes.launch(db, "playground", claim, record, release)


def get(db: sqlite_utils.Database, request_id: int) -> PlaygroundRequest:
    r = db.table("playground_requests").get(request_id)
    messages = json.loads(r["prompt_json"])
    return PlaygroundRequest(r["id"], r["run_id"], messages[-1]["content"], r["status"], r["base_text"],
                             r["tuned_text"], r["error"])


def shown_to(db: sqlite_utils.Database, request_id: int, viewer: str) -> PlaygroundRequest:
    """A request's labelled answers, for a viewer the blinding rule allows now (they may have
    started rating a run on the same base model since they asked)."""
    request = get(db, request_id)
    permissions.require(viewer, "see_outcome", run=permissions.Run(db, request.run_id, any_prompt=True))
    return request


def reconcile(db: sqlite_utils.Database) -> int:
    """Requests whose worker died become failed, so the page stops waiting (the one reconciler,
    processes.reap, then starts what waited)."""
    held = [(r["id"], r["pid"], r["pid_started"]) for r in db.query(
        "SELECT id, pid, pid_started FROM playground_requests WHERE status IN ('queued', 'running') AND pid IS NOT NULL")]
    return len(processes.reap(db, held, lambda request_id: _end(
        db, request_id, {"status": "failed", "error": "The answering process stopped unexpectedly."})))


def _end(db: sqlite_utils.Database, request_id: int, fields: dict[str, object]) -> bool:
    """A request's end, in the caller's transaction; only a request still waiting or running ends."""
    columns = {**fields, "finished_at": now()}
    return bool(db.execute(f"UPDATE playground_requests SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ? "
                           "AND status IN ('queued', 'running')", [*columns.values(), request_id]).rowcount)


def _finish(db: sqlite_utils.Database, request_id: int, fields: dict[str, object]) -> None:
    with transaction(db):
        _end(db, request_id, fields)


def answer(db: sqlite_utils.Database, request_id: int, worker: processes.ProcessId) -> None:
    """In the worker: claim the request, answer with the adapter off (base) and on (tuned)."""
    with transaction(db):
        claimed = db.execute("UPDATE playground_requests SET status = 'running', pid = ?, pid_started = ? WHERE id = ? "
                             "AND status = 'queued'", [worker.pid, worker.started, request_id]).rowcount
    if not claimed:
        return
    row = db.table("playground_requests").get(request_id)
    try:
        run = runs.get_run(db, row["run_id"])
        config = generation.GenerationConfig(**json.loads(row["settings_json"]))
        model, tokenizer = generation.load_with_adapter(run.base_model, str(run.adapter_path))
        prompt = json.loads(row["prompt_json"])
        base = generation.generate(model, tokenizer, [prompt], config, side="base")[0]
        tuned = generation.generate(model, tokenizer, [prompt], config, side="tuned")[0]
        _finish(db, request_id, {"status": "succeeded", "base_text": base, "tuned_text": tuned})
    except BaseException as exc:  # the page must learn the request ended, whatever happened
        _finish(db, request_id, {"status": "failed", "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"})
