"""The store: migrations, pragmas, transactions."""

import sqlite3

import pytest

from core.platform import store


def test_migrations_apply_once_and_twice_changes_nothing(db_path):
    db = store.connect(db_path)
    schema = db.execute("SELECT group_concat(sql, ';') FROM sqlite_master").fetchone()[0]
    applied = [m.name for m in store.migrations.applied(db)]
    db2 = store.connect(db_path)
    assert [m.name for m in store.migrations.applied(db2)] == applied == ["m001_initial_schema", "m002_trust", "m003_pii_values", "m004_queue_and_targets", "m005_evalue_entries", "m007_confirmed_vocabulary", "m008_outcome_views", "m009_process_identity", "m011_dataset_convention", "m012_preference_rounds", "m013_audit_lookup"]
    assert store.store_id(db2) == store.store_id(db) != "legacy"
    assert db2.execute("SELECT group_concat(sql, ';') FROM sqlite_master").fetchone()[0] == schema


def test_pragmas(db):
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == store.BUSY_TIMEOUT_MS
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_transaction_rolls_back_everything_on_error(db):
    with pytest.raises(RuntimeError):
        with store.transaction(db):
            db.table("settings").insert({"key": "a", "value": "1", "updated_at": store.now()})
            db.table("settings").insert({"key": "b", "value": "2", "updated_at": store.now()})
            raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM settings WHERE key IN ('a', 'b')").fetchone()[0] == 0


def test_locked_database_gives_clear_error_and_keeps_data(db_path):
    db = store.connect(db_path)
    store.set_setting(db, "kept", "yes")
    blocker = sqlite3.connect(db_path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    other = store.connect(db_path)
    other.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(store.StoreError, match="busy"):
        with store.transaction(other):
            other.table("settings").insert({"key": "lost", "value": "x", "updated_at": store.now()})
    blocker.rollback()
    blocker.close()
    assert store.get_setting(db, "kept") == "yes"
    assert store.get_setting(db, "lost") is None


def test_full_disk_rolls_back(db_path):
    """A write that fails (the database may not grow: disk full) leaves nothing half-written."""
    db = store.connect(db_path)
    store.set_setting(db, "before", "1")
    page_count = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {page_count}")
    with pytest.raises(store.StoreError, match="nothing was written.*full"):
        with store.transaction(db):
            for _ in range(2000):
                db.table("audit_log").insert({"actor": "t", "action": "x" * 500, "object_type": "t",
                                              "detail_json": "{}", "created_at": store.now()})
    assert db.table("audit_log").count == 0
    assert store.get_setting(db, "before") == "1"


@pytest.mark.parametrize(("name", "expected"), [
    ("Harbor & Pine support triage", "Harbor-Pine-support-triage"),
    ("../../etc/passwd", "etc-passwd"),
    ("..", "item"),
    ("a/b\\c", "a-b-c"),
    ("", "item"),
])
def test_names_that_become_paths_are_sanitised(name, expected):
    from core.platform.paths import safe_name

    assert safe_name(name) == expected
