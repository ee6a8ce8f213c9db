"""`rosetta bench`: the cross-view benchmark over an ego and an exo store."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from rosetta_cli.cli import options
from rosetta_cli.bench.run import BenchConfig
from rosetta_cli.cli.common import console, emit_json, out as stdout, parse_csv_ints, rich_progress


def bench(
    ego: Path = typer.Option(..., "--ego", help="Ego store (kind features or embeddings) with labels."),
    exo: Path = typer.Option(..., "--exo", help="Exo store (kind features or embeddings) with labels."),
    out: Path = typer.Option(..., "--out", help="Report folder: results.json, results.md, index.html, plots."),
    model: List[Path] = typer.Option([], "--model", help="Pretrained dual-encoder folder (repeatable)."),
    name: List[str] = typer.Option([], "--name", help="Display name of the matching --model (repeatable, in order)."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma list of retrieval,recognition,skill "
                                        "(default: all; skill is skipped when the stores lack skill labels)."),
    k: str = typer.Option("1,5,10", "--k", help="Retrieval cut-offs for HR@k."),
    seed: int = options.seed(BenchConfig.seed),
    finetune: bool = typer.Option(BenchConfig.finetune, "--finetune", help="Also fine-tune each model end to end (needs model.module)."),
    finetune_epochs: int = typer.Option(BenchConfig.finetune_epochs, "--finetune-epochs", help="Epochs of --finetune."),
    skill_positive: Optional[str] = typer.Option(BenchConfig.skill_positive, "--skill-positive",
                                                 help="Skill values counted as skilled, comma list "
                                                 "(default for Ego-Exo4D levels: Intermediate Expert,Late Expert)."),
    unmatched: str = typer.Option(BenchConfig.unmatched, "--unmatched", help="Retrieval queries whose label is not in the "
                                  "gallery: miss (count as misses) or exclude."),
    gallery: str = typer.Option(BenchConfig.gallery, "--gallery", help="Retrieval protocol: all (the paper's: the gallery "
                                "holds every clip of the other view, the query's own synchronized clips included) or "
                                "other-takes (each query's own take, the sync_id prefix before '/', is removed from "
                                "its gallery)."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the figures (tables and index.html only)."),
    overwrite: bool = options.overwrite(BenchConfig.overwrite),
    json_out: bool = options.as_json(),
):
    """Benchmark frozen features and pretrained dual encoders on cross-view retrieval (HR@k),
    recognition (top-1/top-5) and skill assessment (accuracy), training on exo and testing on ego.

    Example:

        rosetta bench --ego ws/ego.zarr --exo ws/exo.zarr --out ws/report --model ws/vi --name ViewpointRosetta

        rosetta bench --ego ws/ego.zarr --exo ws/exo.zarr --out ws/report-other-takes --gallery other-takes
    """
    from rosetta_cli.bench import BenchConfig
    from rosetta_cli.bench.run import run
    from rosetta_cli.bench.report import gallery_line, rich_table
    from rosetta_cli.errors import UsageError
    from rosetta_cli.store.remote import require_local

    require_local(out, "--out")  # the report folder is local; --ego/--exo/--model take URLs
    if len(name) > len(model):
        raise UsageError(f"{len(name)} --name for {len(model)} --model", hint="give one --name per --model, in order")
    models = tuple((name[i] if i < len(name) else None, str(p)) for i, p in enumerate(model))
    cfg = BenchConfig(ego=str(ego), exo=str(exo), out=str(out), models=models, overwrite=overwrite,
                      tasks_explicit=tasks is not None,
                      tasks=tuple(t.strip() for t in (tasks or "retrieval,recognition,skill").split(",") if t.strip()),
                      ks=tuple(parse_csv_ints(k, "--k")), seed=seed, finetune=finetune, finetune_epochs=finetune_epochs,
                      skill_positive=tuple(s.strip() for s in skill_positive.split(",")) if skill_positive else None,
                      unmatched=unmatched, gallery=gallery, plots=not no_plots)
    with rich_progress() as p:
        results = run(cfg, p).results
    table = console if json_out else stdout  # --json: stdout carries results.json alone
    table.print(rich_table(results))
    table.print(gallery_line(results), markup=False, highlight=False)
    for n in results["notes"]:
        console.print(f"[dim]note: {n}[/dim]")
    for w in results.get("warnings", []):  # again after the table, where the numbers are read
        console.print(f"[yellow]warning:[/yellow] {w}", markup=True, highlight=False)
    table.print(f"report: {out / 'index.html'}")
    if json_out:
        emit_json(results)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
