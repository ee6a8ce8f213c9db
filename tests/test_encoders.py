"""Frozen encoders: real EfficientNet-Lite0 / MiniLM weights, TorchScript loading, registry errors."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

import torch

from rosetta_cli.encoders import get_text_encoder, get_visual_encoder, list_encoders  # noqa: E402
from rosetta_cli.encoders.base import Preprocess, resize_crop  # noqa: E402
from rosetta_cli.errors import UsageError  # noqa: E402
from rosetta_cli.provenance import sha256_file  # noqa: E402
from rosetta_cli.video import read_clip  # noqa: E402

VIDEOS = Path(__file__).parent / "data" / "videos"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def effnet():
    return get_visual_encoder("efficientnet-lite0", device="cpu")


@pytest.fixture(scope="module")
def real_frames():
    box = read_clip(VIDEOS / "box.mp4", 2.0, 4.0, frames=1)
    cup = read_clip(VIDEOS / "cup.mp4", 2.0, 4.0, frames=1)
    return np.concatenate([box, cup, box])  # [3, 480, 640, 3]


def cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_efficientnet_features_are_real(effnet, real_frames):
    f = effnet.encode(real_frames)
    assert f.shape == (3, 1280)
    assert f.dtype == np.float32
    assert effnet.dim == 1280
    assert np.isfinite(f).all()
    assert (f >= 0).all()  # pooled ReLU6 activations
    assert np.array_equal(f[0], f[2])                        # same frame → identical features
    assert cos(f[0], f[1]) < 0.95                            # box vs cup scenes differ
    assert f.std() > 0.05                                    # not a dead network


def test_efficientnet_classifier_is_imagenet_trained(effnet, real_frames):
    """The bundled weights include the ImageNet head: a real frame gives a peaked, non-uniform prediction."""
    x = resize_crop(real_frames[:2], effnet.preprocess)
    from rosetta_cli.encoders.base import normalise

    with torch.inference_mode():
        p = effnet.model(normalise(x, effnet.preprocess, "cpu")).softmax(-1)
    assert p.shape == (2, 1000)
    assert float(p.max(-1).values.min()) > 0.05  # uniform would be 0.001


def test_efficientnet_info_and_fingerprint(effnet):
    info = effnet.info()
    assert info["name"] == "efficientnet-lite0"
    assert info["dim"] == 1280
    assert info["preprocess"]["crop"] == 224
    assert info["preprocess"]["mean"] == [0.485, 0.456, 0.406]
    assert info["weights"].endswith("efficientnet-lite0-57934424.pth")
    assert info["weights_sha256"] == sha256_file(info["weights"])
    assert info["weights_sha256"].startswith("57934424")      # the file name carries its hash prefix
    json.dumps(info)                                          # JSON-only metadata


def test_resize_happens_inside_encode(effnet, real_frames):
    small = resize_crop(real_frames[:1], effnet.preprocess)
    assert small.shape == (1, 224, 224, 3)
    assert small.dtype == torch.uint8
    assert np.array_equal(effnet.encode(real_frames[:1]), effnet.encode(small))


def test_resize_crop_odd_and_portrait_sizes():
    pre = Preprocess(resize=32, crop=32)
    for h, w in ((61, 97), (97, 61), (20, 20)):
        out = resize_crop(np.full((2, h, w, 3), 77, np.uint8), pre)
        assert out.shape == (2, 32, 32, 3)
        assert int(out.min()) == int(out.max()) == 77


def test_bf16_close_to_fp32(real_frames):
    a = get_visual_encoder("efficientnet-lite0", precision="fp32").encode(real_frames[:2])
    b = get_visual_encoder("efficientnet-lite0", precision="bf16").encode(real_frames[:2])
    assert b.dtype == np.float32
    assert min(cos(a[i], b[i]) for i in range(2)) > 0.97


def test_minilm_normalised_and_semantic():
    enc = get_text_encoder("minilm")
    e = enc.encode(["a person cuts an onion with a knife", "someone slices an onion", "the car drives on a highway"])
    assert e.shape == (3, 384)
    assert e.dtype == np.float32
    assert enc.dim == 384
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3
    assert enc.encode([]).shape == (0, 384)
    assert enc.info()["weights_sha256"] == sha256_file(enc.info()["weights"])
    assert get_text_encoder("none") is None


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, stride=2)

    def forward(self, x):
        return torch.relu(self.conv(x))  # [N, 16, h, w]: the loader averages the map


def test_torchscript_encoder(tmp_path, real_frames):
    torch.manual_seed(0)
    net = TinyNet().eval()
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    (tmp_path / "tiny.pt.json").write_text(json.dumps({"image_size": 64, "mean": [0.5] * 3, "std": [0.25] * 3}))
    enc = get_visual_encoder(f"torchscript:{path}")
    assert enc.dim == 16
    assert enc.preprocess.crop == 64
    f = enc.encode(real_frames)
    x = resize_crop(real_frames, enc.preprocess).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        ref = net((x - 0.5) / 0.25).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(f, ref, rtol=1e-5, atol=1e-6)
    assert enc.info()["weights_sha256"] == sha256_file(path)


def test_torchscript_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        get_visual_encoder(f"torchscript:{tmp_path / 'nope.pt'}")
    bad = tmp_path / "bad.pt"
    bad.write_text("not torchscript")
    with pytest.raises(UsageError, match="not a loadable TorchScript"):
        get_visual_encoder(f"torchscript:{bad}")


def test_unknown_names_are_usage_errors():
    with pytest.raises(UsageError) as info:
        get_visual_encoder("resnet9000")
    assert "resnet9000" in info.value.one_line()
    assert "rosetta encoders" in info.value.one_line()
    with pytest.raises(UsageError) as info:
        get_text_encoder("bert")
    assert "minilm" in info.value.one_line()


def _import_error(module: str) -> str | None:
    """Why `module` cannot be imported (absent, or torchvision built for another torch), or None."""
    try:
        importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - torchvision mismatches raise RuntimeError
        return f"{type(e).__name__}: {e}"
    return None


def _need(module: str) -> None:
    """Skip when `module` is not importable, unless ROSETTA_REQUIRE_EXTRA_ENCODERS=1 (.ci/run's extras venv): then fail."""
    why = _import_error(module)
    if why is None:
        return
    with pytest.raises(UsageError) as info:  # a clear instruction instead of a traceback
        get_visual_encoder("timm:resnet18" if module == "timm" else "open_clip:ViT-S-32:x.pt")
    assert "pip install" in info.value.one_line() or "torchvision" in info.value.one_line()
    if os.environ.get("ROSETTA_REQUIRE_EXTRA_ENCODERS") == "1":
        pytest.fail(f"{module} must import here (ROSETTA_REQUIRE_EXTRA_ENCODERS=1): {why[:200]}")
    pytest.skip(f"{module} not importable ({why[:80]}): the extra-encoders extra (torch 2.14.1 + torchvision 0.29.1) "
                "is not in this venv; .ci/run runs this file in .ci-venv-extras")


def test_timm_encoder_random_local_weights(tmp_path):
    _need("timm")
    import timm

    model = timm.create_model("resnet18", pretrained=False, num_classes=0).eval()  # offline: random, saved locally
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    enc = get_visual_encoder(f"timm:resnet18:{path}")
    x = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    from rosetta_cli.encoders.base import normalise

    with torch.no_grad():
        want = model(normalise(torch.as_tensor(x), enc.preprocess, "cpu")).numpy()
    np.testing.assert_allclose(enc.encode(x), want, rtol=1e-4, atol=1e-4)
    assert enc.dim == 512
    assert enc.weights_sha256 == sha256_file(path)
    assert enc.preprocess.crop == 224
    assert enc.preprocess.mean == pytest.approx((0.485, 0.456, 0.406))


@pytest.mark.slow  # ~15 s: building and loading a 63M-parameter CLIP on 2 shared cores
def test_open_clip_encoder_random_local_weights(tmp_path):
    _need("open_clip")
    import open_clip

    model = open_clip.create_model("ViT-S-32", pretrained=None).eval()  # offline: random, saved locally
    path = tmp_path / "vits32.pt"
    torch.save(model.state_dict(), path)
    enc = get_visual_encoder(f"open_clip:ViT-S-32:{path}")
    x = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    from rosetta_cli.encoders.base import normalise

    with torch.no_grad():
        want = model.encode_image(normalise(torch.as_tensor(x), enc.preprocess, "cpu")).numpy()
    np.testing.assert_allclose(enc.encode(x), want, rtol=1e-4, atol=1e-4)
    assert enc.dim == 384
    assert enc.weights_sha256 == sha256_file(path)
    assert enc.preprocess.mean == pytest.approx(open_clip.OPENAI_DATASET_MEAN)


def test_listing_and_cli(cli):
    names = {e["name"]: e for e in list_encoders()}
    assert names["efficientnet-lite0"]["available"]
    assert names["minilm"]["available"]
    assert names["efficientnet-lite0"]["dim"] == "1280"
    assert names["minilm"]["dim"] == "384"
    r = cli("encoders", "--json")
    assert r.code == 0
    assert {e["name"] for e in json.loads(r.out)} == set(names)


def test_uint8_resize_is_within_one_grey_level_of_the_float_kernel(real_frames):
    """The uint8 fast path (any uint8 input) against the float kernel (float input) on real 640x480 frames."""
    pre = Preprocess(224, 224)
    fast = resize_crop(real_frames, pre)
    ref = resize_crop(torch.as_tensor(real_frames).float(), pre)
    assert fast.dtype == ref.dtype == torch.uint8
    assert fast.shape == ref.shape == (3, 224, 224, 3)
    diff = (fast.int() - ref.int()).abs()
    assert int(diff.max()) <= 1
    assert float(diff.float().mean()) < 0.5      # mostly identical, not a shifted image


def test_cpu_batching_gives_each_clip_features_of_its_own(effnet, real_frames):
    """With one T=4 clip per CPU forward, a clip's features do not depend on the clips batched with it,
    and they equal one whole-batch forward up to float rounding."""
    assert effnet.cpu_batch == 4
    clips = torch.as_tensor(np.stack([real_frames[[0, 1, 2, 0]], real_frames[[1, 1, 0, 2]]]))  # [2, 4, H, W, 3]
    clips = resize_crop(clips.reshape(8, 480, 640, 3), effnet.preprocess).reshape(2, 4, 224, 224, 3)
    both = effnet.encode_clips(clips)                            # [2, 4, 1280]
    alone = effnet.encode_clips(clips[1:])                       # [1, 4, 1280]
    assert np.array_equal(both[1], alone[0])
    whole = get_visual_encoder("efficientnet-lite0", device="cpu")
    whole.cpu_batch = None
    ref = whole.encode_clips(clips)
    np.testing.assert_allclose(both, ref, rtol=0, atol=1e-4 * float(np.abs(ref).max()))
    assert effnet.info()["cpu_batch"] == 4
