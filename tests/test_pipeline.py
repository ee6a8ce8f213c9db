"""The pipeline's one table (rosetta_cli/pipeline): examples/reproduce.sh is generated from it, every command the
script, the demo and the claims run parses with the real CLI, and the workspace reads its roles, paths and
stages from the same rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer

from rosetta_cli.cli.app import app
from rosetta_cli.demo import DemoConfig, claims_config, plan
from rosetta_cli.pipeline import reproduce, table, variants
from rosetta_cli.workspace.resolve import Session

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "reproduce.sh"


def parse(argv: list[str], root: Path) -> dict:
    """Parse `rosetta ARGV` with the real click command, without running it: the parameters it gets."""
    group = typer.main.get_command(app)
    parent = click.Context(group, info_name="rosetta", obj=Session.open(str(root)))
    cmd = group.get_command(parent, argv[0])
    assert cmd is not None, f"no command {argv[0]!r}"
    with cmd.make_context(argv[0], list(argv[1:]), parent=parent) as ctx:
        return dict(ctx.params)


def run_script(tmp_path: Path, **env) -> list[list[str]]:
    """Run examples/reproduce.sh with `rosetta` and `torchrun` on PATH recording their arguments (and doing
    nothing else): the argv of every command, as bash expanded it."""
    bin_, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_.mkdir()
    record = f'#!/bin/sh\nexec {sys.executable} -c "import json, sys; print(json.dumps(sys.argv[1:]))" "$@" >> {log}\n'
    (bin_ / "rosetta").write_text(record)
    (bin_ / "torchrun").write_text(record)
    for f in bin_.iterdir():
        f.chmod(0o755)
    full = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "OUT": str(tmp_path / "run"), **env}
    subprocess.run(["bash", str(SCRIPT)], env=full, check=True, capture_output=True, timeout=60)
    calls = [json.loads(ln) for ln in log.read_text().splitlines()]
    # torchrun --standalone --nproc_per_node N -m rosetta_cli ARGV... → ARGV
    return [c[c.index("rosetta_cli") + 1:] if "-m" in c else c for c in calls]


def test_committed_reproduce_sh_is_the_generated_one():
    assert SCRIPT.read_text() == reproduce.script(), "regenerate: python -m rosetta_cli.pipeline --reproduce > examples/reproduce.sh"


def test_every_command_of_reproduce_sh_parses_with_the_real_cli(tmp_path):
    calls = run_script(tmp_path)
    commands = [c[0] for c in calls]
    n = len(variants.DEMO_MINING), len(variants.VARIANTS), len(variants.GALLERIES)
    assert commands == ["toy", *["extract"] * 3, "train-rst", "translate", *["mine"] * n[0], *["pretrain"] * n[1],
                        *["bench"] * n[2]]
    for argv in calls:
        params = parse(argv, tmp_path)
        if argv[0] == "pretrain":
            assert params["steps"] == variants.STEPS and params["batch_size"] == variants.BATCH_SIZE
    out = tmp_path / "run"
    bench = parse(calls[-1], tmp_path)
    assert [Path(m) for m in bench["model"]] == [out / "models" / v.slug for v in variants.VARIANTS.values()]
    assert bench["name"] == [v.name for v in variants.VARIANTS.values()]  # each model keeps its own label


def test_reproduce_sh_on_real_data_with_lavila_under_torchrun(tmp_path):
    roots = {var: str(tmp_path / d) for d, var in reproduce.ROOTS.items()}
    calls = run_script(tmp_path, NPROC="2", LAVILA_CKPT="ckpt/lavila.pth", **roots)
    assert calls[0][0] == "extract"  # no toy world when real roots are given
    extract = [parse(c, tmp_path) for c in calls if c[0] == "extract"]
    assert [str(p["videos"]) for p in extract] == list(roots.values())
    assert all(p["encoder"] == "lavila:ckpt/lavila.pth" for p in extract)
    for argv in calls:
        parse(argv, tmp_path)


@pytest.mark.parametrize("config", ["demo", "claims"])
def test_every_stage_of_the_demo_and_claims_plans_parses_with_the_real_cli(tmp_path, config):
    cfg = DemoConfig(out=tmp_path) if config == "demo" else claims_config(tmp_path, "medium", 0, 2, 500, 64, 30,
                                                                          rst_val_frac=0.25, held_out_kitchens=3)
    stages = plan(cfg)
    for st in stages:
        parse(st.argv, tmp_path)
    # the demo prints these titles; step numbers come from the table
    assert [st.title.split(" ")[0] for st in stages][:6] == ["1/7", "2/7", "2/7", "2/7", "3/7", "4/7"]
    assert stages[-1].title.startswith("7/7 bench")


def test_the_demo_and_the_workspace_share_the_tables_paths(tmp_path):
    """A demo folder is laid out as a workspace would name its outputs (one rule: the table's paths)."""
    p = table.layout(tmp_path)
    assert p["paired"] == tmp_path / "features" / "egoexo4d.zarr"       # extract: features/<videos folder>.zarr
    assert p["translated"] == tmp_path / "features" / "ego4d.translated.zarr"
    assert variants.pairs_file(p, "text") == tmp_path / "pairs" / "text-top1.zarr"
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "rosetta.toml").write_text('[roles]\nego = "features/ego4d.zarr"\n')
    (ws / "features" / "ego4d.zarr").mkdir(parents=True)
    params = parse(["translate", "--rst", str(ws / "rst")], ws)
    assert Path(params["out"]).resolve() == table.layout(ws)["translated"].resolve()


def test_workspace_roles_stages_and_status_rows_come_from_the_table():
    from rosetta_cli.workspace.config import ROLES, STAGES
    from rosetta_cli.workspace.status import STAGE_ROLES

    assert list(ROLES) == list(table.ROLE_DOCS)
    assert ROLES["pairs"] == "mined pseudo-pairs; `rosetta mine`"
    assert STAGES == ("extract", "train-rst", "translate", "mine", "pretrain", "bench")
    assert [r for _, r, _ in STAGE_ROLES] == ["paired", "ego", "exo", "rst", "translated", "pairs", "model"]
    assert STAGE_ROLES[0] == ("extract (paired)", "paired", "rosetta extract --videos egoexo4d/")


def test_checkpoint_completion_rule(tmp_path):
    """One rule for both checkpoint layouts: train-rst is done once metrics.json exists; pretrain when its
    config.json records step >= total_steps (or epoch >= train.epochs)."""
    rst, model = tmp_path / "rst", tmp_path / "model"
    (rst / "checkpoint").mkdir(parents=True)
    (rst / "checkpoint" / "config.json").write_text("{}")
    assert not table.complete("train-rst", rst)
    assert table.checkpoint_config(rst) == rst / "checkpoint" / "config.json"
    (rst / "metrics.json").write_text("{}")
    assert table.complete("train-rst", rst)
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"step": 499, "total_steps": 500}))
    assert not table.complete("pretrain", model)
    (model / "config.json").write_text(json.dumps({"step": 500, "total_steps": 500}))
    assert table.complete("pretrain", model) and table.checkpoint_config(model) == model / "config.json"
    (model / "config.json").write_text(json.dumps({"epoch": 2, "train": {"epochs": 3}}))
    assert not table.complete("pretrain", model)
    assert not table.complete("mine", tmp_path / "missing.zarr")


def test_argv_needs_required_inputs_and_spells_options_as_the_cli():
    with pytest.raises(ValueError, match="'paired'"):
        table.argv("train-rst", {}, "rst")
    assert table.argv("mine", {"ego": "e", "exo": "x", "translated": "t"}, "o", {"strategy": "text", "no_soft": True,
                                                                                 "pca": None}) == \
        ["mine", "--ego", "e", "--exo", "x", "--out", "o", "--strategy", "text", "--no-soft"]  # no --translated: text


def test_reordering_the_variants_changes_no_claim_label():
    """claims/run.py names every row through the variants' slugs: the Table 1 record is the same whatever the
    order of VARIANTS."""
    import numpy as np

    from rosetta_cli.bench.run import FROZEN
    from rosetta_cli.claims.run import ClaimsConfig, claim_table1

    rng = np.random.default_rng(0)
    names = variants.names(variants.VARIANTS) | {FROZEN: FROZEN}
    rows = [{"name": n, "hits": {k: "".join(rng.choice(["0", "1"], 40)) for k in
                                 ("hr@5/ego->exo", "hr@5/exo->ego", "recognition/top1")}} for n in names.values()]
    results = {"paper": [{"models": rows}]}
    cfg = ClaimsConfig(out=Path("claims"), seeds=(0,), n_boot=50)
    reversed_names = variants.names(dict(reversed(list(variants.VARIANTS.items())))) | {FROZEN: FROZEN}
    assert list(reversed_names) != list(names)
    a, b = claim_table1(results, names, cfg), claim_table1(results, reversed_names, cfg)
    assert a == b
    ours = a["protocols"]["paper"]["avg_hr5"]["values"]["ViewpointRosetta"]
    hits = next(r for r in rows if r["name"] == "ViewpointRosetta")["hits"]
    expect = 100 * np.mean([c == "1" for k in ("hr@5/ego->exo", "hr@5/exo->ego") for c in hits[k]])
    assert ours["mean"] == pytest.approx(expect, abs=0.01)
