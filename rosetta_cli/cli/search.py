"""`rosetta index` and `rosetta retrieve`: cross-view search over stores, as a tool."""

from __future__ import annotations

from pathlib import Path

import typer

from rosetta_cli.cli import options
from rosetta_cli.search.index import IndexConfig
from rosetta_cli.search.retrieve import RetrieveConfig

def index(
    store: list[Path] = typer.Option(..., "--store", "-s", help="Features store to index (repeat for several)."),
    out: Path = typer.Option(..., "--out", "-o", help="INDEX_DIR to write."),
    model: Path = typer.Option(IndexConfig.model, "--model", "-m", help="Dual-encoder MODEL_DIR (default: frozen pooled features)."),
    kind: str = typer.Option(IndexConfig.index, "--index", help="auto | flat | ivf | hnsw. auto, as `mine` chooses: flat (exact) below "
                             "50k clips or while clips² × dim ≤ 2e13 (about 280k clips of 256-d), else IVF."),
    nlist: int = typer.Option(IndexConfig.nlist, "--nlist", help="IVF lists (default 4*sqrt(N))."),
    nprobe: int = typer.Option(IndexConfig.nprobe, "--nprobe", help="IVF lists probed / HNSW efSearch (default: calibrated to --recall)."),
    recall: float = typer.Option(IndexConfig.recall, "--recall", help="recall@10 against exact that the IVF calibration reaches."),
    shard: str = typer.Option(IndexConfig.shard, "--shard", help="I/N: embed this share only; a final run without --shard builds the index."),
    batch_rows: int = typer.Option(IndexConfig.batch_rows, "--batch-rows", min=1, help="Rows read and embedded per block (and per "
                                   "resume unit); fewer use less memory."),
    seed: int = options.seed(IndexConfig.seed),
    device: str = options.device(IndexConfig.device),
    resume: bool = options.resume(IndexConfig.resume),
    overwrite: bool = options.overwrite(IndexConfig.overwrite),
    json_out: bool = options.as_json(),
):
    """Embed the stores' done rows (with the dual encoder, or as frozen pooled features) and build a
    faiss index in INDEX_DIR. index.json (written last) records the stores, the model fingerprint,
    the frame sampling a video query must repeat, and the index parameters.

    Example:

        rosetta index --store features/htm-aa.zarr --model models/ours --out search/htm
    """
    from rosetta_cli.cli.common import console, emit_json, out as stdout, rich_progress
    from rosetta_cli.search.index import IndexConfig, run

    cfg = IndexConfig(stores=[str(s) for s in store], out=str(out), model=str(model) if model else None, index=kind,
                      nlist=nlist, nprobe=nprobe, recall=recall, shard=shard, seed=seed, device=device, resume=resume,
                      overwrite=overwrite, batch_rows=batch_rows)
    with rich_progress() as p:
        r = run(cfg, p)
    if json_out:
        emit_json(r.to_dict())
    elif r.built:
        cal = f", nprobe {r.calibration['nprobe']} (recall@10 {r.calibration['recall@10']})" if r.calibration else ""
        stdout.print(f"[green]index[/green] {r.rows} clips (skipped rows: {r.skipped or 'none'}), {r.dim}-d {r.space} "
                      f"space, {r.plan.get('kind')}{cal} → {out} "
                      f"in {r.seconds:.1f} s (peak RSS {r.peak_rss_mb:.0f} MB)")
        console.print(f"next: rosetta retrieve --index {out} --video CLIP.mp4")
    else:
        stdout.print(f"[green]shard {shard}[/green] embedded {r.embedded} rows into {out}; "
                      f"when every shard has finished, run the same command without --shard to build the index")


def retrieve(
    index_dir: Path = typer.Option(..., "--index", "-i", help="INDEX_DIR from `rosetta index`."),
    video: Path = typer.Option(None, "--video", help="Query video file."),
    start: float = typer.Option(None, "--start", help="Query window start (s)."),
    end: float = typer.Option(None, "--end", help="Query window end (s; default: video end)."),
    store: Path = typer.Option(None, "--store", help="Query with rows of this features store..."),
    rows: str = typer.Option(None, "--rows", help="...these rows, e.g. 0,5."),
    text: str = typer.Option(None, "--text", help="Text query (needs a model with a text head)."),
    queries: Path = typer.Option(None, "--queries", help="Batch: CSV or JSONL, one query per line "
                                 "(video,start,end | store,row | text; optional label)."),
    label: str = typer.Option(None, "--label", help="The query's label, to mark hits and misses."),
    topk: int = typer.Option(RetrieveConfig.topk, "--topk", "-k", min=1, help="Hits per query."),
    view: str = typer.Option(RetrieveConfig.view, "--view", help="Only hits of this view: exo | ego."),
    out: Path = typer.Option(RetrieveConfig.out, "--out", "-o", help="Write DIR/index.html with the query frames and hits."),
    include_self: bool = typer.Option(False, "--include-self", help="Let a stored-row query return its own clip."),
    overwrite: bool = options.overwrite(RetrieveConfig.overwrite),
    device: str = options.device(RetrieveConfig.device),
    json_out: bool = options.as_json(),
):
    """Cross-view retrieval: the top clips of an index for a video window, stored rows or text.

    Example:

        rosetta retrieve --index search/htm --video ego.mp4 --start 2 --end 6 --view exo --out hits/
    """
    from rosetta_cli.cli.common import emit_json, out as stdout, parse_csv_ints, rich_progress
    from rosetta_cli.errors import UsageError
    from rosetta_cli.search.retrieve import Query, RetrieveConfig, read_queries, run

    qs = read_queries(queries) if queries else []
    if video:
        qs.append(Query(video=str(video), start=start, end=end, label=label))
    if store or rows:
        if not (store and rows):
            raise UsageError("--store and --rows go together", hint="e.g. --store features/ego.zarr --rows 0,5")
        qs += [Query(store=str(store), row=r, label=label) for r in parse_csv_ints(rows, "--rows")]
    if text:
        qs.append(Query(text=text, label=label))
    cfg = RetrieveConfig(index=str(index_dir), queries=qs, topk=topk, view=view, out=str(out) if out else None,
                         exclude_self=not include_self, device=device, overwrite=overwrite)
    with rich_progress() as p:
        r = run(cfg, p)
    if json_out:
        emit_json(r.to_dict())
        return
    for a in r.queries:
        stdout.print(_table(a))
    if r.html:
        stdout.print(f"page: {r.html}")


def _table(a: dict):
    from rich.table import Table

    q = a["query"]
    title = ", ".join(f"{k}={v}" for k, v in q.items()) + f"  ({a['seconds'] * 1000:.0f} ms)"
    t = Table(title=title)
    for col in ("rank", "score", "clip id", "source video", "start–end", "label / narration"):
        t.add_column(col, justify="right" if col in ("rank", "score") else "left")
    for h in a["hits"]:
        mark = {True: "[green]✓[/green] ", False: "[red]✗[/red] "}.get(h.get("match"), "")
        span = f"{_t(h['start'])}–{_t(h['end'])}"
        t.add_row(str(h["rank"]), f"{h['score']:.3f}", h["clip_id"], h["video"], span, mark + (h["label"] or h["narration"]))
    return t


def _t(x) -> str:
    return "end" if x is None else f"{x:.2f}"


def register(app: typer.Typer) -> None:
    app.command("index", no_args_is_help=True)(index)
    app.command("retrieve", no_args_is_help=True)(retrieve)
