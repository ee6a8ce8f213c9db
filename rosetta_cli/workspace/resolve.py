"""Workspace defaults for every command: TOML option defaults, role-resolved inputs, conventional outputs.

A `Session` is built once per invocation from `--workspace DIR` (or ROSETTA_WORKSPACE, or the
current directory). The CLI turns `Session.defaults(...)` into click's `default_map` for the
command being run, so `rosetta mine --topk 1` reads `--ego features/ego4d.zarr --exo ... --out
pairs/rst-top1.zarr` from the workspace. Options given on the command line always win: click only
consults the map for options the user left out. After a stage succeeds, `Session.register`
records its output under its role. Nothing here touches argv.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rosetta_cli.errors import UsageError
from rosetta_cli.pipeline import table
from rosetta_cli.workspace.config import Workspace, load, save, workspace_root

Get = Callable[[str], object]  # param name → its value in this invocation (given, or its default)


def _stem(ws: Workspace, role: str) -> str:
    p = ws.path(role)
    return p.name.split(".")[0] if p else role


def _fields(ws: Workspace, get: Get) -> dict:
    """The values of the table's output path templates (pipeline.table.output_path) in this invocation."""
    return {"ego": _stem(ws, "ego"), "strategy": get("strategy") or "rst", "topk": get("topk") or 1,
            "name": get("name") or "rosetta", "date": _dt.date.today().isoformat()}


@dataclass
class Session:
    """The workspace one invocation runs in (ws is None where the root holds no rosetta.toml)."""

    root: Path
    ws: Workspace | None
    pending: tuple[str, Path] | None = None  # (role, path) an extract with a defaulted --out registers

    @classmethod
    def open(cls, workspace: str | None = None) -> "Session":
        root = workspace_root(workspace)
        return cls(root, load(root))

    def defaults(self, cmd: str, flags: dict[str, str], get: Get) -> dict:
        """click default_map for `rosetta cmd`: {param name: value, or a zero-argument callable}.

        flags maps each long flag to its param name ('--sampling-steps' → 'sampling_steps')."""
        out = self._toml(cmd, flags)
        if cmd == "extract":  # works without rosetta.toml too: features/<folder>.zarr under the root
            out.setdefault("out", lambda: self._extract_out(get))
        stage = table.BY_COMMAND.get(cmd)
        if stage is None or not stage.workspace or self.ws is None:
            return out
        for i in stage.inputs:
            value = self._input(cmd, i.flag, i.role, required=i.required)
            if i.when is not None:  # read only under one option value (mine --translated: the rst strategy)
                value = self._when(value, get, *i.when)
            out.setdefault(flags[i.flag], value)
        if stage.path and cmd != "extract":
            out.setdefault(flags[stage.out_flag],
                           lambda: self._arg(self.root / table.output_path(cmd, **_fields(self.ws, get))))
        return out

    @staticmethod
    def _when(value, get: Get, option: str, wanted: str):
        return lambda: value() if get(option) in (None, wanted) else None

    def register(self, cmd: str, get: Get) -> None:
        """After a successful stage: record its output under its role."""
        if cmd == "extract" and self.pending is not None:
            ws = self.ws or Workspace(root=self.root)
            ws.set_role(*self.pending)
            return
        stage = table.BY_COMMAND.get(cmd)
        if stage is None or stage.output is None or not stage.workspace or self.ws is None:
            return
        out = get(stage.out_flag.lstrip("-").replace("-", "_"))
        if out:
            self.ws.set_role(stage.output, Path(out).resolve())

    def _toml(self, cmd: str, flags: dict[str, str]) -> dict:
        out = {}
        for key, value in ((self.ws.defaults.get(cmd) if self.ws else None) or {}).items():
            flag = "--" + str(key).replace("_", "-")
            if flag not in flags:
                raise UsageError(f"{self.ws.file}: [defaults.{cmd}] {key} is not an option of `rosetta {cmd}`",
                                 hint=f"see `rosetta {cmd} --help` for its options")
            out[flags[flag]] = value
        return out

    def _input(self, cmd: str, flag: str, role: str, required: bool = False):
        def value():
            path = self.ws.path(role)
            if path is not None and path.exists():
                return self._arg(path)
            if required:
                raise UsageError(f"{cmd}: the workspace has no '{role}' ({table.ROLE_DOCS[role]})",
                                 hint=f"produce it with `{table.maker(role)}`, or pass {flag} PATH")
            return None
        return value

    def _extract_out(self, get: Get):
        videos = get("videos")
        if videos is None:
            return None
        videos = Path(videos)
        role = get("role") or _dataset_role(videos, get("dataset"))
        if role is None:
            raise UsageError(f"{videos}: a plain folder of videos has no known role",
                             hint="pass --view ego|exo and --role ego|exo|paired (or --out PATH)")
        out = self.root / table.output_path("extract", videos=videos.resolve().name)
        self.pending = (role, out)
        return self._arg(out)

    def _arg(self, path: Path) -> str:
        """Relative to the current directory when the workspace is the current directory, else absolute."""
        return os.path.relpath(path) if Path.cwd().resolve() == self.root.resolve() else str(Path(path).resolve())


def _dataset_role(videos: Path, dataset: str | None) -> str | None:
    if dataset in (None, "auto"):
        from rosetta_cli.datasets import detect_dataset  # pandas: every command opens a Session, --help included

        dataset = detect_dataset(videos) if videos.exists() else None
    return table.SOURCES.get(dataset)


def init_workspace(root: Path, force: bool = False) -> Workspace:
    ws = load(root) if not force else None
    ws = ws or Workspace(root=root)
    save(ws)
    for d in ("features", "pairs", "models", "reports"):
        (root / d).mkdir(exist_ok=True)
    return ws
