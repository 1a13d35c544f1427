"""Studio-wide settings an admin changes: the team (without a users file), raters per pair, runs at once."""

from __future__ import annotations

import json

import sqlite_utils

from core import permissions
from core.store import audit, get_setting, set_setting, transaction


def _save(db: sqlite_utils.Database, actor: str, key: str, value: str) -> None:
    permissions.require(actor, "studio_settings")
    with transaction(db):
        set_setting(db, key, value)
        audit(db, actor, "setting", "settings", key, {"value": value})


def set_team(db: sqlite_utils.Database, names: list[str], actor: str = "") -> list[str]:
    cleaned = sorted({n.strip() for n in names if n.strip()})
    if not cleaned:
        raise ValueError("The team needs at least one name.")
    _save(db, actor, "team", json.dumps(cleaned))
    return cleaned


def set_raters_per_pair(db: sqlite_utils.Database, k: int, actor: str = "") -> None:
    if not 1 <= int(k) <= 10:
        raise ValueError("Raters per pair must be 1 to 10.")
    _save(db, actor, "raters_per_pair", str(int(k)))


def set_max_concurrent_runs(db: sqlite_utils.Database, n: int, actor: str = "") -> None:
    if not 1 <= int(n) <= 8:
        raise ValueError("Runs at once must be 1 to 8.")
    _save(db, actor, "max_concurrent_runs", str(int(n)))


def set_show_reference(db: sqlite_utils.Database, show: bool, actor: str = "") -> None:
    """Whether raters see the dataset's reference answer beside a pair (it can anchor them)."""
    _save(db, actor, "show_reference", "1" if show else "0")


def show_reference(db: sqlite_utils.Database) -> bool:
    return get_setting(db, "show_reference", "0") == "1"
