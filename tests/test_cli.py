"""CLI basics: version, help speed guard (no heavy imports at start-up), error → exit-code mapping."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rosetta_cli import __version__


def test_version(cli):
    r = cli("--version")
    assert r.code == 0
    assert r.out.strip() == f"rosetta {__version__}"


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "rosetta_cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert __version__ in out.stdout


def test_no_heavy_imports_at_startup():
    """`rosetta --help` must stay fast: heavy libraries are imported inside commands only."""
    code = ("import sys, rosetta_cli.cli.app as a; "
            "heavy = [m for m in ('torch', 'faiss', 'diffusers', 'sentence_transformers', 'sklearn', 'matplotlib', 'av', 'decord') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_subcommand_has_help_with_example(cli):
    import typer

    from rosetta_cli.cli.app import app

    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None) or {None: cmd}
        for sub_name, sub in subs.items():
            args = [name] + ([sub_name] if sub_name else []) + ["--help"]
            r = cli(*args)
            assert r.code == 0, args
            assert "Example" in (sub.help or "") or "Example" in r.out, f"{args} has no example"


def test_usage_error_exit_code(cli):
    r = cli("store", "info")
    assert r.code == 2


def test_error_mapping_and_debug(cli):
    from rosetta_cli.errors import PartialFailure, PipelineFailure, UsageError

    assert (UsageError.exit_code, PipelineFailure.exit_code, PartialFailure.exit_code) == (2, 1, 3)
    r = cli("store", "info", "/nonexistent/x.zarr")
    assert r.code == 2
    assert "Traceback" not in r.err
    assert r.err.count("\n") == 1
    r = cli("--debug", "store", "info", "/nonexistent/x.zarr")
    assert r.code == 2
    assert "Traceback" in r.err
