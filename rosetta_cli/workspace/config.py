"""The workspace file `rosetta.toml`: roles → paths, and per-stage option defaults.

    [roles]
    ego = "features/ego4d.zarr"
    [defaults.mine]
    topk = 1
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser from PyPI
    import tomli as tomllib

from rosetta_cli.errors import AnnotationError
from rosetta_cli.pipeline import table

WORKSPACE_FILE = "rosetta.toml"
# role → what it holds and the command that makes it (from the pipeline's table)
ROLES = {role: f"{what}; `{table.maker(role)}`" for role, what in table.ROLE_DOCS.items()}
STAGES = tuple(s.command for s in table.STAGES if s.workspace)  # the [defaults.<stage>] sections


@dataclass
class Workspace:
    root: Path
    roles: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.root / WORKSPACE_FILE

    def path(self, role: str) -> Path | None:
        p = self.roles.get(role)
        return None if p is None else (self.root / p if not Path(p).is_absolute() else Path(p))

    def rel(self, path) -> str:
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def set_role(self, role: str, path) -> None:
        self.roles[role] = self.rel(path)
        save(self)


def workspace_root(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("ROSETTA_WORKSPACE") or ".").resolve()


def load(root: Path) -> Workspace | None:
    f = root / WORKSPACE_FILE
    if not f.exists():
        return None
    try:
        data = tomllib.loads(f.read_text())
    except tomllib.TOMLDecodeError as e:
        raise AnnotationError(f"{f}: invalid TOML ({e})", hint="fix the file or recreate it with `rosetta init --force`") from e
    roles = data.get("roles", {})
    bad = sorted(set(roles) - set(ROLES))
    if bad:
        raise AnnotationError(f"{f}: unknown role(s) {bad}", hint=f"roles are {', '.join(ROLES)}")
    return Workspace(root=root, roles=dict(roles), defaults=dict(data.get("defaults", {})))


def save(ws: Workspace) -> None:
    ws.root.mkdir(parents=True, exist_ok=True)
    ws.file.write_text(render(ws))


def render(ws: Workspace) -> str:
    lines = ["# rosetta workspace. Edit freely; options given on the command line always win.", "",
             "# Roles: which store or checkpoint plays each part of the pipeline (paths relative to this file).",
             "[roles]"]
    for role, doc in ROLES.items():
        lines.append(f"# {role}: {doc}")
        lines.append(f'{role} = {_toml_value(ws.roles[role])}' if role in ws.roles else f'# {role} = ""')
    lines += ["", "# Per-stage defaults: [defaults.<stage>] option = value, e.g. topk = 1 for `rosetta mine`.",
              "# Option names are the long flags without dashes (sampling-steps → sampling_steps or \"sampling-steps\")."]
    for stage in STAGES:
        opts = ws.defaults.get(stage, {})
        lines.append(f"[defaults.{stage}]" if opts else f"# [defaults.{stage}]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in opts.items()]
    return "\n".join(lines) + "\n"


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").isalnum() else f'"{k}"'


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
