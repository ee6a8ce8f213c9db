"""What every frozen encoder shares: preprocessing spec, precision handling, provenance info.

Visual encoders take uint8 RGB frames [N, H, W, 3] and return float32 [N, D].
Preprocessing is split so the cheap-to-ship half (resize + centre crop to uint8
[N, S, S, 3]) runs in the DataLoader workers, and normalisation + forward run on the device.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import numpy as np

from rosetta_cli.errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRECISIONS = ("fp32", "bf16", "fp16")
CPU_BATCH = 4  # images per CPU forward of a frame-level encoder: one T=4 clip (see VisualEncoder.encode)
# timm and open_clip import torchvision, whose compiled ops exist only beside the torch build they were made for.
TORCHVISION_HINT = ("install torchvision from the same build as torch: torch 2.13.0 from PyPI pairs with PyPI's "
                    "torchvision 0.28.0, a +cpu torch with torchvision 0.28.0+cpu from the PyTorch CPU wheel index")


@dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side to `resize`, centre-crop `crop`², scale to [0,1], normalise by mean/std."""

    resize: int = 224
    crop: int = 224
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    interpolation: str = "bilinear-antialias-uint8"  # resize_crop resizes uint8 frames in uint8

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def resize_crop(frames, pre: Preprocess):
    """uint8 [N, H, W, 3] (numpy or tensor) → uint8 tensor [N, crop, crop, 3]. CPU, used in workers.

    uint8 input is resized in uint8 (torch's channels-last antialiased kernel): 7-12x cheaper than
    the float path on a 640x480 frame, within 1 grey level of it (benchmarks/encode_batch.py).
    """
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray) else frames)
    n, h, w, _ = x.shape
    scale = pre.resize / min(h, w)
    nh, nw = max(pre.crop, round(h * scale)), max(pre.crop, round(w * scale))
    u8 = x.dtype == torch.uint8
    x = x.permute(0, 3, 1, 2) if u8 else x.permute(0, 3, 1, 2).float()         # [N, 3, H, W] (channels-last view)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - pre.crop) // 2, (nw - pre.crop) // 2
    x = x[:, :, top:top + pre.crop, left:left + pre.crop]                        # [N, 3, S, S]
    if not u8:
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous()                                    # [N, S, S, 3]


def normalise(x, pre: Preprocess, device: str):
    """uint8 tensor [N, S, S, 3] → float [N, 3, S, S] on `device`, normalised."""
    import torch

    x = x.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(pre.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(pre.std, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


def autocast(device: str, precision: str):
    """Mixed-precision context for inference; fp32 is a no-op (bit-reproducible on CPU)."""
    import torch

    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype)


@dataclass
class VisualEncoder:
    """A loaded frozen visual encoder. Subclasses set `model` and implement `forward`."""

    name: str
    dim: int
    preprocess: Preprocess
    device: str = "cpu"
    precision: str = "fp32"
    weights: str | None = None          # path of the weights file, if any
    weights_sha256: str | None = None
    source: str = ""                    # where the weights come from (package, hub, file)
    extra: dict = field(default_factory=dict)
    cpu_batch: int | None = CPU_BATCH    # images per forward on CPU (None: the whole call at once)

    def forward(self, x):  # x: float [N, 3, S, S] on device → [N, D]
        raise NotImplementedError

    def encode(self, frames) -> np.ndarray:
        """uint8 frames [N, H, W, 3] (any size; resized here if needed) → float32 [N, D]."""
        import torch

        x = torch.as_tensor(frames)
        if tuple(x.shape[1:3]) != (self.preprocess.crop, self.preprocess.crop):
            x = resize_crop(x, self.preprocess)
        # On CPU, a few images per forward keep the activations in the core's L2 cache: EfficientNet-Lite0
        # costs 0.5-0.6x the core-seconds per image at 4 images as at 32 (benchmarks/encode_batch.py).
        step = self.cpu_batch if self.device == "cpu" and self.cpu_batch else max(len(x), 1)
        out = []
        with torch.inference_mode(), autocast(self.device, self.precision):
            for i in range(0, max(len(x), 1), step):
                out.append(self.forward(normalise(x[i:i + step], self.preprocess, self.device)).float().cpu())
        return torch.cat(out).numpy()

    def frames_out(self, frames: int) -> int:
        """Feature rows per clip of `frames` frames: T for frame-level encoders, 1 for clip-level ones."""
        return frames

    def forward_clips(self, x):  # x: float [B, T, 3, S, S] on device → [B, D] (clip-level encoders only)
        raise NotImplementedError

    def encode_clips(self, clips) -> np.ndarray:
        """uint8 clips [B, T, H, W, 3] → float32 [B, frames_out(T), D].

        Frame-level encoders see each frame alone ([B, T, D]); clip-level encoders (LaViLa, EgoVLP)
        see the T frames together and give one feature per clip ([B, 1, D]).
        """
        import torch

        x = torch.as_tensor(clips)
        b, t = x.shape[:2]
        flat = x.reshape(b * t, *x.shape[2:])                                  # [B*T, H, W, 3]
        if self.frames_out(t) == t:
            return self.encode(flat).reshape(b, t, -1)
        if tuple(flat.shape[1:3]) != (self.preprocess.crop, self.preprocess.crop):
            flat = resize_crop(flat, self.preprocess)
        with torch.inference_mode(), autocast(self.device, self.precision):
            z = normalise(flat, self.preprocess, self.device)                 # [B*T, 3, S, S]
            out = self.forward_clips(z.reshape(b, t, *z.shape[1:]))            # [B, D]
        return out.float().cpu().numpy()[:, None]                              # [B, 1, D]

    def info(self) -> dict:
        """Identity, preprocessing and weights fingerprint: recorded as store meta `encoder`."""
        return {"name": self.name, "kind": "visual", "dim": self.dim, "preprocess": self.preprocess.to_dict(),
                "precision": self.precision, "weights": self.weights, "weights_sha256": self.weights_sha256,
                "source": self.source, "cpu_batch": self.cpu_batch, **self.extra}


@dataclass
class TextEncoder:
    """A loaded frozen text encoder: `encode(list[str]) -> float32 [N, dim]`."""

    name: str
    dim: int
    device: str = "cpu"
    weights: str | None = None
    weights_sha256: str | None = None
    source: str = ""
    normalised: bool = True

    def encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def info(self) -> dict:
        return {"name": self.name, "kind": "text", "dim": self.dim, "normalised": self.normalised,
                "weights": self.weights, "weights_sha256": self.weights_sha256, "source": self.source}


def pool_output(out):
    """Model output → [N, D]: first element of tuples, spatial maps [N, D, h, w] averaged."""
    if isinstance(out, (tuple, list)):
        out = out[0]
    if isinstance(out, dict):
        out = next(iter(out.values()))
    if out.ndim == 4:
        out = out.mean(dim=(2, 3))
    if out.ndim != 2:
        raise UsageError(f"encoder returned shape {tuple(out.shape)}; expected [N, D] or [N, D, h, w]")
    return out
