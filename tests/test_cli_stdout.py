"""Results on stdout, everything else on stderr: each command runs as a real child process with its
output piped, as in `rosetta encoders | grep lavila` or `rosetta status > status.txt`.

Without --json the result text must be on stdout (and not on stderr); with --json stdout must
parse as JSON as a whole (no table, note or progress line mixed in)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rosetta_cli.synthetic.bench_stores import make_stores

REPO = Path(__file__).resolve().parents[1]


def rosetta(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`rosetta ARGS` in a child process with stdout and stderr piped (not a terminal)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "rosetta_cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def as_json(r: subprocess.CompletedProcess):
    """The whole of stdout as one JSON document (json.loads fails on anything mixed in)."""
    return json.loads(ok(r).stdout)


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("stdout")
    return make_stores(d, n_ego=24, exo_per_ego=1, n_exo_train=24, n_classes=4, dim=8, frames=2, seed=0)


def test_encoders_table_and_json():
    r = ok(rosetta("encoders"))
    assert "efficientnet-lite0" in r.stdout and "efficientnet-lite0" not in r.stderr
    names = [e["name"] for e in as_json(rosetta("encoders", "--json"))]
    assert "efficientnet-lite0" in names


def test_store_info_validate_export(stores, tmp_path):
    ego, _ = stores
    r = ok(rosetta("store", "info", ego))
    assert str(ego) in r.stdout and "rows" in r.stdout and "24" in r.stdout
    assert r.stderr == ""
    assert as_json(rosetta("store", "info", ego, "--json"))["rows"] == 24
    r = ok(rosetta("store", "validate", ego))
    assert f"{ego}: valid" in r.stdout and r.stderr == ""
    r = ok(rosetta("store", "export", ego, "--out", tmp_path / "exp"))
    assert "features.npy" in r.stdout and "clips.csv" in r.stdout


def test_index_and_retrieve(stores, tmp_path):
    ego, exo = stores
    idx = tmp_path / "idx"
    r = ok(rosetta("index", "--store", exo, "--out", idx))
    assert f"→ {idx}" in r.stdout
    assert "next: rosetta retrieve" in r.stderr and "next:" not in r.stdout  # a hint, not the result
    r = ok(rosetta("retrieve", "--index", idx, "--store", ego, "--rows", "0", "--topk", "3"))
    assert "rank" in r.stdout and "clip id" in r.stdout
    hits = as_json(rosetta("retrieve", "--index", idx, "--store", ego, "--rows", "0", "--topk", "3", "--json"))
    assert [h["rank"] for h in hits["queries"][0]["hits"]] == [1, 2, 3]


def test_bench_table_on_stdout_json_alone(stores, tmp_path):
    ego, exo = stores
    args = ("bench", "--ego", ego, "--exo", exo, "--tasks", "retrieval", "--no-plots")
    r = ok(rosetta(*args, "--out", tmp_path / "r1"))
    assert "HR@5 ego→exo" in r.stdout and "HR@5 ego→exo" not in r.stderr
    assert f"report: {tmp_path / 'r1' / 'index.html'}" in r.stdout
    res = as_json(rosetta(*args, "--out", tmp_path / "r2", "--json"))
    assert "retrieval" in json.dumps(res)


def test_init_and_status(tmp_path):
    r = ok(rosetta("init", cwd=tmp_path))
    assert "workspace ready" in r.stdout
    r = ok(rosetta("status", cwd=tmp_path))
    assert "rosetta workspace" in r.stdout and "stage" in r.stdout and r.stderr == ""
    states = as_json(rosetta("status", "--json", cwd=tmp_path))
    assert isinstance(states, list) and states and all("state" in s for s in states)


def test_stages_inside_demo_and_claims_print_to_stderr(capsys):
    """demo and claims run each stage in-process: a stage's result is their progress (stderr), so that
    their stdout holds only their final tables, and `rosetta claims --json` only claims.json."""
    from rosetta_cli.cli.demo import call_stage

    call_stage(["encoders"])
    got = capsys.readouterr()
    assert got.out == ""
    assert "$ rosetta encoders" in got.err and "efficientnet-lite0" in got.err
