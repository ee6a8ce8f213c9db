"""RST configs and choices, torch-free (the CLI builds these without importing torch).

`RSTTrainConfig` and `TranslateConfig` are the whole input of `rst.train.run` and `rst.translate.run`:
paths, resume/overwrite and options, validated by `check()`. `to_dict()` / `resume_identity()` give
the options a checkpoint or store records (never the paths).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rosetta_cli.errors import UsageError
from rosetta_cli.runtime.shard import parse_shard

SIZES = ("tiny", "S", "B")          # models.RST_MODELS keys (S, B: DiT-S/B shapes)
MODELS = ("dit", "regression")      # diffusion RST, or the MLP regression baseline (MSE)
SAMPLERS = ("ddim", "ddpm")
JOB_FIELDS = ("paired", "out", "model", "baselines", "resume", "overwrite")  # inputs, not options
# training options that may differ between a run and its --resume (every other one must match the checkpoint)
RESUMABLE = ("steps", "device", "ckpt_every", "checkpoint_minutes", "log_every", "eval_max_queries", "dist_timeout")


def _one_of(value: str, choices, opt: str) -> None:
    if value not in choices:
        raise UsageError(f"{opt} {value!r} is not one of {', '.join(choices)}")


@dataclass
class RSTModelConfig:
    """Everything needed to rebuild the network (saved in the checkpoint's config.json)."""

    model: str = "dit"          # "dit" (diffusion) or "regression" (MLP baseline, MSE ego → exo)
    size: str = "tiny"          # key of RST_MODELS
    exo_frames: int = 1         # T of the generated exo feature
    exo_dim: int = 1280         # D of the exo feature
    ego_frames: int = 1         # T of the conditioning ego feature
    ego_dim: int = 1280
    tokens: int = 1             # tokens per frame: D is cut into `tokens` slices, so the denoiser's per-token
                                # output (width → D/tokens) can be full rank; 0 = auto (D/tokens ≤ width)
    cross_attn: bool = False    # cross-attend to ego frame tokens besides the pooled adaLN condition
    mlp_ratio: float = 4.0      # DiT's default

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        _one_of(self.model, MODELS, "--model")
        _one_of(self.size, SIZES, "--size")


@dataclass
class RSTTrainConfig:
    """`rosetta train-rst`. Defaults are sized for the CPU demo (≈1,000 pairs of D=1280, T=4, 2 cores, ~1 min)."""

    paired: list = field(default_factory=list)     # paired store paths
    out: str = ""                                  # RST directory
    model: RSTModelConfig = field(default_factory=RSTModelConfig)
    baselines: list = field(default_factory=list)  # other RST dirs compared in validation
    resume: bool = False
    overwrite: bool = False
    steps: int = 300             # demo: ~1 min for size tiny on 2 CPU cores; the paper-scale run needs 100k+
    batch_size: int = 64         # global batch (split across torchrun ranks)
    lr: float = 1e-3             # tiny model, short run; DiT used 1e-4 with batch 256 for long runs
    weight_decay: float = 0.0    # DiT trains without weight decay
    warmup: int = 20             # linear warmup steps, then cosine to 0 (runtime.schedule)
    grad_clip: float = 1.0
    ema_decay: float = 0.999     # with diffusers' (1+s)/(10+s) ramp so short runs still get a useful EMA
    seed: int = 0
    val_frac: float = 0.1        # share of takes held out (never trained on)
    split_seed: int = 0          # which takes (eval.split; the same default as pretrain, so both hold out the same)
    diffusion_steps: int = 1000  # DDPM's T
    beta_schedule: str = "squaredcos_cap_v2"  # cosine schedule (Nichol & Dhariwal): better at few sampling steps
    cond_drop: float = 0.1       # P(drop the ego condition) in training, enables --guidance at sampling
    ckpt_every: int = 100
    checkpoint_minutes: float = 10.0  # also checkpoint every this many minutes of training (0: by steps only)
    log_every: int = 10          # steps between reads of the loss (the only host syncs), NaN checks and log lines
    dist_timeout: float = 60.0   # torchrun: minutes a rank waits for the others (rank 0 validates while they wait)
    eval_sampler: str = "ddim"
    eval_steps: int = 25
    eval_max_queries: int = 1000
    device: str = "auto"

    def to_dict(self) -> dict:
        """The training options the checkpoint records (no paths)."""
        return {k: v for k, v in asdict(self).items() if k not in JOB_FIELDS}

    def resume_identity(self) -> dict:
        """The training options a --resume must keep (runtime.trainer.check_resume compares them)."""
        return {k: v for k, v in self.to_dict().items() if k not in RESUMABLE}

    def check(self) -> None:
        """Validate, and make the paths plain strings (the config is recorded as JSON)."""
        self.paired, self.baselines, self.out = [str(p) for p in self.paired], [str(b) for b in self.baselines], str(self.out)
        self.model.check()
        if not self.paired:
            raise UsageError("no --paired store given", hint="pass --paired STORE (ego and exo rows sharing sync_id)")
        if not self.out:
            raise UsageError("no --out directory given")
        ok = (self.steps >= 1 and self.batch_size >= 1 and 0 <= self.val_frac < 1 and 0 <= self.cond_drop < 1
              and self.lr > 0 and self.diffusion_steps >= 2 and self.ckpt_every >= 1 and self.warmup >= 0
              and self.log_every >= 1 and self.checkpoint_minutes >= 0 and self.dist_timeout > 0)
        if not ok:
            raise UsageError("need --steps ≥ 1, --batch-size ≥ 1, 0 ≤ --val-frac < 1, 0 ≤ --cond-drop < 1, --lr > 0, "
                             "--diffusion-steps ≥ 2, --ckpt-every ≥ 1, --log-every ≥ 1, --checkpoint-minutes ≥ 0, "
                             "--dist-timeout > 0")


@dataclass
class TranslateConfig:
    """`rosetta translate`: an ego store → row-aligned translations."""

    rst: str = ""               # RST directory
    ego: str = ""               # ego features store
    out: str = ""               # output translations store
    shard: str | None = None    # "I/N": this process does blocks I, I+N, ... (runtime.shard)
    overwrite: bool = False
    sampler: str = "ddim"       # DDIM (eta=0) needs far fewer steps than DDPM for the same quality
    sampling_steps: int = 25
    samples: int = 1            # K draws averaged per row (→ approximates E[z_exo | z_ego])
    guidance: float = 1.0       # classifier-free guidance scale; 1 = plain conditional sampling
    seed: int = 0
    batch_size: int = 256
    device: str = "auto"

    def resume_identity(self) -> dict:
        """The options that decide the output values (a resumed run must use the same)."""
        d = asdict(self)
        for k in ("rst", "ego", "out", "shard", "overwrite", "batch_size", "device"):
            d.pop(k)
        return d

    def check(self) -> None:
        """Validate, and make the paths plain strings (the config is recorded in the output store)."""
        self.rst, self.ego, self.out = str(self.rst), str(self.ego), str(self.out)
        _one_of(self.sampler, SAMPLERS, "--sampler")
        if self.sampling_steps < 1 or self.samples < 1 or self.batch_size < 1:
            raise UsageError("--sampling-steps, --samples and --batch-size must be ≥ 1")
        i, n = parse_shard(self.shard)
        if self.overwrite and n > 1:  # shard 0 would delete a store the other shards are writing
            raise UsageError("--overwrite cannot be combined with --shard",
                             hint="delete the output once, then start the shards")
