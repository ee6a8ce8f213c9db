"""benchmarks/device_check.py --device cpu --tiny: the GPU check's own script, run on the CPU so that it cannot rot.

Its numbers are not checked (a CPU under test load says nothing about a GPU); what must hold: every stage
ran through the CLI and succeeded, each row has a throughput, a bound measured in the same run, their
ratio, and the child's peak RSS, and the JSON table is what it printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["extract 1080p", "extract 288p", "train-rst D=256", "translate D=256", "mine D=256", "pretrain D=256",
          "embed D=256", "mine search"]


@pytest.mark.slow
def test_tiny_cpu_device_check_runs_every_stage(tmp_path):
    out = tmp_path / "dc.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device_check.py"), "--device", "cpu", "--tiny",
                        "--out", str(out), "--workdir", str(tmp_path / "w")],
                       capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep["device"] == "cpu" and rep["tiny"] is True
    assert [row["stage"] for row in rep["rows"]] == STAGES
    for row in rep["rows"]:
        assert row["ok"], row
        assert row["throughput"] > 0 and row["bound"] > 0, row
        assert row["ratio"] == pytest.approx(row["throughput"] / row["bound"])
        assert row["peak_rss_mb"] > 50                      # a python + torch child, measured (wait4 rusage)
        assert row["command"].startswith("rosetta " if row["stage"] != "mine search" else "python ")
        assert row["stage"] in r.stdout                      # the printed table has the row
    by = {row["stage"]: row for row in rep["rows"]}
    assert by["extract 288p"]["target"] == 0.8 and by["mine search"]["target"] == 0.3
    assert tuple(by["mine D=256"]["index"]) == ("flat", "cpu")    # exact search on a CPU-only faiss
    assert tuple(by["mine search"]["index"]) == ("flat", "cpu")
    assert by["extract 1080p"]["source"] == "loop"                # extract's own clips_per_s
    with_store = tmp_path / "w" / "extract" / "extract-288p.zarr"
    assert with_store.exists()
