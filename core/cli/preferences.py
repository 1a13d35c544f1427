"""CLI commands for preference data and rounds, and for comparing two models blind (issues 27, 28)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlite_utils

from core.cli.base import CliError, command, say
from core.rating import preferences
from core.training import rounds, runs


def _preferences_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=int, help="the rated run")
    p.add_argument("--out", type=Path, help="write the pairs as JSONL (trl's conversational preference layout)")
    p.add_argument("--hf-folder", type=Path, help="write a Hugging Face dataset folder (parquet + card)")


@command("preferences", "the blind ratings of a run as preference pairs (chosen / rejected)", _preferences_args)
def cmd_preferences(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    pref = preferences.build(db, args.run, viewer=args.user)
    if args.out:
        args.out.write_text(preferences.to_jsonl(pref), encoding="utf-8")
        say(args, f"Wrote {len(pref.pairs)} pairs to {args.out}")
    if args.hf_folder:
        preferences.export_hf_folder(pref, args.hf_folder)
        say(args, f"Wrote a dataset folder to {args.hf_folder}")
    return {"run": pref.run_id, "pairs": len(pref.pairs), "corrections": pref.corrections,
            "left_out": pref.left_out, "votes_sha256": pref.votes_sha256}


def _round_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=int, help="the rated run whose votes the round learns from")
    p.add_argument("--parent", type=int, help="the run whose adapter the round continues (default: the rated run)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a knob of the preference-round preset (beta, learning_rate, epochs, ...)")


@command("preference-round", "queue a preference round (DPO) on a rated run's votes", _round_args)
def cmd_preference_round(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    overrides = dict(item.split("=", 1) for item in args.set if "=" in item)
    if len(overrides) != len(args.set):
        raise CliError("--set takes KEY=VALUE")
    pref = preferences.build(db, args.run, viewer=args.user)
    parent = runs.get_run(db, args.parent or args.run)
    run = rounds.start_round(db, parent.id, pref.pairs, rating_run_id=args.run, votes_sha256=pref.votes_sha256,
                             config=rounds.round_config(parent, overrides), actor=args.user)
    say(args, f"Queued preference round {run.id}: {len(pref.pairs)} pairs, starting from run {parent.id}'s adapter")
    return {"run": run.id, "status": run.status, "parent": parent.id, "pairs": len(pref.pairs),
            "left_out": pref.left_out, "votes_sha256": pref.votes_sha256, "config": asdict(run.config)}


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=int, help="the challenger run (its answers are rated)")
    p.add_argument("--against", type=int, help="the reference run (default: the base model)")


@command("compare", "choose what a run is rated against blind: another run's adapter or the base model",
         _compare_args)
def cmd_compare(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    run = runs.set_reference(db, args.run, args.against, actor=args.user)
    return {"run": run.id, "reference_run_id": run.reference_run_id}
