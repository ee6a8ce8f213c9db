"""`rosetta status`: where each stage stands (missing, partial, done, stale) from provenance fingerprints."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rosetta_cli.pipeline import table
from rosetta_cli.workspace.config import Workspace
from rosetta_cli.store import Store
from rosetta_cli.store.inspect import disk_size
from rosetta_cli.store.schema import backend_for

# Pipeline order, from the pipeline's table: (stage label, role it produces, command that produces it
# when missing). extract makes one role per source.
STAGE_ROLES = tuple((f"extract ({role})", role, table.maker(role)) for role in table.SOURCES.values()) + tuple(
    (s.command, s.output, table.maker(s.output)) for s in table.STAGES if s.output is not None)


@dataclass
class StageState:
    stage: str
    role: str
    output: str | None
    state: str                      # missing | partial | done | stale
    rows: str | None = None         # "done/total" for stores
    size_bytes: int | None = None
    made: str | None = None
    stale_because: list = field(default_factory=list)
    command: str | None = None      # what brings it up to date (stale/missing/partial)
    recorded_command: str | None = None


def read_provenance(path: Path) -> dict | None:
    """Metadata of a store or checkpoint directory (None if unreadable)."""

    try:
        if backend_for(path):
            with Store.open(path) as s:
                meta = dict(s.meta)
                meta["_fingerprint"] = s.fingerprint
                meta["_status"] = s.status_counts() if s.kind != "pairs" else None
                meta["_rows"] = s.n_rows
            return meta
        cfg = table.checkpoint_config(path)
        if cfg is not None:
            meta = json.loads(cfg.read_text())
            meta["_fingerprint"] = checkpoint_fingerprint(meta)
            # RST checkpoints list their training stores under "stores" (all of role paired)
            meta.setdefault("parents", [{"role": "paired", **p} for p in meta.get("stores", [])])
            return meta
    except Exception:
        return None
    return None


def checkpoint_fingerprint(meta: dict) -> str | None:
    return meta.get("fingerprint") or meta.get("weights_sha256")


def current_fingerprint(path: str | None, root: Path | None = None) -> str | None:
    """Fingerprint of whatever is at `path` now (relative paths: against the workspace root)."""
    if not path:
        return None
    path = Path(path) if Path(path).is_absolute() or root is None else root / path
    if not path.exists():
        return None
    meta = read_provenance(path)
    return None if meta is None else meta.get("_fingerprint")


def stage_states(ws: Workspace) -> list[StageState]:
    states: dict[str, StageState] = {}
    for stage, role, make in STAGE_ROLES:
        states[role] = _state(ws, stage, role, make, states)
    return list(states.values())


def _state(ws: Workspace, stage: str, role: str, make: str, known: dict) -> StageState:
    path = ws.path(role)
    if path is None or not path.exists():
        return StageState(stage, role, None if path is None else ws.rel(path), "missing", command=make)
    meta = read_provenance(path) or {}

    st = StageState(stage, role, ws.rel(path), "done", size_bytes=disk_size(path), made=meta.get("finalized") or meta.get("created"),
                    recorded_command=shlex.join(meta["command"]) if meta.get("command") else None)
    if meta.get("_status"):
        counts = meta["_status"]
        st.rows = f"{counts['done']}/{meta['_rows']}"
        if counts["pending"]:
            st.state, st.command = "partial", st.recorded_command or make
    reasons = _stale_reasons(meta.get("parents") or [], known, ws)
    if reasons:
        st.state, st.stale_because, st.command = "stale", reasons, st.recorded_command or make
    return st


def _stale_reasons(parents: list[dict], known: dict, ws: Workspace) -> list[str]:
    reasons = []
    for p in parents:
        fp_now = current_fingerprint(p.get("path"), ws.root)
        if p.get("fingerprint") and fp_now != p.get("fingerprint"):
            reasons.append(f"{p.get('role')} {p.get('path')} changed since this was built")
        role = p.get("role")
        if role in known and known[role].state == "stale":
            reasons.append(f"{role} is stale")
    return reasons


def as_json(states: list[StageState]) -> list[dict]:
    return [asdict(s) for s in states]


def commands_script(ws: Workspace, states: list[StageState]) -> str:
    """Shell script replaying the recorded (fully resolved) command of every existing stage, in order."""
    lines = ["#!/usr/bin/env bash", "# Reproduces this rosetta workspace from its raw inputs.", "set -euo pipefail",
             f"cd {shlex.quote(str(ws.root))}"]
    for s in states:
        if s.recorded_command:
            lines.append(s.recorded_command)
        elif s.state == "missing":
            lines.append(f"# {s.stage}: not built yet: {s.command}")
    return "\n".join(lines) + "\n"
