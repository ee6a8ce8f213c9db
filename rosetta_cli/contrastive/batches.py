"""Batch assembly of stage 4: which rows each rank reads at each step, and the tensors they become.

The plan (`build_plan`) fixes, per source (synchronized pairs, pseudo-pairs), the items per global batch
and a chunk-shuffled `ItemStream`; the global batch at step s is then a pure function of (seed, s), so
neither the world size nor a resume changes the data order. `step_reads` lists a rank's reads at a step,
`assemble` turns what was read into `Part`s on the device, and `make_feed` reads windows of steps ahead
in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rosetta_cli.contrastive import data
from rosetta_cli.contrastive.config import PretrainConfig
from rosetta_cli.errors import UsageError
from rosetta_cli.store.stream import Prefetcher, gather_window

# Steps read ahead per window by the prefetch thread. 64: the per-row read overhead of a window falls
# from ~20 ms/step (16 steps) to ~7 ms/step (measured, docs/benchmarks.md); ~3 MB of rows per step at
# D=1280, batch 128, so ~200 MB per window and two windows in flight.
PREFETCH_STEPS = 64


@dataclass
class Plan:
    paired: data.PairedItems | None
    pseudo: data.PseudoItems | None
    k_paired: int                    # global items per step from each source
    k_pseudo: int
    streams: dict                    # "paired"/"pseudo" → ItemStream
    steps_per_epoch: int             # steps of the source whose pass takes longest (the unit of --epochs; with
                                     # data-proportional batches every source's pass takes about as long)


def _split_batch(cfg: PretrainConfig, n_paired: int, n_pseudo: int, world: int) -> tuple[int, int]:
    """Global per-step counts (k_paired, k_pseudo), each a multiple of the world size."""
    if cfg.batch_size % world:
        raise UsageError(f"--batch-size {cfg.batch_size} is the global batch: make it a multiple of {world} ranks")
    if n_paired and n_pseudo:
        # Default: in proportion to the data, so an epoch passes over every pair once (the paper
        # trains epochs over all data); --paired-ratio fixes the share instead.
        ratio = n_paired / (n_paired + n_pseudo) if cfg.paired_ratio is None else cfg.paired_ratio
    else:
        ratio = 1.0 if n_paired else 0.0
    k = int(round(ratio * cfg.batch_size / world)) * world
    if n_paired and n_pseudo and cfg.paired_ratio is None:  # a small source keeps a rank's share: rounding must not drop it
        k = min(max(k, world), cfg.batch_size - world)
    return k, cfg.batch_size - k


def build_plan(cfg: PretrainConfig, src: data.Sources, world: int) -> Plan:
    paired = data.paired_items(src.paired, cfg.val_frac, cfg.split_seed) if src.paired else None
    pseudo = data.pseudo_items(src.pairs, src.ego, src.exo, cfg.max_rank, cfg.soft) if src.pairs else None
    if pseudo is not None and cfg.unpaired_fraction < 1.0:
        pseudo = pseudo.subset(data.unpaired_subset(pseudo.query_rows, src.ego.n_rows, cfg.unpaired_fraction, cfg.seed))
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
        streams[name] = data.ItemStream(keys, store.chunk_rows, k, cfg.seed, len(streams), cfg.buffer_chunks)
    steps = max(s.steps_per_pass for s in streams.values())
    return Plan(paired, pseudo, k_p, k_s, streams, steps)




@dataclass
class Part:
    """One source's share of the local batch (tensors on the device)."""
    ego: "torch.Tensor"              # [k, T, D]
    exo: "torch.Tensor"              # [k, T', D]
    weight: "torch.Tensor"           # [k]
    text: "torch.Tensor | None"      # [k, Dt] (zeros where has_text is False)
    syn: "torch.Tensor | None"       # [k, T'', D] RST translations of the ego clips
    key: "torch.Tensor"              # [k] int64 moment keys (same key → same moment: not each other's negatives)
    exo_key: "torch.Tensor"          # [k] int64 exo clip identity (a clip mined for two queries is not a negative of either)
    has_text: "torch.Tensor | None"  # [k] bool: the ego clip has a narration (the others sit out L_vt)
    text_any: bool | None = None     # some clip of the *global* batch has a narration (decided on the host, the
                                     # same on every rank, so L_vt's presence needs no device → host read)


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


def narration_flags(plan: Plan, src: data.Sources, readers: dict) -> dict:
    """{source: [items] bool, the item's ego clip has a narration} for the sources read with text, so every
    rank can tell from the plan alone whether a global batch holds any narration (one pass over the text)."""
    out = {}
    if "paired_text" in readers and plan.paired is not None:
        out["paired"] = _narrated_rows(src.paired, plan.paired.ego_rows)
    if "ego_text" in readers and plan.pseudo is not None:
        out["pseudo"] = _narrated_rows(src.ego, plan.pseudo.query_rows)
    return out


def _narrated_rows(store, rows: np.ndarray) -> np.ndarray:
    """[len(rows)] bool: the store row has a narration embedding (read block by block)."""
    rows = np.asarray(rows, dtype=np.int64)
    flags = np.zeros(len(rows), bool)
    for start, stop in store.blocks():
        sel = np.flatnonzero((rows >= start) & (rows < stop))
        if len(sel):
            flags[sel] = data.narrated(store.text(slice(start, stop))[rows[sel] - start])[1]
    return flags


def global_text_any(plan: Plan, flags: dict, step: int) -> bool:
    """Whether the global batch at `step` holds a narrated clip (pure function of the plan and step)."""
    return any(bool(f[plan.streams[name].global_batch(step)].any()) for name, f in flags.items())


def host_tensor(x: np.ndarray, device):
    """A numpy array as a tensor on `device`: pinned and copied without blocking on CUDA (the copy overlaps
    the step), as is on the CPU."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x))
    if str(device).startswith("cuda"):
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def assemble(plan: Plan, readers: dict, step: int, rank: int, world: int, arrays: list, device,
             text_any: bool | None = None) -> list[Part]:
    """Parts from the arrays read for `step_reads(...)` (same order) → tensors on `device`.

    text_any: whether the global batch holds a narration (global_text_any); None: decide from this rank's
    arrays, which is the global answer in one process."""
    def t(x):
        return host_tensor(np.asarray(x, dtype=np.float32), device)

    local_any = []

    def narr(present):
        if not present:
            return None, None
        text, has = data.narrated(next(it))     # a copy: the reader's cached chunk stays as stored
        local_any.append(bool(has.any()))
        return t(text), host_tensor(has, device)

    it, parts = iter(arrays), []
    for name, idx in _local_items(plan, step, rank, world):
        ego, exo = t(next(it)), t(next(it))
        if name == "paired":
            text, has = narr("paired_text" in readers)
            parts.append(Part(ego, exo, t(np.ones(len(idx))), text, None, host_tensor(plan.paired.keys[idx], device),
                              host_tensor(data.exo_keys(plan.paired.exo_rows[idx], paired=True), device), has))
        else:
            q = plan.pseudo.query_rows[idx]
            text, has = narr("ego_text" in readers)
            syn = t(next(it)) if "translated_feat" in readers else None
            parts.append(Part(ego, exo, t(plan.pseudo.weight[idx]), text, syn, host_tensor(data.pseudo_keys(q), device),
                              host_tensor(data.exo_keys(plan.pseudo.cand_rows[idx], paired=False), device), has))
    decided = any(local_any) if text_any is None else text_any
    for p in parts:
        p.text_any = decided
    return parts


def local_batch(plan: Plan, readers: dict, step: int, rank: int, world: int, device,
                text_any: bool | None = None) -> list[Part]:
    """The rank's slice of the global batch at `step`, from each active source (read now, no prefetch)."""
    arrays = [readers[name].get(rows) for name, rows in step_reads(plan, readers, step, rank, world)]
    return assemble(plan, readers, step, rank, world, arrays, device, text_any)


def make_feed(plan: Plan, readers: dict, rank: int, world: int, stop: int, window: int = PREFETCH_STEPS):
    """A Prefetcher of the arrays of each step: `window` steps read in one sorted pass per
    reader, the next window in a background thread while this one trains."""
    def load(a: int, b: int) -> list:
        return gather_window([step_reads(plan, readers, s, rank, world) for s in range(a, b)], readers)

    return Prefetcher(load, window, stop=stop)
