"""The command registry shared by the CLI's command modules (no commands here)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import sqlite_utils

from core.curation import datasets


class CliError(Exception):
    """An error reported as one line on stderr with exit status 1."""


Handler = Callable[[sqlite_utils.Database, argparse.Namespace], Any]


COMMANDS: dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], Any], str]] = {}


def command(name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], Any] = lambda p: None
            ) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, arguments, help_text)
        return fn
    return register


def say(args: argparse.Namespace, text: str) -> None:
    """Progress for humans goes to stderr so --json output stays one object on stdout."""
    if not args.json:
        print(text, file=sys.stderr, flush=True)


def dataset_named(db: sqlite_utils.Database, name: str, create: bool = False, actor: str = "") -> datasets.Dataset:
    try:
        return datasets.get_dataset(db, name)
    except datasets.DatasetError:
        if create:
            return datasets.create_dataset(db, name, actor=actor)
        raise
