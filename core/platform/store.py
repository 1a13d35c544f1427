"""The SQLite store: connections (WAL, busy timeout, foreign keys), migrations, audit log."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from core.platform.paths import db_path
from core.platform.schema import (
    SCHEMA_V1,
    SCHEMA_V2,
    SCHEMA_V3,
    SCHEMA_V4,
    SCHEMA_V5,
    SCHEMA_V7,
    SCHEMA_V8,
    SCHEMA_V9,
    SCHEMA_V11,
    SCHEMA_V12,
    SCHEMA_V13,
)

BUSY_TIMEOUT_MS = 10_000
migrations = Migrations("tuning-studio")


class StoreError(Exception):
    """A write that could not be completed; nothing of it was kept."""


def now() -> str:
    """ISO-8601 UTC timestamp used in every table."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect(path: str | Path | None = None, *, migrate: bool = True) -> sqlite_utils.Database:
    """A fresh connection per script run / process, never shared between threads."""
    target = db_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    # Autocommit mode: we open every transaction explicitly (see `transaction`).
    conn.isolation_level = None
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    # Deleted and overwritten content is zeroed on disk, so erased personal data does not linger
    # in free pages (see core.pii.erasure.erase_values, which also checkpoints the WAL).
    db.execute("PRAGMA secure_delete = ON")
    if migrate:
        migrations.apply(db)
    return db


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One multi-row write: BEGIN IMMEDIATE takes the write lock up front so two raters queue
    behind the busy timeout instead of failing half way; any error rolls everything back."""
    conn = db.conn
    if conn.in_transaction:  # nested use joins the outer transaction
        yield db
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise StoreError(f"The database is busy or unwritable: {exc}") from exc
    try:
        yield db
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        # SQLite may already have rolled back (disk full, I/O error); make sure, then explain.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreError(f"Could not save, nothing was written: {exc}") from exc
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _audit_row(actor: str, action: str, object_type: str, object_id: int | str | None,
               detail: dict[str, Any] | None) -> dict[str, Any]:
    return {"actor": actor or "anonymous", "action": action, "object_type": object_type,
            "object_id": None if object_id is None else str(object_id),
            "detail_json": json.dumps(detail or {}, sort_keys=True)}


def audit(db: sqlite_utils.Database, actor: str, action: str, object_type: str,
          object_id: int | str | None, detail: dict[str, Any] | None = None) -> None:
    """Append to the audit log. Callers pass descriptions, never raw PII values."""
    db.table("audit_log").insert({**_audit_row(actor, action, object_type, object_id, detail), "created_at": now()})


def audit_once(db: sqlite_utils.Database, actor: str, action: str, object_type: str,
               object_id: int | str | None, detail: dict[str, Any] | None = None, *, since: str = "") -> bool:
    """Append unless the same entry (actor, action, object, detail) was logged at or after `since`;
    True when it appended. For events a page repeats on every load (call inside the transaction)."""
    row = _audit_row(actor, action, object_type, object_id, detail)
    if db.execute("SELECT 1 FROM audit_log WHERE action = ? AND object_type = ? AND object_id IS ? AND actor = ? "
                  "AND detail_json = ? AND created_at >= ?",
                  [row["action"], row["object_type"], row["object_id"], row["actor"], row["detail_json"],
                   since]).fetchone():
        return False
    db.table("audit_log").insert({**row, "created_at": now()})
    return True


def get_setting(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def set_setting(db: sqlite_utils.Database, key: str, value: str) -> None:
    db.table("settings").upsert({"key": key, "value": value, "updated_at": now()}, pk="key")


def last_migration(db: sqlite_utils.Database) -> str | None:
    applied = migrations.applied(db)
    return applied[-1].name if applied else None


def table_counts(db: sqlite_utils.Database) -> dict[str, int]:
    return {name: db[name].count for name in db.table_names()
            if not name.startswith(("_", "sqlite_"))}


# ---------------------------------------------------------------------------------------------
# Migrations: append only, never edit one that has landed (docs/data-model.md).
# ---------------------------------------------------------------------------------------------

@migrations()
def m001_initial_schema(db: sqlite_utils.Database) -> None:
    _run_statements(db, SCHEMA_V1)


@migrations()
def m002_trust(db: sqlite_utils.Database) -> None:
    """Rating closures, sign-in failures, a store id for run folders, and change counters."""
    _run_statements(db, SCHEMA_V2)
    # The tables counted when this migration landed; later migrations add their own.
    for statement in change_triggers(["examples", "quarantine", "datasets", "dataset_versions", "pii_findings",
                                      "pii_scans", "pii_configs", "ratings", "generations", "rating_closures",
                                      "runs"]):
        db.execute(statement)
    db.execute("INSERT OR IGNORE INTO settings (key, value, updated_at) VALUES ('store_id', ?, ?)",
               [secrets.token_hex(4), now()])


@migrations()
def m003_pii_values(db: sqlite_utils.Database) -> None:
    """Review by distinct value: one decision per value and dataset (issue 16)."""
    _run_statements(db, SCHEMA_V3)
    for statement in change_triggers(["pii_value_decisions"]):
        db.execute(statement)


@migrations()
def m004_queue_and_targets(db: sqlite_utils.Database) -> None:
    """One queue for heavy work (expected durations) and where a run or job executes (issues 16, 17)."""
    _run_statements(db, SCHEMA_V4)


@migrations()
def m005_evalue_entries(db: sqlite_utils.Database) -> None:
    """A prompt's outcome is fixed when it enters the e-value; k is read when rating starts (issue 26).
    Runs already being rated get the current k as their plan and their entries from the votes in
    hand (first k votes in time order), as the summary counted them before."""
    _run_statements(db, SCHEMA_V5)
    for statement in change_triggers(["rating_plans", "evalue_entries"]):
        db.execute(statement)
    k = int(get_setting(db, "raters_per_pair", "1") or 1)
    stamp = now()
    db.execute("INSERT INTO rating_plans (run_id, raters_per_pair, created_at) "
               "SELECT DISTINCT run_id, ?, ? FROM rating_sessions", [k, stamp])
    votes: dict[tuple[int, int], list[str]] = {}
    for run_id, position, preferred in db.execute(
            "SELECT run_id, position, preferred FROM ratings ORDER BY created_at, id").fetchall():
        votes.setdefault((run_id, position), []).append(preferred)
    value = {"tuned": 1.0, "base": 0.0, "tie": 0.5, "both_bad": 0.5}  # stat_tests.outcome_value
    for (run_id, position), preferred in votes.items():
        if len(preferred) >= k:
            db.execute("INSERT INTO evalue_entries (run_id, position, value, votes, entered_at) VALUES (?, ?, ?, ?, ?)",
                       [run_id, position, sum(value[p] for p in preferred[:k]) / k, k, stamp])


@migrations()
def m007_confirmed_vocabulary(db: sqlite_utils.Database) -> None:
    """The vocabulary an admin confirmed per dataset: an author's glossary clears nothing by itself (issue 23)."""
    _run_statements(db, SCHEMA_V7)

@migrations()
def m008_outcome_views(db: sqlite_utils.Database) -> None:
    """Looks at a run's open outcome, so that whoever looked cannot then rate it blind (issue 23)."""
    _run_statements(db, SCHEMA_V8)
    for statement in change_triggers(["outcome_views"]):
        db.execute(statement)
@migrations()
def m009_process_identity(db: sqlite_utils.Database) -> None:
    """A job's process is its pid and its start time, so a reused pid is not taken for it (issue 22)."""
    _run_statements(db, SCHEMA_V9)
@migrations()
def m011_dataset_convention(db: sqlite_utils.Database) -> None:
    """An output convention the author accepted or edited, in plain words (issue 24)."""
    _run_statements(db, SCHEMA_V11)
@migrations()
def m012_preference_rounds(db: sqlite_utils.Database) -> None:
    """Preference rounds (DPO on blind votes) and a reference model per rated run (issue 28)."""
    _run_statements(db, SCHEMA_V12)
    for statement in change_triggers(["preference_pairs"]):
        db.execute(statement)


@migrations()
def m013_audit_lookup(db: sqlite_utils.Database) -> None:
    """An index for finding a run's audit rows of one kind (the once-only refusal, issue 23)."""
    _run_statements(db, SCHEMA_V13)


def _run_statements(db: sqlite_utils.Database, script: str) -> None:
    # executescript() would COMMIT first and escape the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


# What each write changes, as a counter scope; triggers bump it inside the writing transaction,
# so no write can forget to invalidate a cache (issue 15). Caches key on these counters.
_COUNTED: list[tuple[str, str, str]] = [
    # (table, scope expression over NEW/OLD, condition)
    ("examples", "'dataset:' || {row}.dataset_id", ""),
    ("quarantine", "'dataset:' || {row}.dataset_id", ""),
    ("datasets", "'dataset:' || {row}.id", ""),
    ("dataset_versions", "'dataset:' || {row}.dataset_id", ""),
    ("pii_findings", "'dataset:' || (SELECT dataset_id FROM examples WHERE id = {row}.example_id)",
     "{row}.example_id IS NOT NULL AND (SELECT dataset_id FROM examples WHERE id = {row}.example_id) IS NOT NULL"),
    ("pii_scans", "'pii'", ""),
    ("pii_value_decisions", "'dataset:' || {row}.dataset_id", ""),
    ("pii_configs", "'pii'", ""),
    ("ratings", "'run:' || {row}.run_id", ""),
    ("generations", "'run:' || {row}.run_id", ""),
    ("rating_closures", "'run:' || {row}.run_id", ""),
    ("rating_plans", "'run:' || {row}.run_id", ""),
    ("evalue_entries", "'run:' || {row}.run_id", ""),
    ("outcome_views", "'run:' || {row}.run_id", ""),
    ("runs", "'runs'", ""),
    ("preference_pairs", "'run:' || {row}.run_id", ""),
]
# Columns whose change matters to a cached view. A running run rewrites its heartbeat, log tail
# and phase every step; counting those would throw away every summary cache while anything trains.
_COUNTED_UPDATES = {"runs": "status, approval, approval_note, metrics_json, adapter_path, adapter_sha256, "
                            "dataset_version_id"}


def change_triggers(tables: list[str] | None = None) -> list[str]:
    """CREATE TRIGGER statements for the counted tables (all, or the named ones)."""
    statements = []
    for table, scope, condition in _COUNTED:
        if tables is not None and table not in tables:
            continue
        for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            when = f" WHEN {condition.format(row=row)}" if condition else ""
            columns = f" OF {_COUNTED_UPDATES[table]}" if event == "UPDATE" and table in _COUNTED_UPDATES else ""
            statements.append(
                f"CREATE TRIGGER count_{table}_{event.lower()} AFTER {event}{columns} ON {table}{when} BEGIN "
                f"INSERT INTO change_counters (scope, value) VALUES ({scope.format(row=row)}, 1) "
                "ON CONFLICT (scope) DO UPDATE SET value = value + 1; END")
    return statements


def change_count(db: sqlite_utils.Database, *scopes: str) -> tuple[int, ...]:
    """The counters of some scopes ('dataset:3', 'run:7', 'pii', 'runs'): a cache key."""
    values = dict(db.execute(f"SELECT scope, value FROM change_counters WHERE scope IN ({', '.join('?' * len(scopes))})",
                             list(scopes)).fetchall())
    return tuple(int(values.get(s, 0)) for s in scopes)


def store_id(db: sqlite_utils.Database) -> str:
    """A random id made when the database was created: tells apart databases of the same name."""
    return get_setting(db, "store_id") or "legacy"


def checkpoint(db: sqlite_utils.Database) -> None:
    """Copy the WAL into the main file and truncate it, so no old page versions stay on disk."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def audit_entries(db: sqlite_utils.Database, limit: int = 200) -> list[dict[str, Any]]:
    """The newest audit-log entries first."""
    return list(db.query("SELECT created_at, actor, action, object_type, object_id, detail_json "
                         "FROM audit_log ORDER BY id DESC LIMIT ?", [limit]))


def insert_row(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    """Insert one row and return its integer primary key."""
    pk = db.table(table).insert(row).last_pk
    assert pk is not None
    return int(pk)
