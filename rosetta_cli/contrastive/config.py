"""Configs for stage 4 (dual-encoder pretraining). Each field says why it has its default.

`ModelConfig` is saved in every checkpoint (config.json "model") and is all that is
needed to rebuild the network; `PretrainConfig` is the whole run (config.json "train").
"""

from __future__ import annotations

from dataclasses import dataclass

from rosetta_cli.errors import UsageError

# Options a --resume must keep (they change what the saved state means); the others (steps, epochs, device,
# caches, logging) may change.
RESUME_KEYS = ("batch_size", "lr", "weight_decay", "warmup_frac", "lambda1", "lambda2", "paired_ratio", "soft",
               "synthetic", "symmetric", "max_rank", "val_frac", "seed", "dim", "tau", "learn_tau", "arch", "layers", "init",
               "unpaired_fraction", "mask_moments")
# What a checkpoint written before an option existed was trained with (resume compares against these).
LEGACY_VALUES = {"unpaired_fraction": 1.0, "mask_moments": False}


@dataclass
class ModelConfig:
    input_dim: int                 # D of the frozen features (must agree for ego, exo and RST stores)
    frames: int                    # T of the stored features; 1 → the MLP head (nothing temporal to attend over)
    text_dim: int | None = None    # Dt of the narration embeddings; None → no text head (no L_vt)
    dim: int = 256                 # d: LaViLa (the paper's peer) embeds in 256-d
    arch: str = "auto"             # "transformer" | "mlp" | "auto" (transformer if frames > 1)
    layers: int = 2                # temporal blocks: T is tiny (4 frames in the paper), 2 blocks suffice
    heads: int = 4                 # attention heads at width d
    mlp_ratio: float = 2.0         # block MLP width / d; small: the head sits on strong frozen features
    text_layers: int = 1           # residual MLP blocks in g_psi
    init: str = "pca"              # input projection: "pca" (top singular directions of the pooled training
                                   # features) or "orthogonal" (random); both start at frozen-feature quality
    tau: float = 0.07              # InfoNCE temperature (LaViLa's initial value; paper does not publish it)
    learn_tau: bool = False        # learn log(1/tau) CLIP-style (clamped to tau >= 0.01)

    @property
    def resolved_arch(self) -> str:
        if self.arch == "auto":
            return "transformer" if self.frames > 1 else "mlp"
        return self.arch


@dataclass
class PretrainConfig:
    out: str = ""                  # MODEL_DIR (an atomic checkpoint directory)
    paired: str | None = None      # synchronized ego-exo store (rows share sync_id)
    ego: str | None = None         # unpaired ego store (pseudo-pair queries)
    exo: str | None = None         # unpaired exo store (pseudo-pair candidates)
    pairs: str | None = None       # pairs store mined from ego × exo
    translated: str | None = None  # RST translations of the ego store, row-aligned (positives of L_vs)
    name: str = ""                 # model name shown by bench (default: the MODEL_DIR name)
    epochs: int = 8                # toy demo: 8 short epochs fit ~40 s on 2 CPU cores; the paper used 5 (huge data)
    steps: int | None = None       # optimisation steps of the whole run; None → epochs × steps_per_epoch. Set it to
                                   # give every variant the same budget (an epoch follows the largest source, so a
                                   # paired-only run's epoch is shorter than a mixed run's)
    eval_every: int | None = None  # steps between held-out evaluations + checkpoints; None → steps_per_epoch
    unpaired_fraction: float = 1.0  # share of the distinct ego queries of --pairs used (seeded, nested subsets:
                                   # the data-scaling curve of the paper's claim 2)
    mask_moments: bool = True      # InfoNCE leaves out negatives of the anchor's own moment (same sync_id / same
                                   # ego query): the other exo camera of a moment is not a negative; in L_vv also
                                   # the anchor's own exo clip mined for another query of the batch
    batch_size: int = 128          # global batch (all ranks): negatives per anchor; toy sets have ~1k items
    lr: float = 1e-3               # AdamW peak LR: a small head over frozen features tolerates a high LR
    weight_decay: float = 0.05     # AdamW, CLIP-style
    warmup_frac: float = 0.05      # linear warmup share of all steps, then cosine to 0
    lambda1: float = 0.5           # l1: L_vv vs L_vt balance (unpublished; even split)
    lambda2: float = 0.5           # l2: weight of L_vs on pseudo-pairs (unpublished)
    paired_ratio: float | None = None  # share of each batch from synchronized pairs (None: in proportion to the
                                       # data, so every epoch passes over all pairs once, as the paper's epochs do)
    soft: bool = True              # False (--no-soft): w = 1 for pseudo-pairs too (ablation)
    synthetic: bool = True         # False (--no-synthetic): drop L_vs (ablation; implied without --translated)
    symmetric: bool = False        # also the reverse direction of each InfoNCE (not in the paper)
    max_rank: int = 1              # use pairs with rank < max_rank (the paper keeps the top-1 candidate)
    val_frac: float = 0.1          # share of paired takes (sync_id prefix before '/') held out for the monitor
    split_seed: int = 0            # which takes (eval.split; the same default as train-rst, so both hold out the same)
    monitor_max: int = 2000        # cap on held-out queries per monitor pass (keeps epochs cheap)
    cache_chunks: int = 64         # decoded chunks kept per array by the streaming reader (memory vs re-reads)
    buffer_chunks: int = 16        # chunks shuffled together (chunk-shuffled streaming)
    log_every: int = 10            # steps between loss reads (a step's only host sync), NaN checks and step records
    checkpoint_minutes: float = 10.0  # also checkpoint every this many minutes (besides every evaluation); 0: off
    dist_timeout: float = 60.0     # torchrun: minutes a rank waits for the others (rank 0 evaluates while they wait)
    dim: int = 256                 # d (ModelConfig.dim)
    tau: float = 0.07              # ModelConfig.tau
    learn_tau: bool = False        # ModelConfig.learn_tau
    arch: str = "auto"             # ModelConfig.arch
    layers: int = 2                # ModelConfig.layers
    init: str = "pca"              # ModelConfig.init
    seed: int = 0
    device: str = "auto"
    threads: int = 0               # torch CPU threads (0: torch's default); 1 is fastest on a busy shared machine
    resume: bool = False           # continue the checkpoint in `out` exactly (runtime.guard)
    overwrite: bool = False        # replace the checkpoint in `out`

    def resume_identity(self) -> dict:
        """The options a --resume must keep (runtime.trainer.check_resume compares them)."""
        return {k: getattr(self, k) for k in RESUME_KEYS}

    def check(self) -> None:
        """Validate the options (one-line UsageErrors naming the flag)."""
        if not self.out:
            raise UsageError("no --out MODEL_DIR given")
        for name in ("lambda1", "lambda2"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise UsageError(f"--{name} {v}: must lie in [0, 1]")
        if self.paired_ratio is not None and not 0.0 <= self.paired_ratio <= 1.0:
            raise UsageError(f"--paired-ratio {self.paired_ratio}: must lie in [0, 1]")
        if self.epochs < 1 or self.batch_size < 2:
            raise UsageError("--epochs must be >= 1 and --batch-size >= 2")
        if self.log_every < 1 or self.checkpoint_minutes < 0 or self.dist_timeout <= 0:
            raise UsageError("need --log-every >= 1, --checkpoint-minutes >= 0 and --dist-timeout > 0")
        if (self.steps is not None and self.steps < 1) or (self.eval_every is not None and self.eval_every < 1):
            raise UsageError("--steps and --eval-every must be >= 1")
        if not 0.0 < self.unpaired_fraction <= 1.0:
            raise UsageError(f"--unpaired-fraction {self.unpaired_fraction}: must lie in (0, 1]")
        if self.unpaired_fraction < 1.0 and not self.pairs:
            raise UsageError("--unpaired-fraction selects unpaired ego queries of --pairs: give --pairs (with --ego/--exo)")
        if self.tau <= 0 or self.dim < 1 or self.lr <= 0:
            raise UsageError("--tau, --dim and --lr must be positive")
        if self.init not in ("pca", "orthogonal") or self.arch not in ("auto", "transformer", "mlp"):
            raise UsageError(f"--init {self.init!r} / arch {self.arch!r}: choose pca|orthogonal and auto|transformer|mlp")
