"""`rosetta mine`: stage 3, mine pseudo-pairs (ego query → top-k exo candidates) into a pairs store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rosetta_cli.cli import options
from rosetta_cli.mining.config import MineConfig
from rosetta_cli.cli.common import emit_json, out as stdout, rich_progress


def register(app: typer.Typer) -> None:
    app.command("mine")(mine_cmd)


def mine_cmd(
    ego: Path = typer.Option(..., "--ego", help="Ego features store (the queries)."),
    exo: Path = typer.Option(..., "--exo", help="Exo features store (the candidates)."),
    out: Path = typer.Option(..., "--out", help="Pairs store to write (.zarr or .h5)."),
    translated: Optional[Path] = typer.Option(MineConfig.translated, "--translated",
                                              help="Translations of the ego store (kind 'translations'); needed by rst."),
    strategy: str = typer.Option(MineConfig.strategy, "--strategy", help="rst | visual | text | random."),
    topk: int = typer.Option(MineConfig.topk, "--topk", min=1, help="Candidates kept per query (ranks 0..k-1)."),
    text_weight: Optional[float] = typer.Option(
        MineConfig.text_weight, "--text-weight", help="W in score = (1-W)*cos_visual + W*cos_text. Default 0.5 (rst), 0 (visual)."),
    index: str = typer.Option(MineConfig.index, "--index", help="auto | flat (exact) | ivf | hnsw. auto on a GPU with faiss-gpu: exact fp16 flat search; hnsw: CPU only."),
    nlist: Optional[int] = typer.Option(MineConfig.nlist, "--nlist", help="IVF lists (default ~4*sqrt(candidates))."),
    nprobe: Optional[int] = typer.Option(MineConfig.nprobe, "--nprobe",
                                         help="IVF lists probed (default: calibrated to recall@1 >= 0.97); hnsw: efSearch."),
    pca: Optional[int] = typer.Option(MineConfig.pca, "--pca", help="Project vectors to this many dims (uncentred PCA on a sample)."),
    index_cache: Optional[Path] = typer.Option(MineConfig.index_cache, "--index-cache",
                                               help="Save the exo index here and reuse it while inputs/params match."),
    check_recall: Optional[int] = typer.Option(
        MineConfig.check_recall, "--check-recall", help="Check recall of approximate search (IVF, HNSW, PCA) vs exact search on N sampled "
                                     "queries; warns below 0.95. Default 256; 0: off. Exact search records 1.0."),
    device: str = options.device(MineConfig.device),
    shard: Optional[str] = typer.Option(MineConfig.shard, "--shard", help="I/N: mine query shard I of N (default: torchrun RANK/WORLD_SIZE)."),
    block_rows: int = typer.Option(MineConfig.block_rows, "--block-rows", min=1, help="Query rows per block (rounded up to the chunk size)."),
    seed: int = options.seed(MineConfig.seed),
    overwrite: bool = options.overwrite(MineConfig.overwrite),
    resume: bool = options.resume(MineConfig.resume),
    as_json: bool = options.as_json(),
):
    """Mine pseudo-pairs: rank exo clips for every ego clip and keep the top-k.

    rst ranks concat(T(z_ego), e_ego) against concat(z_exo, e_exo) by cosine; visual
    uses z_ego without translation; text uses narrations only; random draws seeded
    candidates. Rows not done in an input are skipped. Interrupted runs resume from
    OUT.partial/. Shard I/N writes OUT.shard-III-of-NNN (merge with `rosetta store merge`).
    Approximate search is checked against exact search on 256 sampled queries by default.

    Example: rosetta mine --ego ego.zarr --exo exo.zarr --translated ego_tr.zarr --out pairs.zarr --topk 5 --check-recall 2000
    """
    from rosetta_cli.mining import MineConfig
    from rosetta_cli.mining import run as mining
    from rosetta_cli.store.remote import require_local

    require_local(out, "--out")  # the pairs store and its .partial folder are written locally
    if index_cache is not None:
        require_local(index_cache, "--index-cache")

    cfg = MineConfig(ego=ego, exo=exo, out=out, translated=translated, strategy=strategy, topk=topk,
                     text_weight=text_weight, index=index, nlist=nlist, nprobe=nprobe, pca=pca,
                     index_cache=index_cache, check_recall=check_recall, device=device, shard=shard,
                     block_rows=block_rows, seed=seed, overwrite=overwrite, resume=resume)
    with rich_progress() as p:
        res = mining.run(cfg, p)
    if as_json:
        emit_json(res.to_dict())
    else:
        _summary(res)


def _summary(res) -> None:
    skipped = ", ".join(f"{k}={v}" for k, v in res.skipped.items() if v) or "none"
    stdout.print(f"[green]wrote[/green] {res.out}: {res.pairs} pairs for {res.queries} queries "
                  f"over {res.candidates} candidates (skipped rows: {skipped})")
    idx = res.index or {}
    stdout.print(f"index {idx.get('kind')} on {idx.get('device')}"
                  + (f", nlist {idx['nlist']} nprobe {idx['nprobe']}" if idx.get("nlist") else "")
                  + (f", resumed {res.resumed_blocks} blocks" if res.resumed_blocks else "")
                  + f"; {res.seconds.get('total')} s, peak RSS {res.peak_rss_mb:.0f} MB")
    rec = res.recall
    if rec and rec.get("check") == "exact":
        stdout.print("recall 1.0: exact search (flat index, no PCA)")
    elif rec:
        k = [key for key in rec if key.startswith("recall@") and key != "recall@1"]
        line = (f"recall@1 {rec['recall@1']:.4f}" + (f", {k[0]} {rec[k[0]]:.4f}" if k else "")
                + f" vs exact on {rec['queries']} sampled queries")
        stdout.print(f"[yellow]{line}, below {rec['target']}[/yellow]" if rec.get("warning") else line)
