"""Shared CLI helpers: console, progress bars, JSON output, list parsing (shards: rosetta_cli.runtime.shard)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

from rich.console import Console

from rosetta_cli.errors import UsageError

console = Console(stderr=True)  # human output goes to stderr; stdout stays machine-readable
out = Console()


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@contextmanager
def progress(transient: bool = False):
    """A Rich progress bar showing items, rate and ETA. Yields the Progress object."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    cols = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"))
    with Progress(*cols, console=console, transient=transient) as p:
        yield p


def parse_csv_ints(spec: str, name: str) -> list[int]:
    try:
        return [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{name} {spec!r}: expected comma-separated integers, e.g. 1,5,10") from None
