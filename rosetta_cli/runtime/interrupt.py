"""Ctrl-C at a step boundary: a training loop finishes its step, checkpoints, then stops.

`StopAtStep` catches the first SIGINT and only records it; the loop polls `requested` between
steps, so a checkpoint is never taken from a half-applied optimizer step. A second Ctrl-C raises
KeyboardInterrupt at once (the last checkpoint is kept). Outside the main thread, or when
`enabled` is false (several torchrun ranks, which would stop at different steps and hang a
collective), it changes nothing and Ctrl-C raises KeyboardInterrupt as usual.
"""

from __future__ import annotations

import signal
import threading


class StopAtStep:
    """Context manager: `requested` becomes True on the first Ctrl-C."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._old = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopAtStep":
        if self.enabled:
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._old)
