"""`rosetta encoders`: list the frozen visual and text encoders, their dims and weights."""

from __future__ import annotations

import typer

from rosetta_cli.cli import options
from rosetta_cli.cli.common import emit_json, out


def register(app: typer.Typer) -> None:
    app.command("encoders")(encoders_cmd)


def encoders_cmd(as_json: bool = options.as_json()):
    """List encoders usable with `rosetta extract --encoder/--text-encoder` and whether they are installed.

    Example: rosetta encoders --json | jq '.[] | select(.available) | .name'
    """
    from rich.table import Table

    from rosetta_cli.encoders import list_encoders

    rows = list_encoders()
    if as_json:
        emit_json(rows)
        return
    t = Table(title="Encoders")
    t.add_column("name", no_wrap=True)
    for col in ("kind", "dim", "weights", "available", "note"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["kind"], r["dim"], r["weights"], "[green]yes[/green]" if r["available"] else "[red]no[/red]",
                  r["note"])
    out.print(t)
