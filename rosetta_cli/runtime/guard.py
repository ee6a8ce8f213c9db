"""The one resume/overwrite guard for every output (store, model directory, report).

An output that already holds our work is resumed, replaced or refused, by one rule:
  --overwrite → replace it; --resume (or a stage that resumes by default) → resume it;
  neither → refuse, naming the path and both ways on.
Whether the inputs still match (fingerprints, options) is each stage's own check, after this one.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from rosetta_cli.errors import UsageError


class Action(str, Enum):
    CREATE = "create"     # nothing there yet
    RESUME = "resume"     # continue what is there
    REPLACE = "replace"   # delete what is there, then create


def output_action(path, holds: bool, *, what: str, overwrite: bool = False, resume: bool = False,
                  resumable: bool = True) -> Action:
    """What to do with `path` (holds: it already holds a `what`, e.g. "an RST checkpoint").

    resume: the caller continues existing work (a --resume flag, or True for stages that always
    resume); resumable: whether the stage can resume at all (reports cannot).
    """
    if overwrite and resume and resumable:
        raise UsageError("--resume and --overwrite exclude each other", hint="pass one of them")
    if not holds:
        return Action.CREATE
    if overwrite:
        return Action.REPLACE
    if resume and resumable:
        return Action.RESUME
    ways = "pass --resume to continue it, --overwrite to replace it" if resumable else "pass --overwrite to replace it"
    raise UsageError(f"{Path(path)}: already holds {what}", hint=f"{ways}, or choose another --out")
