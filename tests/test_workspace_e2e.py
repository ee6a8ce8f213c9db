"""The design-card usage, verbatim, on the tiny toy world: short commands, roles, status, staleness."""

from __future__ import annotations

import json

import pytest

from rosetta_cli.toy import render_world


@pytest.mark.slow
def test_short_commands_then_status(tmp_path, monkeypatch, cli):
    data = tmp_path / "data"
    render_world(data, scale="tiny", seed=0)
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(ws)
    monkeypatch.delenv("ROSETTA_WORKSPACE", raising=False)
    assert cli("init").code == 0
    for name in ("ego4d", "egoexo4d", "htm-aa"):
        r = cli("extract", "--videos", str(data / name), "--workers", "0")
        assert r.code == 0, r
    roles = (ws / "rosetta.toml").read_text()
    assert 'ego = "features/ego4d.zarr"' in roles
    assert 'paired = "features/egoexo4d.zarr"' in roles
    assert 'exo = "features/htm-aa.zarr"' in roles
    assert cli("train-rst", "--steps", "20", "--size", "tiny", "--batch-size", "4").code == 0
    assert cli("translate").code == 0
    r = cli("mine", "--topk", "1")
    assert r.code == 0, r
    assert (ws / "pairs" / "rst-top1.zarr").exists()
    assert (ws / "features" / "ego4d.translated.zarr").exists()

    states = {s["role"]: s for s in json.loads(cli("status", "--json").out)}
    assert all(states[r]["state"] == "done" for r in ("paired", "ego", "exo", "rst", "translated", "pairs"))
    assert states["model"]["state"] == "missing"
    assert "rosetta pretrain" in states["model"]["command"]
    # provenance holds the fully resolved command
    script = cli("status", "--commands").out
    assert "--translated features/ego4d.translated.zarr" in script
    assert "--out pairs/rst-top1.zarr" in script

    # re-extract the ego input: everything downstream of it is stale, the rest is not
    assert cli("extract", "--videos", str(data / "ego4d"), "--workers", "0", "--overwrite").code == 0
    states = {s["role"]: s for s in json.loads(cli("status", "--json").out)}
    assert states["translated"]["state"] == "stale"
    assert states["pairs"]["state"] == "stale"
    assert states["rst"]["state"] == "done"
    assert states["ego"]["state"] == "done"
    assert "rosetta translate" in states["translated"]["command"]

    # explicit paths override roles
    r = cli("mine", "--strategy", "text", "--topk", "1", "--ego", "features/ego4d.zarr", "--out", "pairs/explicit.zarr")
    assert r.code == 0
    assert (ws / "pairs" / "explicit.zarr").exists()
    assert 'pairs = "pairs/explicit.zarr"' in (ws / "rosetta.toml").read_text()
