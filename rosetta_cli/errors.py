"""One error hierarchy for the whole toolkit.

The library raises these; `rosetta_cli.cli.app.main` is the single place that turns
them into a one-line message and an exit code (no traceback unless --debug).
Every message should name the problem *and* the fix.
"""

from __future__ import annotations


class RosettaError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        msg = str(self)
        return f"{msg} ({self.hint})" if self.hint else msg


class UsageError(RosettaError):
    """Bad usage or bad input: wrong options, missing files, malformed data. Exit 2."""

    exit_code = 2


class InputNotFound(UsageError):
    """A path the user gave does not exist."""


class StoreError(UsageError):
    """A path is not a rosetta store, or not of the expected kind/shape."""


class AnnotationError(UsageError):
    """A malformed annotation/manifest file (names the file and the field)."""


class CheckpointError(UsageError):
    """A damaged, foreign or incompatible checkpoint."""


class DimensionMismatch(UsageError):
    """Feature dimensions do not agree between inputs."""


class PipelineFailure(RosettaError):
    """A run failed for a reason that is not the user's input (exit 1)."""


class PartialFailure(RosettaError):
    """The run finished but some rows failed (exit 3, documented)."""

    exit_code = 3


def cannot_write(e: OSError, path=None) -> UsageError:
    """The error for an output that cannot be written (permission denied, read-only file system)."""
    where = e.filename or path
    why = e.strerror or type(e).__name__
    return UsageError(f"{where}: cannot write here ({why})",
                      hint="choose an --out in a folder you can write, or fix that folder's permissions")


def require(cond: bool, message: str, *, hint: str | None = None, cls: type[RosettaError] = UsageError) -> None:
    """Raise `cls(message)` unless `cond` holds."""
    if not cond:
        raise cls(message, hint=hint)


class Interrupted(RosettaError):
    """Ctrl-C (SIGINT) stopped the run (exit 130). The message says what was kept."""

    exit_code = 130
