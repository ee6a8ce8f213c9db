"""Fill in omitted store paths from the workspace roles, and register outputs afterwards.

This is a thin argv rewriter in front of the CLI: `rosetta mine --topk 1` becomes
`rosetta mine --topk 1 --ego features/ego4d.zarr --exo ... --out pairs/rst-top1.zarr`.
Explicit options always win. The rewritten argv is what provenance records, so every
output names its fully resolved inputs.
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


@dataclass
class StageSpec:
    inputs: dict                       # option → role (required)
    optional: dict = field(default_factory=dict)  # option → role, injected only if the role exists
    output: Callable | None = None     # (ws, argv) → conventional output path
    output_opt: str = "--out"
    registers: str | None = None       # role the output plays


def _stem(ws: Workspace, role: str) -> str:
    p = ws.path(role)
    return p.name.split(".")[0] if p else role


SPECS = {
    "train-rst": StageSpec({"--paired": "paired"}, output=lambda ws, a: "rst", registers="rst"),
    "translate": StageSpec({"--rst": "rst", "--ego": "ego"},
                           output=lambda ws, a: f"features/{_stem(ws, 'ego')}.translated.zarr", registers="translated"),
    "mine": StageSpec({"--ego": "ego", "--exo": "exo"}, {"--translated": "translated"},
                      output=lambda ws, a: f"pairs/{get_opt(a, '--strategy') or 'rst'}-top{get_opt(a, '--topk') or 1}.zarr",
                      registers="pairs"),
    "pretrain": StageSpec({}, {"--paired": "paired", "--ego": "ego", "--exo": "exo", "--pairs": "pairs", "--translated": "translated"},
                          output=lambda ws, a: f"models/{get_opt(a, '--name') or 'rosetta'}", registers="model"),
    "bench": StageSpec({"--ego": "paired", "--exo": "paired"}, {"--model": "model"},
                       output=lambda ws, a: f"reports/{_dt.date.today().isoformat()}"),
}


def get_opt(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def has_opt(argv: list[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in argv)


def split_command(argv: list[str]) -> tuple[list[str], str | None, list[str]]:
    """(global options, command, command args)."""
    for i, a in enumerate(argv):
        if not a.startswith("-"):
            return argv[:i], a, argv[i + 1:]
    return argv, None, []


@dataclass
class Plan:
    """What the rewriter decided: the new argv, and the role to register on success."""

    argv: list[str]
    ws: Workspace | None = None
    register: tuple[str, str] | None = None  # (role, path)


def rewrite(argv: list[str]) -> Plan:
    argv, ws_dir = _pop_workspace(argv)
    glob, cmd, args = split_command(argv)
    root = workspace_root(ws_dir)
    ws = load(root)
    if cmd == "extract":
        return _rewrite_extract(glob, args, root, ws)
    if cmd not in SPECS or ws is None or "--help" in args or "-h" in args:
        return Plan(argv)
    spec = SPECS[cmd]
    args = _apply_defaults(ws, cmd, args)
    for opt, role in list(spec.inputs.items()) + list(spec.optional.items()):
        if has_opt(args, opt) or (cmd == "mine" and opt == "--translated" and (get_opt(args, "--strategy") or "rst") != "rst"):
            continue
        path = ws.path(role)
        if path is None or not path.exists():
            if opt in spec.inputs:
                raise UsageError(f"{cmd}: the workspace has no '{role}' ({ROLES[role].split(';')[0]})",
                                 hint=f"produce it with {ROLES[role].split(';')[1].strip()}, or pass {opt} PATH")
            continue
        args += [opt, _arg(root, path)]
    out = get_opt(args, spec.output_opt)
    if out is None and spec.output is not None:
        out = root / spec.output(ws, args)
        args += [spec.output_opt, _arg(root, out)]
    register = (spec.registers, Path(out).resolve()) if spec.registers else None
    return Plan(glob + [cmd] + args, ws, register)


def _rewrite_extract(glob, args, root: Path, ws: Workspace | None) -> Plan:
    if has_opt(args, "--out") or "--help" in args or "-h" in args or not has_opt(args, "--videos"):
        return Plan(glob + ["extract"] + args)
    ws = ws or Workspace(root=root)
    args = _apply_defaults(ws, "extract", args)
    videos = Path(get_opt(args, "--videos"))
    role = get_opt(args, "--role") or _dataset_role(videos, get_opt(args, "--dataset"))
    if role is None:
        raise UsageError(f"{videos}: a plain folder of videos has no known role",
                         hint="pass --view ego|exo and --role ego|exo|paired (or --out PATH)")
    out = root / "features" / f"{videos.resolve().name}.zarr"
    return Plan(glob + ["extract"] + args + ["--out", _arg(root, out)], ws, (role, out))


def _arg(root: Path, path: Path) -> str:
    """Relative to the current directory when the workspace is the current directory, else absolute."""
    return os.path.relpath(path) if Path.cwd().resolve() == root.resolve() else str(Path(path).resolve())


def _dataset_role(videos: Path, dataset: str | None) -> str | None:
    if dataset in (None, "auto"):
        from rosetta_cli.datasets import detect_dataset

        dataset = detect_dataset(videos) if videos.exists() else None
    return DATASET_ROLES.get(dataset)


def _apply_defaults(ws: Workspace, stage: str, args: list[str]) -> list[str]:
    args = list(args)
    for key, value in (ws.defaults.get(stage) or {}).items():
        flag = "--" + str(key).replace("_", "-")
        if has_opt(args, flag) or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, list):
            for v in value:
                args += [flag, str(v)]
        else:
            args += [flag, str(value)]
    return args


def _pop_workspace(argv: list[str]) -> tuple[list[str], str | None]:
    out, ws_dir, skip = [], None, False
    glob, cmd, _ = split_command(argv)
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--workspace" and i < len(glob) + 1:
            ws_dir, skip = argv[i + 1] if i + 1 < len(argv) else None, True
            continue
        if a.startswith("--workspace=") and i < len(glob):
            ws_dir = a.split("=", 1)[1]
            continue
        out.append(a)
    return out, ws_dir


def register(plan: Plan) -> None:
    """After a successful stage: record its output under its role."""
    if plan.ws is None or plan.register is None:
        return
    role, path = plan.register
    plan.ws.set_role(role, path)


def init_workspace(root: Path, force: bool = False) -> Workspace:
    ws = load(root) if not force else None
    ws = ws or Workspace(root=root)
    save(ws)
    for d in ("features", "pairs", "models", "reports"):
        (root / d).mkdir(exist_ok=True)
    return ws
