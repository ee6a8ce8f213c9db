"""`rosetta train-rst` and `rosetta translate`: the Rosetta Stone Translator (stage 2)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from rosetta_cli.cli import options
from rosetta_cli.cli.common import emit_json, out as stdout, rich_progress
from rosetta_cli.rst.config import MODELS, SAMPLERS, SIZES, RSTModelConfig, RSTTrainConfig, TranslateConfig


def register(app: typer.Typer) -> None:
    app.command("train-rst")(train_rst_cmd)
    app.command("translate")(translate_cmd)


def train_rst_cmd(
    paired: List[Path] = typer.Option(..., "--paired", help="Paired store(s): ego and exo rows sharing sync_id. Repeatable."),
    out: Path = typer.Option(..., "--out", help="RST directory: the checkpoint (config.json, *.safetensors, state.pt), metrics.jsonl, metrics.json, loss.png."),
    size: str = typer.Option(RSTModelConfig.size, "--size", help=f"Model size: {', '.join(SIZES)} (S, B: DiT-S/B shapes)."),
    model: str = typer.Option(RSTModelConfig.model, "--model", help="dit (diffusion RST) or regression (MLP baseline, MSE)."),
    steps: int = typer.Option(RSTTrainConfig.steps, "--steps", min=1, help="Optimisation steps."),
    batch_size: int = typer.Option(RSTTrainConfig.batch_size, "--batch-size", min=1, help="Global batch (split across torchrun ranks)."),
    lr: float = typer.Option(RSTTrainConfig.lr, "--lr", help="Peak AdamW learning rate (warmup then cosine)."),
    seed: int = options.seed(RSTTrainConfig.seed),
    resume: bool = options.resume(RSTTrainConfig.resume),
    val_frac: float = typer.Option(RSTTrainConfig.val_frac, "--val-frac", help="Share of takes held out for validation."),
    device: str = options.device(RSTTrainConfig.device),
    diffusion_steps: int = typer.Option(RSTTrainConfig.diffusion_steps, "--diffusion-steps", help="DDPM training timesteps."),
    cond_drop: float = typer.Option(RSTTrainConfig.cond_drop, "--cond-drop", help="P(drop ego condition) in training, for --guidance."),
    tokens: int = typer.Option(RSTModelConfig.tokens, "--tokens", help="Tokens per frame (D cut into slices); 0 = auto (D/tokens ≤ width)."),
    cross_attn: bool = typer.Option(RSTModelConfig.cross_attn, "--cross-attn", help="Also cross-attend to the ego frame tokens."),
    ckpt_every: int = typer.Option(RSTTrainConfig.ckpt_every, "--ckpt-every", help="Checkpoint every N steps."),
    checkpoint_minutes: float = options.checkpoint_minutes(RSTTrainConfig.checkpoint_minutes),
    log_every: int = options.log_every(RSTTrainConfig.log_every),
    dist_timeout: float = options.dist_timeout(RSTTrainConfig.dist_timeout),
    baseline: List[Path] = typer.Option([], "--baseline", help="Another RST dir (e.g. --model regression) to compare in validation."),
    overwrite: bool = options.overwrite(RSTTrainConfig.overwrite),
    as_json: bool = options.as_json(),
):
    """Train the Rosetta Stone Translator (DiT-style diffusion ego → exo) on synchronized pairs.

    Example: rosetta train-rst --paired features/paired.zarr --out runs/rst --size tiny --steps 300
    (multi-process: torchrun --nproc-per-node 2 -m rosetta_cli train-rst ...)
    """
    from rosetta_cli.rst import train

    cfg = RSTTrainConfig(paired=[str(p) for p in paired], out=str(out), baselines=[str(b) for b in baseline],
                         model=RSTModelConfig(model=model, size=size, tokens=tokens, cross_attn=cross_attn),
                         resume=resume, overwrite=overwrite, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                         val_frac=val_frac, device=device, diffusion_steps=diffusion_steps, cond_drop=cond_drop,
                         ckpt_every=ckpt_every, checkpoint_minutes=checkpoint_minutes, log_every=log_every,
                         dist_timeout=dist_timeout)
    with rich_progress() as p:
        metrics = train.run(cfg, p).metrics
    if metrics:
        emit_json(metrics) if as_json else _print_validation(metrics, out)


def _print_validation(m: dict, out: Path) -> None:
    from rich.table import Table

    names = [k for k, v in m.items() if isinstance(v, dict) and "R@1" in v and k != "chance"]
    if not names:
        stdout.print(f"validation: {m.get('note', 'none')}; checkpoint in {out}")
        return
    t = Table(title=f"held-out validation: {m['val_pairs']} pairs, {m['held_out_takes']} take(s)")
    for col in ("query", "cosine to true exo", "R@1", "R@5", "median rank"):
        t.add_column(col)
    for n in names:
        v = m[n]
        t.add_row("z_ego (raw)" if n == "raw_ego" else f"T(z_ego) [{n}]", f"{v['cosine']:.3f}", f"{v['R@1']:.3f}",
                  f"{v['R@5']:.3f}", f"{v['median_rank']:.0f}")
    if "chance" in m:  # a random ranking of the same queries and gallery: what each figure must beat
        c = m["chance"]
        t.add_row("chance (random ranking)", "", f"{c['R@1']:.3f}", f"{c['R@5']:.3f}", f"{c['median_rank']:.0f}")
    stdout.print(t)
    smp = m.get("sampler") or {}
    if smp.get("timestep_spacing"):
        stdout.print(f"sampler: {smp['kind']}-{smp['steps']}, {smp['timestep_spacing']} timestep spacing")
    stdout.print(f"gallery: every held-out exo clip; written to {out}/metrics.json, loss curve {out}/loss.png")


def translate_cmd(
    rst: Path = typer.Option(..., "--rst", help="RST directory from `rosetta train-rst`."),
    ego: Path = typer.Option(..., "--ego", help="Ego features store."),
    out: Path = typer.Option(..., "--out", help="Output store (kind translations, row-aligned with --ego)."),
    sampler: str = typer.Option(TranslateConfig.sampler, "--sampler", help="ddim (deterministic, few steps) or ddpm."),
    sampling_steps: int = typer.Option(TranslateConfig.sampling_steps, "--sampling-steps", help="Reverse-process steps."),
    samples: int = typer.Option(TranslateConfig.samples, "--samples", help="Average K draws per row."),
    guidance: float = typer.Option(TranslateConfig.guidance, "--guidance", help="Classifier-free guidance scale (1 = none)."),
    seed: int = options.seed(TranslateConfig.seed),
    batch_size: int = typer.Option(TranslateConfig.batch_size, "--batch-size", min=1, help="Ego rows translated per forward pass (batches span store chunks)."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16: the denoiser's autocast."),
    shard: Optional[str] = typer.Option(TranslateConfig.shard, "--shard", help="I/N: this process does blocks I, I+N, ..."),
    device: str = options.device(TranslateConfig.device),
    overwrite: bool = options.overwrite(TranslateConfig.overwrite),
    as_json: bool = options.as_json(),
):
    """Translate an ego store into hallucinated exo features T(z_ego) (resumable, shardable).

    Example: rosetta translate --rst runs/rst --ego features/ego.zarr --out features/ego_translated.zarr
    """
    from rosetta_cli.rst import translate

    cfg = TranslateConfig(rst=str(rst), ego=str(ego), out=str(out), shard=shard, overwrite=overwrite, sampler=sampler,
                          sampling_steps=sampling_steps, samples=samples, guidance=guidance, seed=seed,
                          batch_size=batch_size, device=device)
    with rich_progress() as p:
        r = translate.run(cfg, p, precision=precision)
    if as_json:
        emit_json(r.to_dict())
    else:
        stdout.print(f"{r.store}: {r.done}/{r.rows} rows done ({r.translated_now} now, {r.rows_per_s} rows/s), "
                      f"{r.failed} failed, {r.pending} pending")
