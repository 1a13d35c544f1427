"""Studio-wide settings an admin changes: the team (without a users file), raters per pair, heavy jobs at
once, and where runs execute (this machine or a Ray cluster)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import sqlite_utils

from core.platform import auth, permissions, slots
from core.platform.store import audit, get_setting, set_setting, transaction


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
    _save(db, actor, slots.SLOTS_SETTING, str(int(n)))


def set_trusted_proxies(db: sqlite_utils.Database, entries: list[str], actor: str = "") -> list[str]:
    """Reverse proxies whose X-Forwarded-For names the client for sign-in back-off (empty: none)."""
    cleaned = auth.parse_trusted_proxies(entries)
    _save(db, actor, auth.TRUSTED_PROXIES_SETTING, json.dumps(cleaned))
    return cleaned


def set_show_reference(db: sqlite_utils.Database, show: bool, actor: str = "") -> None:
    """Whether raters see the dataset's reference answer beside a pair (it can anchor them)."""
    _save(db, actor, "show_reference", "1" if show else "0")


def show_reference(db: sqlite_utils.Database) -> bool:
    return get_setting(db, "show_reference", "0") == "1"


@dataclass(frozen=True)
class RunTarget:
    """Where training runs execute: `local` (a worker process here) or `ray` (a Ray job)."""
    kind: str = "local"
    address: str = ""  # ray://head:10001, http://head:8265 (the dashboard) or auto
    num_gpus: float = 0.0  # GPUs each Ray job asks for
    models_dir: str = ""  # where the cluster nodes keep converted base models (STUDIO_MODELS_DIR there)

    def __post_init__(self) -> None:
        if self.kind not in ("local", "ray"):
            raise ValueError("The run target is local or ray.")
        if self.kind == "ray" and not self.address.strip():
            raise ValueError("A Ray target needs an address: ray://head:10001, http://head:8265 or auto.")
        if not 0 <= self.num_gpus <= 64:
            raise ValueError("GPUs per run must be 0 to 64.")


def run_target(db: sqlite_utils.Database) -> RunTarget:
    raw = get_setting(db, "run_target")
    return RunTarget(**json.loads(raw)) if raw else RunTarget()


def set_run_target(db: sqlite_utils.Database, target: RunTarget, actor: str = "") -> RunTarget:
    """Save the target; choosing Ray without Ray installed fails here, with how to add it."""
    if target.kind == "ray":
        require_ray()
    _save(db, actor, "run_target", json.dumps(asdict(target)))
    return target


class RayUnavailable(RuntimeError):
    """Ray is not installed in this studio's environment; the message says how to add it."""


def require_ray() -> None:
    try:
        import ray.job_submission  # noqa: F401
    except ImportError as exc:
        raise RayUnavailable(
            "Ray is not installed here. It is an optional extra: run `.venv/bin/pip install -r requirements-ray.txt` "
            "(pinned versions), restart the studio, then choose Ray again.") from exc
