"""Workspace: defaults from roles and rosetta.toml (click's default_map), explicit options win,
the resolved command in provenance, --workspace from any folder, status and staleness."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.errors import UsageError
from rosetta_cli.store import DONE, Store
from rosetta_cli.workspace.config import load
from rosetta_cli.workspace.resolve import init_workspace
from rosetta_cli.workspace.status import commands_script, stage_states


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROSETTA_WORKSPACE", raising=False)
    return init_workspace(tmp_path)


def make(path, parents=(), n=4, view="ego"):
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "view": [view] * n})
    s = Store.create(path, kind="features", clips=clips, frames=1, dim=3)
    s.write_rows(0, features=np.ones((n, 1, 3)), status=DONE)
    for role, p in parents:
        s.add_parent(role, Store.open(p))
    s.finalize()
    s.close()
    return path


@dataclass
class Resolved:
    argv: list            # the resolved command, as provenance records it
    session: object
    get: object           # param name → value


def resolve(*argv) -> Resolved:
    """Parse `rosetta *argv` exactly as main does, without running the command."""
    from typer.main import get_command

    from rosetta_cli.cli.app import app
    from rosetta_cli.cli.core import param_getter, resolved_argv

    group = get_command(app)
    with group.make_context("rosetta", list(argv)) as ctx:
        name, cmd, rest = group.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        with cmd.make_context(name, rest, parent=ctx) as sub:
            return Resolved(resolved_argv(sub), ctx.obj, param_getter(sub))


def get_opt(argv: list, name: str):
    return argv[argv.index(name) + 1] if name in argv else None


def test_mine_short_form_uses_roles(ws, tmp_path):
    ws.set_role("ego", make(tmp_path / "features/ego4d.zarr"))
    ws.set_role("exo", make(tmp_path / "features/htm.zarr"))
    ws.set_role("translated", make(tmp_path / "features/ego4d.translated.zarr"))
    r = resolve("mine", "--topk", "1")
    assert r.argv[:2] == ["rosetta", "mine"]
    assert get_opt(r.argv, "--ego") == "features/ego4d.zarr"
    assert get_opt(r.argv, "--exo") == "features/htm.zarr"
    assert get_opt(r.argv, "--translated") == "features/ego4d.translated.zarr"
    assert get_opt(r.argv, "--out") == "pairs/rst-top1.zarr"
    r.session.register("mine", r.get)
    assert load(tmp_path).roles["pairs"] == "pairs/rst-top1.zarr"
    # explicit paths win; the text strategy does not pull in --translated
    a = resolve("mine", "--ego", "mine.zarr", "--strategy", "text", "--topk", "3").argv
    assert get_opt(a, "--ego") == "mine.zarr"
    assert get_opt(a, "--translated") is None
    assert get_opt(a, "--out") == "pairs/text-top3.zarr"


def test_missing_role_names_the_producing_command(ws):
    with pytest.raises(UsageError) as e:
        resolve("train-rst")
    assert "rosetta extract --videos egoexo4d/" in e.value.one_line()


def test_repeatable_option_takes_the_role(ws, tmp_path):
    ws.set_role("paired", make(tmp_path / "features/paired.zarr"))
    r = resolve("train-rst", "--steps", "3")
    assert r.get("paired") == [__import__("pathlib").Path("features/paired.zarr")]
    assert get_opt(r.argv, "--paired") == "features/paired.zarr"
    assert get_opt(r.argv, "--out") == "rst"


def test_stage_defaults_from_toml(ws, tmp_path):
    ws.set_role("ego", make(tmp_path / "e.zarr"))
    ws.set_role("exo", make(tmp_path / "x.zarr"))
    (tmp_path / "rosetta.toml").write_text((tmp_path / "rosetta.toml").read_text() + "\n[defaults.mine]\ntopk = 5\nstrategy = \"text\"\n")
    a = resolve("mine").argv
    assert get_opt(a, "--topk") == "5"
    assert get_opt(a, "--out") == "pairs/text-top5.zarr"
    a = resolve("mine", "--topk", "2").argv
    assert a.count("--topk") == 1
    assert get_opt(a, "--topk") == "2"


def test_unknown_toml_option_is_one_clear_line(ws, tmp_path):
    (tmp_path / "rosetta.toml").write_text((tmp_path / "rosetta.toml").read_text() + "\n[defaults.mine]\ntopkk = 5\n")
    with pytest.raises(UsageError) as e:
        resolve("mine")
    assert "[defaults.mine] topkk is not an option of `rosetta mine`" in e.value.one_line()


def test_extract_registers_by_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROSETTA_WORKSPACE", raising=False)
    (tmp_path / "ego4d").mkdir()
    (tmp_path / "ego4d" / "narration.json").write_text("{}")
    r = resolve("extract", "--videos", "ego4d/")
    assert get_opt(r.argv, "--out") == "features/ego4d.zarr"
    assert r.session.pending[0] == "ego"
    (tmp_path / "clips").mkdir()
    with pytest.raises(UsageError) as e:
        resolve("extract", "--videos", "clips")
    assert "--view ego|exo and --role" in e.value.one_line()
    r = resolve("extract", "--videos", "clips", "--view", "exo", "--role", "exo")
    assert r.session.pending[0] == "exo"
    r = resolve("extract", "--videos", "clips", "--out", "mine.zarr")  # an explicit --out registers nothing
    assert r.session.pending is None


def test_workspace_option_from_another_folder(tmp_path, monkeypatch, cli):
    """`rosetta --workspace DIR init/status/mine` use DIR, wherever they run; outputs record the
    resolved command (absolute paths, since DIR is not the current folder), not argv."""
    monkeypatch.delenv("ROSETTA_WORKSPACE", raising=False)
    root, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli("--workspace", root, "init").code == 0
    assert (root / "rosetta.toml").exists()
    assert not (elsewhere / "rosetta.toml").exists()
    ws = load(root)
    ws.set_role("ego", make(root / "features/ego.zarr"))
    ws.set_role("exo", make(root / "features/exo.zarr", view="exo"))
    r = cli("--workspace", root, "mine", "--strategy", "visual", "--topk", "1")
    assert r.code == 0, r.err
    pairs = root / "pairs" / "visual-top1.zarr"
    command = Store.open(pairs).meta["command"]
    assert command[:2] == ["rosetta", "mine"]
    assert get_opt(command, "--ego") == str((root / "features/ego.zarr").resolve())
    assert get_opt(command, "--out") == str(pairs.resolve())
    assert "--workspace" not in command
    states = {d["role"]: d for d in json.loads(cli("--workspace", root, "status", "--json").out)}
    assert states["pairs"]["state"] == "done"
    assert states["ego"]["rows"] == "4/4"


def test_status_stale_from_fingerprints(ws, tmp_path):
    ego = make(tmp_path / "features/ego.zarr")
    ws.set_role("ego", ego)
    ws.set_role("translated", make(tmp_path / "features/tr.zarr", parents=[("ego", ego)]))
    ws.set_role("pairs", make(tmp_path / "pairs/p.zarr", parents=[("translated", tmp_path / "features/tr.zarr")]))
    states = {s.role: s for s in stage_states(ws)}
    assert states["ego"].state == "done"
    assert states["translated"].state == "done"
    assert states["pairs"].state == "done"
    assert states["paired"].state == "missing"
    assert "egoexo4d" in states["paired"].command
    make(tmp_path / "features/ego.zarr.tmp.zarr")
    os.rename(tmp_path / "features/ego.zarr", tmp_path / "old.zarr")
    os.rename(tmp_path / "features/ego.zarr.tmp.zarr", tmp_path / "features/ego.zarr")  # re-extracted: new id
    states = {s.role: s for s in stage_states(ws)}
    assert states["translated"].state == "stale"
    assert states["pairs"].state == "stale"
    assert states["ego"].state == "done"
    script = commands_script(ws, stage_states(ws))
    assert script.startswith("#!/usr/bin/env bash")
    assert "rosetta" in script


def test_status_cli_json(ws, tmp_path, cli):
    ws.set_role("ego", make(tmp_path / "e.zarr"))
    r = cli("status", "--json")
    data = {d["role"]: d for d in json.loads(r.out)}
    assert r.code == 0
    assert data["ego"]["state"] == "done"
    assert data["ego"]["rows"] == "4/4"


def test_stage_run_by_the_demo_records_its_own_command(ws, tmp_path):
    """`rosetta demo` runs stages in-process; each store records the stage's command, not `rosetta demo`."""
    from rosetta_cli import provenance
    from rosetta_cli.cli.demo import call_stage

    ego, exo = make(tmp_path / "e.zarr"), make(tmp_path / "x.zarr", view="exo")
    out = tmp_path / "pairs.zarr"
    with provenance.recording(["rosetta", "demo", "--out", "d"]):
        call_stage(["mine", "--ego", str(ego), "--exo", str(exo), "--strategy", "visual", "--topk", "1", "--out", str(out)])
        assert provenance.command_line()[:2] == ["rosetta", "demo"]  # the outer command again after the stage
    command = Store.open(out).meta["command"]
    assert command[:2] == ["rosetta", "mine"]
    assert get_opt(command, "--out") == str(out)
    assert get_opt(command, "--strategy") == "visual"
