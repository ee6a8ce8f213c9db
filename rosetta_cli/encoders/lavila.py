"""`lavila:CKPT`: LaViLa's dual encoder (the paper's f_phi) from an official checkpoint.

The checkpoint is a `torch.save` dict with `state_dict` (keys may carry `module.`) and
`args` (an argparse Namespace). CLIP_OPENAI_TIMESFORMER_BASE ("TSF-B") is:

- visual: a ViT-B/16 space-time transformer with divided attention in the Frozen-in-Time
  style (time attention, then space attention, then MLP), ln_pre, QuickGELU, 4 frames;
- text: a CLIP text transformer (12 layers, width 512, 8 heads, context 77, vocab 49408);
- `image_projection` [768, 256], `text_projection` [512, 256], `logit_scale`.

Our modules use the same parameter names, so official state_dicts load with strict=True;
sizes are read from the tensors' shapes (a small random model in the same layout loads
with the same code, which is how the tests run). Heads are width // 64, as in CLIP/ViT.

    enc = load("lavila:ckpt.pth")        # enc.encode_clips(uint8 [B, T, H, W, 3]) -> [B, 1, 256]
    txt = load_text("lavila:ckpt.pth")   # txt.encode(["#C C cuts a pepper"]) -> [1, 256], unit norm

Loading never unpickles arbitrary objects: `torch.load(weights_only=True)` with only
argparse.Namespace and the numpy globals of `best_acc1` allowed (LaViLa's main.py saves it from
`np.mean(...)`, a numpy.float64: see `numpy_scalar_globals`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rosetta_cli.encoders.base import Preprocess, TextEncoder, VisualEncoder
from rosetta_cli.encoders.weights import fingerprint, package_dir
from rosetta_cli.errors import CheckpointError, InputNotFound, UsageError

# OpenAI CLIP normalisation on LaViLa's 0-255 scale (eval_zeroshot.py); our normalise() divides by 255 first.
MEAN_255 = (108.3272985, 116.7460125, 104.09373615)
STD_255 = (68.5005327, 66.6321579, 70.32316305)
PAPER_CHECKPOINT = "clip_openai_timesformer_base.narrator_rephraser.ep_0005.md5sum_d73a9c.pth"
PIP_HINT = "the CLIP tokenizer comes from open_clip: pip install 'rosetta-cli[extra-encoders]'"


@dataclass(frozen=True)
class SpaceTimeConfig:
    """Visual tower sizes; defaults are TSF-B (ViT-B/16, 224 px, 4 frames)."""

    width: int = 768
    layers: int = 12
    patch: int = 16
    image_size: int = 224
    num_frames: int = 4          # frames the checkpoint was trained with (temporal_embed rows)
    ln_pre: bool = True          # CLIP-initialised towers (LaViLa) have ln_pre and a bias-free patch conv
    quick_gelu: bool = True      # OpenAI CLIP's activation; EgoVLP's ImageNet ViT uses exact GELU

    @property
    def heads(self) -> int:
        return max(1, self.width // 64)


@dataclass(frozen=True)
class TextConfig:
    """Text tower sizes; defaults are OpenAI CLIP's (LaViLa TSF-B)."""

    width: int = 512
    layers: int = 12
    context: int = 77
    vocab: int = 49408

    @property
    def heads(self) -> int:
        return max(1, self.width // 64)


def _modules():
    """The torch modules, defined on first use so that importing this file stays cheap."""
    global _MODS
    if "_MODS" not in globals():
        _MODS = _define_modules()
    return _MODS


def _define_modules():  # noqa: C901 - a namespace of small classes
    import torch
    from torch import nn

    class QuickGELU(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(1.702 * x)

    class Mlp(nn.Module):
        def __init__(self, dim: int, act):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), act(), nn.Linear(4 * dim, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class VarAttention(nn.Module):
        """Divided attention: the CLS token attends to every token; patch tokens attend within
        their frame (space) or across frames at their position (time), plus the CLS token."""

        def __init__(self, dim: int, heads: int):
            super().__init__()
            self.heads = heads
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

        def forward(self, x, frames: int, over: str):
            sdpa = torch.nn.functional.scaled_dot_product_attention  # fused kernels; scale (dh ** -0.5) is its default
            b, length, d = x.shape                                             # x: [B, 1 + F*N, D]
            n = (length - 1) // frames
            q, k, v = (t.reshape(b, length, self.heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
            cls_out = sdpa(q[:, :, :1], k, v)                                  # q, k, v: [B, h, L, dh] → [B, h, 1, dh]

            def groups(t):  # [B, h, F*N, dh] -> [B, h, G, S, dh]: G frames of N, or N positions of F
                t = t[:, :, 1:].reshape(b, self.heads, frames, n, -1)
                return t if over == "space" else t.transpose(2, 3)

            qg, kg, vg = groups(q), groups(k), groups(v)
            g = qg.shape[2]
            kg = torch.cat([k[:, :, None, :1].expand(-1, -1, g, -1, -1), kg], 3)  # CLS key joins each group
            vg = torch.cat([v[:, :, None, :1].expand(-1, -1, g, -1, -1), vg], 3)
            out = sdpa(qg, kg, vg)                                             # [B, h, G, S, dh]
            if over == "time":
                out = out.transpose(2, 3)                                      # back to frame-major order
            out = torch.cat([cls_out, out.reshape(b, self.heads, frames * n, -1)], 2)  # [B, h, L, dh]
            return self.proj(out.transpose(1, 2).reshape(b, length, d))        # [B, L, D]

    class SpaceTimeBlock(nn.Module):
        def __init__(self, dim: int, heads: int, act):
            super().__init__()
            ln = lambda: nn.LayerNorm(dim, eps=1e-6)  # noqa: E731 - the ViT's eps
            self.norm1, self.attn, self.timeattn = ln(), VarAttention(dim, heads), VarAttention(dim, heads)
            self.norm2, self.mlp, self.norm3 = ln(), Mlp(dim, act), ln()

        def forward(self, x, frames: int):
            t = x + self.timeattn(self.norm3(x), frames, "time")
            # Frozen-in-Time: the time branch only feeds space attention; the residual is x, not t.
            s = x + self.attn(self.norm1(t), frames, "space")
            return s + self.mlp(self.norm2(s))

    class PatchEmbed(nn.Module):
        def __init__(self, cfg: SpaceTimeConfig):
            super().__init__()
            self.proj = nn.Conv2d(3, cfg.width, cfg.patch, cfg.patch, bias=not cfg.ln_pre)

    class SpaceTimeTransformer(nn.Module):
        def __init__(self, cfg: SpaceTimeConfig):
            super().__init__()
            act = QuickGELU if cfg.quick_gelu else nn.GELU
            n = (cfg.image_size // cfg.patch) ** 2
            self.patch_embed = PatchEmbed(cfg)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
            self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, cfg.width))
            self.temporal_embed = nn.Parameter(torch.zeros(1, cfg.num_frames, cfg.width))
            self.ln_pre = nn.LayerNorm(cfg.width) if cfg.ln_pre else None
            self.blocks = nn.ModuleList(SpaceTimeBlock(cfg.width, cfg.heads, act) for _ in range(cfg.layers))
            self.norm = nn.LayerNorm(cfg.width, eps=1e-6)

        def forward(self, x, temporal=None):
            """x: [B, F, 3, S, S]; temporal: [1, >=F, D] to use instead of temporal_embed (other clip lengths)."""
            temporal = self.temporal_embed if temporal is None else temporal
            b, f = x.shape[:2]
            x = self.patch_embed.proj(x.flatten(0, 1)).flatten(2).transpose(1, 2)  # [B*F, N, D]
            n = x.shape[1]
            x = torch.cat([self.cls_token.expand(b, -1, -1), x.reshape(b, f * n, -1)], 1)  # [B, 1+F*N, D]
            # Space embedding tiled over frames, time embedding repeated within each frame.
            pos = self.pos_embed[:, 1:].repeat(1, f, 1) + temporal[:, :f].repeat_interleave(n, 1)
            x = x + torch.cat([self.pos_embed[:, :1], pos], 1)
            if self.ln_pre is not None:
                x = self.ln_pre(x)
            for blk in self.blocks:
                x = blk(x, f)
            return self.norm(x)[:, 0]                                          # [B, D] (CLS)

    class ResidualAttentionBlock(nn.Module):
        def __init__(self, dim: int, heads: int):
            super().__init__()
            self.attn, self.ln_1 = nn.MultiheadAttention(dim, heads, batch_first=True), nn.LayerNorm(dim)
            self.mlp = nn.Sequential()
            self.mlp.add_module("c_fc", nn.Linear(dim, 4 * dim))
            self.mlp.add_module("gelu", QuickGELU())
            self.mlp.add_module("c_proj", nn.Linear(4 * dim, dim))
            self.ln_2 = nn.LayerNorm(dim)

        def forward(self, x, mask):
            h = self.ln_1(x)
            x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
            return x + self.mlp(self.ln_2(x))

    class TextTransformer(nn.Module):
        def __init__(self, cfg: TextConfig):
            super().__init__()
            self.resblocks = nn.ModuleList(ResidualAttentionBlock(cfg.width, cfg.heads) for _ in range(cfg.layers))

    class LavilaCLIP(nn.Module):
        """CLIP_OPENAI_TIMESFORMER_*: the parameter names of LaViLa's `CLIP` module."""

        def __init__(self, vcfg: SpaceTimeConfig, tcfg: TextConfig, embed_dim: int = 256):
            super().__init__()
            self.visual = SpaceTimeTransformer(vcfg)
            self.transformer = TextTransformer(tcfg)
            self.token_embedding = nn.Embedding(tcfg.vocab, tcfg.width)
            self.positional_embedding = nn.Parameter(torch.zeros(tcfg.context, tcfg.width))
            self.ln_final = nn.LayerNorm(tcfg.width)
            self.image_projection = nn.Parameter(torch.zeros(vcfg.width, embed_dim))
            self.text_projection = nn.Parameter(torch.zeros(tcfg.width, embed_dim))
            self.logit_scale = nn.Parameter(torch.zeros([]))
            mask = torch.full((tcfg.context, tcfg.context), float("-inf")).triu_(1)  # causal
            self.register_buffer("attn_mask", mask, persistent=False)

        def encode_image(self, x):                                             # x: [B, F, 3, S, S] → [B, E]
            return self.visual(x) @ self.image_projection

        def encode_text(self, ids):                                            # ids: [B, L] int64 → [B, E]
            x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
            mask = self.attn_mask[: ids.shape[1], : ids.shape[1]]
            for blk in self.transformer.resblocks:
                x = blk(x, mask)
            x = self.ln_final(x)                                               # [B, L, W]
            # The end-of-text token has the highest id: its position carries the sentence.
            return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ self.text_projection

    return {"LavilaCLIP": LavilaCLIP, "SpaceTimeTransformer": SpaceTimeTransformer, "VarAttention": VarAttention}


def build_model(vcfg: SpaceTimeConfig = SpaceTimeConfig(), tcfg: TextConfig = TextConfig(), embed_dim: int = 256):
    """A LavilaCLIP module with LaViLa's parameter names (weights uninitialised zeros)."""
    return _modules()["LavilaCLIP"](vcfg, tcfg, embed_dim)


def build_visual(vcfg: SpaceTimeConfig):
    """A bare SpaceTimeTransformer (EgoVLP's `video_model`)."""
    return _modules()["SpaceTimeTransformer"](vcfg)


# ---------------------------------------------------------------- checkpoint reading


def read_checkpoint(path: Path, spec: str) -> tuple[dict, dict]:
    """A LaViLa-style checkpoint → (state_dict without `module.`, args as a JSON-safe dict).

    Only tensors, containers, argparse.Namespace and numpy scalars are unpickled (weights_only=True).
    """
    import argparse
    import pickle

    import torch

    if not path.is_file():
        raise InputNotFound(f"{spec}: no such checkpoint file {path}", hint=f"download e.g. {PAPER_CHECKPOINT}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace, *numpy_scalar_globals()]):
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"{spec}: not a loadable checkpoint ({type(e).__name__}: {first})",
                              hint="the file may be truncated or not a torch checkpoint; re-download it") from None
    sd = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not sd:
        keys = sorted(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{spec}: no 'state_dict' in the checkpoint (found {keys})",
                              hint="expected an official LaViLa/EgoVLP dual-encoder checkpoint")
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
    return sd, _args_dict(ckpt.get("args"))


def numpy_scalar_globals() -> list:
    """The globals a pickled numpy float64 needs, and no others: the scalar reconstructor under both
    module names (a checkpoint saved with numpy 1 names numpy.core, one saved with numpy 2 numpy._core),
    numpy.dtype, and the class of the float64 dtype it builds (numpy.dtypes.Float64DType since numpy 1.25)."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    return [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"), np.dtype,
            type(np.dtype("float64"))]


def _args_dict(args) -> dict:
    """argparse.Namespace (or dict) → JSON-safe dict (non-scalars as strings) for store provenance."""
    if args is None:
        return {}
    items = vars(args) if hasattr(args, "__dict__") else dict(args) if isinstance(args, dict) else {}
    ok = (str, int, float, bool, type(None))
    return {str(k): (v if isinstance(v, ok) else str(v)) for k, v in items.items()}


def _require_keys(sd: dict, keys: list[str], spec: str, what: str) -> None:
    missing = [k for k in keys if k not in sd]
    if missing:
        raise CheckpointError(f"{spec}: not a {what} checkpoint (missing {', '.join(missing[:4])})",
                              hint=f"expected the official layout with {keys[0].split('.')[0]}.* keys")


def visual_config(sd: dict, prefix: str, quick_gelu: bool) -> SpaceTimeConfig:
    """Visual sizes read from tensor shapes under `prefix` (e.g. 'visual.')."""
    width = int(sd[prefix + "cls_token"].shape[-1])
    patch = int(sd[prefix + "patch_embed.proj.weight"].shape[-1])
    side = int(round((int(sd[prefix + "pos_embed"].shape[1]) - 1) ** 0.5))
    layers = 1 + max(int(k[len(prefix) + 7:].split(".")[0]) for k in sd if k.startswith(prefix + "blocks."))
    return SpaceTimeConfig(width=width, layers=layers, patch=patch, image_size=side * patch,
                           num_frames=int(sd[prefix + "temporal_embed"].shape[1]),
                           ln_pre=prefix + "ln_pre.weight" in sd, quick_gelu=quick_gelu)


def text_config(sd: dict) -> TextConfig:
    vocab, width = (int(s) for s in sd["token_embedding.weight"].shape)
    layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("transformer.resblocks."))
    return TextConfig(width=width, layers=layers, context=int(sd["positional_embedding"].shape[0]), vocab=vocab)


def load_strict(model, sd: dict, spec: str) -> None:
    """load_state_dict(strict=True), turning a mismatch into one line naming the first bad keys."""
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        res_missing = [k for k in model.state_dict() if k not in sd]
        res_extra = [k for k in sd if k not in model.state_dict()]
        detail = (f"missing {res_missing[:3]}" if res_missing else "") + \
                 (f" unexpected {res_extra[:3]}" if res_extra else "")
        if not detail.strip():
            detail = (str(e).strip().splitlines() or [""])[-1].strip()[:200]
        raise CheckpointError(f"{spec}: checkpoint does not match the model ({detail.strip()})",
                              hint="only the TimeSformer dual encoders (TSF-B/TSF-L) are supported") from None


# ---------------------------------------------------------------- model cache and encoders

LAVILA_KEYS = ["visual.temporal_embed", "visual.cls_token", "visual.pos_embed", "visual.patch_embed.proj.weight",
               "image_projection", "text_projection", "token_embedding.weight", "positional_embedding",
               "transformer.resblocks.0.attn.in_proj_weight"]


def _path(spec: str) -> Path:
    raw = spec.split(":", 1)[1] if ":" in spec else ""
    if not raw:
        raise UsageError(f"{spec!r}: expected lavila:CKPT", hint=f"e.g. lavila:{PAPER_CHECKPOINT}")
    return Path(raw).expanduser()


@lru_cache(maxsize=2)
def _cached_model(path: str, mtime: float, size: int, device: str):
    """(model, args, vcfg): shared by the visual and text encoders of one extract run."""
    spec = f"lavila:{path}"
    sd, args = read_checkpoint(Path(path), spec)
    _require_keys(sd, LAVILA_KEYS, spec, "LaViLa dual-encoder")
    model_name = str(args.get("model", "CLIP_OPENAI_TIMESFORMER_BASE"))
    if "DISTILBERT" in model_name or "textual.embeddings.word_embeddings.weight" in sd:
        raise CheckpointError(f"{spec}: {model_name} has a DistilBERT text tower, not supported",
                              hint="use a CLIP_OPENAI_TIMESFORMER_* checkpoint, e.g. " + PAPER_CHECKPOINT)
    vcfg = visual_config(sd, "visual.", quick_gelu="OPENAI" in model_name)
    model = build_model(vcfg, text_config(sd), int(sd["image_projection"].shape[1]))
    load_strict(model, sd, spec)
    return model.eval().to(device), args, vcfg


def _load_model(spec: str, device: str):
    p = _path(spec)
    if not p.is_file():
        raise InputNotFound(f"{spec}: no such checkpoint file {p}", hint=f"download e.g. {PAPER_CHECKPOINT}")
    st = p.resolve().stat()
    return (*_cached_model(str(p.resolve()), st.st_mtime, st.st_size, device), p.resolve())


def interpolate_temporal(embed, frames: int):
    """temporal_embed [1, F0, D] → [1, frames, D] the way LaViLa loads other clip lengths:
    the first `frames` rows when fewer, bilinear interpolation over (time, channel) when more."""
    import torch.nn.functional as F

    f0 = embed.shape[1]
    if frames == f0:
        return embed
    if frames < f0:
        return embed[:, :frames]
    return F.interpolate(embed[None], size=(frames, embed.shape[2]), mode="bilinear")[0]


class SpaceTimeEncoder(VisualEncoder):
    """A clip-level encoder: all T frames of a clip go through the space-time transformer together."""

    def frames_out(self, frames: int) -> int:
        return 1

    def _temporal(self, frames: int):
        """The temporal embedding for `frames` frames, cached (checkpoint rows kept in `_temporal0`)."""
        cache = self.__dict__.setdefault("_temporal_cache", {})
        if frames not in cache:
            cache[frames] = interpolate_temporal(self._temporal0, frames)
        return cache[frames]

    def project(self, x):  # [B, D_vis] → [B, dim]
        raise NotImplementedError

    def forward_clips(self, x):  # x: float [B, T, 3, S, S] on device → [B, dim]
        return self.project(self.visual(x, self._temporal(x.shape[1])))

    def forward(self, x):  # x: [N, 3, S, S] → [N, dim]: each image is a one-frame clip
        return self.forward_clips(x[:, None])


class LavilaVisualEncoder(SpaceTimeEncoder):
    def project(self, x):
        return x @ self.model.image_projection


def load(spec: str, device: str = "cpu", precision: str = "fp32") -> LavilaVisualEncoder:
    """`lavila:CKPT` → clip-level visual encoder (encode_clips: uint8 [B, T, H, W, 3] → [B, 1, E])."""
    model, args, vcfg, path = _load_model(spec, device)
    pre = Preprocess(resize=vcfg.image_size, crop=vcfg.image_size, mean=tuple(m / 255 for m in MEAN_255),
                     std=tuple(s / 255 for s in STD_255))
    enc = LavilaVisualEncoder(
        name=f"lavila:{path}", dim=int(model.image_projection.shape[1]), preprocess=pre, device=device,
        precision=precision, weights=str(path), weights_sha256=fingerprint(path), source="LaViLa checkpoint",
        extra={"clip_level": True, "model": str(args.get("model", "CLIP_OPENAI_TIMESFORMER_BASE")),
               "checkpoint_frames": vcfg.num_frames, "width": vcfg.width, "layers": vcfg.layers,
               "normalisation_0_255": {"mean": list(MEAN_255), "std": list(STD_255)}})
    enc.model, enc.visual = model, model.visual
    enc._temporal0 = model.visual.temporal_embed.detach().clone()
    return enc


# ---------------------------------------------------------------- text side


def clip_tokenizer():
    """OpenAI CLIP's BPE tokenizer, offline: open_clip ships it with its vocabulary.

    Only open_clip's tokenizer module is loaded (it needs ftfy and regex, not torchvision),
    because the package's __init__ imports torchvision, which is not needed to tokenise.
    """
    import importlib.util

    root = package_dir("open_clip")
    src = root / "tokenizer.py" if root else None
    if src is None or not src.is_file() or not (root / "bpe_simple_vocab_16e6.txt.gz").is_file():
        raise UsageError("text encoder lavila: needs the CLIP tokenizer from the open_clip package", hint=PIP_HINT)
    spec = importlib.util.spec_from_file_location("rosetta_cli._open_clip_tokenizer", src)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except ImportError as e:
        raise UsageError(f"text encoder lavila: the CLIP tokenizer cannot load ({e})", hint=PIP_HINT) from None
    return mod.SimpleTokenizer()


def tokenize(tok, texts: list[str], context: int):
    """N strings → int64 [N, context]: <sot> BPE <eot>, cut at `context` (as LaViLa's tokenizer does:
    an over-long text loses its <eot>), zero padded."""
    import torch

    sot, eot = tok.sot_token_id, tok.eot_token_id                       # 49406, 49407
    out = torch.zeros(len(texts), context, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = ([sot] + tok.encode(t) + [eot])[:context]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


class LavilaTextEncoder(TextEncoder):
    batch_size = 64

    def encode(self, texts: list[str]) -> np.ndarray:
        """N narrations → float32 [N, E], unit norm (LaViLa compares normalised embeddings)."""
        import torch

        chunks = []
        for i in range(0, len(texts), self.batch_size):
            ids = tokenize(self.tokenizer, list(texts[i:i + self.batch_size]), self.context).to(self.device)
            with torch.inference_mode():
                chunks.append(torch.nn.functional.normalize(self.model.encode_text(ids).float(), dim=-1).cpu())
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, self.dim), np.float32)


def load_text(spec: str, device: str = "cpu") -> LavilaTextEncoder:
    """`lavila:CKPT` as `--text-encoder`: narration embeddings from the same dual encoder."""
    tok = clip_tokenizer()
    model, args, _, path = _load_model(spec, device)
    enc = LavilaTextEncoder(name=f"lavila:{path}", dim=int(model.text_projection.shape[1]), device=device,
                            weights=str(path), weights_sha256=fingerprint(path), source="LaViLa checkpoint (text tower)")
    enc.model, enc.tokenizer, enc.context = model, tok, int(model.positional_embedding.shape[0])
    return enc
