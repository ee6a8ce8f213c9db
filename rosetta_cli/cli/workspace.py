"""`rosetta init` and `rosetta status`: the workspace that lets stages run without spelling out paths."""

from __future__ import annotations

import typer

from rosetta_cli.cli import options
from rosetta_cli.cli.common import emit_json, out


def register(app: typer.Typer) -> None:
    app.command("init")(init_cmd)
    app.command("status")(status_cmd)


def _root(ctx: typer.Context):
    """The session's root: --workspace DIR, else ROSETTA_WORKSPACE, else the current directory."""
    from rosetta_cli.workspace.resolve import Session

    session = ctx.find_object(Session) or Session.open()
    return session.root


def init_cmd(ctx: typer.Context, force: bool = typer.Option(False, "--force", help="Rewrite rosetta.toml from scratch.")):
    """Create a workspace (rosetta.toml with commented keys, and features/ pairs/ models/ reports/).

    Examples:

        mkdir proj && cd proj && rosetta init && rosetta extract --videos ~/data/ego4d/

        rosetta --workspace ~/proj init
    """
    from rosetta_cli.workspace.resolve import init_workspace

    ws = init_workspace(_root(ctx), force=force)
    out.print(f"[green]✓[/green] workspace ready: {ws.file}")


def status_cmd(ctx: typer.Context, as_json: bool = options.as_json(),
               commands: bool = typer.Option(False, "--commands", help="Print a shell script that rebuilds the workspace.")):
    """Show every stage's output, state (missing / partial / done / stale), size and age.

    A stage is stale when an input's fingerprint differs from the one recorded in its provenance.
    Examples:

        rosetta status ; rosetta status --commands > rebuild.sh

        rosetta --workspace ~/proj status --json
    """
    from rosetta_cli.errors import UsageError
    from rosetta_cli.workspace.config import load
    from rosetta_cli.workspace.status import as_json as to_json, commands_script, stage_states

    root = _root(ctx)
    ws = load(root)
    if ws is None:
        raise UsageError(f"{root}: no rosetta.toml here", hint="run `rosetta init`, or pass --workspace DIR")
    states = stage_states(ws)
    if commands:
        typer.echo(commands_script(ws, states), nl=False)
    elif as_json:
        emit_json(to_json(states))
    else:
        _table(states)


def _table(states) -> None:
    from rich.table import Table

    colour = {"done": "green", "partial": "yellow", "stale": "red", "missing": "dim"}
    t = Table(title="rosetta workspace")
    for col in ("stage", "output", "state", "rows", "size", "made", "to update"):
        t.add_column(col)
    for s in states:
        size = f"{s.size_bytes / 1e6:.1f} MB" if s.size_bytes is not None else ""
        state = f"[{colour[s.state]}]{s.state}[/]"
        t.add_row(s.stage, s.output or "", state, s.rows or "", size, (s.made or "")[:19],
                  s.command if s.state != "done" else "")
    out.print(t)
