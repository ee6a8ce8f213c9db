"""`rosetta train-rst`: train the RST (or the regression baseline) on synchronized ego/exo pairs.

Exact resume: model init comes from the seed; the batch of step s is a function of (seed, epoch, s)
(data.PairStream); the noise of step s is a function of (seed, s, rank) (diffusion.step_generator); the
LR is a function of s; optimizer, EMA and step are checkpointed. So K steps with a kill and --resume in
between give the same weights, bit for bit on CPU, as K uninterrupted steps.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from rosetta_cli.errors import CheckpointError, PipelineFailure, UsageError
from rosetta_cli.rst.ckpt import RST_KIND, RST_VERSION, ckpt_dir
from rosetta_cli.rst.data import PairStream, build_pairs, check_dims, norm_stats
from rosetta_cli.rst.models import RSTModelConfig, build_model


@dataclass
class RSTTrainConfig:
    """Training options; defaults are sized for the CPU demo (≈1,000 pairs of D=1280, T=4, 2 cores, ~1 min)."""

    steps: int = 300             # demo: ~1 min for size tiny on 2 CPU cores; the paper-scale run needs 100k+
    batch_size: int = 64         # global batch (split across torchrun ranks)
    lr: float = 1e-3             # tiny model, short run; DiT used 1e-4 with batch 256 for long runs
    weight_decay: float = 0.0    # DiT trains without weight decay
    warmup: int = 20             # linear warmup steps, then cosine to min_lr_frac × lr
    min_lr_frac: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.999     # with the (1+s)/(10+s) ramp so short runs still get a useful EMA
    seed: int = 0
    val_frac: float = 0.1        # share of takes held out (never trained on)
    split_seed: int = 0          # which takes (eval.split; the same default as pretrain, so both hold out the same)
    diffusion_steps: int = 1000  # DDPM's T
    beta_schedule: str = "squaredcos_cap_v2"  # cosine schedule (Nichol & Dhariwal): better at few sampling steps
    cond_drop: float = 0.1       # P(drop the ego condition) in training, enables --guidance at sampling
    ckpt_every: int = 100
    log_every: int = 10
    eval_sampler: str = "ddim"
    eval_steps: int = 25
    eval_max_queries: int = 1000
    device: str = "auto"

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        ok = (self.steps >= 1 and self.batch_size >= 1 and 0 <= self.val_frac < 1 and 0 <= self.cond_drop < 1
              and self.lr > 0 and self.diffusion_steps >= 2 and self.ckpt_every >= 1)
        if not ok:
            raise UsageError("need --steps ≥ 1, --batch-size ≥ 1, 0 ≤ --val-frac < 1, 0 ≤ --cond-drop < 1, --lr > 0, "
                             "--diffusion-steps ≥ 2, --ckpt-every ≥ 1")


# options that may differ between a run and its --resume (everything else must match the checkpoint)
RESUMABLE = ("steps", "device", "ckpt_every", "log_every", "eval_max_queries")


def lr_at(step: int, cfg: RSTTrainConfig) -> float:
    """Linear warmup then cosine decay to min_lr_frac × lr over cfg.steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def ema_update(ema: dict, model, step: int, decay: float) -> None:
    import torch

    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for name, p in model.named_parameters():
            ema[name].mul_(d).add_(p.detach().float(), alpha=1 - d)


@dataclass
class Run:
    """Everything a training loop mutates."""

    model: object
    net: object          # model, or its DDP wrapper
    opt: object
    ema: dict
    norm: dict           # name → tensor [D] on the device
    meta: dict           # checkpoint config (model, train, norm, stores, dims, split)
    step: int = 0
    history: list = field(default_factory=list)


def train_rst(paths, out_dir, model_cfg: RSTModelConfig, cfg: RSTTrainConfig, *, resume: bool = False,
              overwrite: bool = False, baselines=(), on_step: Callable | None = None, log: Callable = print) -> dict:
    """Train, checkpoint to out_dir/checkpoint, validate. → the validation metrics (rank 0) or {}."""
    from rosetta_cli.store.core import Store
    from rosetta_cli.runtime import dist as D

    cfg.check()
    info = D.init_from_env(cfg.device)
    stores = [Store.open(p, kind="features") for p in paths]
    try:
        dims = check_dims(stores)
        pairs, held = build_pairs(stores, cfg.val_frac, cfg.split_seed)
        train = pairs.subset(~pairs.val)
        if len(train) == 0:
            raise UsageError("every pair is held out for validation", hint="lower --val-frac or add takes")
        out_dir = Path(out_dir)
        run = _start(out_dir, stores, train, pairs, held, dims, model_cfg, cfg, resume, overwrite, info, log)
        stream = PairStream(stores, train, cfg.batch_size // info.world, cfg.seed, info.rank, info.world)
        _loop(run, stream, cfg, out_dir, info, on_step, log)
        metrics = {}
        if info.is_main:
            plot_loss(out_dir)
            metrics = validate(out_dir, stores, pairs.subset(pairs.val), info.device, baselines)
        D.barrier(info)
        return metrics
    finally:
        for s in stores:
            s.close()
        D.cleanup(info)


def _check_batch(cfg: RSTTrainConfig, world: int) -> None:
    if cfg.batch_size % world:
        raise UsageError(f"--batch-size {cfg.batch_size} is not divisible by the {world} processes",
                         hint=f"use a multiple of {world}")


def _start(out_dir, stores, train, pairs, held, dims, model_cfg, cfg, resume, overwrite, info, log) -> Run:
    """Fresh run (model from the seed, stats from the training pairs) or the state of the checkpoint."""
    import torch

    _check_batch(cfg, info.world)
    ck = ckpt_dir(out_dir)
    if (ck / "config.json").exists() and not resume:
        if not overwrite:
            raise UsageError(f"{out_dir}: already holds an RST checkpoint",
                             hint="pass --resume to continue it or --overwrite to start again")
        if info.is_main:
            _clear(out_dir)
    from rosetta_cli.runtime.dist import barrier
    barrier(info)
    model_cfg = RSTModelConfig(**{**model_cfg.to_dict(), **{k: dims[k] for k in
                                                           ("ego_frames", "ego_dim", "exo_frames", "exo_dim")}})
    model_cfg = _check_tokens(model_cfg)
    if resume and (ck / "config.json").exists():
        return _resume(ck, stores, model_cfg, cfg, info, log)
    if resume:
        log(f"{out_dir}: no checkpoint to resume; starting a new run")
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg)
    norm = norm_stats(stores, train)
    absmax = norm.pop("exo_absmax")
    meta = {"rst_version": RST_VERSION, "model": model_cfg.to_dict(), "train": cfg.to_dict(),
            "norm": norm, "dims": dims, "stores": [_store_ref(s) for s in stores],
            "split": {"by": "take (sync_id prefix before '/') or sync_id", "held_out_takes": held,
                      "val_pairs": int(pairs.val.sum()), "train_pairs": int(len(train))}}
    if model_cfg.model != "regression":
        from rosetta_cli.rst.diffusion import scheduler_config

        # saved as diffusers configs and rebuilt with from_config: the checkpoint keeps its sampling schedule
        # whatever diffusers' defaults become
        meta["scheduler"] = scheduler_config(cfg.diffusion_steps, cfg.beta_schedule, clip_range=absmax)
    return _make_run(model, meta, cfg, info)


def _check_tokens(c: RSTModelConfig) -> RSTModelConfig:
    """Resolve tokens=0 (auto) from the model width; the tokens must divide D."""
    from rosetta_cli.rst.models import RST_MODELS, auto_tokens

    if c.tokens == 0:
        c.tokens = auto_tokens(c.exo_dim, RST_MODELS[c.size].shape["width"])
    for dim, what in ((c.exo_dim, "exo"), (c.ego_dim, "ego")):
        if c.tokens < 1 or dim % c.tokens:
            raise UsageError(f"--tokens {c.tokens} does not divide the {what} feature dim {dim}",
                             hint="choose a divisor of D (e.g. 8 or 16 for D=1280), or 0 for auto")
    return c


def _store_ref(s) -> dict:
    return {"path": str(s.path), "id": s.id, "fingerprint": s.fingerprint}


def _clear(out_dir: Path) -> None:
    shutil.rmtree(out_dir / "checkpoint", ignore_errors=True)
    for name in ("metrics.jsonl", "metrics.json", "loss.png"):
        (out_dir / name).unlink(missing_ok=True)


def _make_run(model, meta: dict, cfg: RSTTrainConfig, info) -> Run:
    import torch

    model.to(info.device)
    net = model
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP
        net = DDP(model, device_ids=[info.local_rank] if info.device.startswith("cuda") else None)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = {n: p.detach().float().clone() for n, p in model.named_parameters()}
    norm = {k: torch.tensor(v, dtype=torch.float32, device=info.device) for k, v in meta["norm"].items()}
    return Run(model=model, net=net, opt=opt, ema=ema, norm=norm, meta=meta)


def _resume(ck: Path, stores, model_cfg, cfg, info, log) -> Run:
    from rosetta_cli.rst.ckpt import read_rst_config
    from rosetta_cli.runtime.checkpoint import load_train_state, load_weights, restore_rng

    meta = read_rst_config(ck)
    _same_inputs(ck, meta, stores, model_cfg, cfg)
    model = build_model(model_cfg)
    model.load_state_dict(load_weights(ck, "model"))
    meta["train"] = cfg.to_dict()  # only RESUMABLE fields can differ (checked above)
    run = _make_run(model, meta, cfg, info)
    state = load_train_state(ck)
    if state is None:
        raise CheckpointError(f"{ck}: no training state to resume from", hint="start afresh with --overwrite")
    run.opt.load_state_dict(state["optimizer"])
    run.ema = {k: v.float().to(info.device) for k, v in load_weights(ck, "ema").items()}
    run.step = int(state["step"])
    restore_rng(ck)
    log(f"resuming {ck} at step {run.step}")
    return run


def _same_inputs(ck: Path, meta: dict, stores, model_cfg, cfg) -> None:
    """A resumed run must see the same stores (by fingerprint), model and non-resumable options."""
    now = [_store_ref(s) for s in stores]
    if [(r["id"], r["fingerprint"]) for r in now] != [(r["id"], r["fingerprint"]) for r in meta["stores"]]:
        raise CheckpointError(f"{ck}: the --paired stores differ from those the checkpoint was trained on",
                              hint="pass the same stores, or start again with --overwrite")
    diffs = [k for k, v in model_cfg.to_dict().items() if meta["model"].get(k) != v]
    diffs += [k for k, v in cfg.to_dict().items() if k not in RESUMABLE and meta["train"].get(k) != v]
    if diffs:
        raise UsageError(f"{ck}: options differ from the checkpoint's: {', '.join(diffs)}",
                         hint="rerun with the original options to resume, or --overwrite to start again")


def save(run: Run, out_dir: Path) -> None:
    import torch

    from rosetta_cli.runtime.checkpoint import save_checkpoint

    meta = {**run.meta, "step": run.step}
    state = {"optimizer": run.opt.state_dict(), "step": run.step, "torch_rng": torch.get_rng_state()}
    save_checkpoint(ckpt_dir(out_dir), kind=RST_KIND, config=meta, model_state=run.model.state_dict(),
                    ema_state=run.ema, train_state=state)


def _loop(run: Run, stream: PairStream, cfg: RSTTrainConfig, out_dir: Path, info, on_step, log) -> None:
    from rosetta_cli.runtime.dist import all_reduce_mean, barrier

    sched = _scheduler(run, cfg)
    metrics_file = _open_metrics(out_dir, run.step, info.is_main)
    t0, done0 = time.perf_counter(), run.step
    while run.step < cfg.steps:
        loss = _forward(run, stream, sched, cfg, info)
        value = all_reduce_mean(float(loss.detach()), info)  # every rank sees the same verdict before backward
        if not math.isfinite(value):
            _stop_on_nan(run, out_dir, info, value)
        _update(run, loss, cfg)
        run.step += 1
        if info.is_main:
            sps = (run.step - done0) * cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
            if run.step % cfg.log_every == 0 or run.step == cfg.steps:
                metrics_file.write(json.dumps({"step": run.step, "loss": value, "lr": lr_at(run.step - 1, cfg),
                                               "samples_per_s": round(sps, 1)}) + "\n")
                metrics_file.flush()
            if on_step:
                on_step(run.step, value, sps)
        if run.step % cfg.ckpt_every == 0 or run.step == cfg.steps:
            if info.is_main:
                save(run, out_dir)
            barrier(info)
    if metrics_file:
        metrics_file.close()


def _scheduler(run: Run, cfg: RSTTrainConfig):
    if run.meta["model"]["model"] == "regression":
        return None
    from rosetta_cli.rst.diffusion import legacy_scheduler_config, scheduler_from_config

    # the training noise schedule q(z_t | z_0); a checkpoint from before the schedule was saved (resumed)
    # trains on the same betas and keeps sampling with its legacy schedule
    saved = run.meta.get("scheduler") or legacy_scheduler_config(cfg.diffusion_steps, cfg.beta_schedule)
    return scheduler_from_config("ddpm", saved)


def _forward(run: Run, stream: PairStream, sched, cfg: RSTTrainConfig, info):
    """Loss of step run.step on this rank's batch (bf16 autocast on CUDA). → scalar tensor with grad."""
    import torch

    from rosetta_cli.rst.diffusion import diffusion_loss, regression_loss, step_generator

    ego, exo = stream.batch(run.step)
    dev = info.device
    n = run.norm
    ego = (torch.from_numpy(ego).to(dev).float() - n["ego_mean"]) / n["ego_std"]      # [b, T_ego, D]
    exo = (torch.from_numpy(exo).to(dev).float() - n["exo_mean"]) / n["exo_std"]      # [b, T_exo, D]
    for g in run.opt.param_groups:
        g["lr"] = lr_at(run.step, cfg)
    cuda = dev.startswith("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        if sched is None:
            loss = regression_loss(run.net, exo, ego)
        else:
            loss = diffusion_loss(run.net, sched, exo, ego, step_generator(cfg.seed, run.step, info.rank), cfg.cond_drop)
    return loss


def _update(run: Run, loss, cfg: RSTTrainConfig) -> None:
    """Backward, clip, AdamW step, EMA."""
    import torch

    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    run.opt.step()
    ema_update(run.ema, run.model, run.step, cfg.ema_decay)


def _stop_on_nan(run: Run, out_dir: Path, info, value: float) -> None:
    """The weights are still those before the bad step: checkpoint them, then stop."""
    if info.is_main:
        save(run, out_dir)
    raise PipelineFailure(f"loss became {value} at step {run.step + 1}; training stopped, the last good state "
                          f"(step {run.step}) is checkpointed in {ckpt_dir(out_dir)}",
                          hint="lower --lr, check the stores with `rosetta store validate`, then --resume")


def _open_metrics(out_dir: Path, step: int, main: bool):
    """metrics.jsonl opened for append, dropping lines past `step` (left by a killed run)."""
    if not main:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    f = out_dir / "metrics.jsonl"
    keep = []
    if f.exists():
        keep = [ln for ln in f.read_text().splitlines() if _step_of(ln) is not None and _step_of(ln) <= step]
    f.write_text("".join(ln + "\n" for ln in keep))
    return f.open("a")


def _step_of(line: str) -> int | None:
    """The step of one metrics.jsonl line; None for blank or half-written lines (a killed run)."""
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return None


def plot_loss(out_dir: Path) -> Path | None:
    """out_dir/loss.png from metrics.jsonl."""
    rows = [json.loads(ln) for ln in (out_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    if not rows:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set(xlabel="step", ylabel="training loss (normalised MSE)", yscale="log", title="RST training loss")
    fig.tight_layout()
    fig.savefig(out_dir / "loss.png", dpi=100)
    plt.close(fig)
    return out_dir / "loss.png"


def validate(out_dir: Path, stores, val, device: str, baselines=(), batch: int = 256) -> dict:
    """Held-out metrics of the saved RST (EMA weights) and any baseline RST dirs → out_dir/metrics.json."""
    from rosetta_cli.rst.ckpt import Translator, read_rst_config
    from rosetta_cli.eval.translation import evaluate, held_out_sets

    meta = read_rst_config(out_dir)
    tc = meta["train"]
    result = {"step": meta.get("step"), "val_pairs": int(len(val)), "held_out_takes": len(meta["split"]["held_out_takes"])}
    if len(val) == 0:
        result["note"] = "no held-out pairs (--val-frac 0 or a single take)"
        (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
        return result
    ego_keys, exo_keys, positives, pair_q, pair_g = held_out_sets(val, tc["eval_max_queries"], tc["seed"])
    ego = read_keys(stores, ego_keys)                                          # [q, T, D]
    exo = read_keys(stores, exo_keys).mean(1)                                  # [g, D]
    translated, spacing = {}, None
    for name, d in [("rst", out_dir), *[(f"baseline:{Path(b).name}", b) for b in baselines]]:
        tr = Translator(d, device=device)
        _check_baseline(tr, meta, d)
        out = [tr.translate(ego[i:i + batch], np.arange(i, min(i + batch, len(ego))), sampler=tc["eval_sampler"],
                            steps=tc["eval_steps"], seed=tc["seed"]) for i in range(0, len(ego), batch)]
        translated[name] = np.concatenate(out).mean(1)
        spacing = tr.timestep_spacing if name == "rst" else spacing
    result.update(evaluate(ego.mean(1), translated, exo, positives, pair_q, pair_g))
    result["sampler"] = {"kind": tc["eval_sampler"], "steps": tc["eval_steps"], "guidance": 1.0, "samples": 1,
                         "timestep_spacing": spacing}
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def read_keys(stores, keys: np.ndarray) -> np.ndarray:
    """(store, row) keys [n, 2] → features float32 [n, T, D], read in sorted row order per store."""
    out = np.empty((len(keys), stores[0].frames, stores[0].dim), dtype=np.float32)
    for i, s in enumerate(stores):
        sel = np.flatnonzero(keys[:, 0] == i)
        if len(sel):
            from rosetta_cli.store.stream import ChunkCache
            cache = ChunkCache(s.features, s.n_rows, s.chunk_rows, max_chunks=4)
            rows = keys[sel, 1]
            order = np.argsort(rows, kind="stable")
            out[sel[order]] = cache.get(rows[order])
    return out


def _check_baseline(tr, meta: dict, where) -> None:
    """A baseline is only comparable when trained on the same stores with the same held-out takes."""
    same = (tr.meta["split"]["held_out_takes"] == meta["split"]["held_out_takes"]
            and [r["id"] for r in tr.meta["stores"]] == [r["id"] for r in meta["stores"]])
    if not same:
        raise UsageError(f"{where}: trained on other stores or another held-out split than this run",
                         hint="train the baseline with the same --paired stores, --seed and --val-frac")
