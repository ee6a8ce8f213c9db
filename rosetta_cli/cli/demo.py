"""`rosetta demo`: toy world → extract → train-rst → translate → mine → pretrain → bench, in minutes."""

from __future__ import annotations

from pathlib import Path

import typer

from rosetta_cli.cli import options
from rosetta_cli.demo import DemoConfig
from rosetta_cli.cli.common import console, nested_command, out as stdout, rule


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


def demo_cmd(out: Path = typer.Option(Path("rosetta-demo"), "--out", help="Folder for every output of the demo."),
             scale: str = typer.Option(DemoConfig.scale, "--scale", help="Toy world size: tiny, small or medium."),
             seed: int = options.seed(DemoConfig.seed),
             workers: int = options.workers(DemoConfig.workers),
             steps: int = typer.Option(DemoConfig.steps, "--steps", min=1, help="Pretraining steps of every variant (one budget for all)."),
             fresh: bool = typer.Option(False, "--fresh", help="Delete OUT and start over (default: reuse finished stages)."),
             ):
    """Run the whole method on a synthetic ego-exo world, with the real bundled encoders, no downloads.

    Prints a Table-1-style comparison and the path of the HTML report. A second run reuses
    finished stages. The same commands, one per stage, are in examples/reproduce.sh.

    Example: rosetta demo --out rosetta-demo
    """
    import time

    from rosetta_cli.demo import DemoConfig, run

    cfg = DemoConfig(out=out, scale=scale, seed=seed, workers=workers, steps=steps)
    t = time.perf_counter()
    run(cfg, fresh, call_stage, print_stage)
    rule("[bold]result")
    results = out / "report" / "results.md"
    if results.exists():
        typer.echo(results.read_text())
        print_intervals(out)
    stdout.print(f"HTML report: {(out / 'report' / 'index.html').resolve()}")
    console.print(f"demo finished in {time.perf_counter() - t:.0f} s")


def print_intervals(out: Path) -> None:
    """The headline numbers with 95% bootstrap intervals over the benchmark's queries, then P1-P3."""
    from rich.table import Table

    from rosetta_cli.claims.summary import check_lines, intervals, world_checks

    rows = intervals(out / "report")
    t = Table(title="95% intervals (bootstrap over the benchmark's queries, this seed only)")
    for col in ("method", "avg HR@5", "interval", "recog top-1", "interval"):
        t.add_column(col)
    for r in rows:
        h, g = r["avg_hr5"], r["recog_top1"]
        t.add_row(r["name"], f"{h['value']:.2f}", f"[{h['interval'][0]:.2f}, {h['interval'][1]:.2f}]",
                  f"{g['value']:.2f}", f"[{g['interval'][0]:.2f}, {g['interval'][1]:.2f}]")
    stdout.print(t)
    checks = world_checks(out)
    typer.echo("World preconditions (rosetta claims judges the paper only on a world that meets all three):")
    for line in check_lines(checks):
        typer.echo(f"  {line}")
    if not checks["met"]:
        typer.echo("  This world fails a precondition: its table measures this world, it cannot judge the paper's "
                   "claims. `rosetta claims` (scale medium) can.")


def call_stage(argv: list[str]) -> None:
    """Run one stage's `rosetta ...` command in this process, echoing it as a user would type it.

    The stage's own result goes to stderr: for demo and claims it is progress, and their stdout
    carries only their final tables (or pure JSON)."""
    import contextlib
    import sys

    from rosetta_cli.cli.app import app

    console.print(f"[dim]$ rosetta {' '.join(argv)}[/dim]")
    with contextlib.redirect_stdout(sys.stderr), nested_command():
        app(args=argv, standalone_mode=False, prog_name="rosetta")


def print_stage(title: str, skipped: bool | None, seconds: float, eta: str = "") -> None:
    """A rule when a stage starts (skipped None), then a tick with its time, or 'reused'."""
    if skipped is None:
        rule(f"[bold cyan]{title}[/][dim]{eta}")
    elif skipped:
        console.print(f"[green]✓[/green] {title} [dim](already done, reused)[/dim]")
    else:
        console.print(f"[green]✓[/green] {title} [dim]({seconds:.1f} s)[/dim]")
