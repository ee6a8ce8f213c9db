"""Shard specs: 'I/N' selects every N-th work item starting at I (one spec for every stage)."""

from __future__ import annotations

from rosetta_cli.errors import UsageError


def parse_shard(spec: str | None) -> tuple[int, int]:
    """'I/N' → (I, N); None or '' → (0, 1)."""
    if not spec:
        return 0, 1
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected I/N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise UsageError(f"--shard {spec!r}: need 0 <= I < N")
    return i, n
