"""The RST denoiser eps_theta(z_t, t, z_ego) (DiT-style, adaLN-Zero) and the regression-MLP baseline.

Follows facebookresearch/DiT models.py: adaLN-Zero blocks conditioned on c = emb(t) + emb(pooled z_ego),
zero-initialised modulation and output, sizes as a name → factory dict (`RST_MODELS`, the CLI's choices).
Differences from DiT: the "image" is a feature [T, D] cut into tokens (one per frame, or, when T = 1,
`tokens` slices of D); the class embedding is an MLP of the pooled ego feature with a learned null
embedding for classifier-free guidance; optional cross-attention to the ego frame tokens; plain epsilon
output (no learned sigma).
"""

from __future__ import annotations

import math
import torch
import torch.nn as nn
import torch.nn.functional as F

from rosetta_cli.rst.config import MODELS, SIZES, RSTModelConfig


def modulate(x, shift, scale):
    """x [B, L, W], shift/scale [B, W] → [B, L, W] (DiT's adaLN modulation)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    """Scalar timesteps → [B, W] (sinusoidal frequencies then an MLP, as in DiT)."""

    def __init__(self, width: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    @staticmethod
    def timestep_embedding(t, dim: int, max_period: int = 10000):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]                                 # [B, half]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)           # [B, dim]

    def forward(self, t):
        return self.mlp(self.timestep_embedding(t, self.freq_dim))             # [B, W]


class Attention(nn.Module):
    """Multi-head (cross-)attention with torch's fused scaled_dot_product_attention."""

    def __init__(self, width: int, heads: int, cross: bool = False):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x, ctx=None):
        B, L, W = x.shape
        ctx = x if ctx is None else ctx
        q = self.q(x).view(B, L, self.heads, -1).transpose(1, 2)                           # [B, H, L, W/H]
        k, v = self.kv(ctx).view(B, ctx.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # 2 × [B, H, S, W/H]
        y = F.scaled_dot_product_attention(q, k, v)                                         # [B, H, L, W/H]
        return self.proj(y.transpose(1, 2).reshape(B, L, W))                               # [B, L, W]


def _mlp(width: int, ratio: float) -> nn.Sequential:
    hidden = int(width * ratio)
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))


class DiTBlock(nn.Module):
    """adaLN-Zero transformer block, optionally with an (ungated) cross-attention to ego tokens."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, cross_attn: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.cross = Attention(width, heads) if cross_attn else None
        self.norm_x = nn.LayerNorm(width, eps=1e-6) if cross_attn else None
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = _mlp(width, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x, c, ctx=None):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))  # [B, L, W]
        if self.cross is not None:
            x = x + self.cross(self.norm_x(x), ctx)                                              # [B, L, W]
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    def __init__(self, width: int, out_dim: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, out_dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))        # [B, L, out_dim]


def auto_tokens(dim: int, width: int) -> int:
    """Smallest divisor k of dim with dim / k ≤ width (a token never holds more numbers than the width)."""
    return next(k for k in range(1, dim + 1) if dim % k == 0 and dim // k <= width)


class Tokenizer(nn.Module):
    """Feature [B, T, D] ↔ tokens [B, L = T·tokens, W]: each frame cut into `tokens` slices of D/tokens."""

    def __init__(self, frames: int, dim: int, tokens: int, width: int):
        super().__init__()
        self.frames, self.dim = frames, dim
        if dim % tokens:
            raise ValueError(f"feature dim {dim} is not divisible by tokens={tokens}")
        self.n = frames * tokens
        self.piece = dim // tokens
        self.embed = nn.Linear(self.piece, width)
        self.pos = nn.Parameter(torch.zeros(1, self.n, width))
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x):
        return self.embed(x.reshape(x.shape[0], self.n, self.piece)) + self.pos  # [B, L, W]

    def unsplit(self, y):
        return y.reshape(y.shape[0], self.frames, self.dim)                       # [B, T, D]


class RSTDiT(nn.Module):
    """eps_theta(z_t, t, z_ego): z_t [B, T_exo, D_exo], t [B], ego [B, T_ego, D_ego] → eps [B, T_exo, D_exo].

    `drop` [B] bool replaces the ego condition with the learned null condition (CFG).
    """

    def __init__(self, cfg: RSTModelConfig, depth: int, width: int, heads: int):
        super().__init__()
        self.cfg = cfg
        self.x_tok = Tokenizer(cfg.exo_frames, cfg.exo_dim, cfg.tokens, width)
        self.t_embedder = TimestepEmbedder(width)
        self.y_embedder = nn.Sequential(nn.Linear(cfg.ego_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.y_null = nn.Parameter(torch.zeros(width))
        self.ctx_tok = Tokenizer(cfg.ego_frames, cfg.ego_dim, cfg.tokens, width) if cfg.cross_attn else None
        self.blocks = nn.ModuleList([DiTBlock(width, heads, cfg.mlp_ratio, cfg.cross_attn) for _ in range(depth)])
        self.final_layer = FinalLayer(width, self.x_tok.piece)
        self.initialize_weights()

    def initialize_weights(self):
        def _basic_init(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        self.apply(_basic_init)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def forward(self, x, t, ego, drop=None):
        y = self.y_embedder(ego.mean(dim=1))                                   # [B, W] pooled ego condition
        ctx = self.ctx_tok(ego) if self.ctx_tok is not None else None          # [B, L_ego, W]
        if drop is not None:  # torch.where keeps y_null in the graph even when nothing is dropped (DDP)
            y = torch.where(drop[:, None], self.y_null.to(y.dtype).expand_as(y), y)
            if ctx is not None:
                ctx = torch.where(drop[:, None, None], torch.zeros_like(ctx), ctx)
        c = self.t_embedder(t) + y                                             # [B, W]
        h = self.x_tok(x)                                                      # [B, L, W]
        for block in self.blocks:
            h = block(h, c, ctx)                                               # [B, L, W]
        return self.x_tok.unsplit(self.final_layer(h, c))                      # [B, T_exo, D_exo]


class RegressionMLP(nn.Module):
    """Baseline: ego [B, T_ego, D_ego] (frames flattened) → exo [B, T_exo, D_exo], trained with plain MSE."""

    def __init__(self, cfg: RSTModelConfig, depth: int, width: int, heads: int):
        super().__init__()
        self.cfg = cfg
        hidden = int(width * cfg.mlp_ratio)
        self.net = nn.Sequential(
            nn.Linear(cfg.ego_frames * cfg.ego_dim, hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, cfg.exo_frames * cfg.exo_dim))

    def forward(self, ego):
        return self.net(ego.flatten(1)).view(ego.shape[0], self.cfg.exo_frames, self.cfg.exo_dim)


def _factory(depth: int, width: int, heads: int):
    def make(cfg: RSTModelConfig) -> nn.Module:
        cls = RegressionMLP if cfg.model == "regression" else RSTDiT
        return cls(cfg, depth=depth, width=width, heads=heads)
    make.shape = dict(depth=depth, width=width, heads=heads)
    return make


RST_tiny = _factory(depth=2, width=128, heads=4)   # tests and the CPU demo
RST_S = _factory(depth=12, width=384, heads=6)     # DiT-S shape
RST_B = _factory(depth=12, width=768, heads=12)    # DiT-B shape

RST_MODELS = dict(zip(SIZES, (RST_tiny, RST_S, RST_B)))  # the names live in rst.config (torch-free, for the CLI)
MODEL_KINDS = MODELS


def build_model(cfg: RSTModelConfig) -> nn.Module:
    if cfg.size not in RST_MODELS:
        raise ValueError(f"unknown RST size {cfg.size!r}; choose from {list(RST_MODELS)}")
    return RST_MODELS[cfg.size](cfg)
