"""`rosetta train-rst`: train the RST (or the regression baseline) on synchronized ego/exo pairs.

Exact resume: model init comes from the seed; the batch of step s is a function of (seed, epoch, s)
(data.PairStream); the noise of step s is a function of (seed, s, rank) (diffusion.step_generator); the
LR is a function of s; optimizer, EMA and step are checkpointed. So K steps with a kill and --resume in
between give the same weights, bit for bit on CPU, as K uninterrupted steps.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rosetta_cli.errors import CheckpointError, Interrupted, UsageError
from rosetta_cli.eval.translation import evaluate, held_out_sets
from rosetta_cli.rst import diffusion
from rosetta_cli.rst.ckpt import RST_KIND, RST_VERSION, Translator, read_rst_config
from rosetta_cli.rst.config import RSTModelConfig, RSTTrainConfig
from rosetta_cli.rst.data import PairStream, build_pairs, check_dims, norm_stats
from rosetta_cli.rst.models import RST_MODELS, auto_tokens, build_model
from rosetta_cli.runtime import dist
from rosetta_cli.runtime.checkpoint import load_train_state, load_weights, restore_rng
from rosetta_cli.runtime.interrupt import StopAtStep
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.runtime.schedule import adamw, ema, warmup_cosine
from rosetta_cli.runtime.trainer import (Checkpointer, MetricsLog, MetricWindow, Snapshot, check_resume, loss_png,
                                         prepare_output, read_metrics, stop_on_not_finite, wrap_ddp)
from rosetta_cli.store.core import Store
from rosetta_cli.store.stream import ChunkCache, Prefetcher


@dataclass
class TrainResult:
    """What `run` returns: where the RST is, its last step, and the held-out metrics (rank 0; {} elsewhere)."""

    out: Path
    step: int
    metrics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.metrics


@dataclass
class Run:
    """Everything a training loop mutates."""

    model: object
    net: object          # model, or its DDP wrapper
    opt: object
    sched: object        # the learning-rate schedule (runtime.schedule.warmup_cosine)
    ema: object          # diffusers EMAModel of model's parameters
    norm: dict           # name → tensor [D] on the device
    meta: dict           # checkpoint config (model, train, norm, stores, dims, split)
    step: int = 0
    history: list = field(default_factory=list)


def run(cfg: RSTTrainConfig, progress: Progress = SILENT) -> TrainResult:
    """Train, checkpoint to cfg.out (runtime.trainer.Checkpointer's layout), validate (rank 0)."""
    cfg.check()
    info = dist.init_from_env(cfg.device, timeout_minutes=cfg.dist_timeout)
    stores = [Store.open(p, kind="features") for p in cfg.paired]
    try:
        dims = check_dims(stores)
        pairs, held = build_pairs(stores, cfg.val_frac, cfg.split_seed)
        train = pairs.subset(~pairs.val)
        if len(train) == 0:
            raise UsageError("every pair is held out for validation", hint="lower --val-frac or add takes")
        out_dir = Path(cfg.out)
        run_ = _start(out_dir, stores, train, pairs, held, dims, cfg, info, progress)
        stream = PairStream(stores, train, cfg.batch_size // info.world, cfg.seed, info.rank, info.world)
        _loop(run_, stream, cfg, out_dir, info, progress)
        metrics = {}
        if info.is_main:  # the other ranks wait at most the process-group timeout (--dist-timeout)
            metrics = validate(out_dir, stores, pairs.subset(pairs.val), info.device, cfg.baselines)
        dist.barrier(info)
        return TrainResult(out_dir, run_.step, metrics)
    finally:
        for s in stores:
            s.close()
        dist.cleanup(info)


def _check_batch(cfg: RSTTrainConfig, world: int) -> None:
    if cfg.batch_size % world:
        raise UsageError(f"--batch-size {cfg.batch_size} is not divisible by the {world} processes",
                         hint=f"use a multiple of {world}")


def _start(out_dir, stores, train, pairs, held, dims, cfg, info, progress) -> Run:
    """Fresh run (model from the seed, stats from the training pairs) or the state of the checkpoint."""
    import torch

    _check_batch(cfg, info.world)
    ck = prepare_output(out_dir, what="an RST checkpoint", resume=cfg.resume, overwrite=cfg.overwrite, info=info)
    model_cfg = RSTModelConfig(**{**cfg.model.to_dict(), **{k: dims[k] for k in
                                                           ("ego_frames", "ego_dim", "exo_frames", "exo_dim")}})
    model_cfg = _check_tokens(model_cfg)
    if ck is not None:
        return _resume(ck, stores, model_cfg, cfg, info, progress)
    if cfg.resume:
        progress.note(f"{out_dir}: no checkpoint to resume; starting a new run")
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg)
    norm = norm_stats(stores, train)
    absmax = norm.pop("exo_absmax")
    meta = {"rst_version": RST_VERSION, "model": model_cfg.to_dict(), "train": cfg.to_dict(),
            "norm": norm, "dims": dims, "stores": [_store_ref(s) for s in stores],
            "split": {"by": "take (sync_id prefix before '/') or sync_id", "held_out_takes": held,
                      "val_pairs": int(pairs.val.sum()), "train_pairs": int(len(train))}}
    if model_cfg.model != "regression":
        # saved as diffusers configs and rebuilt with from_config: the checkpoint keeps its sampling schedule
        # whatever diffusers' defaults become
        meta["scheduler"] = diffusion.scheduler_config(cfg.diffusion_steps, cfg.beta_schedule, clip_range=absmax)
    return _make_run(model, meta, cfg, info)


def _check_tokens(c: RSTModelConfig) -> RSTModelConfig:
    """Resolve tokens=0 (auto) from the model width; the tokens must divide D."""
    if c.tokens == 0:
        c.tokens = auto_tokens(c.exo_dim, RST_MODELS[c.size].shape["width"])
    for dim, what in ((c.exo_dim, "exo"), (c.ego_dim, "ego")):
        if c.tokens < 1 or dim % c.tokens:
            raise UsageError(f"--tokens {c.tokens} does not divide the {what} feature dim {dim}",
                             hint="choose a divisor of D (e.g. 8 or 16 for D=1280), or 0 for auto")
    return c


def _store_ref(s) -> dict:
    return {"path": str(s.path), "id": s.id, "fingerprint": s.fingerprint}


def _make_run(model, meta: dict, cfg: RSTTrainConfig, info) -> Run:
    import torch

    model.to(info.device)
    net = wrap_ddp(model, info)
    opt = adamw(model.parameters(), info.device, lr=cfg.lr, weight_decay=cfg.weight_decay)
    norm = {k: torch.tensor(v, dtype=torch.float32, device=info.device) for k, v in meta["norm"].items()}
    return Run(model=model, net=net, opt=opt, sched=warmup_cosine(opt, cfg.warmup, cfg.steps),
               ema=ema(model.parameters(), cfg.ema_decay), norm=norm, meta=meta)


def _resume(ck: Path, stores, model_cfg, cfg, info, progress) -> Run:
    meta = read_rst_config(ck)
    check_resume(ck, _identity(meta["train"], meta["model"], meta["stores"]),
                 _identity(cfg.resume_identity(), model_cfg.to_dict(), [_store_ref(s) for s in stores]))
    model = build_model(model_cfg)
    model.load_state_dict(load_weights(ck, "model"))
    meta["train"] = cfg.to_dict()  # only config.RESUMABLE fields can differ (checked above)
    run = _make_run(model, meta, cfg, info)
    state = load_train_state(ck)
    if state is None:
        raise CheckpointError(f"{ck}: no training state to resume from", hint="start afresh with --overwrite")
    run.opt.load_state_dict(state["optimizer"])
    sched = state.get("scheduler", state.get("lr_schedule"))  # "lr_schedule": before the trainers shared keys
    if sched is None or "ema" not in state:
        raise CheckpointError(f"{ck}: written by an older rosetta (no LR-schedule/EMA state)",
                              hint="start afresh with --overwrite")
    run.sched.load_state_dict(sched)
    saved = load_weights(ck, "ema")
    run.ema.load_state_dict({**state["ema"], "shadow_params": [saved[n].float().to(info.device)
                                                               for n, _ in model.named_parameters()]})
    run.step = int(state["step"])
    restore_rng(ck)
    progress.note(f"resuming {ck} at step {run.step}")
    return run


def _identity(train: dict, model: dict, stores: list) -> dict:
    """What a resumed run must share with its checkpoint: the training options (a recorded train dict has
    the resumable ones too; check_resume compares only the keys of the live run's identity), the resolved
    model, and the --paired stores by fingerprint."""
    return {**train, **{f"model.{k}": v for k, v in model.items()},
            "--paired stores": [[r["id"], r["fingerprint"]] for r in stores]}


def snapshot(run: Run, cfg: RSTTrainConfig) -> Snapshot:
    """The checkpoint of `run` now (tensors still on the device: Checkpointer copies them)."""
    import torch

    ema_state = run.ema.state_dict()
    shadow = dict(zip((n for n, _ in run.model.named_parameters()), ema_state.pop("shadow_params")))
    state = {"optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(), "ema": ema_state,
             "step": run.step, "torch_rng": torch.get_rng_state()}
    return Snapshot(config={**run.meta, "step": run.step, "total_steps": cfg.steps}, model=run.model.state_dict(),
                    train=state, ema=shadow)


def _loop(run: Run, stream: PairStream, cfg: RSTTrainConfig, out_dir: Path, info, progress: Progress) -> None:
    noise = _noise_schedule(run, cfg)
    ckpt = Checkpointer(out_dir, RST_KIND, info, every=cfg.ckpt_every, minutes=cfg.checkpoint_minutes,
                        last_step=run.step or None, plot=rst_loss_png)
    log = MetricsLog(out_dir / "metrics.jsonl", run.step, ckpt.lock) if info.is_main else None
    feed = batch_feed(stream, run.step, cfg.steps, info.device)
    progress.start("train-rst", cfg.steps, done=run.step, unit="steps")
    # one process: the first Ctrl-C ends the current step, then checkpoints and stops (exit 130)
    try:
        with StopAtStep(enabled=info.world == 1) as ctrl_c:
            try:
                _steps(run, feed, noise, cfg, ckpt, info, progress, log, ctrl_c)
            except KeyboardInterrupt:
                ckpt.wait()
                raise _interrupted(out_dir, run, cfg, ckpt.last_step, saved=False) from None
        if ctrl_c.requested:
            ckpt.save(run.step, lambda: snapshot(run, cfg), wait=True)
            raise _interrupted(out_dir, run, cfg, run.step, saved=True)
    finally:
        feed.close()
        ckpt.close()


def _interrupted(out_dir: Path, run: Run, cfg: RSTTrainConfig, last: int | None, saved: bool) -> Interrupted:
    """The exit-130 error, saying which checkpoint a --resume continues from."""
    if saved:
        kept = "checkpoint saved at this step"
    else:
        kept = f"the checkpoint of step {last} is kept" if last else "no checkpoint was written yet"
    return Interrupted(f"{out_dir}: train-rst interrupted at step {run.step}/{cfg.steps}; {kept}",
                       hint="rerun the same command with --resume to continue" if saved or last
                       else "rerun the same command to start again")


def _steps(run: Run, feed, noise, cfg: RSTTrainConfig, ckpt: Checkpointer, info, progress: Progress,
           log, ctrl_c) -> None:
    """The training steps, from run.step to cfg.steps or to a Ctrl-C between two steps.

    A step holds no host sync: its loss is summed on the device (MetricWindow) and read, NaN-checked and
    logged every --log-every steps and before each checkpoint."""
    t0, done0, first = time.perf_counter(), run.step, run.step
    window, shown = MetricWindow(("loss",), info), ""
    while run.step < cfg.steps and not ctrl_c.requested:
        lr = run.sched.get_last_lr()[0]
        loss = _forward(run, feed.get(run.step), noise, cfg, info)
        _update(run, loss, cfg)
        window.add({"loss": loss})
        run.step += 1
        by_steps = ckpt.due_by_steps(run.step, cfg.steps)
        if run.step % cfg.log_every == 0 or by_steps or ctrl_c.requested:
            values, (by_time,) = window.read([ckpt.due_by_time()])
            if not math.isfinite(values["loss"]):
                ckpt.wait()
            stop_on_not_finite(values, first, run.step, ckpt.out, ckpt.last_step)
            first = run.step
            sps = (run.step - done0) * cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
            shown = f"loss {values['loss']:.4f}, {sps:,.0f} samples/s"
            if log:
                log.write({"step": run.step, "loss": values["loss"], "lr": lr, "samples_per_s": round(sps, 1)})
            if (by_steps or by_time) and not ctrl_c.requested:  # a Ctrl-C saves (and waits) after the loop
                ckpt.save(run.step, lambda: snapshot(run, cfg), plot=run.step >= cfg.steps)
        progress.advance(completed=run.step, info=shown)


def batch_feed(stream: PairStream, start: int, stop: int, device: str, window: int = 16):
    """The (ego, exo) tensors of each step on `device`, read `window` steps ahead by the store prefetcher's
    thread (a batch stays a pure function of its step); pinned host memory and non-blocking copies on CUDA."""
    import torch

    cuda = device.startswith("cuda")

    def load(a: int, b: int) -> list:
        out = []
        for s in range(a, b):
            ego, exo = (torch.from_numpy(np.ascontiguousarray(x)) for x in stream.batch(s))
            out.append((ego.pin_memory(), exo.pin_memory()) if cuda else (ego, exo))
        return out

    return Prefetcher(load, window, stop=stop)


def _noise_schedule(run: Run, cfg: RSTTrainConfig):
    if run.meta["model"]["model"] == "regression":
        return None
    # the training noise schedule q(z_t | z_0); a checkpoint from before the schedule was saved (resumed)
    # trains on the same betas and keeps sampling with its legacy schedule
    saved = run.meta.get("scheduler") or diffusion.legacy_scheduler_config(cfg.diffusion_steps, cfg.beta_schedule)
    return diffusion.scheduler_from_config("ddpm", saved)


def _forward(run: Run, batch, noise, cfg: RSTTrainConfig, info):
    """Loss of step run.step on this rank's batch (host tensors; bf16 autocast on CUDA). → scalar tensor with grad."""
    import torch

    dev = info.device
    n = run.norm
    ego, exo = (x.to(dev, non_blocking=True).float() for x in batch)
    ego = (ego - n["ego_mean"]) / n["ego_std"]                                  # [b, T_ego, D]
    exo = (exo - n["exo_mean"]) / n["exo_std"]                                  # [b, T_exo, D]
    cuda = dev.startswith("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        if noise is None:
            loss = diffusion.regression_loss(run.net, exo, ego)
        else:
            gen = diffusion.step_generator(cfg.seed, run.step, info.rank, device=dev)
            loss = diffusion.diffusion_loss(run.net, noise, exo, ego, gen, cfg.cond_drop)
    return loss


def _update(run: Run, loss, cfg: RSTTrainConfig) -> None:
    """Backward, clip, AdamW step, LR step, EMA."""
    import torch

    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    run.opt.step()
    run.sched.step()
    run.ema.step(run.model.parameters())


def rst_loss_png(rows: list) -> bytes:
    """loss.png of metrics.jsonl's records (drawn by the checkpoint writer)."""
    return loss_png(rows, ylabel="training loss (normalised MSE)", log_y=True, title="RST training loss")


def plot_loss(out_dir: Path) -> Path | None:
    """out_dir/loss.png from metrics.jsonl."""
    rows = read_metrics(out_dir / "metrics.jsonl")
    if not rows:
        return None
    (out_dir / "loss.png").write_bytes(rst_loss_png(rows))
    return out_dir / "loss.png"


def validate(out_dir: Path, stores, val, device: str, baselines=(), batch: int = 256) -> dict:
    """Held-out metrics of the saved RST (EMA weights) and any baseline RST dirs → out_dir/metrics.json."""
    meta = read_rst_config(out_dir)
    tc = meta["train"]
    result = {"step": meta.get("step"), "val_pairs": int(len(val)), "held_out_takes": len(meta["split"]["held_out_takes"])}
    if len(val) == 0:
        result["note"] = "no held-out pairs (--val-frac 0 or a single take)"
        (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
        return result
    ego_keys, exo_keys, positives, pair_q, pair_g = held_out_sets(val, tc["eval_max_queries"], tc["seed"])
    ego = read_keys(stores, ego_keys)                                          # [q, T, D]
    exo = read_keys(stores, exo_keys, pool=True)                               # [g, D]
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


def read_keys(stores, keys: np.ndarray, pool: bool = False, block: int = 8192) -> np.ndarray:
    """(store, row) keys [n, 2] → features float32 [n, T, D], or with `pool` their mean over T [n, D].

    Rows are read in sorted order per store, `block` at a time, so a pooled read never holds more than
    one block of [block, T, D]: the gallery of 85k held-out exo clips at the paper's size is 0.4 GB
    pooled, 1.7 GB unpooled.
    """
    s0 = stores[0]
    out = np.empty((len(keys), s0.dim) if pool else (len(keys), s0.frames, s0.dim), dtype=np.float32)
    for i, s in enumerate(stores):
        sel = np.flatnonzero(keys[:, 0] == i)
        if not len(sel):
            continue
        cache = ChunkCache(s.features, s.n_rows, s.chunk_rows, max_chunks=4)
        rows = keys[sel, 1]
        order = np.argsort(rows, kind="stable")
        for a in range(0, len(order), block):
            o = order[a:a + block]
            x = cache.get(rows[o]).astype(np.float32)                           # [b, T, D]
            out[sel[o]] = x.mean(1) if pool else x
    return out


def _check_baseline(tr, meta: dict, where) -> None:
    """A baseline is only comparable when trained on the same stores with the same held-out takes."""
    same = (tr.meta["split"]["held_out_takes"] == meta["split"]["held_out_takes"]
            and [r["id"] for r in tr.meta["stores"]] == [r["id"] for r in meta["stores"]])
    if not same:
        raise UsageError(f"{where}: trained on other stores or another held-out split than this run",
                         hint="train the baseline with the same --paired stores, --seed and --val-frac")
