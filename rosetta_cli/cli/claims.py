"""`rosetta claims`: the paper's three claims on the toy world, over seeds, with one budget for every variant."""

from __future__ import annotations

from pathlib import Path

import typer

from rosetta_cli.cli import options
from rosetta_cli.claims.run import ClaimsConfig
from rosetta_cli.cli.common import console, emit_json, out as stdout, parse_csv_ints, rule


def register(app: typer.Typer) -> None:
    app.command("claims")(claims_cmd)


def claims_cmd(out: Path = typer.Option(..., "--out", help="Folder for every seed's outputs and claims.json/.md/index.html."),
               seeds: str = typer.Option(",".join(map(str, ClaimsConfig.seeds)), "--seeds", help="Comma list of seeds (one world and one run each)."),
               scale: str = typer.Option(ClaimsConfig.scale, "--scale",
                                         help="Toy world size: medium (500 benchmark queries, meets P3), small or tiny."),
               workers: int = options.workers(ClaimsConfig.workers),
               steps: int = typer.Option(ClaimsConfig.steps, "--steps", min=1,
                                         help="Pretraining steps of every Table 1 / Fig. 7 variant (the equal budget)."),
               epochs: int = typer.Option(ClaimsConfig.epochs, "--epochs", min=1,
                                          help="Fig. 5 at equal epochs: passes over each variant's own data."),
               batch_size: int = typer.Option(ClaimsConfig.batch_size, "--batch-size", min=2,
                                              help="Global pretraining batch of every variant."),
               held_out_kitchens: int = typer.Option(ClaimsConfig.held_out_kitchens, "--held-out-kitchens", min=0,
                                                     help="0: the benchmark holds out takes (the paper's regime). K > 0: "
                                                          "it is filmed in K Ego-Exo4D kitchens no paired take shows."),
               no_scaling: bool = typer.Option(False, "--no-scaling",
                                               help="Skip Fig. 5's 16 extra pretraining runs per seed (Table 1 and Fig. 7 only)."),
               as_json: bool = options.as_json(),
               ):
    """Measure the paper's claims with 95% intervals: Table 1 (ours beats text-align, paired-only,
    random-align and frozen features), Fig. 5 (HR@5 rises with unpaired data, more for ours), and
    Fig. 7 (full > w/o soft alignment > w/o RST). First it measures the world's preconditions:
    P1 the exo view carries the action, P2 a perfect translator would beat text mining, P3 the
    benchmark has 500 queries.

    Each seed renders its own world and runs the demo's pipeline plus the claims' extra stages into
    OUT/seed-S; finished stages are reused, so rerunning the same command resumes. Writes
    OUT/claims.json, OUT/claims.md (the verdict rules included) and OUT/index.html with plots.

    Example: rosetta claims --out claims --seeds 0,1,2   (about 25 minutes per seed on 2 CPU cores)
    """
    from rosetta_cli.claims.report import PLOTS
    from rosetta_cli.claims.run import run
    from rosetta_cli.cli.demo import call_stage, print_stage

    def log(i, n, seed, title, skipped, secs, elapsed):
        eta = f" · elapsed {elapsed / 60:.1f} min, ~{elapsed / max(i - 1, 1) * (n - i + 1) / 60:.0f} min left" if i > 1 else ""
        print_stage(f"[{i}/{n}] seed {seed} · {title}", skipped, secs, eta)

    cfg = ClaimsConfig(out=out, seeds=tuple(parse_csv_ints(seeds, "--seeds")), scale=scale, workers=workers,
                       steps=steps, epochs=epochs, batch_size=batch_size, held_out_kitchens=held_out_kitchens,
                       scaling=not no_scaling)
    claims = run(cfg, call_stage, log)
    rule("[bold]claims")
    table = console if as_json else stdout  # --json: stdout carries claims.json alone
    typer.echo((out / "claims.md").read_text(), err=as_json)
    table.print(f"HTML: {(out / 'index.html').resolve()}  (plots: {', '.join(p for p in PLOTS if (out / p).exists())})")
    if as_json:
        emit_json(claims)
