"""`rosetta pretrain` and `rosetta embed`: thin CLI over rosetta_cli.contrastive (torch imported inside)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rosetta_cli.cli import options
from rosetta_cli.contrastive.config import PretrainConfig
from rosetta_cli.contrastive.embed import EmbedConfig
from rosetta_cli.cli.common import emit_json, out as stdout, rich_progress


def pretrain_cmd(
    out: Path = typer.Option(..., "--out", help="MODEL_DIR: checkpoint directory to write."),
    paired: Optional[Path] = typer.Option(PretrainConfig.paired, "--paired", help="Synchronized ego-exo features store (rows share sync_id)."),
    ego: Optional[Path] = typer.Option(PretrainConfig.ego, "--ego", help="Unpaired ego features store (pseudo-pair queries)."),
    exo: Optional[Path] = typer.Option(PretrainConfig.exo, "--exo", help="Unpaired exo features store (pseudo-pair candidates)."),
    pairs: Optional[Path] = typer.Option(PretrainConfig.pairs, "--pairs", help="Pairs store mined from --ego × --exo."),
    translated: Optional[Path] = typer.Option(PretrainConfig.translated, "--translated", help="RST translations of --ego (positives of L_vs)."),
    epochs: int = typer.Option(PretrainConfig.epochs, "--epochs", help="Epochs: passes over the largest source (the paper: 5 over far more data)."),
    steps: Optional[int] = typer.Option(PretrainConfig.steps, "--steps", min=1, help="Optimisation steps of the run (replaces --epochs): "
                                        "the same budget for every variant, whatever its data."),
    eval_every: Optional[int] = typer.Option(PretrainConfig.eval_every, "--eval-every", help="Steps between held-out evaluations and checkpoints [default: one epoch]."),
    unpaired_fraction: float = typer.Option(PretrainConfig.unpaired_fraction, "--unpaired-fraction", help="Share (0, 1] of the ego queries of --pairs "
                                            "used: seeded, nested subsets (0.25 within 0.5 within 1)."),
    batch_size: int = typer.Option(PretrainConfig.batch_size, "--batch-size", min=1, help="Global batch (all ranks); negatives per anchor."),
    dim: int = typer.Option(PretrainConfig.dim, "--dim", help="Embedding dimension d."),
    tau: float = typer.Option(PretrainConfig.tau, "--tau", help="InfoNCE temperature (initial value with --learn-tau)."),
    learn_tau: bool = typer.Option(PretrainConfig.learn_tau, "--learn-tau", help="Learn the temperature (CLIP-style)."),
    lambda1: float = typer.Option(PretrainConfig.lambda1, "--lambda1", help="l1: weight of L_vv; L_vt gets 1 - l1."),
    lambda2: float = typer.Option(PretrainConfig.lambda2, "--lambda2", help="l2: weight of L_vs on pseudo-pairs."),
    paired_ratio: Optional[float] = typer.Option(PretrainConfig.paired_ratio, "--paired-ratio", help="Share of each batch from synchronized pairs [default: in proportion to the data, so an epoch passes over every pair once]."),
    no_soft: bool = typer.Option(False, "--no-soft", help="w = 1 for pseudo-pairs (ablation)."),
    no_synthetic: bool = typer.Option(False, "--no-synthetic", help="Drop L_vs (ablation; implied without --translated)."),
    no_moment_mask: bool = typer.Option(False, "--no-moment-mask", help="Keep clips of the anchor's own moment (other "
                                        "exo cameras, duplicate ego rows) as InfoNCE negatives (the old behaviour)."),
    symmetric: bool = typer.Option(PretrainConfig.symmetric, "--symmetric", help="Also the reverse InfoNCE directions (not in the paper)."),
    lr: float = typer.Option(PretrainConfig.lr, "--lr", help="AdamW peak learning rate (cosine schedule)."),
    layers: int = typer.Option(PretrainConfig.layers, "--layers", help="Temporal transformer / MLP blocks in f_theta."),
    init: str = typer.Option(PretrainConfig.init, "--init", help="Input projection init: pca | orthogonal."),
    max_rank: int = typer.Option(PretrainConfig.max_rank, "--max-rank", help="Use pseudo-pairs with rank < this (1 = top-1, as the paper)."),
    val_frac: float = typer.Option(PretrainConfig.val_frac, "--val-frac", help="Share of paired takes held out for the retrieval monitor."),
    seed: int = options.seed(PretrainConfig.seed),
    log_every: int = options.log_every(PretrainConfig.log_every),
    checkpoint_minutes: float = options.checkpoint_minutes(PretrainConfig.checkpoint_minutes),
    dist_timeout: float = options.dist_timeout(PretrainConfig.dist_timeout),
    threads: int = typer.Option(PretrainConfig.threads, "--threads", help="torch CPU threads (0: torch default; 1 on a busy machine)."),
    resume: bool = options.resume(PretrainConfig.resume),
    device: str = options.device(PretrainConfig.device),
    name: str = typer.Option(PretrainConfig.name, "--name", help="Model name shown by bench [default: the --out name]."),
    overwrite: bool = options.overwrite(PretrainConfig.overwrite),
    as_json: bool = options.as_json(),
):
    """Pretrain the view-invariant dual encoder (stage 4) on paired and/or pseudo-paired features.

    Example (full method): rosetta pretrain --paired paired.zarr --ego ego.zarr --exo exo.zarr
    --pairs pairs.zarr --translated ego_tr.zarr --out models/rosetta

    Baseline "VI encoder" (paired only): rosetta pretrain --paired paired.zarr --out models/vi

    Ablations: --no-synthetic (drop L_vs), --no-soft (w = 1). Paper setting: --epochs 5 (batch size,
    tau, l1, l2 and d are unpublished; the defaults here are sized for the toy demo on 2 CPU cores).

    Fair comparisons: give every variant the same --steps N and --batch-size (an epoch follows the
    largest source, so epochs differ in length between variants); --unpaired-fraction 0.25 trains on
    a fixed quarter of the unpaired ego clips (data scaling).

    Multi-process: torchrun --nproc-per-node 2 -m rosetta_cli pretrain ... (negatives gathered across
    ranks; --batch-size stays the global batch). Writes MODEL_DIR/{config.json, model.safetensors,
    state.pt, metrics.jsonl, loss.png}; --resume continues exactly.
    """
    from rosetta_cli.contrastive import train
    from rosetta_cli.contrastive.config import PretrainConfig
    from rosetta_cli.store.remote import require_local

    require_local(out, "--out")  # MODEL_DIR is local; the store options take URLs

    cfg = PretrainConfig(out=str(out), paired=_s(paired), ego=_s(ego), exo=_s(exo), pairs=_s(pairs),
                         translated=_s(translated), name=name or out.name, epochs=epochs, steps=steps,
                         eval_every=eval_every, unpaired_fraction=unpaired_fraction, mask_moments=not no_moment_mask,
                         batch_size=batch_size,
                         lr=lr, lambda1=lambda1, lambda2=lambda2, paired_ratio=paired_ratio, soft=not no_soft,
                         synthetic=not no_synthetic, symmetric=symmetric, max_rank=max_rank, val_frac=val_frac,
                         dim=dim, tau=tau, learn_tau=learn_tau, layers=layers, init=init, seed=seed, device=device,
                         threads=threads, resume=resume, overwrite=overwrite, log_every=log_every,
                         checkpoint_minutes=checkpoint_minutes, dist_timeout=dist_timeout)
    with rich_progress() as p:
        result = train.run(cfg, p)
    _print_summary(result, as_json)


def _s(p: Optional[Path]) -> Optional[str]:
    return str(p) if p is not None else None


def _print_summary(r, as_json: bool) -> None:
    import os

    if os.environ.get("RANK", "0") != "0":
        return
    if as_json:
        emit_json(r.to_dict())
        return
    f, h = r.frozen or {}, r.heldout or {}
    for key in ("hr1", "hr5", "label_hr5"):
        if key in h:
            stdout.print(f"held-out {key}: {h[key]:.1f}%  (frozen features: {f.get(key, float('nan')):.1f}%)")
    stdout.print(f"[green]model written to[/] {r.out}  ({r.step}/{r.total_steps} steps of "
                  f"{r.batch_size}; metrics.jsonl, loss.png inside)")


def embed_cmd(
    model: Path = typer.Option(..., "--model", help="MODEL_DIR written by `rosetta pretrain`."),
    store: Path = typer.Option(..., "--store", help="Features store to embed."),
    out: Path = typer.Option(..., "--out", help="Embeddings store to write (.zarr or .h5)."),
    text: bool = typer.Option(EmbedConfig.text, "--text", help="Also embed the narrations with the text head (as `text`)."),
    batch_size: int = typer.Option(EmbedConfig.batch_size, "--batch-size", min=1, help="Rows per forward pass."),
    device: str = options.device(EmbedConfig.device),
    overwrite: bool = options.overwrite(EmbedConfig.overwrite),
    as_json: bool = options.as_json(),
):
    """Embed a features store with a pretrained dual encoder → an "embeddings" store [N, 1, d].

    Example: rosetta embed --model models/rosetta --store bench_ego.zarr --out bench_ego.emb.zarr --text
    """
    from rosetta_cli.contrastive import embed

    cfg = embed.EmbedConfig(model=str(model), store=str(store), out=str(out), text=text, batch_size=batch_size,
                            device=device, overwrite=overwrite)
    with rich_progress() as p:
        r = embed.run(cfg, p)
    if as_json:
        emit_json(r.to_dict())
    else:
        stdout.print(f"[green]embedded[/] {r.done}/{r.rows} rows → {r.out} ({r.dim}-d)")


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain_cmd)
    app.command("embed")(embed_cmd)
