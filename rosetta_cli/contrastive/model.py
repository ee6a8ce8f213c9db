"""The dual encoder of stage 4: f_theta (video head) and g_psi (text head) over frozen features.

f_theta: [n, T, D] → [n, d]. A linear projection P: D → d, then (T > 1) a small pre-LN
temporal transformer or (T = 1) residual MLP blocks, mean-pooled over T, then a square
output map. Every residual branch ends in a zero-initialised layer and the output map
starts as the identity, so the untrained head is exactly P(mean_T z): a projection of
the pooled frozen feature. With P = the top singular directions of the training features
("pca") or a random orthogonal map, cosine similarities are close to the frozen ones, so
training starts from frozen-encoder quality instead of from noise.

The same f_theta encodes real ego/exo features and RST translations (docs/method.md: T(.) is a
feature, so f applies to it); inputs whose T differs from the configured one use
positional embeddings interpolated to their length.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rosetta_cli.contrastive.config import ModelConfig

MIN_TAU = 0.01  # clamp for a learned temperature (CLIP clamps logit_scale at 100)


class Mlp(nn.Module):
    """x + W2 gelu(W1 LN(x)), W2 zero-initialised (the block starts as the identity)."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        hidden = max(1, int(dim * ratio))
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class Block(nn.Module):
    """Pre-LN transformer block over time; both residual branches start at zero."""

    def __init__(self, dim: int, heads: int, ratio: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)
        self.mlp = Mlp(dim, ratio)

    def forward(self, x):                                   # x [n, T, d]
        h = self.norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]   # [n, T, d]
        return self.mlp(x)                                  # [n, T, d]


class VideoHead(nn.Module):
    """f_theta: frozen frame features [n, T, D] → embedding [n, d] (not normalised)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.dim
        self.arch = cfg.resolved_arch
        self.proj = nn.Linear(cfg.input_dim, d, bias=False)
        nn.init.orthogonal_(self.proj.weight)
        if self.arch == "transformer":
            self.pos = nn.Parameter(torch.zeros(1, cfg.frames, d))
            self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.layers))
        elif self.arch == "mlp":
            self.blocks = nn.ModuleList(Mlp(d, cfg.mlp_ratio) for _ in range(cfg.layers))
        else:
            raise ValueError(f"unknown arch {cfg.arch!r} (transformer, mlp, auto)")
        self.out = nn.Linear(d, d, bias=False)
        nn.init.eye_(self.out.weight)

    def _pos(self, t: int) -> torch.Tensor:
        if t == self.pos.shape[1]:
            return self.pos
        # another T (e.g. a clip-level RST translation, T = 1): resample the learned embeddings
        return F.interpolate(self.pos.transpose(1, 2), size=t, mode="linear", align_corners=False).transpose(1, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:     # z [n, T, D]
        if self.arch == "mlp":
            x = self.proj(z.mean(dim=1))                    # [n, d]
            for blk in self.blocks:
                x = blk(x)                                  # [n, d]
            return self.out(x)                              # [n, d]
        x = self.proj(z) + self._pos(z.shape[1])            # [n, T, d]
        for blk in self.blocks:
            x = blk(x)                                      # [n, T, d]
        return self.out(x.mean(dim=1))                      # [n, d]


class TextHead(nn.Module):
    """g_psi: frozen narration embedding [n, Dt] → [n, d] (not normalised)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.proj = nn.Linear(cfg.text_dim, cfg.dim, bias=False)
        nn.init.orthogonal_(self.proj.weight)
        self.blocks = nn.ModuleList(Mlp(cfg.dim, cfg.mlp_ratio) for _ in range(cfg.text_layers))

    def forward(self, e: torch.Tensor) -> torch.Tensor:     # e [n, Dt]
        x = self.proj(e)                                    # [n, d]
        for blk in self.blocks:
            x = blk(x)                                      # [n, d]
        return x


class DualEncoderModel(nn.Module):
    """f_theta + g_psi + the temperature (logit_scale = log(1/tau); trainable only with learn_tau)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.video = VideoHead(cfg)
        self.text = TextHead(cfg) if cfg.text_dim else None
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.tau)), requires_grad=cfg.learn_tau)

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(1.0 / MIN_TAU)).exp()

    def encode_video(self, z: torch.Tensor) -> torch.Tensor:
        """[n, T, D] → L2-normalised [n, d]."""
        return F.normalize(self.video(z), dim=-1)

    def encode_text(self, e: torch.Tensor) -> torch.Tensor:
        """[n, Dt] → L2-normalised [n, d]."""
        return F.normalize(self.text(e), dim=-1)


def pca_directions(sample: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
    """[dim, D] orthonormal rows: top right-singular vectors of the (uncentred) sample [n, D],
    completed with random orthonormal directions when the sample has rank < dim.
    Uncentred, because cosine similarity is about the raw vectors, mean included."""
    x = np.asarray(sample, dtype=np.float64)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    keep = vt[: min(dim, int((s > s.max() * 1e-6).sum()) if len(s) else 0)]
    if len(keep) < dim:
        g = rng.standard_normal((x.shape[1], dim - len(keep)))
        g -= keep.T @ (keep @ g)                            # orthogonal to the kept directions
        q, _ = np.linalg.qr(g)
        keep = np.concatenate([keep, q.T], axis=0)
    return keep.astype(np.float32)


def build_model(cfg: ModelConfig, pooled_sample: np.ndarray | None = None, seed: int = 0) -> DualEncoderModel:
    """A fresh model; with cfg.init == 'pca' the projection uses `pooled_sample` [n, D]."""
    torch.manual_seed(seed)
    model = DualEncoderModel(cfg)
    # dim > D: the orthogonal init already preserves every dot product exactly
    if cfg.init == "pca" and pooled_sample is not None and len(pooled_sample) and cfg.dim <= cfg.input_dim:
        w = pca_directions(pooled_sample, cfg.dim, np.random.default_rng(seed))
        with torch.no_grad():
            model.video.proj.weight.copy_(torch.from_numpy(w))
    return model
