"""`ExtractConfig`: every knob of `rosetta extract`, recorded in the store (meta `config`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from rosetta_cli.errors import UsageError
from rosetta_cli.video import DECODERS


@dataclass
class ExtractConfig:
    videos: str                          # dataset root folder, or a manifest/annotation file
    out: str                             # output store (.zarr or .h5)
    dataset: str = "auto"                # auto | folder | csv | ego4d | egoexo4d | htm-aa
    encoder: str = "efficientnet-lite0"  # bundled ImageNet weights: works offline
    text_encoder: str = "minilm"         # narration embeddings; "none" disables them
    decoder: str = "decord"              # decord (fast random access) | pyav (fallback)
    prepped: str | None = None           # a `rosetta prep` folder: decode its small copies instead of the sources
    frames: int = 4                      # T uniformly sampled frames per clip (paper-scale runs use 4-8)
    batch_size: int = 8                  # clips per forward pass (batch_size * frames images)
    workers: int = 2                     # decoding processes; 0 decodes in the main process
    device: str = "auto"                 # auto | cpu | cuda
    precision: str = "fp32"              # fp32 is bit-reproducible on CPU; bf16/fp16 for GPUs
    chunk_rows: int = 256                # rows per store chunk = unit of writing, resuming and sharding
    dtype: str = "float16"               # stored feature dtype (halves disk; ample for retrieval)
    limit: int | None = None             # first N clips only (quick trials)
    shard: str | None = None             # "I/N": this process writes only its chunk-aligned share
    overwrite: bool = False              # delete an existing store and start afresh
    retry_failed: bool = False           # also redo rows that failed in an earlier run
    role: str | None = None              # ego | exo | paired: recorded in meta for workspaces
    strict: bool = False                 # a bad annotation record aborts the load (default: skipped, exit 3)
    # Dataset options (None = the loader's default; only those given reach the loader).
    view: str | None = None
    window: float | None = None
    stride: float | None = None
    exo_cams: str | None = None
    narration_pass: int | None = None
    keep_unsure: bool | None = None
    skill_map: str | None = None
    split: str | None = None
    label_space: str | None = None       # egoexo4d keystep labels: auto | benchmark | steps

    def check(self) -> None:
        """UsageError (one line naming the flag) for options no run could use."""
        from rosetta_cli.encoders.base import PRECISIONS

        if not self.videos or not self.out:
            raise UsageError("--videos and --out are required", hint="give a dataset folder or manifest and a store path")
        if self.frames < 1 or self.batch_size < 1 or self.chunk_rows < 1 or self.workers < 0:
            raise UsageError("--frames, --batch-size and --chunk-rows must be >= 1 and --workers >= 0")
        if self.decoder not in DECODERS:
            raise UsageError(f"--decoder {self.decoder!r}: choose one of {', '.join(DECODERS)}")
        if self.limit is not None and self.limit < 1:
            raise UsageError("--limit must be >= 1")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if self.role not in (None, "ego", "exo", "paired"):
            raise UsageError(f"--role {self.role!r}: choose ego, exo or paired")

    def dataset_options(self) -> dict:
        opts = {"view": self.view, "window": self.window, "stride": self.stride, "narration_pass": self.narration_pass,
                "keep_unsure": self.keep_unsure, "skill_map": self.skill_map, "split": self.split,
                "label_space": self.label_space}
        if self.exo_cams is not None:
            opts["exo_cams"] = int(self.exo_cams) if str(self.exo_cams).isdigit() else self.exo_cams
        return {k: v for k, v in opts.items() if v is not None}


def gpu_defaults() -> dict:
    """What `--device cuda` sets unless given: bf16 (the GPU's fast path; fp32 remains for bit-reproducible CPU
    runs), 64 clips per forward (256 images at T=4: enough to fill a GPU), and one decoding process per core
    (decoding, not the encoder, then bounds the rate)."""
    return {"precision": "bf16", "batch_size": 64, "workers": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)}


def resolve_defaults(cfg: ExtractConfig, given=frozenset()) -> tuple[ExtractConfig, str]:
    """With --device cuda[:N], the options the user did not give (`given`: field names) take `gpu_defaults()`.

    Returns (config, a one-line note saying what was chosen, or ""). UsageError (exit 2) first if that
    device is not there, so a machine without CUDA fails before anything is set."""
    from rosetta_cli.runtime.dist import resolve_device

    resolve_device(cfg.device)
    if not str(cfg.device).strip().lower().startswith("cuda"):  # auto keeps the CPU defaults, as stores made so far
        return cfg, ""
    chosen = {k: v for k, v in gpu_defaults().items() if k not in given}
    if not chosen:
        return cfg, ""
    flags = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in chosen.items())
    return replace(cfg, **chosen), f"--device {cfg.device}: GPU defaults {flags} (give an option to override it)"
