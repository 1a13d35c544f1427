"""Optional password gate: named users with roles in a TOML file, passwords stored as scrypt hashes."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
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
# Sign-in back-off (issue 23: sign-in must not lock people out; docs/reliability.md). Keyed by
# (name, client): FREE_FAILURES in the window are free, then each further attempt from that client
# on that name waits twice as long as the one before (2 s, 4 s, ... up to 5 minutes). A name under
# attack from many clients adds a short, capped wait (at most NAME_BACKOFF_MAX_S after the client's
# own last failure), and only for clients that have failed on it: the right password from a client
# with no failures on that name is never refused, so nobody can lock another person out.
FREE_FAILURES = 5
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0
NAME_FREE_FAILURES = 10
NAME_BACKOFF_MAX_S = 30.0
FAILURE_WINDOW_S = 3600.0
# Addresses (or networks) of reverse proxies whose X-Forwarded-For the studio believes; empty
# (the default) means the peer's own address is the client, whatever headers it sends.
TRUSTED_PROXIES_SETTING = "trusted_proxies"


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


def _failures(db: sqlite_utils.Database, since: float, name: str, client: str | None = None) -> list[float]:
    sql, params = "SELECT created_at FROM sign_in_failures WHERE user_name = ?", [name]
    if client is not None:
        sql, params = sql + " AND client = ?", [name, client]
    stamps = [datetime.fromisoformat(r[0]).timestamp() for r in db.execute(sql, params).fetchall()]
    return sorted(t for t in stamps if t >= since)


def _wait(failures: list[float], free: int, cap: float, since_last: float) -> float:
    """The time until which the next attempt waits: doubling past the free failures, capped."""
    extra = len(failures) - free
    return since_last + min(BACKOFF_BASE_S * 2 ** extra, cap) if extra >= 0 else 0.0


def backoff_seconds(db: sqlite_utils.Database, name: str, client: str, *, at: float) -> float:
    """Seconds left before this client may try this name again (0 when it may now)."""
    since = at - FAILURE_WINDOW_S
    mine = _failures(db, since, name, client)
    if not mine:
        return 0.0  # a client with no failures on this name is never refused
    wait_until = max(_wait(mine, FREE_FAILURES, BACKOFF_MAX_S, mine[-1]),
                     _wait(_failures(db, since, name), NAME_FREE_FAILURES, NAME_BACKOFF_MAX_S, mine[-1]))
    return max(0.0, wait_until - at)


def sign_in(db: sqlite_utils.Database, users: dict[str, User], name: str, password: str, client: str,
            *, clock: Callable[[], float] = time.time) -> User | None:
    """Check a password with back-off per (name, client); failures and refusals go to the audit log.

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
            # Only this client's slate is wiped: a success must not reset an attacker's count elsewhere.
            db.execute("DELETE FROM sign_in_failures WHERE user_name = ? AND client = ?", [name, client])
            audit(db, name, "sign_in", "user", name, {"client": client})
    return user


def parse_trusted_proxies(entries: list[str]) -> list[str]:
    """Proxy addresses or networks (`127.0.0.1`, `10.0.0.0/8`), checked; a bad one names itself."""
    cleaned = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            cleaned.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError as exc:
            raise ValueError(f"Trusted proxy {entry!r} is not an IP address or network: {exc}") from exc
    return cleaned


def trusted_proxies(db: sqlite_utils.Database) -> list[str]:
    raw = get_setting(db, TRUSTED_PROXIES_SETTING)
    return list(json.loads(raw)) if raw else []


def _is_trusted(address: str, proxies: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p) for p in proxies)


def client_of(peer: str, forwarded_for: str, proxies: list[str]) -> str:
    """The client's address for back-off: the peer's own, unless the peer is a configured trusted
    proxy; then the right-most X-Forwarded-For hop that is not a trusted proxy itself (hops to its
    left are whatever the client wrote, so they are never believed)."""
    if not proxies or not _is_trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    return next((h for h in reversed(hops) if not _is_trusted(h, proxies)), peer)


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
