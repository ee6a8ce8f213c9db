"""`torchscript:PATH`: any TorchScript image model saved with `torch.jit.save`.

The model takes float [N, 3, S, S] (normalised) and returns [N, D] or [N, D, h, w]
(averaged). Preprocessing comes from an optional sidecar `PATH.json`
({"image_size": 224, "resize": 256, "mean": [...], "std": [...]}); default 224² with ImageNet
mean/std. The output dim is found by one dummy forward pass. TorchScript archives carry
code: load only files you trust.
"""

from __future__ import annotations

import json
from pathlib import Path

from rosetta_cli.encoders.base import IMAGENET_MEAN, IMAGENET_STD, Preprocess, VisualEncoder, pool_output
from rosetta_cli.encoders.weights import fingerprint
from rosetta_cli.errors import InputNotFound, UsageError


class TorchScriptEncoder(VisualEncoder):
    def forward(self, x):  # x: [N, 3, S, S] → [N, D]
        return pool_output(self.model(x))


def _preprocess(path: Path) -> Preprocess:
    side = path.with_name(path.name + ".json")
    if not side.exists():
        return Preprocess()
    try:
        cfg = json.loads(side.read_text())
        size = int(cfg.get("image_size", 224))
        return Preprocess(resize=int(cfg.get("resize", size)), crop=size, mean=tuple(cfg.get("mean", IMAGENET_MEAN)),
                          std=tuple(cfg.get("std", IMAGENET_STD)))
    except (ValueError, TypeError, AttributeError) as e:
        raise UsageError(f"{side}: bad preprocessing sidecar ({e})",
                         hint='expected JSON like {"image_size": 224, "mean": [..3], "std": [..3]}') from None


def load(path: str, device: str = "cpu", precision: str = "fp32") -> TorchScriptEncoder:
    import torch

    p = Path(path).expanduser()
    if not p.is_file():
        raise InputNotFound(f"torchscript:{path}: no such file", hint="give the path of a file saved with torch.jit.save")
    try:
        model = torch.jit.load(str(p), map_location=device).eval()
    except Exception as e:
        raise UsageError(f"torchscript:{path}: not a loadable TorchScript file ({type(e).__name__}: {e})",
                         hint="save the model with torch.jit.save(torch.jit.script(model), path)") from None
    pre = _preprocess(p)
    enc = TorchScriptEncoder(name=f"torchscript:{p.resolve()}", dim=0, preprocess=pre, device=device,
                             precision=precision, weights=str(p.resolve()), weights_sha256=fingerprint(p),
                             source="local TorchScript file")
    enc.model = model
    with torch.inference_mode():
        enc.dim = int(enc.forward(torch.zeros(1, 3, pre.crop, pre.crop, device=device)).shape[1])
    return enc
