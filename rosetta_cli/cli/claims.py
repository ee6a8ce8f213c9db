"""`rosetta claims`: the paper's three claims on the toy world, over seeds, with one budget for every variant."""

from __future__ import annotations

from pathlib import Path

import typer

from rosetta_cli.cli.common import console, emit_json, parse_csv_ints


def register(app: typer.Typer) -> None:
    app.command("claims")(claims_cmd)


def claims_cmd(out: Path = typer.Option(..., "--out", help="Folder for every seed's outputs and claims.json/.md/index.html."),
               seeds: str = typer.Option("0,1,2", "--seeds", help="Comma list of seeds (one world and one run each)."),
               scale: str = typer.Option("small", "--scale", help="Toy world size: tiny, small or medium."),
               workers: int = typer.Option(2, "--workers", min=0, help="Decoding worker processes for extract."),
               steps: int = typer.Option(500, "--steps", min=1, help="Pretraining steps of every variant (the equal budget)."),
               batch_size: int = typer.Option(64, "--batch-size", min=1, help="Global pretraining batch of every variant."),
               as_json: bool = typer.Option(False, "--json", help="Print claims.json on stdout."),
               ):
    """Measure the paper's three claims: (1) RST mining beats text beats random, (2) gains grow
    with the amount of unpaired data, (3) removing the RST hurts most, removing soft alignment less.

    Each seed renders its own world and runs the demo's pipeline plus the claims' extra stages into
    OUT/seed-S; finished stages are reused, so rerunning the same command resumes. Writes
    OUT/claims.json, OUT/claims.md (the verdict rules included) and OUT/index.html with plots.

    Example: rosetta claims --out claims --seeds 0   (about 20 minutes on 2 CPU cores for scale small)
    """
    from rich.rule import Rule

    from rosetta_cli.claims.report import PLOTS
    from rosetta_cli.claims.run import ClaimsConfig, run
    from rosetta_cli.cli.demo import call_stage, print_stage

    def log(i, n, seed, title, skipped, secs, elapsed):
        eta = f" · elapsed {elapsed / 60:.1f} min, ~{elapsed / max(i - 1, 1) * (n - i + 1) / 60:.0f} min left" if i > 1 else ""
        print_stage(f"[{i}/{n}] seed {seed} · {title}", skipped, secs, eta)

    cfg = ClaimsConfig(out=out, seeds=tuple(parse_csv_ints(seeds, "--seeds")), scale=scale, workers=workers,
                       steps=steps, batch_size=batch_size)
    claims = run(cfg, call_stage, log)
    console.print(Rule("[bold]claims"))
    typer.echo((out / "claims.md").read_text())
    console.print(f"HTML: {(out / 'index.html').resolve()}  (plots: {', '.join(PLOTS)})")
    if as_json:
        emit_json(claims)
