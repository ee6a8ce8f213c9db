"""Stage-4 training loop: batches from the stores → losses → AdamW + cosine → atomic checkpoints.

Distributed (torchrun): every rank reads its slice of the same global batch (the batch
plan is a pure function of (seed, step), so neither world size nor a resume changes the
data order), embeddings are gathered across ranks so InfoNCE negatives are global, and
gradients are averaged by DDP. Only rank 0 evaluates and writes.

The checkpoint directory MODEL_DIR holds config.json (model + run config + provenance),
model.safetensors, state.pt (optimizer, scheduler, step), metrics.jsonl and loss.png.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rosetta_cli.contrastive import data as D
from rosetta_cli.contrastive import monitor as M
from rosetta_cli.contrastive.config import ModelConfig, PretrainConfig
from rosetta_cli.errors import CheckpointError, Interrupted, PipelineFailure, UsageError
from rosetta_cli.provenance import new_id
from rosetta_cli.store import parent_entry
from rosetta_cli.runtime import checkpoint as C
from rosetta_cli.runtime import dist
from rosetta_cli.runtime.guard import Action, output_action
from rosetta_cli.runtime.interrupt import StopAtStep
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.runtime.schedule import warmup_cosine

CKPT_KIND = "dual-encoder"
# Options that must not change when resuming (they change what the saved state means).
RESUME_KEYS = ("batch_size", "lr", "weight_decay", "warmup_frac", "lambda1", "lambda2", "paired_ratio", "soft",
               "synthetic", "symmetric", "max_rank", "val_frac", "seed", "dim", "tau", "learn_tau", "arch", "layers", "init",
               "unpaired_fraction", "mask_moments")
# What a checkpoint written before an option existed was trained with (resume compares against these).
LEGACY_VALUES = {"unpaired_fraction": 1.0, "mask_moments": False}
# Steps read ahead per window by the prefetch thread. 64: the per-row read overhead of a window falls
# from ~20 ms/step (16 steps) to ~7 ms/step (measured, docs/benchmarks.md); ~3 MB of rows per step at
# D=1280, batch 128, so ~200 MB per window and two windows in flight.
PREFETCH_STEPS = 64


# ---------------------------------------------------------------------------- plan
@dataclass
class Plan:
    paired: D.PairedItems | None
    pseudo: D.PseudoItems | None
    k_paired: int                    # global items per step from each source
    k_pseudo: int
    streams: dict                    # "paired"/"pseudo" → ItemStream
    steps_per_epoch: int             # one pass over the largest source (the unit of --epochs)


def _split_batch(cfg: PretrainConfig, n_paired: int, n_pseudo: int, world: int) -> tuple[int, int]:
    """Global per-step counts (k_paired, k_pseudo), each a multiple of the world size."""
    if cfg.batch_size % world:
        raise UsageError(f"--batch-size {cfg.batch_size} is the global batch: make it a multiple of {world} ranks")
    if n_paired and n_pseudo:
        ratio = 0.5 if cfg.paired_ratio is None else cfg.paired_ratio
    else:
        ratio = 1.0 if n_paired else 0.0
    k = int(round(ratio * cfg.batch_size / world)) * world
    return k, cfg.batch_size - k


def build_plan(cfg: PretrainConfig, src: D.Sources, world: int) -> Plan:
    paired = D.paired_items(src.paired, cfg.val_frac, cfg.split_seed) if src.paired else None
    pseudo = D.pseudo_items(src.pairs, src.ego, src.exo, cfg.max_rank, cfg.soft) if src.pairs else None
    if pseudo is not None and cfg.unpaired_fraction < 1.0:
        pseudo = pseudo.subset(D.unpaired_subset(pseudo.query_rows, src.ego.n_rows, cfg.unpaired_fraction, cfg.seed))
    n_p = len(paired.ego_rows) if paired else 0
    n_s = len(pseudo.query_rows) if pseudo else 0
    if n_p + n_s == 0:
        raise UsageError("empty training set: no DONE synchronized pairs (non-empty sync_id, ego + exo rows) "
                         "outside the held-out takes, and no usable pseudo-pairs",
                         hint="check the stores with `rosetta store info`; pairs need DONE rows on both sides")
    k_p, k_s = _split_batch(cfg, n_p, n_s, world)
    streams = {}
    for name, n, k, keys, store in (("paired", n_p, k_p, paired and paired.ego_rows, src.paired),
                                    ("pseudo", n_s, k_s, pseudo and pseudo.query_rows, src.ego)):
        if k == 0:
            continue
        if n < k:
            more = " or raise --unpaired-fraction" if name == "pseudo" and cfg.unpaired_fraction < 1.0 else ""
            raise UsageError(f"{name} training set has {n} items but each batch takes {k} of them",
                             hint=f"lower --batch-size (or change --paired-ratio{more})")
        streams[name] = D.ItemStream(keys, store.chunk_rows, k, cfg.seed, len(streams), cfg.buffer_chunks)
    steps = max(s.steps_per_pass for s in streams.values())
    return Plan(paired, pseudo, k_p, k_s, streams, steps)


def schedule(cfg: PretrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(total optimisation steps, steps between evaluations/checkpoints).

    --steps fixes the budget directly (the same for every variant, whatever its data); without
    it the run is --epochs passes over the largest source."""
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    return total, cfg.eval_every or steps_per_epoch


def checkpoint_points(total: int, interval: int) -> list[int]:
    """Steps after which the run evaluates and checkpoints: every `interval` steps, and the last one."""
    return list(range(interval, total, interval)) + [total]


def model_config(cfg: PretrainConfig, src: D.Sources) -> ModelConfig:
    vis = [s for s in (src.paired, src.ego, src.exo) if s is not None]
    tdim = next((s.text_dim for s in (src.paired, src.ego) if s is not None and s.text_dim), None)
    return ModelConfig(input_dim=vis[0].dim, frames=max(s.frames for s in vis), text_dim=tdim, dim=cfg.dim,
                       arch=cfg.arch, layers=cfg.layers, init=cfg.init, tau=cfg.tau, learn_tau=cfg.learn_tau)


# ---------------------------------------------------------------------------- batches
@dataclass
class Part:
    """One source's share of the local batch (tensors on the device)."""
    ego: "torch.Tensor"              # [k, T, D]
    exo: "torch.Tensor"              # [k, T', D]
    weight: "torch.Tensor"           # [k]
    text: "torch.Tensor | None"      # [k, Dt] (zeros where has_text is False)
    syn: "torch.Tensor | None"       # [k, T'', D] RST translations of the ego clips
    key: "torch.Tensor"              # [k] int64 moment keys (same key → same moment: not each other's negatives)
    has_text: "torch.Tensor | None"  # [k] bool: the ego clip has a narration (the others sit out L_vt)


def step_reads(plan: Plan, readers: dict, step: int, rank: int, world: int) -> list[tuple[str, np.ndarray]]:
    """The (reader name, rows [k]) the rank's slice of the global batch at `step` reads, in the
    order `assemble` consumes them. A pure function of (plan, step, rank, world)."""
    reads = []
    for name, idx in _local_items(plan, step, rank, world):
        if name == "paired":
            e, x = plan.paired.ego_rows[idx], plan.paired.exo_rows[idx]
            reads += [("paired_feat", e), ("paired_feat", x)] + ([("paired_text", e)] if "paired_text" in readers else [])
        else:
            q, c = plan.pseudo.query_rows[idx], plan.pseudo.cand_rows[idx]
            reads += [("ego_feat", q), ("exo_feat", c)] + ([("ego_text", q)] if "ego_text" in readers else [])
            reads += [("translated_feat", q)] if "translated_feat" in readers else []
    return reads


def _local_items(plan: Plan, step: int, rank: int, world: int) -> list[tuple[str, np.ndarray]]:
    """(source, item indices [k]) of the rank's slice of the global batch at `step`."""
    out = []
    for name, stream in plan.streams.items():
        k = stream.per_step // world
        out.append((name, stream.global_batch(step)[rank * k:(rank + 1) * k]))
    return out


def assemble(plan: Plan, readers: dict, step: int, rank: int, world: int, arrays: list, device) -> list[Part]:
    """Parts from the arrays read for `step_reads(...)` (same order) → tensors on `device`."""
    import torch

    def t(x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)

    def narr(present):
        if not present:
            return None, None
        text, has = D.narrated(next(it))     # a copy: the reader's cached chunk stays as stored
        return t(text), torch.from_numpy(has).to(device)

    it, parts = iter(arrays), []
    for name, idx in _local_items(plan, step, rank, world):
        ego, exo = t(next(it)), t(next(it))
        if name == "paired":
            text, has = narr("paired_text" in readers)
            parts.append(Part(ego, exo, torch.ones(len(idx), device=device), text, None,
                              torch.from_numpy(plan.paired.keys[idx]).to(device), has))
        else:
            q = plan.pseudo.query_rows[idx]
            text, has = narr("ego_text" in readers)
            syn = t(next(it)) if "translated_feat" in readers else None
            parts.append(Part(ego, exo, t(plan.pseudo.weight[idx]), text, syn,
                              torch.from_numpy(D.pseudo_keys(q)).to(device), has))
    return parts


def local_batch(plan: Plan, readers: dict, step: int, rank: int, world: int, device) -> list[Part]:
    """The rank's slice of the global batch at `step`, from each active source (read now, no prefetch)."""
    arrays = [readers[name].get(rows) for name, rows in step_reads(plan, readers, step, rank, world)]
    return assemble(plan, readers, step, rank, world, arrays, device)


def make_feed(plan: Plan, readers: dict, rank: int, world: int, stop: int, window: int = PREFETCH_STEPS):
    """A Prefetcher of the arrays of each step: `window` steps read in one sorted pass per
    reader, the next window in a background thread while this one trains."""
    from rosetta_cli.store.stream import Prefetcher, gather_window

    def load(a: int, b: int) -> list:
        return gather_window([step_reads(plan, readers, s, rank, world) for s in range(a, b)], readers)

    return Prefetcher(load, window, stop=stop)


# ---------------------------------------------------------------------------- one step
def compute_losses(model, parts: list[Part], cfg: PretrainConfig, rank: int, gather=None, gather_nograd=None) -> dict:
    """Embeds the local batch and returns {"loss", "l_vv", "l_vt", "l_vs"} (tensors; None if absent).

    gather: [n, d] → [world*n, d] with autograd (negatives from every rank); gather_nograd: the
    same for moment keys and narration flags. Both default to the identity (one process)."""
    import torch

    from rosetta_cli.contrastive import losses as L

    gather = gather or (lambda x: x)
    gather_nograd = gather_nograd or (lambda x: x)
    s, sym = model.logit_scale(), cfg.symmetric

    def pair(idx, a, b, fn, has=None, has_all=None, **kw):
        """One InfoNCE over the parts `idx`: a, b [n, d] local rows, candidates gathered."""
        n = len(a)
        tgt = torch.arange(n, device=a.device) + rank * n
        mask = None
        if cfg.mask_moments:
            keys = torch.cat([parts[i].key for i in idx])                    # [n]
            mask = L.same_moment_mask(keys, gather_nograd(keys))            # [n, m]
        if has is not None:  # clips without narration are neither anchors nor candidates of L_vt
            off = ~has_all[None, :].expand(n, -1)                          # [n, m]
            mask = off if mask is None else mask | off
            kw.update(valid=has, count=has_all.sum() * n / len(has_all))    # global count / world size
        return fn(a, b, tgt, s, f_ego_all=gather(a) if sym else a, symmetric=sym, mask=mask, **kw)

    every = list(range(len(parts)))
    ego = [model.encode_video(p.ego) for p in parts]
    f_ego, f_exo = torch.cat(ego), torch.cat([model.encode_video(p.exo) for p in parts])
    w = torch.cat([p.weight for p in parts])
    l_vv = pair(every, f_ego, f_exo, L.video_video_loss, weight=w, f_exo_all=gather(f_exo))
    l_vt = l_vs = None
    with_text = [i for i, p in enumerate(parts) if p.text is not None]
    if with_text and model.text is not None:
        has = torch.cat([parts[i].has_text for i in with_text])
        has_all = gather_nograd(has)
        if bool(has_all.any()):  # a global decision, so every rank computes the same terms
            g = torch.cat([model.encode_text(parts[i].text) for i in with_text])
            l_vt = pair(with_text, torch.cat([ego[i] for i in with_text]), g, L.video_text_loss,
                        has=has, has_all=has_all, g_text_all=gather(g))
    with_syn = [i for i, p in enumerate(parts) if p.syn is not None]
    if with_syn and cfg.synthetic:
        f_syn = torch.cat([model.encode_video(parts[i].syn) for i in with_syn])
        l_vs = pair(with_syn, torch.cat([ego[i] for i in with_syn]), f_syn, L.video_synthetic_loss, f_syn_all=gather(f_syn))
    return {"loss": L.total_loss(l_vv, l_vt, l_vs, cfg.lambda1, cfg.lambda2), "l_vv": l_vv, "l_vt": l_vt, "l_vs": l_vs}


def step_module(model, cfg: PretrainConfig, info: dist.DistInfo):
    """compute_losses as one module's forward, wrapped in DDP under torchrun (DDP averages the gradients).

    The encoders run several times per step (ego, exo, text, translations), so DDP wraps this one
    forward rather than the model; find_unused_parameters: a step without narrations leaves the text
    head out."""
    import torch

    class _Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, parts):
            d = info.distributed
            return compute_losses(self.model, parts, cfg, info.rank, gather=dist.gather_with_grad if d else None,
                                  gather_nograd=dist.gather_nograd if d else None)

    net = _Step()
    if not info.distributed:
        return net
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(net, device_ids=[info.local_rank] if info.device.startswith("cuda") else None,
               find_unused_parameters=True)


def make_optimizer(model, cfg: PretrainConfig, total_steps: int):
    """AdamW (no decay on norms, biases, positions, temperature) + linear warmup → cosine to 0."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2 or p is getattr(model.video, "pos", None)]
    decay = [p for p in decay if all(p is not q for q in no_decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    return opt, warmup_cosine(opt, max(1, int(cfg.warmup_frac * total_steps)), total_steps), params


# ---------------------------------------------------------------------------- output dir & resume
def existing_checkpoint(out: Path, resume: bool, overwrite: bool) -> dict | None:
    """The saved config to resume from, or None to start afresh (runtime.guard decides)."""
    is_ckpt = (out / "config.json").exists()
    if out.exists() and not is_ckpt and any(out.iterdir()):
        raise UsageError(f"{out}: exists and is not a rosetta checkpoint; refusing to replace it",
                         hint="choose another --out")
    action = output_action(out, is_ckpt, what="a model", overwrite=overwrite, resume=resume)
    return C.read_config(out, kind=CKPT_KIND) if action is Action.RESUME else None


def check_resume(saved: dict, cfg: PretrainConfig, parents: list) -> None:
    old = {k: saved.get("train", {}).get(k, LEGACY_VALUES.get(k)) for k in RESUME_KEYS}
    diff = [k for k in RESUME_KEYS if old[k] != getattr(cfg, k)]
    if diff:
        k = diff[0]
        raise CheckpointError(f"cannot resume: the model was trained with {k}={old[k]!r}, now {getattr(cfg, k)!r}",
                              hint="pass the same options as the first run, or --overwrite to start afresh")
    # by fingerprint too: a store extracted further keeps its id but changes the data order
    was = {p["role"]: (p["id"], p.get("fingerprint")) for p in saved.get("parents", [])}
    now = {p["role"]: (p["id"], p.get("fingerprint")) for p in parents}
    if was != now:
        roles = sorted(r for r in set(was) | set(now) if was.get(r) != now.get(r))
        raise CheckpointError(f"{cfg.out}: cannot resume: input store(s) {', '.join(roles)} differ from the ones the model was trained on",
                              hint="pass the same --paired/--ego/--exo/--pairs/--translated, or --overwrite")


def parents_of(src: D.Sources) -> list:
    return [parent_entry(role, s) for role, s in src.stores().items()]


# ---------------------------------------------------------------------------- metrics & plot
def plot_metrics(records: list) -> bytes:
    """loss.png: training loss per logged step, and held-out HR@5 per epoch (frozen features dashed)."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r for r in records if r["type"] == "step"]
    epochs = [r for r in records if r["type"] == "epoch" and r.get("heldout")]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot([r["step"] for r in steps], [r["loss"] for r in steps], label="total")
    for key in ("l_vv", "l_vt", "l_vs"):
        if any(r.get(key) is not None for r in steps):
            a.plot([r["step"] for r in steps], [r.get(key) for r in steps], lw=0.8, label=key)
    a.set(xlabel="step", ylabel="loss", title="training loss")
    a.legend(fontsize=7)
    frozen = next((r["heldout"] for r in records if r["type"] == "frozen"), {})
    for key in ("hr5", "label_hr5"):
        if epochs and key in epochs[0]["heldout"]:
            line, = b.plot([r["epoch"] for r in epochs], [r["heldout"][key] for r in epochs], marker="o", label=key)
            if key in frozen:
                b.axhline(frozen[key], ls="--", color=line.get_color(), lw=0.8, label=f"{key} frozen")
    b.set(xlabel="epoch", ylabel="HR (%)", title="held-out cross-view retrieval")
    if b.get_legend_handles_labels()[0]:  # nothing to label without a monitor
        b.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def read_metrics(out: Path) -> list:
    f = out / "metrics.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.exists() else []


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
        self.info = dist.init_from_env(cfg.device)
        self.src = D.open_sources(cfg)
        self.plan = build_plan(cfg, self.src, self.info.world)
        self.readers = D.make_readers(self.src, in_memory=in_memory, cache_chunks=cfg.cache_chunks)
        self.mcfg = model_config(cfg, self.src)
        self._data_notes()
        for msg in self.src.notes:
            self.rep.note(msg)
        self.parents = parents_of(self.src)
        saved = existing_checkpoint(self.out, cfg.resume, cfg.overwrite)
        if saved is not None:
            check_resume(saved, cfg, self.parents)
        self._build(saved)
        # in memory: the plain loop (the benchmark's baseline); from stores: rows read ahead in a thread
        self.feed = None if in_memory else make_feed(self.plan, self.readers, self.info.rank, self.info.world,
                                                     stop=self.total_steps)
        self.monitor = self._monitor() if self.info.is_main else None
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
            missing = n - D.count_narrated(self.src.paired, plan.paired.ego_rows)
            if missing:
                notes.append(f"{missing} of {n} paired items have no narration: they are left out of L_vt")

    def _build(self, saved: dict | None) -> None:
        from rosetta_cli.contrastive.model import DualEncoderModel, build_model

        cfg = self.cfg
        self.total_steps, self.interval = schedule(cfg, self.plan.steps_per_epoch)
        if saved is None:
            sample = D.pooled_sample(self.src, 4096, cfg.seed) if cfg.init == "pca" else None
            self.model = build_model(self.mcfg, sample, seed=cfg.seed).to(self.info.device)
            self._broadcast()
            self.step, self.records, self.run_id = 0, [], new_id()
        else:
            self.model = DualEncoderModel(self.mcfg)
            self.model.load_state_dict(C.load_weights(self.out))
            self.model.to(self.info.device)
            self.records, self.run_id = read_metrics(self.out), saved.get("run_id", new_id())
            was = saved.get("total_steps", (saved["train"].get("epochs") or 0) * saved.get("steps_per_epoch", 0))
            if was != self.total_steps:
                self.rep.note(f"resuming with {self.total_steps} total steps (was {was}): "
                              "the cosine schedule is stretched to the new length")
        self.opt, self.sched, self.params = make_optimizer(self.model, cfg, self.total_steps)
        self.net = step_module(self.model, cfg, self.info)
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

        st = C.load_train_state(self.out)
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
            ms = M.heldout_monitor(src.paired, self.plan.paired.val_ego, self.plan.paired.val_exo, cfg.monitor_max, cfg.seed)
            if ms is not None:
                return ms
        if src.ego is not None:
            ms = M.store_monitor(src.ego, src.exo, cfg.monitor_max, cfg.seed)
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
        return M.evaluate(self.encode, self.monitor) if self.monitor is not None else None

    def items(self) -> dict:
        """Training items per source (pseudo: after --unpaired-fraction)."""
        p, q = self.plan.paired, self.plan.pseudo
        return {"paired": int(len(p.ego_rows)) if p else 0, "pseudo": int(len(q.query_rows)) if q else 0}

    def unpaired(self) -> dict:
        """The --unpaired-fraction subset: distinct ego queries used / available."""
        q = self.plan.pseudo
        return {"fraction": self.cfg.unpaired_fraction, "queries": int(len(np.unique(q.query_rows))) if q else 0,
                "queries_all": int(q.n_queries_all) if q else 0}

    def save(self) -> None:
        """Atomic checkpoint. config.json records "step" and "total_steps" (complete: step >= total_steps)."""
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
        metrics = "".join(json.dumps(r) + "\n" for r in self.records)
        C.save_checkpoint(self.out, kind=CKPT_KIND, config=config, model_state=self.model.state_dict(),
                          train_state=state, extra_files={"metrics.jsonl": metrics, "loss.png": plot_metrics(self.records)})

    # ------------------------------------------------------------------ training
    def batch(self, step: int) -> list[Part]:
        """The rank's parts of the global batch at `step` (the same with or without prefetching)."""
        i = self.info
        if self.feed is None:
            return local_batch(self.plan, self.readers, step, i.rank, i.world, i.device)
        return assemble(self.plan, self.readers, step, i.rank, i.world, self.feed.get(step), i.device)

    def close(self) -> None:
        """Stop the prefetch thread."""
        if self.feed is not None:
            self.feed.close()

    def train_step(self) -> dict:
        parts = self.batch(self.step)
        out = self.net(parts)
        self.opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        self.opt.step()
        self.sched.step()
        self.step += 1
        return {k: (float(v.detach()) if v is not None else None) for k, v in out.items()}

    def _log_step(self, window: list) -> None:
        rec = {"type": "step", "step": self.step, "epoch": self.epoch_of(self.step), "lr": self.sched.get_last_lr()[0],
               "tau": float(1.0 / self.model.logit_scale().detach())}
        for key in ("loss", "l_vv", "l_vt", "l_vs"):
            vals = [w[key] for w in window if w[key] is not None]
            rec[key] = dist.all_reduce_mean(float(np.mean(vals)), self.info) if vals else None
        self.records.append(rec)
        # the logged loss is already averaged over ranks and steps, so a NaN anywhere shows here and
        # every rank stops together, without an extra sync per step
        if not math.isfinite(rec["loss"]):
            raise PipelineFailure(f"{self.out}: loss became non-finite by step {self.step}; the last checkpoint is kept",
                                  hint="lower --lr (or check the inputs), then rerun with --resume")

    def run_until(self, stop: int, halt=lambda: False) -> dict:
        """Train steps until self.step == stop, or until `halt()` (Ctrl-C) between two steps; returns
        the segment's "epoch" record (without heldout)."""
        t0, window, losses = time.perf_counter(), [], []
        while self.step < stop and not halt():
            window.append(self.train_step())
            losses.append(window[-1]["loss"])
            if len(window) == self.cfg.log_every or self.step == stop or halt():
                self._log_step(window)
                window = []
            self.rep.advance(completed=self.step, info=f"loss {losses[-1]:.3f}")
        if window:  # Ctrl-C came between the log check and the loop's
            self._log_step(window)
        secs = time.perf_counter() - t0
        return {"type": "epoch", "epoch": self.epoch_of(self.step), "step": self.step,
                "loss": dist.all_reduce_mean(float(np.mean(losses)) if losses else math.nan, self.info),
                "seconds": round(secs, 3), "samples_per_s": round(len(losses) * self.cfg.batch_size / max(secs, 1e-9), 1)}

    def run(self, stop_after_epochs: int | None = None) -> dict:
        """Train to total_steps; `stop_after_epochs` stops after that many checkpoint points
        (points are every `interval` steps, one epoch by default, and the last step)."""
        points = [p for p in checkpoint_points(self.total_steps, self.interval) if p > self.step]
        if stop_after_epochs is not None:
            points = points[:stop_after_epochs]
        if self.info.is_main and self.step == 0 and self.monitor is not None:
            self.records.append({"type": "frozen", "heldout": M.frozen(self.monitor)})
            self.records.append({"type": "epoch", "epoch": 0, "step": 0, "heldout": self.evaluate()})
        self.rep.start("pretrain", self.total_steps, done=self.step, unit="steps")
        saved = self.step if self.step else None
        # one process: the first Ctrl-C ends the current step, then checkpoints (cheap) and stops
        with StopAtStep(enabled=self.info.world == 1) as ctrl_c:
            try:
                for stop in points:
                    rec = self.run_until(stop, halt=lambda: ctrl_c.requested)
                    if ctrl_c.requested:
                        self._save_and_stop()
                    if self.info.is_main:
                        rec["heldout"] = self.evaluate()
                        self.records.append(rec)
                        self.save()
                        saved = self.step
                        self.rep.note(epoch_line(rec))
                    dist.barrier(self.info)
            except KeyboardInterrupt:
                kept = f"the checkpoint of step {saved} is kept" if saved else "no checkpoint was written yet"
                raise Interrupted(f"{self.out}: pretrain interrupted at step {self.step}/{self.total_steps}; {kept}",
                                  hint="rerun the same command with --resume to continue" if saved
                                  else "rerun the same command to start again") from None
        return self.summary()

    def _save_and_stop(self) -> None:
        """Ctrl-C between two steps: checkpoint this step, then stop with exit 130."""
        if self.info.is_main:
            self.save()
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
