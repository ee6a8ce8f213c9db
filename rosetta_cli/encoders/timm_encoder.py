"""`timm:NAME` or `timm:NAME:WEIGHTS`: a timm backbone's pooled features (num_classes=0).

Without WEIGHTS, timm's pretrained weights are used (from the Hugging Face cache; set
HF_HUB_OFFLINE=1 to forbid downloads). WEIGHTS is a local .safetensors/.pth file.
timm needs torchvision built for your torch, which is why it is an optional extra.
"""

from __future__ import annotations

from pathlib import Path

from rosetta_cli.encoders.base import TORCHVISION_HINT, Preprocess, VisualEncoder, pool_output
from rosetta_cli.encoders.weights import fingerprint
from rosetta_cli.errors import InputNotFound, UsageError

PIP_HINT = ("pip install timm torchvision==<the version matching your torch> "
            "(or: pip install 'rosetta-cli[extra-encoders]')")


class TimmEncoder(VisualEncoder):
    def forward(self, x):  # x: [N, 3, S, S] → [N, num_features]
        return pool_output(self.model(x))


def _import():
    try:
        import timm
    except ImportError as e:
        raise UsageError(f"timm encoders need the timm package ({e})", hint=PIP_HINT) from None
    except RuntimeError as e:  # e.g. "operator torchvision::nms does not exist": torchvision built for another torch
        raise UsageError(f"timm cannot import: torchvision does not match the installed torch ({e})",
                         hint=TORCHVISION_HINT) from None
    return timm


def _cached_hub_file(model) -> str | None:
    """The Hub file timm loaded, if it is in the local cache (for the fingerprint)."""
    hub_id = (getattr(model, "pretrained_cfg", None) or {}).get("hf_hub_id")
    if not hub_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        for fname in ("model.safetensors", "pytorch_model.bin"):
            hit = try_to_load_from_cache(hub_id, fname)
            if isinstance(hit, str):
                return hit
    except Exception:
        return None
    return None


def load(spec: str, device: str = "cpu", precision: str = "fp32") -> TimmEncoder:
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[1]:
        raise UsageError(f"--encoder {spec!r}: expected timm:NAME or timm:NAME:WEIGHTS", hint="e.g. timm:resnet50")
    name, wfile = parts[1], (parts[2] if len(parts) == 3 else None)
    if wfile and not Path(wfile).expanduser().is_file():
        raise InputNotFound(f"{spec}: weights file {wfile} not found")
    timm = _import()
    overlay = {"file": str(Path(wfile).expanduser())} if wfile else None
    try:
        model = timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay).eval()
    except Exception as e:
        raise UsageError(f"{spec}: cannot load ({type(e).__name__}: {e})",
                         hint="check the name with timm.list_models(pretrained=True); offline, pass timm:NAME:WEIGHTS") from None
    data = timm.data.resolve_data_config({}, model=model)
    size = int(data["input_size"][-1])
    pre = Preprocess(resize=int(round(size / data.get("crop_pct", 1.0))), crop=size, mean=tuple(data["mean"]),
                     std=tuple(data["std"]), interpolation="bilinear-antialias-uint8")
    wfile = str(Path(wfile).expanduser().resolve()) if wfile else _cached_hub_file(model)
    enc = TimmEncoder(name=spec, dim=int(model.num_features), preprocess=pre, device=device, precision=precision,
                      weights=wfile, weights_sha256=fingerprint(wfile), source=f"timm {name}")
    enc.model = model.to(device)
    return enc
