"""Heavy-work slots shared by training runs, answer generation and playground requests (issues 16, 23).

On a 2-core machine a training run and an answer-generation job started together each run at less
than half speed, and neither user was told. Both kinds now queue for the same slots (the "heavy jobs
at once" setting, default 1), first come first served across kinds. Each kind's module claims its
own rows (one writer per table); this module only counts, inside the caller's transaction, so two
launches cannot both take the last slot. A playground request loads a model too, so it queues in the
same line: a few clicks must not load several models beside a training run on 2 cores.
"""

from __future__ import annotations

import sqlite_utils

from core.platform.store import get_setting

SLOTS_SETTING = "max_concurrent_runs"  # kept under its old name: existing studios keep their value


def capacity(db: sqlite_utils.Database) -> int:
    return int(get_setting(db, SLOTS_SETTING, "1") or 1)


def busy(db: sqlite_utils.Database) -> int:
    """Heavy jobs holding a slot: running, or claimed by a launcher that is starting their worker.
    A run on a Ray cluster takes no slot here: this machine only follows it."""
    runs = db.execute("SELECT count(*) FROM runs WHERE target = 'local' AND (status = 'running' OR "
                      "(status = 'queued' AND pid IS NOT NULL))").fetchone()[0]
    jobs = db.execute("SELECT count(*) FROM generation_jobs WHERE status = 'running' OR "
                      "(status = 'queued' AND pid IS NOT NULL)").fetchone()[0]
    asks = db.execute("SELECT count(*) FROM playground_requests WHERE status = 'running' OR "
                      "(status = 'queued' AND pid IS NOT NULL)").fetchone()[0]
    return int(runs) + int(jobs) + int(asks)


def next_in_line(db: sqlite_utils.Database) -> tuple[str, int] | None:
    """The oldest waiting heavy job across the kinds: ('training', run id), ('answers', job id) or
    ('playground', request id)."""
    row = db.execute(
        "SELECT kind, id FROM (SELECT 'training' AS kind, id, queued_at AS at FROM runs "
        "WHERE status = 'queued' AND pid IS NULL AND target = 'local' UNION ALL SELECT 'answers', id, created_at "
        "FROM generation_jobs WHERE status = 'queued' AND pid IS NULL UNION ALL SELECT 'playground', id, created_at "
        "FROM playground_requests WHERE status = 'queued' AND pid IS NULL) ORDER BY at, kind, id LIMIT 1").fetchone()
    return (str(row[0]), int(row[1])) if row else None


def waiting_remote_run(db: sqlite_utils.Database) -> int | None:
    """A queued run for a Ray cluster: it starts at once (the cluster schedules it, not our slots)."""
    row = db.execute("SELECT id FROM runs WHERE status = 'queued' AND pid IS NULL AND target = 'ray' "
                     "ORDER BY queued_at, id LIMIT 1").fetchone()
    return int(row[0]) if row else None


def turn_of(db: sqlite_utils.Database, kind: str) -> int | None:
    """The id of this kind's job to start now: a Ray run at once, local work if a slot is free and
    it is first in line."""
    if kind == "training":
        remote = waiting_remote_run(db)
        if remote is not None:
            return remote
    if busy(db) >= capacity(db):
        return None
    first = next_in_line(db)
    return first[1] if first and first[0] == kind else None
