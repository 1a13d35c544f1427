"""Optional password gate: named users with roles in a TOML file, passwords stored as scrypt hashes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from core.paths import REPO_ROOT
from core.store import get_setting, set_setting

ROLES = ("author", "rater", "admin")
DEFAULT_TEAM = ["Dana", "Sam", "Riley"]


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
        users[name] = User(name, role, entry["password_hash"])
    return users


def check_password(users: dict[str, User], name: str, password: str) -> User | None:
    user = users.get(name.strip())
    if user is None:
        hash_password(password)  # same work either way: no timing hint about which names exist
        return None
    _scheme, salt, _digest = user.password_hash.split("$", 2)
    return user if hmac.compare_digest(hash_password(password, salt), user.password_hash) else None


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


def set_team(db: sqlite_utils.Database, names: list[str]) -> list[str]:
    cleaned = sorted({n.strip() for n in names if n.strip()})
    if not cleaned:
        raise ValueError("The team needs at least one name.")
    set_setting(db, "team", json.dumps(cleaned))
    return cleaned
