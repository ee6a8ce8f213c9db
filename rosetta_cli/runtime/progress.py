"""The one progress protocol every stage reports through (the CLI renders it with Rich).

A stage calls `start` once per phase (a total of items, or None when unknown), then `advance` as items
finish, and `note` for one-line messages. The library default is `SILENT`; `cli.common.RichProgress`
shows a bar with rate and ETA.
"""

from __future__ import annotations

import logging
from typing import Protocol


class Progress(Protocol):
    def start(self, phase: str, total: int | None, done: int = 0, unit: str = "items") -> None:
        """A new phase: `total` items (None: unknown), `done` of them already finished (resume)."""

    def advance(self, n: int = 1, *, completed: int | None = None, info: str = "") -> None:
        """n more items done (or `completed` in all); info: a short status such as the loss."""

    def note(self, msg: str) -> None:
        """A one-line message (resume notices, warnings)."""


class Silent:
    """Progress that shows no bar (library calls, tests); notes go to the `rosetta` logger at INFO, which
    prints nothing unless the caller configures logging."""

    def start(self, phase: str, total: int | None, done: int = 0, unit: str = "items") -> None:
        pass

    def advance(self, n: int = 1, *, completed: int | None = None, info: str = "") -> None:
        pass

    def note(self, msg: str) -> None:
        logging.getLogger("rosetta").info(msg)


SILENT = Silent()
