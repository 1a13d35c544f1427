"""Command-line interface: `python -m core [--db PATH] COMMAND [--json]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlite_utils

import core.cli.data  # noqa: F401  (its commands register themselves on import)
import core.cli.pii  # noqa: F401
import core.cli.preferences  # noqa: F401
import core.cli.runs  # noqa: F401
from core.cli.base import COMMANDS, CliError, command, dataset_named, say
from core.curation import datasets, importing, tabular
from core.models import registry, templating
from core.platform import store, studio_settings
from core.platform.paths import db_path
from core.rating import pairs
from core.training import runs, versions

# ----------------------------------------------------------------------------- commands

@command("init", "create the database, convert the default model, seed the demo project",
         lambda p: p.add_argument("--no-model", action="store_true", help="skip the model conversion"))
def cmd_init(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    from core.curation import demo
    from core.training import runs

    if not args.no_model:
        registry.ensure_default_model(lambda msg: say(args, msg))
    seeded = demo.seed_demo(db)
    reconciled = runs.reconcile(db)
    pairs.reconcile_jobs(db)
    return {"db": str(db_path(args.db)), "model": str(registry.default_model_dir()),
            "demo_seeded": seeded is not None, "runs_marked_interrupted": reconciled,
            "last_migration": store.last_migration(db)}


@command("status", "counts per table, model readiness, last migration")
def cmd_status(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    return {"db": str(db_path(args.db)), "tables": store.table_counts(db),
            "model_ready": registry.is_checkpoint(registry.default_model_dir()),
            "last_migration": store.last_migration(db)}


def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--add", metavar="PATH_OR_HUB_ID", help="register a local model directory or hub id")


@command("models", "list available base models", _models_args)
def cmd_models(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    if args.add:
        try:
            registry.add_model(db, args.add, actor=args.user)
        except registry.ModelUnavailable as exc:
            raise CliError(str(exc)) from exc
    return {"models": [_model_dict(m) for m in registry.list_models(db)]}


def _model_dict(m: registry.BaseModel) -> dict[str, Any]:
    return {"name": m.name, "source": m.source, "location": m.location, "ready": m.ready, "note": m.note}


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="JSONL; CSV or .xlsx (with --map); .parquet, .arrow or a Hugging Face "
                                           "dataset folder")
    p.add_argument("--dataset", required=True, help="dataset name (created if missing)")
    p.add_argument("--split", choices=["train", "heldout"], default="train",
                   help="the split examples go into (a spreadsheet's split column overrides it per row)")
    p.add_argument("--max-length", type=int, default=templating.DEFAULT_MAX_LENGTH,
                   help="warn about examples longer than this many tokens (default: the default preset's)")
    p.add_argument("--map", dest="mapping", default="",
                   help="spreadsheets: PART=COLUMN pairs, e.g. user=question,assistant=answer (parts: system, "
                        "user, assistant, tags, split, category); default: the mapping last used for the dataset")
    p.add_argument("--encoding", choices=sorted(tabular.ENCODINGS), default="",
                   help="CSV text encoding; UTF-8 (with or without BOM) is detected, others must be named")
    p.add_argument("--sheet", default="", help=".xlsx: the sheet to read (default: the first)")
    p.add_argument("--from-split", default="", help="Hugging Face data: the split to read (e.g. train, test)")


@command("import", "import JSONL, CSV, Excel or Hugging Face data with a per-row report", _import_args)
def cmd_import(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    from core.models import templating

    suffix = args.file.suffix.lower()
    spreadsheet = suffix in tabular.SPREADSHEET_SUFFIXES
    hugging_face = args.file.is_dir() or suffix in (".parquet", ".arrow")
    try:
        data = b"" if hugging_face else args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"Cannot read {args.file}: {exc.strerror}") from exc
    counter = templating.token_counter(registry.DEFAULT_MODEL)
    if not spreadsheet and not hugging_face:
        # A missing dataset is created inside the import's transaction: an import that fails, or a
        # process killed half-way, leaves no empty dataset behind (issue 23).
        report = importing.import_jsonl(db, args.dataset, data, source=args.file.name, author=args.user,
                                       split=args.split, max_length=args.max_length, count_tokens=counter)
    else:
        table = tabular.read_spreadsheet(data, args.file.name, encoding=args.encoding, sheet=args.sheet) \
            if spreadsheet else None
        existed = args.dataset in {d.name for d in datasets.list_datasets(db)}
        dataset = dataset_named(db, args.dataset, create=True, actor=args.user)
        try:
            if table is not None:
                mapping = tabular.ColumnMapping.parse(args.mapping) if args.mapping else \
                    tabular.remembered_mapping(db, dataset.id)
                if mapping is None:
                    raise CliError(f"Say which columns to use: --map user=COLUMN,assistant=COLUMN (columns: "
                                   f"{', '.join(table.columns)}).")
                report = tabular.import_spreadsheet(db, dataset, table, mapping, source=args.file.name,
                                                    author=args.user, split=args.split, count_tokens=counter,
                                                    max_length=args.max_length)
            else:
                report = tabular.import_hf(db, dataset, args.file, from_split=args.from_split, author=args.user,
                                           split=args.split, count_tokens=counter, max_length=args.max_length)
        except BaseException:
            if not existed:  # a whole import that failed leaves no empty dataset behind
                datasets.delete_empty_dataset(db, dataset.id, actor=args.user)
            raise
    if not args.json:
        for note in report.notes:
            print(f"{args.file}: {note}", file=sys.stderr)
        for problem in report.errors + report.warnings:
            print(f"{args.file}:{problem.line}: {problem.code}: {problem.message}", file=sys.stderr)
    result = report.to_dict()
    result.pop("formats")
    result["formats"] = report.formats
    return result


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--version", type=int)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--split", choices=["train", "heldout"])
    p.add_argument("--current", action="store_true", help="export current examples, not a version")


@command("export", "write canonical OpenAI chat JSONL", _export_args)
def cmd_export(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    dataset = dataset_named(db, args.dataset)
    text = versions.export_jsonl(db, dataset, version=args.version, split=args.split, current=args.current,
                                 actor=args.user)
    args.out.write_text(text, encoding="utf-8")
    return {"out": str(args.out), "examples": text.count("\n")}


def _freeze_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--override-reason", default="", help="admin override of the PII gate")


@command("freeze", "make an immutable dataset version", _freeze_args)
def cmd_freeze(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    dataset = dataset_named(db, args.dataset)
    version = versions.freeze(db, dataset, actor=args.user, override_reason=args.override_reason)
    return vars(version)


# ----------------------------------------------------------------------------- entry point

def _settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raters-per-pair", type=int, help="how many raters each answer pair needs")
    p.add_argument("--runs-at-once", type=int, help="training runs this machine trains at the same time")
    p.add_argument("--team", help="comma-separated names (only without a users file)")
    p.add_argument("--run-target", choices=["local", "ray"], help="where training runs execute")
    p.add_argument("--ray-address", help="ray://head:10001, http://head:8265 or auto")
    p.add_argument("--ray-gpus", type=float, help="GPUs each Ray run asks for")
    p.add_argument("--ray-models-dir", help="STUDIO_MODELS_DIR on the cluster nodes")
    p.add_argument("--trusted-proxies", help="comma-separated proxy addresses or networks whose X-Forwarded-For "
                                             "names the client at sign-in ('' for none, the default)")


@command("settings", "show or change studio settings (admins)", _settings_args)
def cmd_settings(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    from core.platform import auth, slots, studio_settings
    from core.rating import sessions

    if args.raters_per_pair is not None:
        studio_settings.set_raters_per_pair(db, args.raters_per_pair, actor=args.user)
    if args.runs_at_once is not None:
        studio_settings.set_max_concurrent_runs(db, args.runs_at_once, actor=args.user)
    if args.team is not None:
        studio_settings.set_team(db, args.team.split(","), actor=args.user)
    if args.trusted_proxies is not None:
        studio_settings.set_trusted_proxies(db, args.trusted_proxies.split(","), actor=args.user)
    target = studio_settings.run_target(db)
    if any(v is not None for v in (args.run_target, args.ray_address, args.ray_gpus, args.ray_models_dir)):
        target = studio_settings.set_run_target(db, studio_settings.RunTarget(
            args.run_target or target.kind, args.ray_address if args.ray_address is not None else target.address,
            args.ray_gpus if args.ray_gpus is not None else target.num_gpus,
            args.ray_models_dir if args.ray_models_dir is not None else target.models_dir), actor=args.user)
    return {"raters_per_pair": sessions.raters_per_pair(db), "runs_at_once": slots.capacity(db),
            "team": auth.team(db), "run_target": asdict(target), "trusted_proxies": auth.trusted_proxies(db)}


def _pii_settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--entities", help="comma-separated built-in entities, e.g. PERSON,EMAIL_ADDRESS")
    p.add_argument("--threshold", type=float)
    p.add_argument("--allow", type=Path, help="file: one allowed value per line")
    p.add_argument("--deny", type=Path, help="file: 'ENTITY: word, word' per line")
    p.add_argument("--rules", type=Path, help="file: 'ENTITY | regex | score' per line")


@command("pii-settings", "show or change PII detection settings (admins; a new version)", _pii_settings_args)
def cmd_pii_settings(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import asdict

    from core.pii import scan

    current = scan.current_config(db)
    if any(v is not None for v in (args.entities, args.threshold, args.allow, args.deny, args.rules)):
        def text(path: Path | None, fallback: str) -> str:
            return path.read_text(encoding="utf-8") if path else fallback

        config = scan.config_from_text(
            [e.strip() for e in args.entities.split(",") if e.strip()] if args.entities is not None else current.entities,
            args.threshold if args.threshold is not None else current.threshold,
            text(args.allow, "\n".join(current.allow_list)),
            text(args.deny, "\n".join(f"{k}: {', '.join(v)}" for k, v in current.deny_lists.items())),
            text(args.rules, "\n".join(f"{r.entity} | {r.pattern} | {r.score}" for r in current.regex_rules)))
        current = scan.save_config(db, config, actor=args.user)
    return {**asdict(current), "hash": current.hash}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Tuning Studio command line.")
    parser.add_argument("--db", help="database path (default: $STUDIO_DB or data/studio.db)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--user", default=os.environ.get("STUDIO_USER", "cli"),
                        help="who acts (default: $STUDIO_USER or 'cli'); with a users file, its role decides "
                             "what the command may do")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_fn, arguments, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--user", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = COMMANDS[args.command][0]
    result: Any = None
    try:
        db = store.connect(args.db)
        result = handler(db, args)
    except (CliError, datasets.DatasetError, runs.RunError, registry.ModelUnavailable, store.StoreError,
            studio_settings.RayUnavailable,
            ValueError, KeyError, PermissionError) as exc:
        message = str(exc).strip("'\"")
    except Exception as exc:  # anything else: still one clear line, never a traceback
        message = f"unexpected {type(exc).__name__}: {exc}"
    else:
        message = ""
    if message:
        if args.json:
            print(json.dumps({"error": message}))
        print(f"error: {message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, default=str))
    elif result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0
