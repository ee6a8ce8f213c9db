"""Stage-4 training loop: batches from the stores → losses → AdamW + cosine → atomic checkpoints.

The batches come from contrastive.batches, the losses from contrastive.objective; resume identity, the
NaN guard, metrics.jsonl, the loss plot and the DDP wrap are runtime.trainer's, shared with rst.train.

Distributed (torchrun): every rank reads its slice of the same global batch (the batch
plan is a pure function of (seed, step), so neither world size nor a resume changes the
data order), embeddings are gathered across ranks so InfoNCE negatives are global, and
gradients are averaged by DDP. Only rank 0 evaluates and writes.

MODEL_DIR is a checkpoint directory in runtime.trainer.Checkpointer's layout (the same as train-rst's):
config.json (model + run config + provenance), model.safetensors, state.pt (optimizer, scheduler, step),
rng.json, metrics.jsonl (appended) and loss.png. A step holds no host sync: its losses are summed on the
device and read every --log-every steps (runtime.trainer.MetricWindow).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rosetta_cli.contrastive import data, monitor
from rosetta_cli.contrastive.api import CKPT_KIND
from rosetta_cli.contrastive.batches import (Part, assemble, build_plan, global_text_any, local_batch, make_feed,
                                             narration_flags)
from rosetta_cli.contrastive.config import LEGACY_VALUES, ModelConfig, PretrainConfig
from rosetta_cli.contrastive.model import DualEncoderModel, build_model
from rosetta_cli.contrastive.objective import compute_losses, step_module
from rosetta_cli.errors import CheckpointError, Interrupted
from rosetta_cli.provenance import new_id
from rosetta_cli.runtime import checkpoint, dist
from rosetta_cli.runtime.interrupt import StopAtStep
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.runtime.schedule import adamw, warmup_cosine
from rosetta_cli.runtime.trainer import (Checkpointer, MetricsLog, MetricWindow, Snapshot, check_resume, loss_png,
                                         prepare_output, read_metrics, stop_on_not_finite)
from rosetta_cli.store import parent_entry

__all__ = ["Part", "PretrainResult", "Trainer", "compute_losses", "run"]  # Part, compute_losses: tests build steps by hand

LOSS_KEYS = ("loss", "l_vv", "l_vt", "l_vs")  # the per-step scalars of metrics.jsonl's step records


def schedule(cfg: PretrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(total optimisation steps, steps between evaluations/checkpoints).

    --steps fixes the budget directly (the same for every variant, whatever its data); without
    it the run is --epochs passes over the largest source."""
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    return total, cfg.eval_every or steps_per_epoch


def checkpoint_points(total: int, interval: int) -> list[int]:
    """Steps after which the run evaluates and checkpoints: every `interval` steps, and the last one."""
    return list(range(interval, total, interval)) + [total]


def model_config(cfg: PretrainConfig, src: data.Sources) -> ModelConfig:
    vis = [s for s in (src.paired, src.ego, src.exo) if s is not None]
    tdim = next((s.text_dim for s in (src.paired, src.ego) if s is not None and s.text_dim), None)
    return ModelConfig(input_dim=vis[0].dim, frames=max(s.frames for s in vis), text_dim=tdim, dim=cfg.dim,
                       arch=cfg.arch, layers=cfg.layers, init=cfg.init, tau=cfg.tau, learn_tau=cfg.learn_tau)


def make_optimizer(model, cfg: PretrainConfig, total_steps: int, device: str = "cpu"):
    """AdamW (no decay on norms, biases, positions, temperature) + linear warmup → cosine to 0."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2 or p is getattr(model.video, "pos", None)]
    decay = [p for p in decay if all(p is not q for q in no_decay)]
    opt = adamw([{"params": decay, "weight_decay": cfg.weight_decay},
                 {"params": no_decay, "weight_decay": 0.0}], device, lr=cfg.lr)
    return opt, warmup_cosine(opt, max(1, int(cfg.warmup_frac * total_steps)), total_steps), params


# ---------------------------------------------------------------------------- output dir & resume
def existing_checkpoint(out: Path, resume: bool, overwrite: bool, info: dist.DistInfo) -> dict | None:
    """The saved config to resume from, or None to start afresh (runtime.trainer.prepare_output decides)."""
    ck = prepare_output(out, what="a model", resume=resume, overwrite=overwrite, info=info)
    return checkpoint.read_config(ck, kind=CKPT_KIND) if ck is not None else None


def resume_identity(cfg: PretrainConfig, parents: list) -> dict:
    """What a resumed run must share with its checkpoint: the options of cfg.resume_identity() and the input
    stores by fingerprint (a store extracted further keeps its id but changes the data order)."""
    return {**cfg.resume_identity(), "input stores": {p["role"]: [p["id"], p.get("fingerprint")] for p in parents}}


def saved_identity(saved: dict) -> dict:
    """resume_identity as the checkpoint's config.json recorded it."""
    return {**saved.get("train", {}), "input stores": {p["role"]: [p["id"], p.get("fingerprint")]
                                                      for p in saved.get("parents", [])}}


def parents_of(src: data.Sources) -> list:
    return [parent_entry(role, s) for role, s in src.stores().items()]


# ---------------------------------------------------------------------------- plot
def plot_metrics(records: list) -> bytes:
    """loss.png: training loss per logged step, and held-out HR@5 per epoch (frozen features dashed)."""
    steps = [r for r in records if r["type"] == "step"]
    epochs = [r for r in records if r["type"] == "epoch" and r.get("heldout")]
    frozen = next((r["heldout"] for r in records if r["type"] == "frozen"), {})

    def heldout(b):
        for key in ("hr5", "label_hr5"):
            if epochs and key in epochs[0]["heldout"]:
                line, = b.plot([r["epoch"] for r in epochs], [r["heldout"][key] for r in epochs], marker="o", label=key)
                if key in frozen:
                    b.axhline(frozen[key], ls="--", color=line.get_color(), lw=0.8, label=f"{key} frozen")
        b.set(xlabel="epoch", ylabel="HR (%)", title="held-out cross-view retrieval")
        if b.get_legend_handles_labels()[0]:  # nothing to label without a monitor
            b.legend(fontsize=7)

    return loss_png(steps, keys=("loss", "l_vv", "l_vt", "l_vs"), second=heldout)


# ---------------------------------------------------------------------------- the run
@dataclass
class PretrainResult:
    """What `run` returns (rank 0's view; --json prints `to_dict()`)."""

    out: str
    step: int
    total_steps: int
    batch_size: int
    samples_seen: int
    epochs_done: int | float
    steps_per_epoch: int
    unpaired: dict
    frozen: dict | None          # held-out metrics of the frozen features
    heldout: dict | None         # held-out metrics after the last evaluation
    loss: float | None
    notes: list
    items: dict

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Trainer:
    """Holds one run's state; `run()` trains to `total_steps` (see `schedule`), evaluating and
    checkpointing every `interval` steps and at the end."""

    def __init__(self, cfg: PretrainConfig, progress: Progress = SILENT, *, in_memory: bool = False):
        import torch

        cfg.check()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.cfg, self.out, self.rep = cfg, Path(cfg.out), progress
        self.info = dist.init_from_env(cfg.device, timeout_minutes=cfg.dist_timeout)
        self.src = data.open_sources(cfg)
        self.plan = build_plan(cfg, self.src, self.info.world)
        self.readers = data.make_readers(self.src, in_memory=in_memory, cache_chunks=cfg.cache_chunks)
        self.mcfg = model_config(cfg, self.src)
        self._data_notes()
        for msg in self.src.notes:
            self.rep.note(msg)
        self.parents = parents_of(self.src)
        saved = existing_checkpoint(self.out, cfg.resume, cfg.overwrite, self.info)
        # a global batch's narration presence, known to every rank from the plan (one process: from its arrays)
        self.text_flags = narration_flags(self.plan, self.src, self.readers) if self.info.distributed else None
        if saved is not None:
            check_resume(self.out, saved_identity(saved), resume_identity(cfg, self.parents), LEGACY_VALUES)
        self._build(saved)
        # in memory: the plain loop (the benchmark's baseline); from stores: rows read ahead in a thread
        self.feed = None if in_memory else make_feed(self.plan, self.readers, self.info.rank, self.info.world,
                                                     stop=self.total_steps)
        self.monitor = self._monitor() if self.info.is_main else None
        self.ckpt = Checkpointer(self.out, CKPT_KIND, self.info, every=self.interval, minutes=cfg.checkpoint_minutes,
                                 last_step=self.step or None, plot=plot_metrics)
        self.log = MetricsLog(self.out / "metrics.jsonl", self.step, self.ckpt.lock) if self.info.is_main else None
        torch.manual_seed(cfg.seed + 1000 * self.info.rank)

    def _data_notes(self) -> None:
        """What the data plan implies, for the user and config.json "notes"."""
        plan, notes = self.plan, self.src.notes
        if plan.pseudo is not None and plan.pseudo.dropped:
            notes.append(f"{plan.pseudo.dropped} pseudo-pairs skipped (query or candidate row not DONE, or a benchmark row)")
        if plan.pseudo is not None and self.cfg.unpaired_fraction < 1.0:
            notes.append(f"--unpaired-fraction {self.cfg.unpaired_fraction:g}: {len(np.unique(plan.pseudo.query_rows))} of "
                         f"{plan.pseudo.n_queries_all} ego queries ({len(plan.pseudo.query_rows)} pseudo-pairs)")
        if self.mcfg.text_dim is None:
            notes.append("no narration embeddings in the training stores: training without L_vt")
        elif plan.paired is not None and "paired_text" in self.readers and len(plan.paired.ego_rows):
            n = len(plan.paired.ego_rows)
            missing = n - data.count_narrated(self.src.paired, plan.paired.ego_rows)
            if missing:
                notes.append(f"{missing} of {n} paired items have no narration: they are left out of L_vt")

    def _build(self, saved: dict | None) -> None:
        cfg = self.cfg
        self.total_steps, self.interval = schedule(cfg, self.plan.steps_per_epoch)
        if saved is None:
            sample = data.pooled_sample(self.src, 4096, cfg.seed) if cfg.init == "pca" else None
            self.model = build_model(self.mcfg, sample, seed=cfg.seed).to(self.info.device)
            self._broadcast()
            self.step, self.records, self.run_id = 0, [], new_id()
        else:
            self.model = DualEncoderModel(self.mcfg)
            self.model.load_state_dict(checkpoint.load_weights(self.out))
            self.model.to(self.info.device)
            self.records = read_metrics(self.out / "metrics.jsonl", upto_step=saved.get("step"))
            self.run_id = saved.get("run_id", new_id())
            was = saved.get("total_steps", (saved["train"].get("epochs") or 0) * saved.get("steps_per_epoch", 0))
            if was != self.total_steps:
                self.rep.note(f"resuming with {self.total_steps} total steps (was {was}): "
                              "the cosine schedule is stretched to the new length")
        self.opt, self.sched, self.params = make_optimizer(self.model, cfg, self.total_steps, self.info.device)
        absent = self.text_flags is None or any(not f.all() for f in self.text_flags.values())
        self.net = step_module(self.model, cfg, self.info, text_may_be_absent=absent)
        if saved is not None:
            self._load_state()

    def _broadcast(self) -> None:
        """Same initial weights on every rank (the PCA sample is identical, but be exact)."""
        if self.info.distributed:
            import torch.distributed as tdist

            for t in self.model.state_dict().values():
                tdist.broadcast(t, src=0)

    def _load_state(self) -> None:
        import torch

        st = checkpoint.load_train_state(self.out)
        if st is None:
            raise CheckpointError(f"{self.out}: has no training state (state.pt) to resume from",
                                  hint="pass --overwrite to start afresh")
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.step = int(st["step"])
        torch.set_rng_state(st["torch_rng"])

    def _monitor(self):
        cfg, src = self.cfg, self.src
        if src.paired is not None and self.plan.paired is not None:
            ms = monitor.heldout_monitor(src.paired, self.plan.paired.val_ego, self.plan.paired.val_exo, cfg.monitor_max, cfg.seed)
            if ms is not None:
                return ms
        if src.ego is not None:
            ms = monitor.store_monitor(src.ego, src.exo, cfg.monitor_max, cfg.seed)
            if ms is not None:
                self.rep.note("no held-out paired takes: the monitor uses label-based HR@5 on the training ego/exo stores")
                return ms
        self.rep.note("no held-out paired takes and no labels: no retrieval monitor")
        return None

    def epoch_of(self, step: int) -> int | float:
        """Passes over the largest source after `step` steps (an int on epoch boundaries)."""
        q, r = divmod(step, self.plan.steps_per_epoch)
        return q if r == 0 else round(step / self.plan.steps_per_epoch, 3)

    # ------------------------------------------------------------------ evaluation & saving
    def encode(self, z: np.ndarray, batch: int = 1024) -> np.ndarray:
        """[n, T, D] → [n, d] normalised, eval mode, no grad."""
        import torch

        self.model.eval()
        with torch.no_grad():
            out = [self.model.encode_video(torch.from_numpy(z[i:i + batch]).to(self.info.device)).cpu().numpy()
                   for i in range(0, len(z), batch)]
        self.model.train()
        return np.concatenate(out) if out else np.zeros((0, self.mcfg.dim), np.float32)

    def evaluate(self) -> dict | None:
        return monitor.evaluate(self.encode, self.monitor) if self.monitor is not None else None

    def items(self) -> dict:
        """Training items per source (pseudo: after --unpaired-fraction)."""
        p, q = self.plan.paired, self.plan.pseudo
        return {"paired": int(len(p.ego_rows)) if p else 0, "pseudo": int(len(q.query_rows)) if q else 0}

    def unpaired(self) -> dict:
        """The --unpaired-fraction subset: distinct ego queries used / available."""
        q = self.plan.pseudo
        return {"fraction": self.cfg.unpaired_fraction, "queries": int(len(np.unique(q.query_rows))) if q else 0,
                "queries_all": int(q.n_queries_all) if q else 0}

    def snapshot(self) -> Snapshot:
        """The checkpoint now: config.json records "step" and "total_steps" (complete: step >= total_steps)."""
        import torch

        epoch = self.epoch_of(self.step)
        state = {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "step": self.step,
                 "epoch": epoch, "torch_rng": torch.get_rng_state()}
        last = next((r["heldout"] for r in reversed(self.records) if r.get("heldout")), None)
        config = {"name": self.cfg.name or self.out.name, "run_id": self.run_id, "model": dataclasses.asdict(self.mcfg),
                  "train": dataclasses.asdict(self.cfg), "epoch": epoch, "step": self.step,
                  "total_steps": self.total_steps, "eval_every": self.interval,
                  "steps_per_epoch": self.plan.steps_per_epoch, "world_size": self.info.world,
                  "items": self.items(), "unpaired": self.unpaired(), "parents": self.parents,
                  "notes": self.src.notes, "heldout": last}
        return Snapshot(config=config, model=self.model.state_dict(), train=state)

    def save(self, wait: bool = False, plot: bool = True) -> None:
        """Checkpoint (rank 0), written in the background unless `wait`; plot: redraw loss.png."""
        self.ckpt.save(self.step, self.snapshot, wait=wait, plot=plot)

    def record(self, rec: dict) -> None:
        """Keep a metrics record and append it to metrics.jsonl (rank 0)."""
        self.records.append(rec)
        if self.log is not None:
            self.log.write(rec)

    # ------------------------------------------------------------------ training
    def batch(self, step: int) -> list[Part]:
        """The rank's parts of the global batch at `step` (the same with or without prefetching)."""
        i = self.info
        text_any = None if self.text_flags is None else global_text_any(self.plan, self.text_flags, step)
        if self.feed is None:
            return local_batch(self.plan, self.readers, step, i.rank, i.world, i.device, text_any)
        return assemble(self.plan, self.readers, step, i.rank, i.world, self.feed.get(step), i.device, text_any)

    def close(self) -> None:
        """Stop the prefetch thread; wait for the last checkpoint write."""
        try:
            self.ckpt.close()
        finally:
            if self.feed is not None:
                self.feed.close()

    def train_step(self) -> dict:
        """One optimisation step → its losses as device tensors (None: term absent); no host sync."""
        import torch

        parts = self.batch(self.step)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.info.device.startswith("cuda")):
            out = self.net(parts)
        self.opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        self.opt.step()
        self.sched.step()
        self.step += 1
        return out

    def _log_step(self, values: dict) -> None:
        rec = {"type": "step", "step": self.step, "epoch": self.epoch_of(self.step), "lr": self.sched.get_last_lr()[0],
               "tau": float(1.0 / self.model.logit_scale().detach()), **values}
        if self.info.is_main:
            self.record(rec)

    def run_until(self, stop: int, halt=lambda: False) -> dict:
        """Train steps until self.step == stop, or until `halt()` (Ctrl-C) between two steps; returns
        the segment's "epoch" record (without heldout). The losses are read every --log-every steps
        (and at the end), NaN-checked, and a checkpoint falls due by time only at such a read."""
        t0, first, done0, shown = time.perf_counter(), self.step, self.step, ""
        window, segment = MetricWindow(LOSS_KEYS, self.info), MetricWindow(("loss",), self.info)
        while self.step < stop and not halt():
            out = self.train_step()
            window.add(out)
            segment.add({"loss": out["loss"]})
            if self.step % self.cfg.log_every == 0 or self.step == stop or halt():
                values, (by_time,) = window.read([self.ckpt.due_by_time()])
                if any(v is not None and not math.isfinite(v) for v in values.values()):
                    self.ckpt.wait()
                stop_on_not_finite(values, first, self.step, self.out, self.ckpt.last_step)
                first = self.step
                self._log_step(values)
                shown = f"loss {values['loss']:.3f}"
                if by_time and self.step < stop and not halt():  # the segment's end saves anyway
                    self.save(plot=False)
            self.rep.advance(completed=self.step, info=shown)
        secs = time.perf_counter() - t0
        loss = segment.read()[0]["loss"] if self.step > done0 else None
        return {"type": "epoch", "epoch": self.epoch_of(self.step), "step": self.step,
                "loss": loss if loss is not None else math.nan,
                "seconds": round(secs, 3), "samples_per_s": round((self.step - done0) * self.cfg.batch_size / max(secs, 1e-9), 1)}

    def run(self, stop_after_epochs: int | None = None) -> dict:
        """Train to total_steps; `stop_after_epochs` stops after that many checkpoint points
        (points are every `interval` steps, one epoch by default, and the last step)."""
        points = [p for p in checkpoint_points(self.total_steps, self.interval) if p > self.step]
        if stop_after_epochs is not None:
            points = points[:stop_after_epochs]
        if self.info.is_main and self.step == 0 and self.monitor is not None:
            self.record({"type": "frozen", "heldout": monitor.frozen(self.monitor)})
            self.record({"type": "epoch", "epoch": 0, "step": 0, "heldout": self.evaluate()})
        self.rep.start("pretrain", self.total_steps, done=self.step, unit="steps")
        # one process: the first Ctrl-C ends the current step, then checkpoints (cheap) and stops
        with StopAtStep(enabled=self.info.world == 1) as ctrl_c:
            try:
                for stop in points:
                    rec = self.run_until(stop, halt=lambda: ctrl_c.requested)
                    if ctrl_c.requested:
                        self._save_and_stop()
                    if self.info.is_main:  # the other ranks wait at most --dist-timeout (process-group timeout)
                        rec["heldout"] = self.evaluate()
                        self.record(rec)
                        self.save()
                        self.rep.note(epoch_line(rec))
                    dist.barrier(self.info)
            except KeyboardInterrupt:
                self.ckpt.wait()
                saved = self.ckpt.last_step
                kept = f"the checkpoint of step {saved} is kept" if saved else "no checkpoint was written yet"
                raise Interrupted(f"{self.out}: pretrain interrupted at step {self.step}/{self.total_steps}; {kept}",
                                  hint="rerun the same command with --resume to continue" if saved
                                  else "rerun the same command to start again") from None
        self.ckpt.wait()
        return self.summary()

    def _save_and_stop(self) -> None:
        """Ctrl-C between two steps: checkpoint this step, then stop with exit 130."""
        self.save(wait=True)
        raise Interrupted(f"{self.out}: pretrain interrupted; checkpoint saved at step {self.step}/{self.total_steps}",
                          hint="rerun the same command with --resume to continue")

    def summary(self) -> PretrainResult:
        epochs = [r for r in self.records if r["type"] == "epoch"]
        frozen = next((r["heldout"] for r in self.records if r["type"] == "frozen"), None)
        return PretrainResult(out=str(self.out), step=self.step, total_steps=self.total_steps,
                              batch_size=self.cfg.batch_size, samples_seen=self.step * self.cfg.batch_size,
                              epochs_done=self.epoch_of(self.step), steps_per_epoch=self.plan.steps_per_epoch,
                              unpaired=self.unpaired(), frozen=frozen,
                              heldout=epochs[-1].get("heldout") if epochs else None,
                              loss=epochs[-1].get("loss") if epochs else None, notes=self.src.notes, items=self.items())


def epoch_line(rec: dict) -> str:
    """One line per evaluation point: loss, throughput and held-out HR."""
    h = rec.get("heldout") or {}
    hr = "  ".join(f"{k} {h[k]:.1f}" for k in ("hr1", "hr5", "label_hr5") if k in h)
    return f"epoch {rec['epoch']:g} (step {rec['step']}): loss {rec['loss']:.4f}  {rec['samples_per_s']:.0f} samples/s  {hr}"


def run(cfg: PretrainConfig, progress: Progress = SILENT, *, in_memory: bool = False,
        stop_after_epochs: int | None = None) -> PretrainResult:
    """Train (or, with cfg.resume, continue) a dual encoder into cfg.out.

    in_memory: read the stores into RAM first (benchmarks); stop_after_epochs: stop after that many
    checkpoint points (tests of resume)."""
    trainer = Trainer(cfg, progress, in_memory=in_memory)
    try:
        return trainer.run(stop_after_epochs)
    finally:
        trainer.close()
        dist.cleanup(trainer.info)
