"""PII commands: scan, review by distinct value, decide and undo (the same core calls as the page)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

import sqlite_utils

from core.cli.base import CliError, command, dataset_named, say
from core.pii import review, values


@command("pii-scan", "scan a dataset for personal data", lambda p: p.add_argument("--dataset", required=True))
def cmd_pii_scan(db: sqlite_utils.Database, args: argparse.Namespace) -> Any:
    dataset = dataset_named(db, args.dataset)
    summary = values.scan(db, dataset.id, lambda done, total: say(args, f"scanned {done}/{total}"),
                              actor=args.user)
    findings = [f.to_dict() for f in review.open_findings(db, dataset.id, status="")]
    if not args.json:
        gate = review.gate_status(db, dataset.id)
        say(args, f"{summary['scanned']} scanned, {summary['skipped_unchanged']} unchanged, "
                  f"{len(findings)} finding(s): {gate.open_findings} open ({gate.vocabulary_suggestions} suggested "
                  f"by the dataset vocabulary, waiting for an admin), {gate.cleared_by_value_decision} not personal data by decision")
    return findings


def _values_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--status", default="open", choices=[*review.STATUSES, "any"])


@command("pii-values", "findings grouped by distinct value, most examples first", _values_args)
def cmd_pii_values(db: sqlite_utils.Database, args: argparse.Namespace) -> list[dict[str, Any]]:
    dataset = dataset_named(db, args.dataset)
    groups = values.value_groups(db, dataset.id, status="" if args.status == "any" else args.status)
    if not args.json:
        for g in groups:
            say(args, f"{g.value_hash}  {'/'.join(g.entity_types):<16} {g.example_count:>4} example(s)  "
                      f"{g.status:<10} {g.context!r}")
    return [{"value_hash": g.value_hash, "value": g.value, "entity_types": list(g.entity_types),
             "status": g.status, "reason": g.reason, "occurrences": g.occurrences, "examples": g.example_count}
            for g in groups]


def _decide_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--value", required=True, metavar="VALUE_HASH", help="as listed by pii-values")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--not-pii", metavar="REASON", help="not personal data in this dataset (admins)")
    what.add_argument("--anonymise", choices=values.ANONYMISE_METHODS, help="every occurrence, now and later")
    what.add_argument("--undo", action="store_true", help="withdraw the decision on this value")


@command("pii-decide", "one decision for every occurrence of a value", _decide_args)
def cmd_pii_decide(db: sqlite_utils.Database, args: argparse.Namespace) -> dict[str, Any]:
    dataset = dataset_named(db, args.dataset)
    if args.undo:
        return asdict(values.undo(db, dataset.id, args.value, actor=args.user))
    if args.anonymise:
        changed = values.anonymise_everywhere(db, dataset.id, args.value, method=args.anonymise, actor=args.user)
        return {"value_hash": args.value, "examples_changed": changed}
    if not args.not_pii.strip():
        raise CliError("--not-pii needs a reason")
    group = values.mark_not_pii(db, dataset.id, args.value, args.not_pii, actor=args.user)
    return {"value_hash": group.value_hash, "occurrences": group.occurrences, "examples": group.example_count}


def _vocabulary_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--confirm", action="store_true",
                   help="confirm the current glossary and guidelines: they clear the values they name (admins)")


@command("pii-vocabulary", "values the dataset's glossary or guidelines suggest as not personal data", _vocabulary_args)
def cmd_pii_vocabulary(db: sqlite_utils.Database, args: argparse.Namespace) -> Any:
    dataset = dataset_named(db, args.dataset)
    if args.confirm:
        return values.confirm_vocabulary(db, dataset.id, actor=args.user)
    groups = values.vocabulary_suggestions(db, dataset.id)
    if not args.json:
        for g in groups:
            say(args, f"suggested  {g.value!r}  {g.occurrences} occurrence(s)  {g.reason}")
    return [{"value_hash": g.value_hash, "value": g.value, "occurrences": g.occurrences, "reason": g.reason}
            for g in groups]
