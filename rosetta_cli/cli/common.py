"""Shared CLI helpers: console, progress bars, JSON output, list parsing (shards: rosetta_cli.runtime.shard)."""

from __future__ import annotations

import json
import logging
import os
import sys
from contextlib import contextmanager

from rich.console import Console

from rosetta_cli.errors import UsageError

# Off a terminal (a pipe, a file, CI logs) Rich would assume 80 columns and cut tables ("availa…") and
# wrap sentences; there nothing is gained by a width, so lines keep their full length. COLUMNS still wins.
UNBOUNDED = 100_000


def make_console(stderr: bool) -> Console:
    c = Console(stderr=stderr)
    if not c.is_terminal and "COLUMNS" not in os.environ:
        c.width = UNBOUNDED
    return c


# Results (tables, listings, summaries) go to `out`, so they can be piped or redirected; progress bars,
# notes, warnings and errors go to `console`. Under --json a command writes nothing to stdout but the JSON.
console = make_console(stderr=True)
out = make_console(stderr=False)


# Stages report through the Progress protocol; its notes go to this logger, which the CLI routes:
# to the stderr console (INFO, DEBUG with --verbose) and, with --log-file, to a file (DEBUG).
log = logging.getLogger("rosetta")
_nested = 0  # > 0 while demo/claims run a stage in this process: the outer command's logging stays


class ConsoleHandler(logging.Handler):
    """Records on the stderr console, printed through Rich so that a live progress bar stays below them.
    Records marked `console=False` (errors main() has already written) go to the log file only."""

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "console", True):
            return
        try:
            console.print(record.getMessage())
        except Exception:
            self.handleError(record)


def setup_logging(verbose: bool = False, log_file: str | None = None) -> None:
    """Route the `rosetta` logger: the console at INFO (DEBUG if verbose), plus log_file at DEBUG.
    Called once per invocation (again by each test's invocation, replacing the previous handlers)."""
    if _nested:
        return
    for h in [h for h in log.handlers if getattr(h, "rosetta", False)]:
        log.removeHandler(h)
        h.close()
    log.setLevel(logging.DEBUG)
    log.propagate = False  # the root logger of an embedding program would print every note twice
    handlers = [ConsoleHandler(logging.DEBUG if verbose else logging.INFO)]
    if log_file:
        fh = logging.FileHandler(log_file, encoding="utf-8")  # appends: one file can log several runs
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers.append(fh)
    for h in handlers:
        h.rosetta = True
        log.addHandler(h)


@contextmanager
def nested_command():
    """A stage run inside another command (demo, claims) keeps the outer command's logging."""
    global _nested
    _nested += 1
    try:
        yield
    finally:
        _nested -= 1


def rule(title: str) -> None:
    """A section rule on stderr: as wide as the terminal, and 100 columns off one (an unbounded console
    would draw it 100,000 characters wide in a log)."""
    from rich.rule import Rule

    console.print(Rule(title), width=min(console.width, 100))


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
        try:
            yield p
        except BaseException:
            # The error line must come first: an unfinished bar (or an empty one, which Rich would
            # print as a blank line) is cleared rather than left above it.
            p.live.transient = True
            p.live.stop()
            p.disable = True  # Progress.stop would print an empty line when output is not a terminal
            raise


class RichProgress:
    """runtime.progress.Progress on a Rich bar: one task per phase, rate in the phase's unit, ETA.

    Under torchrun only rank 0 shows anything (every rank reports the same global progress)."""

    def __init__(self, bar):
        import os

        self.bar, self.task, self.unit = bar, None, "items"
        self.quiet = os.environ.get("RANK", "0") != "0"

    def start(self, phase: str, total: int | None, done: int = 0, unit: str = "items") -> None:
        if not self.quiet:
            self.task, self.unit = self.bar.add_task(phase, total=total, completed=done, rate="", info=""), unit

    def advance(self, n: int = 1, *, completed: int | None = None, info: str = "") -> None:
        if self.task is None:
            return
        if completed is None:
            self.bar.advance(self.task, n)
        else:
            self.bar.update(self.task, completed=completed)
        speed = self.bar.tasks[self.task].speed
        self.bar.update(self.task, info=info, rate=f"{speed:,.1f} {self.unit}/s" if speed else "")

    def note(self, msg: str) -> None:
        if not self.quiet:
            log.info(msg)  # shown on the console above the bar (ConsoleHandler), and in --log-file


@contextmanager
def rich_progress():
    """A RichProgress for a stage's `run(cfg, progress)`."""
    with progress() as bar:
        yield RichProgress(bar)


def parse_csv_ints(spec: str, name: str) -> list[int]:
    try:
        return [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{name} {spec!r}: expected comma-separated integers, e.g. 1,5,10") from None
