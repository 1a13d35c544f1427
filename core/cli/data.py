"""CLI commands that take data and models out of the studio (issue 27): HF dataset folder, merged model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import sqlite_utils

from core.cli.base import command, dataset_named, say


def _export_hf_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--version", type=int, help="version number (default: the latest)")
    p.add_argument("--out", required=True, type=Path, help="a new folder")


@command("export-hf", "write a frozen version as a Hugging Face dataset folder (parquet + card)", _export_hf_args)
def cmd_export_hf(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    from core.training import versions

    dataset = dataset_named(db, args.dataset)
    out = versions.export_hf(db, dataset, args.out, version=args.version, actor=args.user)
    return {"out": str(out), "files": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())}


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--out", type=Path, help="a new folder (default: the run's merged-model folder)")
    p.add_argument("--confirm-unapproved", action="store_true",
                   help="merge a run that was not approved (recorded on the model card and in the audit log)")


@command("merge-model", "merge a run's adapter into its full-precision base (safetensors + model card)",
         _merge_args)
def cmd_merge_model(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    from core.reports import merged_model

    say(args, f"Merging run {args.run}'s adapter into its base model…")
    out = merged_model.export_merged_model(db, args.run, args.out, actor=args.user,
                                           confirm_unapproved=args.confirm_unapproved)
    return {"out": str(out), "files": sorted(p.name for p in out.iterdir())}
