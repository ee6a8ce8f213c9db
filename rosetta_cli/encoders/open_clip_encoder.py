"""`open_clip:ARCH:PRETRAINED`: an OpenCLIP image tower (e.g. open_clip:ViT-B-32:laion2b_s34b_b79k).

PRETRAINED is an OpenCLIP tag (weights from its cache / the Hugging Face Hub; set
HF_HUB_OFFLINE=1 to forbid downloads) or a local checkpoint path. open_clip needs
torchvision built for your torch, which is why it is an optional extra.
"""

from __future__ import annotations

from pathlib import Path

from rosetta_cli.encoders.base import TORCHVISION_HINT, IMAGENET_MEAN, IMAGENET_STD, Preprocess, VisualEncoder, pool_output
from rosetta_cli.encoders.weights import fingerprint
from rosetta_cli.errors import UsageError

PIP_HINT = ("pip install open-clip-torch torchvision==<the version matching your torch> "
            "(or: pip install 'rosetta-cli[extra-encoders]')")


class OpenCLIPEncoder(VisualEncoder):
    def forward(self, x):  # x: [N, 3, S, S] → [N, D] (unnormalised image embedding)
        return pool_output(self.model.encode_image(x))


def _import():
    try:
        import open_clip
    except ImportError as e:
        raise UsageError(f"open_clip encoders need the open_clip package ({e})", hint=PIP_HINT) from None
    except RuntimeError as e:  # e.g. "operator torchvision::nms does not exist": torchvision built for another torch
        raise UsageError(f"open_clip cannot import: torchvision does not match the installed torch ({e})",
                         hint=TORCHVISION_HINT) from None
    return open_clip


def _weights_file(open_clip, arch: str, pretrained: str) -> str | None:
    if Path(pretrained).expanduser().is_file():
        return str(Path(pretrained).expanduser().resolve())
    try:  # a tag: the file open_clip resolved (already cached by create_model)
        cfg = open_clip.pretrained.get_pretrained_cfg(arch, pretrained)
        return open_clip.pretrained.download_pretrained(cfg) or None
    except Exception:
        return None


def load(spec: str, device: str = "cpu", precision: str = "fp32") -> OpenCLIPEncoder:
    parts = spec.split(":", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise UsageError(f"--encoder {spec!r}: expected open_clip:ARCH:PRETRAINED", hint="e.g. open_clip:ViT-B-32:openai")
    open_clip = _import()
    _, arch, pretrained = parts
    try:
        model = open_clip.create_model(arch, pretrained=pretrained, device=device).eval()
    except Exception as e:
        raise UsageError(f"{spec}: cannot load ({type(e).__name__}: {e})",
                         hint="check the architecture/tag with open_clip.list_pretrained(); without network, "
                              "give a local checkpoint path as PRETRAINED") from None
    visual = model.visual
    size = visual.image_size[0] if isinstance(visual.image_size, (tuple, list)) else int(visual.image_size)
    cfg = getattr(visual, "preprocess_cfg", {}) or {}
    pre = Preprocess(resize=size, crop=size, mean=tuple(cfg.get("mean", IMAGENET_MEAN)),
                     std=tuple(cfg.get("std", IMAGENET_STD)), interpolation="bilinear-antialias-uint8")
    wfile = _weights_file(open_clip, arch, pretrained)
    enc = OpenCLIPEncoder(name=spec, dim=int(visual.output_dim), preprocess=pre, device=device, precision=precision,
                          weights=wfile, weights_sha256=fingerprint(wfile), source=f"open_clip {arch} / {pretrained}")
    enc.model = model
    return enc
