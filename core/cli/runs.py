"""CLI commands for runs, generation, rating summaries and bundles (registered into core.cli.main)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from core.cli.base import CliError, command, dataset_named, say
from core.models import registry
from core.rating import pairs as answer_pairs
from core.rating import sessions
from core.training import bundles, eta, runs, versions
from core.training import config as training_config


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="dataset name")
    p.add_argument("--version", type=int, help="frozen version number (default: latest)")
    p.add_argument("--preset", default=training_config.DEFAULT_PRESET, choices=sorted(training_config.PRESETS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--base-model", default=registry.DEFAULT_MODEL, help="a name from `models` (default: the shipped model)")
    p.add_argument("--wait", action="store_true", help="stay in the foreground and print progress")
    p.add_argument("--bundle", type=Path, help="train from a bundle written by train-bundle")


@command("train", "queue a background training run (or --wait for it)", _train_args)
def cmd_train(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    if args.bundle:
        version, config, preset, base = bundles.load_bundle(db, args.bundle, args.user)
    else:
        if not args.dataset:
            raise CliError("--dataset or --bundle is required")
        dataset = dataset_named(db, args.dataset)
        version = versions.get_version(db, dataset.id, args.version)
        preset, base = args.preset, args.base_model
        config = training_config.PRESETS[preset]
    overrides = dict(item.split("=", 1) for item in args.set if "=" in item)
    if len(overrides) != len(args.set):
        raise CliError("--set takes KEY=VALUE")
    config = config.with_overrides(overrides)
    # Scaled by what the machine is doing now, as on the Train page (issue 25).
    estimated = eta.on_this_machine(training_config.estimate(db, version, config, base), eta.machine_load()).duration_s
    run = runs.start_run(db, version, base_model=base, preset=preset, config=config, actor=args.user,
                             estimated_s=estimated)
    if args.wait:
        run = _wait(db, run.id, args)
    return _run_dict(run)


def _wait(db: sqlite_utils.Database, run_id: int, args: argparse.Namespace) -> runs.TrainingRun:
    last_step = -1
    while True:
        run = runs.get_run(db, run_id)
        events = runs.run_events(db, run_id)
        if events and events[-1].step != last_step:
            e = events[-1]
            last_step = e.step
            say(args, f"step {e.step}/{run.total_steps or '?'} loss={e.loss} eval_loss={e.eval_loss} "
                      f"tokens/s={e.tokens_per_s}")
        if run.finished:
            return run
        runs.reconcile(db)
        time.sleep(2)


def _run_dict(run: runs.TrainingRun) -> dict[str, Any]:
    return {"run": run.id, "status": run.status, "preset": run.preset, "adapter_path": run.adapter_path,
            "adapter_sha256": run.adapter_sha256, "metrics": run.metrics, "error": run.error.split("\n")[0]}


@command("runs", "list runs", lambda p: p.add_argument("--dataset"))
def cmd_runs(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    runs.reconcile(db)
    dataset_id = dataset_named(db, args.dataset).id if args.dataset else None
    return {"runs": [_run_dict(r) for r in runs.list_runs(db, dataset_id)]}


def _run_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=int, required=True)


@command("cancel", "ask a run to stop at the next step", _run_arg)
def cmd_cancel(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    return _run_dict(runs.cancel_run(db, args.run, actor=args.user))


@command("resume", "continue a stopped run from its last checkpoint", _run_arg)
def cmd_resume(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    return _run_dict(runs.resume_run(db, args.run, actor=args.user))


def _generate_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--sample", action="store_true", help="sample with --seed instead of greedy")
    p.add_argument("--seed", type=int, default=0)


@command("generate", "answer held-out prompts with base and tuned model", _generate_args)
def cmd_generate(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    from core.models import generation

    config = generation.GenerationConfig(max_new_tokens=args.max_new_tokens, do_sample=args.sample, seed=args.seed)
    # Through the worker, like the page: the job is reconciled if the process dies.
    job = answer_pairs.start_generation(db, args.run, config, actor=args.user)
    say(args, f"generating {job.total} pairs in the background (job {job.id})…")
    done = -1
    while (job := answer_pairs.get_job(db, job.id)).status in ("queued", "running"):
        if job.done != done:
            done = job.done
            say(args, f"{job.done}/{job.total}")
        time.sleep(1)
        answer_pairs.reconcile_jobs(db)
    if job.status != "succeeded":
        raise CliError(f"generation failed: {job.error.splitlines()[0] if job.error else job.status}")
    found = answer_pairs.pairs(db, args.run)
    return {"run": args.run, "pairs": len(found), "identical": sum(p.identical for p in found),
            "flagged": sum(bool(set(p.flags) - {"identical"}) for p in found)}


def _bundle_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("--out", type=Path, required=True)


@command("train-bundle", "write a self-contained training bundle for another machine", _bundle_args)
def cmd_train_bundle(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    out = bundles.write_bundle(db, runs.get_run(db, args.run), args.out, actor=args.user)
    return {"out": str(out), "files": sorted(p.name for p in out.iterdir())}


def _import_adapter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", type=Path)
    p.add_argument("--version-id", type=int, required=True, help="dataset version it was trained on")


@command("import-adapter", "bring an adapter trained elsewhere back, with its lineage", _import_adapter_args)
def cmd_import_adapter(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    run = runs.import_adapter(db, args.directory, args.version_id, actor=args.user)
    print(f"imported as run {run.id}", file=sys.stderr)
    return {"run": run.id, "adapter_sha256": run.adapter_sha256}


def _summary_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("--format", choices=["json", "csv", "md", "html"], default="json")
    p.add_argument("--out", type=Path, help="file to write (default: stdout)")


@command("summary", "evaluation summary of a rated run", _summary_args)
def cmd_summary(db: sqlite_utils.Database, args: argparse.Namespace) -> Any:
    from core.reports import export

    text = export.render(db, args.run, args.format, args.user)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        return {"out": str(args.out), "format": args.format}
    if args.json and args.format == "json":
        return json.loads(text)
    print(text)
    return None


def _approve_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("--decision", choices=["approved", "rejected"], required=True)
    p.add_argument("--note", default="")


@command("approve", "admin sign-off of a rated run (summary attached to the model card)", _approve_args)
def cmd_approve(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    from core.reports import export

    export.approve(db, args.run, args.decision, args.note, args.user)
    return {"run": args.run, "approval": args.decision}


@command("close-rating", "freeze a run's votes and open its results to everyone (admins)", _run_arg)
def cmd_close_rating(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    sessions.close_rating(db, args.run, actor=args.user)
    return {"run": args.run, "rating_closed": sessions.rating_closed(db, args.run)}


def _playground_args(p: argparse.ArgumentParser) -> None:
    _run_arg(p)
    p.add_argument("prompt", help="the prompt to answer")
    p.add_argument("--max-new-tokens", type=int, default=160)


@command("playground", "answer one prompt with the base and the tuned model (not a rating)", _playground_args)
def cmd_playground(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    from core.rating import playground

    request = playground.ask(db, args.run, args.prompt, args.user, max_new_tokens=args.max_new_tokens)
    say(args, "answering in the background…")
    while (request := playground.get(db, request.id)).status in ("queued", "running"):
        time.sleep(0.5)
        playground.reconcile(db)
    if request.status != "succeeded":
        raise CliError(f"playground failed: {request.error.splitlines()[0] if request.error else request.status}")
    return {"run": args.run, "base": request.base_text, "tuned": request.tuned_text}
