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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rosetta_cli.errors import UsageError
from rosetta_cli.workspace.config import ROLES, Workspace, load, save, workspace_root

DATASET_ROLES = {"egoexo4d": "paired", "ego4d": "ego", "htm-aa": "exo"}
Get = Callable[[str], object]  # param name → its value in this invocation (given, or its default)


@dataclass
class StageSpec:
    inputs: dict                       # flag → role (required)
    optional: dict = field(default_factory=dict)  # flag → role, a default only if the role exists
    output: Callable | None = None     # (ws, get) → conventional output path, relative to the root
    output_opt: str = "--out"
    registers: str | None = None       # role the output plays


def _stem(ws: Workspace, role: str) -> str:
    p = ws.path(role)
    return p.name.split(".")[0] if p else role


SPECS = {
    "train-rst": StageSpec({"--paired": "paired"}, output=lambda ws, get: "rst", registers="rst"),
    "translate": StageSpec({"--rst": "rst", "--ego": "ego"},
                           output=lambda ws, get: f"features/{_stem(ws, 'ego')}.translated.zarr", registers="translated"),
    "mine": StageSpec({"--ego": "ego", "--exo": "exo"}, {"--translated": "translated"},
                      output=lambda ws, get: f"pairs/{get('strategy') or 'rst'}-top{get('topk') or 1}.zarr",
                      registers="pairs"),
    "pretrain": StageSpec({}, {"--paired": "paired", "--ego": "ego", "--exo": "exo", "--pairs": "pairs", "--translated": "translated"},
                          output=lambda ws, get: f"models/{get('name') or 'rosetta'}", registers="model"),
    "bench": StageSpec({"--ego": "paired", "--exo": "paired"}, {"--model": "model"},
                       output=lambda ws, get: f"reports/{_dt.date.today().isoformat()}"),
}


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
        spec = SPECS.get(cmd)
        if spec is None or self.ws is None:
            return out
        for flag, role in spec.inputs.items():
            out.setdefault(flags[flag], self._input(cmd, flag, role, required=True))
        for flag, role in spec.optional.items():
            if flag == "--translated" and cmd == "mine":  # only the rst strategy reads translations
                translated = self._input(cmd, flag, role)
                out.setdefault(flags[flag], lambda: translated() if (get("strategy") or "rst") == "rst" else None)
            else:
                out.setdefault(flags[flag], self._input(cmd, flag, role))
        if spec.output is not None:
            out.setdefault(flags[spec.output_opt], lambda: self._arg(self.root / spec.output(self.ws, get)))
        return out

    def register(self, cmd: str, get: Get) -> None:
        """After a successful stage: record its output under its role."""
        if cmd == "extract" and self.pending is not None:
            ws = self.ws or Workspace(root=self.root)
            ws.set_role(*self.pending)
            return
        spec = SPECS.get(cmd)
        if spec is None or spec.registers is None or self.ws is None:
            return
        out = get(spec.output_opt.lstrip("-").replace("-", "_"))
        if out:
            self.ws.set_role(spec.registers, Path(out).resolve())

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
                what, how = ROLES[role].split(";")[0], ROLES[role].split(";")[1].strip()
                raise UsageError(f"{cmd}: the workspace has no '{role}' ({what})", hint=f"produce it with {how}, or pass {flag} PATH")
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
        out = self.root / "features" / f"{videos.resolve().name}.zarr"
        self.pending = (role, out)
        return self._arg(out)

    def _arg(self, path: Path) -> str:
        """Relative to the current directory when the workspace is the current directory, else absolute."""
        return os.path.relpath(path) if Path.cwd().resolve() == self.root.resolve() else str(Path(path).resolve())


def _dataset_role(videos: Path, dataset: str | None) -> str | None:
    if dataset in (None, "auto"):
        from rosetta_cli.datasets import detect_dataset

        dataset = detect_dataset(videos) if videos.exists() else None
    return DATASET_ROLES.get(dataset)


def init_workspace(root: Path, force: bool = False) -> Workspace:
    ws = load(root) if not force else None
    ws = ws or Workspace(root=root)
    save(ws)
    for d in ("features", "pairs", "models", "reports"):
        (root / d).mkdir(exist_ok=True)
    return ws
