"""Where the studio keeps its files: database, converted models, adapters, exports."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = REPO_ROOT / "data" / "studio.db"


def db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The database path: explicit argument, then STUDIO_DB, then data/studio.db."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("STUDIO_DB")
    return Path(env) if env else DEFAULT_DB


def data_dir(db: Path) -> Path:
    """Files that belong to one database (adapters, exports) live beside it."""
    return db.resolve().parent


def models_dir() -> Path:
    """Converted base models are shared by every database on the machine (they are large)."""
    env = os.environ.get("STUDIO_MODELS_DIR")
    return Path(env) if env else REPO_ROOT / "data" / "models"


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, fallback: str = "item") -> str:
    """A user-given name made safe to use as one path component (no separators, no '..')."""
    cleaned = _SAFE.sub("-", name).strip("-.")[:80]
    return cleaned or fallback


@contextmanager
def published_folder(out: Path) -> Iterator[Path]:
    """A folder that appears whole or not at all: yields a staging folder beside `out`, renamed to
    `out` when the block ends without error and removed otherwise. `out` must be absent or empty."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        yield staging
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
