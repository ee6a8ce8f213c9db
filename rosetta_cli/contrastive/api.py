"""Public API of a trained dual encoder (used by `rosetta bench` and `rosetta embed`).

    enc = load_dual_encoder("model/")
    enc.input_dim, enc.dim, enc.name      # D, d, display name
    enc.module                            # torch.nn.Module f_theta: [n, T, D] → [n, d] (not normalised)
    enc.encode_video(z)                   # np [n, T, D] → np float32 [n, d], L2-normalised
    enc.encode_text(e)                    # np [n, Dt]   → np float32 [n, d], L2-normalised
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rosetta_cli.errors import CheckpointError, DimensionMismatch, UsageError
from rosetta_cli.runtime.checkpoint import load_weights, read_config

CKPT_KIND = "dual-encoder"


class DualEncoder:
    """A loaded f_theta + g_psi, in eval mode, on `device`."""

    def __init__(self, model, meta: dict, path: Path, device: str = "cpu"):
        self.model, self.meta, self.path, self.device = model, meta, Path(path), device
        self.module = model.video

    @property
    def input_dim(self) -> int:
        return int(self.model.cfg.input_dim)

    @property
    def dim(self) -> int:
        return int(self.model.cfg.dim)

    @property
    def frames(self) -> int:
        return int(self.model.cfg.frames)

    @property
    def text_dim(self) -> int | None:
        return self.model.cfg.text_dim

    @property
    def name(self) -> str:
        return self.meta.get("name") or self.path.name

    def _run(self, fn, x: np.ndarray, batch: int) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32)).to(self.device)
                out.append(fn(xb).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def encode_video(self, z: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Frozen clip features [n, T, D] (or [n, D], read as T = 1) → [n, d] float32, unit L2 norm."""
        z = np.asarray(z)
        z = z[:, None, :] if z.ndim == 2 else z
        if z.ndim != 3 or z.shape[2] != self.input_dim:
            raise DimensionMismatch(f"{self.path}: expects video features [n, T, {self.input_dim}], got {list(z.shape)}",
                                    hint="embed features from the same frozen encoder the model was trained on")
        return self._run(self.model.encode_video, z, batch_size)

    def encode_text(self, e: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Narration embeddings [n, Dt] → [n, d] float32, unit L2 norm."""
        if self.model.text is None:
            raise UsageError(f"{self.path}: was trained without narration embeddings, so it has no text head",
                             hint="pretrain with stores that carry `text`")
        e = np.asarray(e)
        if e.ndim != 2 or e.shape[1] != self.text_dim:
            raise DimensionMismatch(f"{self.path}: expects text embeddings [n, {self.text_dim}], got {list(e.shape)}",
                                    hint="use the text encoder the training stores were made with")
        return self._run(self.model.encode_text, e, batch_size)

    def fingerprint(self) -> str:
        return str(self.meta.get("weights_sha256", ""))[:16]


def load_dual_encoder(path, device: str = "cpu") -> DualEncoder:
    """Rebuild the model from MODEL_DIR/config.json and load its safetensors weights.

    Raises CheckpointError (exit 2) for a damaged, foreign or incompatible directory."""
    from rosetta_cli.contrastive.config import ModelConfig
    from rosetta_cli.contrastive.model import DualEncoderModel

    from rosetta_cli.store.remote import local_checkpoint

    path = local_checkpoint(path)  # --model by URL: config.json + model.safetensors, cached locally
    meta = read_config(path, kind=CKPT_KIND)
    try:
        cfg = ModelConfig(**meta["model"])
        model = DualEncoderModel(cfg)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: config.json does not describe a dual encoder ({type(e).__name__}: {e})",
                              hint="the checkpoint is damaged or from another version; retrain") from e
    try:
        model.load_state_dict(load_weights(path))
    except RuntimeError as e:  # shape / key mismatch between config and weights
        raise CheckpointError(f"{path}: weights do not match config.json ({str(e).splitlines()[0]})",
                              hint="the checkpoint is damaged; retrain or restore it") from e
    model.eval().to(device)
    return DualEncoder(model, meta, Path(path), device)
