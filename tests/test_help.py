"""Help text (issue #31): every option and argument explained, no internal placeholders, no sentence
broken mid-line by the source's line breaks, no false defaults."""

from __future__ import annotations

import re

import pytest
import typer

from rosetta_cli.cli.app import app


def commands():
    """(path, click command) of every leaf command."""
    root = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append((" ".join(path), cmd))
    walk(root, [])
    return out


COMMANDS = commands()


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_parameter_has_help(path, cmd):
    missing = [p.name for p in cmd.params if not (getattr(p, "help", None) or "").strip()]
    assert missing == [], f"rosetta {path}: no help for {missing}"


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS])
def test_help_reads_as_written(path, cli, monkeypatch):
    import typer.rich_utils

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 1000)  # wide: any line break left is the source's
    r = cli(*path.split(), "--help")
    assert r.code == 0, r
    text = r.out + r.err
    for bad in ("<list[", "(dynamic)", "…"):  # internal placeholders; a value cut by the table
        assert bad not in text, f"rosetta {path} --help shows {bad!r}"
    assert not re.search(r"\{[a-z_]+\}", text), text  # typer's argument placeholder, e.g. {store}
    # a help line (without the frame) never stops inside a sentence because the docstring was wrapped
    assert not re.search(r"\b(the|a|an|of|to|and|in|with|for)\s*\n", _body(text)), text


def _body(text: str) -> str:
    """The description above the option tables, one line per rendered line, frame stripped."""
    head = text.split("╭")[0]
    return "\n".join(ln.strip() for ln in head.splitlines() if ln.strip())


def test_extract_out_default_is_stated_not_dynamic(cli):
    r = cli("extract", "--help")
    line = next(ln for ln in r.out.splitlines() if "--out" in ln)
    assert "[required]" not in line and "(dynamic)" not in line and "features/" in r.out


def test_reflow_keeps_examples_and_lists_and_literal_brackets():
    from rosetta_cli.cli.core import escape, reflow

    doc = "One sentence\nwrapped here. With\n--preset, a clip [start, end] pools.\n\nExample:\n\n    rosetta x --a\n    rosetta y\n\n- one\n- two"
    assert reflow(doc).split("\n\n") == ["One sentence wrapped here. With --preset, a clip [start, end] pools.", "Example:",
                                         "    rosetta x --a\n    rosetta y", "- one\n- two"]
    assert escape("a clip [start, end]") == "a clip \\[start, end]"


def test_store_import_help_keeps_its_clip_window(cli, monkeypatch):
    import typer.rich_utils

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 1000)
    r = cli("store", "import", "--help")
    assert "each clip [start, end] pools the tensor rows" in r.out
