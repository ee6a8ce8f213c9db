"""RST checkpoints and the `Translator` that loads one and maps ego features to exo features.

An RST directory (RST_DIR) is a checkpoint in runtime.trainer.Checkpointer's layout (as pretrain's MODEL_DIR),
kind "rst"; config.json carries {"rst_version", "model": RSTModelConfig, "train": RSTTrainConfig, "norm":
per-dim mean/std of training ego/exo, "stores": [{path, id, fingerprint}], "dims", "split", "step",
"total_steps", "scheduler": {"ddpm": {...}, "ddim": {...}} diffusers scheduler configs (diffusion models)};
beside the weights: metrics.jsonl (one line per logged step), metrics.json (validation), loss.png.
Directories written before the layouts were unified hold the checkpoint in RST_DIR/checkpoint/ (ckpt_dir).
Sampling uses the EMA weights (ema.safetensors) and the saved scheduler configs (`from_config`), so a
checkpoint samples the same timesteps whatever diffusers' defaults become. Checkpoints written before the
configs were saved (no "scheduler" key) sample as they always did (diffusers' "leading" spacing, no x0
clamp: diffusion.legacy_scheduler_config), so their translations stay reproducible, and say so in
`Translator.notes`; retraining gives the trailing schedule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rosetta_cli.errors import CheckpointError, DimensionMismatch
from rosetta_cli.rst import diffusion
from rosetta_cli.rst.config import SAMPLERS, RSTModelConfig
from rosetta_cli.rst.models import build_model
from rosetta_cli.runtime.checkpoint import load_weights, read_config, verify_weights

RST_KIND = "rst"
RST_VERSION = 1  # bump when the network or config layout changes incompatibly


def ckpt_dir(rst_dir) -> Path:
    """RST_DIR/checkpoint, or RST_DIR itself when given the checkpoint directory."""
    rst_dir = Path(rst_dir)
    return rst_dir if (rst_dir / "config.json").exists() else rst_dir / "checkpoint"


def read_rst_config(rst_dir) -> dict:
    meta = read_config(ckpt_dir(rst_dir), kind=RST_KIND)
    if meta.get("rst_version") != RST_VERSION:
        raise CheckpointError(f"{rst_dir}: RST checkpoint v{meta.get('rst_version')}, this rosetta reads v{RST_VERSION}",
                              hint="retrain it with `rosetta train-rst`")
    return meta


class Translator:
    """T(z_ego): a trained RST (or regression baseline) in eval mode, with its normalisation.

    translate(ego [b, T_ego, D] raw features, rows [b]) → [b, T_exo, D] raw-unit exo features.
    """

    def __init__(self, rst_dir, device: str = "cpu", weights: str = "ema"):
        import torch


        self.dir = ckpt_dir(rst_dir)
        self.meta = read_rst_config(rst_dir)
        verify_weights(self.dir)
        self.cfg = RSTModelConfig(**self.meta["model"])
        self.train_cfg = self.meta["train"]
        self.device = device
        self.model = build_model(self.cfg)
        name = weights if (self.dir / f"{weights}.safetensors").exists() else "model"
        try:
            self.model.load_state_dict(load_weights(self.dir, name))
        except RuntimeError as e:
            raise CheckpointError(f"{self.dir}: weights do not fit the recorded model config ({str(e)[:200]})",
                                  hint="the checkpoint is damaged or from another version; retrain") from e
        self.model.to(device).eval()
        n = self.meta["norm"]
        self.norm = {k: torch.tensor(v, dtype=torch.float32, device=device) for k, v in n.items()}
        self.notes: list[str] = []
        self.scheduler_config = None if self.cfg.model == "regression" else self._scheduler_config()

    def _scheduler_config(self) -> dict:
        """The saved {"ddpm", "ddim"} scheduler configs; for an older checkpoint, the schedule it sampled with."""

        saved = self.meta.get("scheduler")
        if saved is None:
            # keeps its translations reproducible (and partial translation stores resumable); trailing
            # spacing needs the x0 clamp from the training data, which only a retrain records
            tc = self.train_cfg
            self.notes.append(f"{self.dir}: written before rosetta saved the sampling schedule; sampling with "
                              f"its original 'leading' timestep spacing (DDIM-25 starts at t=960, not "
                              f"{tc['diffusion_steps'] - 1}); retrain with `rosetta train-rst --overwrite` for the "
                              "trailing schedule")
            return diffusion.legacy_scheduler_config(tc["diffusion_steps"], tc["beta_schedule"])
        if not isinstance(saved, dict) or any(not isinstance(saved.get(k), dict) for k in SAMPLERS):
            raise CheckpointError(f"{self.dir}: the saved scheduler config needs {list(SAMPLERS)} entries",
                                  hint="the checkpoint is damaged; retrain it")
        return saved

    def scheduler(self, kind: str):
        """A fresh diffusers scheduler `kind` (ddim | ddpm) built with from_config from the checkpoint's config."""

        return diffusion.scheduler_from_config(kind, self.scheduler_config)

    @property
    def timestep_spacing(self) -> str | None:
        """How sampling timesteps are spread ('trailing', or what the checkpoint saved); None for regression."""
        return None if self.scheduler_config is None else self.scheduler_config["ddim"].get("timestep_spacing")

    @property
    def fingerprint(self) -> str:
        return self.meta["weights_sha256"]

    def check_input(self, frames: int, dim: int, where: str) -> None:
        """Ego features must have the RST's D (and T when frames are used token-wise)."""
        c = self.cfg
        need_t = c.model == "regression" or c.cross_attn
        if dim != c.ego_dim or (need_t and frames != c.ego_frames):
            raise DimensionMismatch(
                f"{where}: features are T={frames} D={dim} but the RST {self.dir} was trained on "
                f"T={c.ego_frames} D={c.ego_dim}", hint="translate a store extracted with the RST's encoder and frames")

    def translate(self, ego: np.ndarray, rows, *, sampler: str = "ddim", steps: int = 25, samples: int = 1,
                  guidance: float = 1.0, seed: int = 0) -> np.ndarray:
        """ego [b, T_ego, D] → mean of `samples` draws [b, T_exo, D] (float32, raw units)."""
        import torch


        x = torch.as_tensor(np.asarray(ego, dtype=np.float32), device=self.device)
        x = (x - self.norm["ego_mean"]) / self.norm["ego_std"]                   # [b, T_ego, D]
        c = self.cfg
        with torch.no_grad():
            if c.model == "regression":
                y = self.model(x).float()                                           # [b, T_exo, D]
            else:
                sched = self.scheduler(sampler)
                xk = x.repeat_interleave(samples, dim=0)                            # [b*K, T_ego, D]
                gens = diffusion.row_generators(seed, rows, samples)
                y = diffusion.sample(self.model, sched, xk, gens, (c.exo_frames, c.exo_dim), steps, guidance)
                y = y.view(len(x), samples, c.exo_frames, c.exo_dim).mean(1)        # [b, T_exo, D]
        y = y * self.norm["exo_std"] + self.norm["exo_mean"]
        return y.cpu().numpy()
