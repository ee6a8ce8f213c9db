"""`rosetta store ...`: inspect, validate, convert, merge, import and export feature stores."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from rosetta_cli.cli import options
from rosetta_cli.store.importer import ImportConfig
from rosetta_cli.cli.common import console, emit_json, out as stdout

store_app = typer.Typer(help="Inspect, validate, convert, merge, import and export feature stores.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")


@store_app.command("info")
def info_cmd(store: Path = typer.Argument(..., help="A .zarr or .h5 store: a path, or an s3://, gs://, http(s)://, hf:// URL."),
             as_json: bool = options.as_json()):
    """Show kind, rows, shapes, status/view/label counts, provenance and size.

    Example: rosetta store info features/ego4d.zarr --json | jq .status
    """
    from rosetta_cli.store.core import Store
    from rosetta_cli.store.inspect import info

    with Store.open(store) as s:
        data = info(s)
    if as_json:
        emit_json(data)
    else:
        _print_info(data)


def _print_info(d: dict) -> None:
    from rich.table import Table

    t = Table(title=f"{d['path']}  ({d['backend']}, {d['kind']})", show_header=False)
    for key in ("id", "rows", "frames", "dim", "text_dim", "dtype", "status", "views", "strategy"):
        if d.get(key) is not None:
            t.add_row(key, str(d[key]))
    t.add_row("size", f"{d['size_bytes'] / 1e6:.2f} MB")
    prov = d["provenance"]
    t.add_row("created", f"{prov.get('created')} by rosetta {prov.get('tool_version')}")
    t.add_row("command", " ".join(prov.get("command") or []))
    if prov.get("encoder"):
        t.add_row("encoder", str(prov["encoder"].get("name")))
    for p in prov.get("parents") or []:
        t.add_row(f"parent:{p.get('role')}", f"{p.get('path')} ({p.get('id', '')[:8]})")
    if d.get("labels"):
        top = sorted(d["labels"].items(), key=lambda kv: -kv[1])[:10]
        t.add_row("labels", f"{len(d['labels'])} classes; top: " + ", ".join(f"{k}={v}" for k, v in top))
    for msg in d["damage"]:
        t.add_row("[red]damage[/red]", msg)
    stdout.print(t)


@store_app.command("validate")
def validate_cmd(store: Path = typer.Argument(..., help="A .zarr or .h5 store: a path, or an s3://, gs://, http(s)://, hf:// URL."),
                 mark: bool = typer.Option(False, "--mark-failed",
                                           help="Mark the rows of missing chunks failed, so that the stage that "
                                                "wrote the store redoes them with --retry-failed.")):
    """Check schema, shapes, clip ids and times, NaN/Inf in done rows, missing chunks and truncation.
    Exit 0 if valid, 1 if not.

    Example: rosetta store validate features/ego4d.zarr
    """
    from rosetta_cli.errors import PipelineFailure
    from rosetta_cli.store.core import Store
    from rosetta_cli.store.inspect import mark_failed, validate
    from rosetta_cli.store.remote import as_path

    store = as_path(store)  # a URL keeps its "//"
    with Store.open(store, mode="r+" if mark else "r") as s:
        if mark:
            n = mark_failed(s)
            console.print(f"{store}: marked {n} row(s) failed (missing chunks, NaN/Inf); redo them with the stage that "
                          "wrote the store (`rosetta extract ... --retry-failed`, `rosetta store import ... --resume`)")
        problems = validate(s)
    if problems:
        for p in problems:
            stdout.print(f"[red]✗[/red] {store}: {p}")
        raise PipelineFailure(f"{store}: {len(problems)} problem(s) found", hint="see the list above")
    stdout.print(f"[green]✓[/green] {store}: valid")


@store_app.command("push")
def push_cmd(src: Path = typer.Argument(..., help="Local .zarr store."),
             url: str = typer.Argument(..., help="Where to upload it: s3://BUCKET/PATH.zarr or gs://BUCKET/PATH.zarr."),
             overwrite: bool = options.overwrite(),
             as_json: bool = options.as_json()):
    """Upload a store chunk by chunk; a rerun resumes (objects already there are skipped).
    Readers refuse the store until the upload finishes. Credentials: the filesystem's usual
    environment and config files (AWS_*, ~/.aws; GOOGLE_APPLICATION_CREDENTIALS).

    Example: rosetta store push features/exo.zarr s3://lab/htm-aa.zarr
    """
    from rosetta_cli.cli.common import rich_progress
    from rosetta_cli.store.share import push

    with rich_progress() as p:
        r = push(src, url, overwrite=overwrite, progress=p)
    _copied(r, as_json)


@store_app.command("pull")
def pull_cmd(url: str = typer.Argument(..., help="The store's URL (s3://, gs://, http(s)://, hf://)."),
             dst: Path = typer.Argument(..., help="Local .zarr folder to write."),
             overwrite: bool = options.overwrite(),
             as_json: bool = options.as_json()):
    """Download a store chunk by chunk, resumably, then validate the copy (exit 1 if invalid).

    Example: rosetta store pull https://example.org/stores/bench-ego.zarr ws/ego.zarr
    """
    from rosetta_cli.cli.common import rich_progress
    from rosetta_cli.store.share import pull

    with rich_progress() as p:
        r = pull(url, dst, overwrite=overwrite, progress=p)
    _copied(r, as_json)


def _copied(r, as_json: bool) -> None:
    from rosetta_cli.errors import PipelineFailure

    if as_json:
        emit_json(r.to_dict())
    else:
        rate = r.bytes_copied / 1e6 / r.seconds if r.seconds else 0.0
        stdout.print(f"[green]✓[/green] {r.src} → {r.dst}: {r.copied} object(s) copied, {r.skipped} already there, "
                     f"{r.bytes_copied / 1e6:.1f} MB in {r.seconds:.1f} s ({rate:.1f} MB/s); fingerprint {r.fingerprint}")
    for p in r.problems:
        stdout.print(f"[red]✗[/red] {r.dst}: {p}")
    if r.problems:
        raise PipelineFailure(f"{r.dst}: {len(r.problems)} problem(s) in the copy", hint="see the list above")


@store_app.command("convert")
def convert_cmd(src: Path = typer.Argument(..., help="The store to convert (.zarr or .h5)."),
                dst: Path = typer.Argument(..., help="Path ending .zarr or .h5."),
                overwrite: bool = options.overwrite()):
    """Convert zarr ↔ HDF5 losslessly (arrays and metadata bit-for-bit).

    Example: rosetta store convert ego.zarr ego.h5
    """
    from rosetta_cli.store.ops import convert

    convert(src, dst, overwrite=overwrite).close()
    stdout.print(f"[green]✓[/green] wrote {dst}")


@store_app.command("merge")
def merge_cmd(srcs: List[Path] = typer.Argument(..., help="Shards of one kind and one encoder."),
              out: Path = typer.Option(..., "--out", help="Merged store path."),
              overwrite: bool = options.overwrite()):
    """Concatenate shards of one kind and one encoder.

    Example: rosetta store merge shard0.zarr shard1.zarr --out all.zarr
    """
    from rosetta_cli.store.ops import merge

    s = merge(srcs, out, overwrite=overwrite)
    stdout.print(f"[green]✓[/green] merged {len(srcs)} stores → {out} ({s.n_rows} rows)")


@store_app.command("import")
def import_cmd(features: Path = typer.Option(..., "--features", help=".npy [N,D]/[N,T,D], or a folder of per-video .npy/.pt"),
               clips: Path = typer.Option(..., "--clips", help="CSV whose header has the columns clip_id, video, start, end, view, sync_id, narration, label, skill, split (values may be empty; empty start and end: the whole video)."),
               out: Path = typer.Option(..., "--out", help="Store to write (.zarr or .h5)."),
               text: Optional[Path] = typer.Option(ImportConfig.text, "--text", help=".npy [N,Dt] narration embeddings"),
               text_encoder: Optional[str] = typer.Option(ImportConfig.text_encoder, "--text-encoder", help="Embed the narration column (e.g. minilm)."),
               preset: Optional[str] = typer.Option(ImportConfig.preset, "--preset", help="Window timing of known features: ego4d-slowfast (32 frames, stride 16, 30 fps) | ego4d-omnivore (32, stride 16, 30 fps)."),
               durations: Optional[Path] = typer.Option(ImportConfig.durations, "--durations", help="By time: Ego4D's ego4d.json; the last window then ends at the video's end, as in Ego4D's features."),
               window_sec: Optional[float] = typer.Option(ImportConfig.window_sec, "--window-sec", help="By time: each tensor row (window) covers W seconds (with --stride-sec)."),
               stride_sec: Optional[float] = typer.Option(ImportConfig.stride_sec, "--stride-sec", help="By time: tensor row i starts at i*S seconds (with --window-sec)."),
               fps: Optional[float] = typer.Option(ImportConfig.fps, "--fps", help="By time, in frames: the video's frames per second (with --window and --stride)."),
               window: Optional[int] = typer.Option(ImportConfig.window, "--window", help="By time, in frames: the window length (with --fps)."),
               stride: Optional[int] = typer.Option(ImportConfig.stride, "--stride", help="By time, in frames: the stride between windows (with --fps)."),
               frames: Optional[int] = typer.Option(ImportConfig.frames, "--frames", min=1, help="By time: pool each clip's overlapping windows into T frames (default 1)."),
               pool: str = typer.Option(ImportConfig.pool, "--pool", help="By time: mean (of contiguous groups of windows) | uniform (sample T windows)."),
               chunk_rows: int = typer.Option(ImportConfig.chunk_rows, "--chunk-rows", min=1, help="Rows per store chunk (and per write)."),
               resume: bool = options.resume(ImportConfig.resume),
               overwrite: bool = options.overwrite(ImportConfig.overwrite),
               as_json: bool = options.as_json()):
    """Bring in features made elsewhere; rows are marked done.

    Without timing flags, the k-th CSV row of a video takes the k-th row of its tensor. With
    --preset, --window-sec/--stride-sec or --fps/--window/--stride, each clip [start, end] pools
    the tensor rows (windows) that overlap it into --frames T.

    Example: rosetta store import --features feats/ --clips clips.csv --out ego.zarr --preset ego4d-slowfast --frames 4
    """
    from rosetta_cli.cli.common import rich_progress
    from rosetta_cli.store.importer import ImportConfig, run

    cfg = ImportConfig(features=str(features), clips=str(clips), out=str(out), text=str(text) if text else None,
                       text_encoder=text_encoder, preset=preset, durations=str(durations) if durations else None, window_sec=window_sec, stride_sec=stride_sec,
                       fps=fps, window=window, stride=stride, frames=frames, pool=pool, chunk_rows=chunk_rows,
                       resume=resume, overwrite=overwrite)
    cfg.check()
    encoder = None
    if text_encoder and text_encoder != "none":
        from rosetta_cli.encoders import get_text_encoder

        encoder = get_text_encoder(text_encoder)
    with rich_progress() as p:
        r = run(cfg, p, text_encoder=encoder)
    if as_json:
        emit_json(r.to_dict())
    else:
        stdout.print(f"[green]✓[/green] imported {r.imported} rows ({r.skipped} already done; {r.failed} failed; "
                      f"{r.mode}, T={r.frames}, D={r.dim}) → {out}")
    if r.failed:
        from rosetta_cli.errors import PartialFailure

        raise PartialFailure(f"{out}: {r.failed} row(s) failed, e.g. {r.failures[0][1]}",
                             hint="every reader skips them; fix the features and rerun with --resume")


@store_app.command("export")
def export_cmd(store: Path = typer.Argument(..., help="A .zarr or .h5 store: a path, or an s3://, gs://, http(s)://, hf:// URL."), out: Path = typer.Option(..., "--out", help="Output folder.")):
    """Write plain files: features.npy, text.npy, clips.csv, clips.parquet (pairs stores: pairs.csv).

    Example: rosetta store export ego.zarr --out ego_export/
    """
    from rosetta_cli.store.ops import export

    for f in export(store, out):
        stdout.print(f"[green]✓[/green] {f}")
