"""`egovlp:CKPT`: EgoVLP's video tower (Frozen-in-Time TimeSformer + linear projection to 256-d).

Two layouts load (keys may carry `module.`):

- LaViLa's converted release (egovlp_converted_f16.md5sum_c33363.pth): `visual.*`,
  `image_projection.0.{weight,bias}`, `textual.*`, `text_projection.1.*`;
- EgoVLP's own names: `video_model.*`, `vid_proj.0.*`, `text_model.*`, `txt_proj.*`.
  EgoVLP's own egovlp.pth also pickles its ConfigParser object, which weights_only loading
  refuses: convert it first (LaViLa's scripts/convert_egovlp_ckpt.py keeps only the weights).

The visual side is the same SpaceTimeTransformer as LaViLa's, without ln_pre, with exact GELU
and ImageNet normalisation. Only the video tower is offered: the text tower is DistilBERT, whose
WordPiece vocabulary ships with no PyPI package, so it cannot be loaded offline.
"""

from __future__ import annotations

from rosetta_cli.encoders.base import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from rosetta_cli.encoders.lavila import (SpaceTimeEncoder, _path, build_visual, load_strict, read_checkpoint,
                                         visual_config)
from rosetta_cli.encoders.weights import fingerprint
from rosetta_cli.errors import CheckpointError

RENAMES = {"video_model.": "visual.", "vid_proj.": "image_projection."}


class EgoVLPVisualEncoder(SpaceTimeEncoder):
    def project(self, x):  # [B, 768] → [B, 256]
        return x @ self.proj_weight.T + self.proj_bias


def _visual_state(sd: dict, spec: str) -> tuple[dict, dict]:
    """(SpaceTimeTransformer state dict, projection tensors) from either key layout."""
    for old, new in RENAMES.items():
        sd = {(new + k[len(old):] if k.startswith(old) else k): v for k, v in sd.items()}
    need = ["visual.temporal_embed", "visual.cls_token", "image_projection.0.weight", "image_projection.0.bias"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise CheckpointError(f"{spec}: not an EgoVLP checkpoint (missing {', '.join(missing)})",
                              hint="expected video_model.*/vid_proj.* or LaViLa's converted visual.*/image_projection.*")
    visual = {k[7:]: v.float() for k, v in sd.items() if k.startswith("visual.")}
    return visual, {"weight": sd["image_projection.0.weight"].float(), "bias": sd["image_projection.0.bias"].float()}


def load(spec: str, device: str = "cpu", precision: str = "fp32") -> EgoVLPVisualEncoder:
    """`egovlp:CKPT` → clip-level visual encoder (encode_clips: uint8 [B, T, H, W, 3] → [B, 1, 256])."""
    path = _path(spec).resolve()
    sd, args = read_checkpoint(path, spec)
    visual_sd, proj = _visual_state(sd, spec)
    vcfg = visual_config({"visual." + k: v for k, v in visual_sd.items()}, "visual.", quick_gelu=False)
    model = build_visual(vcfg)
    load_strict(model, visual_sd, spec)
    pre = Preprocess(resize=vcfg.image_size, crop=vcfg.image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    enc = EgoVLPVisualEncoder(
        name=f"egovlp:{path}", dim=int(proj["weight"].shape[0]), preprocess=pre, device=device, precision=precision,
        weights=str(path), weights_sha256=fingerprint(path), source="EgoVLP checkpoint (video tower)",
        extra={"clip_level": True, "checkpoint_frames": vcfg.num_frames, "width": vcfg.width, "layers": vcfg.layers,
               **({"args": args} if args else {})})
    enc.model = enc.visual = model.eval().to(device)
    enc.proj_weight, enc.proj_bias = proj["weight"].to(device), proj["bias"].to(device)
    enc._temporal0 = model.temporal_embed.detach().clone()
    return enc
