"""Optional password gate: named users with roles in a TOML file, passwords stored as scrypt hashes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from math import ceil
from pathlib import Path

import sqlite_utils

from core.platform.paths import REPO_ROOT
from core.platform.store import audit, get_setting, transaction

ROLES = ("author", "rater", "admin")
DEFAULT_TEAM = ["Dana", "Sam", "Riley"]
SYSTEM_ACTOR = "studio"  # the studio's own writes (demo seed, reconcile); never a user name
# Sign-in back-off: this many failures in the window are free, then each further attempt waits
# twice as long as the one before (2 s, 4 s, ... up to 5 minutes), per name and per client.
FREE_FAILURES = 5
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0
FAILURE_WINDOW_S = 3600.0


# People admitted by the identity provider (core.platform.oidc) in this server process, with their role.
# Filled only by the sign-in path of the app; the CLI and the worker use the users file.
_ADMITTED: dict[str, str] = {}
_IDENTITY_PROVIDER = {"on": False}


def use_identity_provider(on: bool = True) -> None:
    """Turn on identity-provider mode: names not admitted by it have no role (not `anonymous`)."""
    _IDENTITY_PROVIDER["on"] = on
    if not on:
        _ADMITTED.clear()


def identity_provider_mode() -> bool:
    return _IDENTITY_PROVIDER["on"]


def admit(name: str, role: str) -> None:
    if role not in ROLES or not name or name == SYSTEM_ACTOR:
        raise ValueError(f"cannot admit {name!r} as {role!r}")
    _ADMITTED[name] = role


def admitted_role(name: str) -> str | None:
    return _ADMITTED.get(name)


class SignInRefused(Exception):
    """Too many failed sign-ins for this name or client; the message says how long to wait."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str


def users_file() -> Path:
    return Path(os.environ.get("STUDIO_USERS_FILE", REPO_ROOT / ".streamlit" / "users.toml"))


def hash_password(password: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=2**14, r=8, p=1).hex()
    return f"scrypt${salt}${digest}"


def load_users(path: Path | None = None) -> dict[str, User]:
    """Users from the file; an absent file means no gate (single-team local mode)."""
    target = path or users_file()
    if not target.exists():
        return {}
    data = tomllib.loads(target.read_text(encoding="utf-8"))
    users = {}
    for name, entry in data.get("users", {}).items():
        role = entry.get("role", "rater")
        if role not in ROLES:
            raise ValueError(f"{target}: user {name} has unknown role {role!r}")
        if name == SYSTEM_ACTOR:
            raise ValueError(f"{target}: '{SYSTEM_ACTOR}' is reserved for the studio's own writes")
        users[name] = User(name, role, entry["password_hash"])
    return users


def check_password(users: dict[str, User], name: str, password: str) -> User | None:
    user = users.get(name.strip())
    if user is None:
        hash_password(password)  # same work either way: no timing hint about which names exist
        return None
    _scheme, salt, _digest = user.password_hash.split("$", 2)
    return user if hmac.compare_digest(hash_password(password, salt), user.password_hash) else None


def _failures(db: sqlite_utils.Database, column: str, value: str, since: float) -> list[float]:
    rows = db.execute(f"SELECT created_at FROM sign_in_failures WHERE {column} = ?", [value]).fetchall()
    stamps = [datetime.fromisoformat(r[0]).timestamp() for r in rows]
    return sorted(t for t in stamps if t >= since)


def backoff_seconds(db: sqlite_utils.Database, name: str, client: str, *, at: float) -> float:
    """Seconds left before this name or client may try again (0 when it may now)."""
    wait_until = 0.0
    for column, value in (("user_name", name), ("client", client)):
        recent = _failures(db, column, value, at - FAILURE_WINDOW_S)
        extra = len(recent) - FREE_FAILURES
        if extra >= 0:
            wait = min(BACKOFF_BASE_S * 2 ** extra, BACKOFF_MAX_S)
            wait_until = max(wait_until, recent[-1] + wait)
    return max(0.0, wait_until - at)


def sign_in(db: sqlite_utils.Database, users: dict[str, User], name: str, password: str, client: str,
            *, clock: Callable[[], float] = time.time) -> User | None:
    """Check a password with back-off; failures and refusals go to the audit log.

    Returns the user, or None for a wrong name or password; raises SignInRefused while backing off.
    """
    name, client = name.strip(), client or "unknown"
    at = clock()
    wait = backoff_seconds(db, name, client, at=at)
    if wait > 0:
        with transaction(db):
            audit(db, name or "anonymous", "sign_in_refused", "user", name, {"client": client, "wait_s": round(wait)})
        raise SignInRefused(f"Too many failed sign-ins. Try again in {ceil(wait - 1e-6)} s.")
    user = check_password(users, name, password)
    stamp = datetime.fromtimestamp(at, UTC).isoformat()
    with transaction(db):
        if user is None:
            db.table("sign_in_failures").insert({"user_name": name, "client": client, "created_at": stamp})
            audit(db, name or "anonymous", "sign_in_failed", "user", name, {"client": client})
        else:
            db.execute("DELETE FROM sign_in_failures WHERE user_name = ?", [name])
            audit(db, name, "sign_in", "user", name, {"client": client})
    return user


def record_sign_in(db: sqlite_utils.Database, name: str, client: str, *, method: str) -> None:
    """Audit a sign-in made elsewhere (the identity provider checked the person)."""
    with transaction(db):
        audit(db, name, "sign_in", "user", name, {"client": client or "unknown", "method": method})


def add_user_line(name: str, role: str, password: str) -> str:
    """A TOML snippet to paste into the users file."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return f'[users.{json.dumps(name)}]\nrole = "{role}"\npassword_hash = "{hash_password(password)}"\n'


def team(db: sqlite_utils.Database) -> list[str]:
    users = load_users()
    if users:
        return sorted(users)
    raw = get_setting(db, "team")
    return json.loads(raw) if raw else list(DEFAULT_TEAM)
