"""The merged-model export: approved runs (or an explicit confirmation), a model card with lineage.

Issue 27. The card records where the weights came from: base model, dataset version hash and PII
gate decision, the run's configuration, the evaluation summary (only when the exporter may see
results: the blinding rule, `allowed(viewer, "see_outcome", run=...)`) and the sign-off. The weights themselves
are merged by `training.merge` (the model stack lives below the light packages).
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils
import yaml

from core.platform import permissions, processes
from core.platform.store import audit, now, transaction
from core.rating import blinding
from core.reports import summary as stats
from core.training import merge, runs, versions


def default_dir(db: sqlite_utils.Database, run_id: int) -> Path:
    """Where the studio keeps a run's merged model unless told otherwise."""
    return processes.run_dir(db, run_id) / "merged-model"


def export_merged_model(db: sqlite_utils.Database, run_id: int, out: Path | None = None, *, actor: str,
                        confirm_unapproved: bool = False) -> Path:
    """Merge the run's adapter into its full-precision base and save it with its card. A run that
    was not approved on the Results page needs `confirm_unapproved` (recorded on the card and in
    the audit log): merged weights are what gets deployed."""
    permissions.require(actor, "export_dataset")  # the same right as downloading the adapter
    run = runs.get_run(db, run_id)
    if run.status != "succeeded" or not run.adapter_path or not Path(run.adapter_path).is_dir():
        raise ValueError(f"Run {run_id} has no finished adapter to merge (status: {run.status}).")
    if run.approval != "approved" and not confirm_unapproved:
        state = run.approval or "not signed off"
        raise ValueError(f"Run {run_id} is {state}. Merged weights are for deployment: approve the run on the "
                         "Results page first, or confirm an export of an unapproved run "
                         "(--confirm-unapproved; on the page, tick the confirmation).")
    out = out or default_dir(db, run_id)
    card = model_card(db, run, actor, confirmed_unapproved=run.approval != "approved")
    merge.merge_adapter(run.base_model, Path(run.adapter_path), out, card)
    with transaction(db):
        audit(db, actor, "export_merged_model", "run", run_id,
              {"out": str(out), "approval": run.approval, "confirmed_unapproved": run.approval != "approved"})
    return out


def model_card(db: sqlite_utils.Database, run: runs.TrainingRun, viewer: str,
               confirmed_unapproved: bool = False) -> str:
    """The merged model's README: front matter for the Hub, then lineage, config, evaluation, sign-off."""
    version = versions.version_by_id(db, run.dataset_version_id)
    front = yaml.safe_dump({"base_model": run.base_model, "library_name": "transformers",
                            "tags": ["tuning-studio", "lora-merged"]}, sort_keys=False)
    try:  # the one door to an outcome: it also records a look at an open run
        blinding.open_outcome(db, run.id, viewer)
    except permissions.PermissionDenied as exc:
        evaluation = f"Not included: {exc}"
    else:
        summary = stats.summarize(db, run.id)
        evaluation = summary.verdict_text if summary.outcomes.total else "Not rated yet."
    if run.approval:
        sign_off = f"{run.approval}: {run.approval_note}"
    else:
        sign_off = "not signed off"
    if confirmed_unapproved:
        sign_off += f" — exported without approval, confirmed by {viewer or 'anonymous'}"
    return f"""---
{front}---
# Merged model from Tuning Studio run {run.id}

The LoRA adapter of run {run.id} merged into the full-precision base (`merge_and_unload`), saved as
safetensors ({merge.MERGED_DTYPE}) with the tokenizer, its chat template and the generation config.
Load it like any causal language model: `AutoModelForCausalLM.from_pretrained(this_folder)`.

## Lineage

- Base model: `{run.base_model}`
- Dataset version: {version.number} (sha256 `{version.content_hash}`), {version.train_count} train /
  {version.heldout_count} held-out examples
- PII gate: {versions.pii_decision(version)}
- Preset: `{run.preset}`; adapter sha256 `{run.adapter_sha256}`
- Merged: {now()}

## Run config

```json
{json.dumps(json.loads(run.config.to_json()), indent=2)}
```

## Evaluation summary

{evaluation}

## Sign-off

{sign_off}
"""
