"""Workspace: argv rewriting from roles, explicit paths win, defaults, status and staleness."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.errors import UsageError
from rosetta_cli.store import DONE, Store
from rosetta_cli.workspace.config import load
from rosetta_cli.workspace.resolve import get_opt, init_workspace, register, rewrite
from rosetta_cli.workspace.status import commands_script, stage_states


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROSETTA_WORKSPACE", raising=False)
    return init_workspace(tmp_path)


def make(path, parents=(), n=4):
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "view": ["ego"] * n})
    s = Store.create(path, kind="features", clips=clips, frames=1, dim=3)
    s.write_rows(0, features=np.ones((n, 1, 3)), status=DONE)
    for role, p in parents:
        s.add_parent(role, Store.open(p))
    s.finalize()
    s.close()
    return path


def test_mine_short_form_uses_roles(ws, tmp_path):
    ws.set_role("ego", make(tmp_path / "features/ego4d.zarr"))
    ws.set_role("exo", make(tmp_path / "features/htm.zarr"))
    ws.set_role("translated", make(tmp_path / "features/ego4d.translated.zarr"))
    plan = rewrite(["mine", "--topk", "1"])
    a = plan.argv
    assert get_opt(a, "--ego") == "features/ego4d.zarr" and get_opt(a, "--exo") == "features/htm.zarr"
    assert get_opt(a, "--translated") == "features/ego4d.translated.zarr"
    assert get_opt(a, "--out") == "pairs/rst-top1.zarr"
    register(plan)
    assert load(tmp_path).roles["pairs"] == "pairs/rst-top1.zarr"
    # explicit paths win; text strategy does not pull in --translated
    a = rewrite(["mine", "--ego", "mine.zarr", "--strategy", "text", "--topk", "3"]).argv
    assert get_opt(a, "--ego") == "mine.zarr" and get_opt(a, "--translated") is None
    assert get_opt(a, "--out") == "pairs/text-top3.zarr"


def test_missing_role_names_the_producing_command(ws):
    with pytest.raises(UsageError) as e:
        rewrite(["train-rst"])
    assert "rosetta extract --videos egoexo4d/" in e.value.one_line()


def test_stage_defaults_from_toml(ws, tmp_path):
    ws.set_role("ego", make(tmp_path / "e.zarr"))
    ws.set_role("exo", make(tmp_path / "x.zarr"))
    (tmp_path / "rosetta.toml").write_text((tmp_path / "rosetta.toml").read_text() + "\n[defaults.mine]\ntopk = 5\nstrategy = \"text\"\n")
    a = rewrite(["mine"]).argv
    assert get_opt(a, "--topk") == "5" and get_opt(a, "--out") == "pairs/text-top5.zarr"
    a = rewrite(["mine", "--topk", "2"]).argv
    assert a.count("--topk") == 1 and get_opt(a, "--topk") == "2"


def test_extract_registers_by_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ego4d").mkdir()
    (tmp_path / "ego4d" / "narration.json").write_text("{}")
    plan = rewrite(["extract", "--videos", "ego4d/"])
    assert get_opt(plan.argv, "--out") == "features/ego4d.zarr" and plan.register[0] == "ego"
    (tmp_path / "clips").mkdir()
    with pytest.raises(UsageError) as e:
        rewrite(["extract", "--videos", "clips"])
    assert "--view ego|exo and --role" in e.value.one_line()
    plan = rewrite(["extract", "--videos", "clips", "--view", "exo", "--role", "exo"])
    assert plan.register[0] == "exo"


def test_status_stale_from_fingerprints(ws, tmp_path):
    ego = make(tmp_path / "features/ego.zarr")
    ws.set_role("ego", ego)
    ws.set_role("translated", make(tmp_path / "features/tr.zarr", parents=[("ego", ego)]))
    ws.set_role("pairs", make(tmp_path / "pairs/p.zarr", parents=[("translated", tmp_path / "features/tr.zarr")]))
    states = {s.role: s for s in stage_states(ws)}
    assert states["ego"].state == "done" and states["translated"].state == "done" and states["pairs"].state == "done"
    assert states["paired"].state == "missing" and "egoexo4d" in states["paired"].command
    make(tmp_path / "features/ego.zarr.tmp.zarr")
    os.rename(tmp_path / "features/ego.zarr", tmp_path / "old.zarr")
    os.rename(tmp_path / "features/ego.zarr.tmp.zarr", tmp_path / "features/ego.zarr")  # re-extracted: new id
    states = {s.role: s for s in stage_states(ws)}
    assert states["translated"].state == "stale" and states["pairs"].state == "stale"
    assert states["ego"].state == "done"
    script = commands_script(ws, stage_states(ws))
    assert script.startswith("#!/usr/bin/env bash") and "rosetta" in script


def test_status_cli_json(ws, tmp_path, cli):
    ws.set_role("ego", make(tmp_path / "e.zarr"))
    r = cli("status", "--json")
    data = {d["role"]: d for d in json.loads(r.out)}
    assert r.code == 0 and data["ego"]["state"] == "done" and data["ego"]["rows"] == "4/4"
