"""`rosetta extract`: decode videos, run frozen encoders, write a features store (resumable, sharded)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rosetta_cli.cli import options
from rosetta_cli.extract.config import ExtractConfig
from rosetta_cli.cli.common import emit_json, log, out as stdout, rich_progress


def register(app: typer.Typer) -> None:
    app.command("extract")(extract_cmd)


def extract_cmd(
    ctx: typer.Context,
    videos: Path = typer.Option(..., "--videos", help="Dataset folder, or a manifest/annotation file (.csv, .json)."),
    out: Optional[Path] = typer.Option(None, "--out", show_default=False,
                                     help="Output store: *.zarr (default backend) or *.h5. Default: features/<name of --videos>.zarr in the workspace (rosetta.toml is created if missing)."),
    dataset: str = typer.Option(ExtractConfig.dataset, "--dataset", help="auto | folder | csv | ego4d | egoexo4d | htm-aa."),
    encoder: str = typer.Option(ExtractConfig.encoder, "--encoder", help="Visual encoder (see `rosetta encoders`)."),
    text_encoder: str = typer.Option(ExtractConfig.text_encoder, "--text-encoder", help="Narration encoder, or 'none'."),
    frames: int = typer.Option(ExtractConfig.frames, "--frames", min=1, help="Frames T sampled uniformly per clip."),
    batch_size: int = typer.Option(ExtractConfig.batch_size, "--batch-size", min=1, help="Clips per forward pass."),
    workers: int = options.workers(ExtractConfig.workers),
    decoder: str = typer.Option(ExtractConfig.decoder, "--decoder", help="decord (default) or pyav."),
    prepped: Optional[Path] = typer.Option(ExtractConfig.prepped, "--prepped", show_default=False,
                                           help="A `rosetta prep` output folder: decode its small copies of the videos "
                                                "(clip times unchanged; recorded in the store)."),
    device: str = options.device(ExtractConfig.device),
    precision: str = typer.Option(ExtractConfig.precision, "--precision", help="fp32 | bf16 | fp16 (fp32 is bit-reproducible on CPU)."),
    chunk_rows: int = typer.Option(ExtractConfig.chunk_rows, "--chunk-rows", min=1, help="Rows per store chunk: the unit of writing/resuming/sharding."),
    limit: Optional[int] = typer.Option(ExtractConfig.limit, "--limit", help="Only the first N clips."),
    shard: Optional[str] = typer.Option(ExtractConfig.shard, "--shard", help="I/N: write only this chunk-aligned share (0-based)."),
    overwrite: bool = options.overwrite(ExtractConfig.overwrite),
    retry_failed: bool = typer.Option(ExtractConfig.retry_failed, "--retry-failed", help="Also redo rows that failed before."),
    role: Optional[str] = typer.Option(ExtractConfig.role, "--role", help="ego | exo | paired, recorded in the store (workspaces)."),
    view: Optional[str] = typer.Option(ExtractConfig.view, "--view", help="ego | exo for folder/csv datasets."),
    window: Optional[float] = typer.Option(ExtractConfig.window, "--window", help="Cut videos into windows of this many seconds."),
    stride: Optional[float] = typer.Option(ExtractConfig.stride, "--stride", help="Seconds between window starts (default: window)."),
    exo_cams: Optional[str] = typer.Option(ExtractConfig.exo_cams, "--exo-cams", help="egoexo4d: all | best | N cameras."),
    narration_pass: Optional[str] = typer.Option(
        ExtractConfig.narration_pass, "--narration-pass", help="ego4d: 1 (default: pass 1, else pass 2 for videos without it), 2, "
                                       "only-1 or only-2 (that pass alone)."),
    skill_map: Optional[str] = typer.Option(ExtractConfig.skill_map, "--skill-map", help="egoexo4d: proficiency → good/bad mapping."),
    label_space: Optional[str] = typer.Option(
        ExtractConfig.label_space, "--label-space", help="egoexo4d keystep labels: benchmark (label_mapping.csv's classes; others "
                                    "unlabelled), steps (every step_name), auto (benchmark when the mapping is there)."),
    strict: bool = typer.Option(ExtractConfig.strict, "--strict", help="Stop at the first bad annotation record (default: skip it, "
                                                        "list it, exit 3)."),
    as_json: bool = options.as_json(),
):
    """Extract frame features [N, T, D] and narration embeddings into a store; rerun to resume.

    Bad videos fail only their own rows, and bad annotation records only themselves (exit 3 at the
    end, with a table of each; --strict stops at the first bad record instead).
    --device cuda sets GPU defaults for the options not given: --precision bf16, --batch-size 64,
    --workers = cores (a note says which). Fastest from 288 px copies: `rosetta prep`, then --prepped.
    Multi-process: `torchrun --nproc_per_node 4 -m rosetta_cli extract ...` or `--shard I/N`.

    Example: rosetta extract --videos data/ego4d --out features/ego.zarr --frames 4 --workers 2
    """
    from rosetta_cli.extract import ExtractConfig, run_extract
    from rosetta_cli.extract.config import resolve_defaults

    cfg = ExtractConfig(videos=str(videos), out=str(out), dataset=dataset, encoder=encoder, text_encoder=text_encoder,
                        decoder=decoder, prepped=str(prepped) if prepped else None, frames=frames, batch_size=batch_size, workers=workers, device=device,
                        precision=precision, chunk_rows=chunk_rows, limit=limit, shard=shard, overwrite=overwrite,
                        retry_failed=retry_failed, role=role, view=view, window=window, stride=stride,
                        exo_cams=exo_cams, narration_pass=narration_pass, skill_map=skill_map, label_space=label_space, strict=strict)
    cfg, note = resolve_defaults(cfg, given_options(ctx))
    if note:
        log.info(note)  # stderr, above the progress bar
    with rich_progress() as p:
        result = run_extract(cfg, p)
    if not result.speaker:  # under torchrun, rank 0 speaks for the whole store
        return
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_summary(result)
    _exit_status(result)


def given_options(ctx) -> set[str]:
    """Names of this command's parameters set on the command line, by environment or by the workspace."""
    from rosetta_cli.cli.core import GIVEN

    return {n for n in ctx.params if (src := ctx.get_parameter_source(n)) is not None and src.name in GIVEN}


def _print_summary(r) -> None:
    from rich.table import Table

    if r.failures:
        t = Table(title=f"Failed clips ({r.failed})", show_lines=False)
        for col in ("row", "clip_id", "error"):
            t.add_column(col, overflow="fold")
        for row, cid, _video, err in r.failures:
            t.add_row(str(row), cid, err)
        if r.failed > len(r.failures):
            t.caption = f"... and {r.failed - len(r.failures)} more (store.errors() has them all)"
        stdout.print(t)
    if r.skipped_records:
        stdout.print(skipped_table(r.skipped_records, r.skipped_by_reason, r.skipped_examples))
    others = f" ({r.pending_store} pending in other shards)" if r.pending_store > r.pending else ""
    stdout.print(f"[bold]{r.out}[/bold]: {r.done}/{r.rows} done, {r.failed} failed{others} · "
                  f"this run {r.processed} clips in {r.seconds:.1f}s ({r.clips_per_s:.2f} clips/s) · "
                  f"store {r.store_bytes / 1e6:.1f} MB")


def skipped_table(count: int, by_reason: dict, examples: list):
    """Rich table of the skipped annotation records: count per file and reason, with a first example."""
    from rich.table import Table

    t = Table(title=f"Skipped annotation records ({count})", show_lines=False)
    for col in ("file: reason", "records", "first example"):
        t.add_column(col, overflow="fold")
    first = {}
    for e in examples:
        first.setdefault(f"{Path(e['file']).name}: {e['reason']}", e["error"])
    for key, n in by_reason.items():
        t.add_row(key, str(n), first.get(key, ""))
    return t


def _exit_status(r) -> None:
    from rosetta_cli.errors import PartialFailure, PipelineFailure

    if r.failed or r.skipped_records:
        parts = ([f"{r.failed} clip(s) failed; their messages are in the store's `errors`"] if r.failed else []) + \
                ([f"{r.skipped_records} annotation record(s) were skipped"] if r.skipped_records else [])
        raise PartialFailure("; ".join(parts),
                             hint="fix or remove those videos and rerun with --retry-failed" if r.failed
                             else "every other row is done; a fixed record changes the clip list, so rerun with --overwrite")
    if r.pending:
        raise PipelineFailure(f"{r.pending} rows of this run are still pending", hint="rerun the same command to resume")
