"""Preference rounds: the pair record, queueing a DPO round on a parent adapter, and its frozen pairs (issue 28).

The pairs are frozen into `preference_pairs` when the round is queued (written by core.training.runs
in the same transaction as the run), so what the round learned from never changes with later votes;
the votes hash on the run names the votes they came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from core.training import runs, versions
from core.training.config import PREFERENCE_PRESET, PREFERENCE_PRESETS, TrainingConfig

# Fewer pairs than this teach a round nothing it could show on held-out prompts.
MINIMUM_PAIRS = 4


@dataclass(frozen=True)
class PreferencePair:
    """One training pair: the prompt (messages up to the answer), the better and the worse answer."""
    position: int
    prompt: list[dict[str, Any]]
    chosen: str
    rejected: str
    source: str  # "votes" or "correction"

    def to_trl(self) -> dict[str, Any]:
        """trl's conversational preference layout: messages for the prompt, one assistant turn each."""
        return {"prompt": self.prompt, "chosen": [{"role": "assistant", "content": self.chosen}],
                "rejected": [{"role": "assistant", "content": self.rejected}]}


def round_config(parent: runs.TrainingRun, overrides: dict[str, str] | None = None) -> TrainingConfig:
    """The preset's training knobs on the parent's LoRA shape (its adapter keeps training)."""
    preset = PREFERENCE_PRESETS[PREFERENCE_PRESET]
    shape = {k: str(getattr(parent.config, k)) for k in ("method", "lora_r", "lora_alpha", "lora_dropout",
                                                          "target_modules")}
    return preset.with_overrides({**shape, **(overrides or {})})


def start_round(db: sqlite_utils.Database, parent_run_id: int, pairs: list[PreferencePair], *,
                rating_run_id: int, votes_sha256: str, config: TrainingConfig | None = None,
                actor: str = "", launch: bool = True) -> runs.TrainingRun:
    """Queue a preference round (DPO) that starts from the parent run's adapter; its answers are
    then rated against that parent (reference_run_id), on held-out prompts it never saw."""
    parent = runs.get_run(db, parent_run_id)
    if parent.status != "succeeded" or not parent.adapter_path:
        raise runs.RunError(f"Run {parent_run_id} has no finished adapter to start a preference round from.")
    if len(pairs) < MINIMUM_PAIRS:
        raise runs.RunError(f"The preference set has {len(pairs)} pair(s); a round needs at least {MINIMUM_PAIRS}. "
                            "Rate more prompts, or correct the answers that were both bad.")
    version = versions.version_by_id(db, parent.dataset_version_id)
    lineage = {"kind": "dpo", "parent_run_id": parent.id, "rating_run_id": rating_run_id,
               "votes_sha256": votes_sha256, "reference_run_id": parent.id}
    rows = [{"position": p.position, "prompt_json": json.dumps(p.prompt), "chosen": p.chosen,
             "rejected": p.rejected, "source": p.source} for p in pairs]
    return runs.start_run(db, version, base_model=parent.base_model, preset=PREFERENCE_PRESET,
                          config=config or round_config(parent), actor=actor, launch=launch,
                          lineage=lineage, preference_rows=rows)


def pairs_of(db: sqlite_utils.Database, run_id: int) -> list[PreferencePair]:
    """The pairs a round was queued with."""
    return [PreferencePair(r["position"], json.loads(r["prompt_json"]), r["chosen"], r["rejected"], r["source"])
            for r in db.query("SELECT * FROM preference_pairs WHERE run_id = ? ORDER BY id", [run_id])]


def seen_prompts(db: sqlite_utils.Database, run_id: int) -> set[str]:
    """The prompts (canonical JSON) a run learned from as preferences: rate it on the others only."""
    return {json.dumps(p.prompt, sort_keys=True) for p in pairs_of(db, run_id)}


def rounds_from(db: sqlite_utils.Database, rating_run_id: int) -> list[runs.TrainingRun]:
    """The preference rounds that learned from a run's votes, newest first."""
    return [r for r in runs.list_runs(db) if r.kind == "dpo" and r.rating_run_id == rating_run_id]
