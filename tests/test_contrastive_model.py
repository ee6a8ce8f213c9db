"""f_theta / g_psi: initialisation = projection of the pooled features; API; damaged checkpoints."""

import json

import numpy as np
import pytest
import torch

from rosetta_cli.contrastive.api import load_dual_encoder
from rosetta_cli.contrastive.config import ModelConfig
from rosetta_cli.contrastive.model import build_model, pca_directions
from rosetta_cli.errors import CheckpointError, DimensionMismatch, InputNotFound
from rosetta_cli.runtime.checkpoint import save_checkpoint

torch.set_num_threads(1)


@pytest.mark.parametrize("frames,arch", [(4, "transformer"), (1, "mlp")])
def test_untrained_head_is_projection_of_pooled_features(frames, arch):
    cfg = ModelConfig(input_dim=48, frames=frames, text_dim=12, dim=16)
    assert cfg.resolved_arch == arch
    z = np.random.default_rng(0).standard_normal((200, frames, 48)).astype(np.float32)
    m = build_model(cfg, z.mean(axis=1), seed=0)
    with torch.no_grad():
        out = m.video(torch.from_numpy(z)).numpy()
        # also for another T (an RST translation is clip-level, T = 1)
        out1 = m.video(torch.from_numpy(z.mean(axis=1, keepdims=True))).numpy()
    p = m.video.proj.weight.detach().numpy()
    np.testing.assert_allclose(out, z.mean(axis=1) @ p.T, atol=1e-4)
    np.testing.assert_allclose(out1, out, atol=1e-4)
    np.testing.assert_allclose(p @ p.T, np.eye(16), atol=1e-5)          # orthonormal rows


def test_pca_directions_capture_the_top_subspace_and_complete_rank():
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.standard_normal((30, 3)))[0]               # data lives in 3 dims
    x = (rng.standard_normal((100, 3)) * [5, 3, 2]) @ basis.T
    w = pca_directions(x, 8, rng)
    np.testing.assert_allclose(w @ w.T, np.eye(8), atol=1e-5)
    # the first 3 rows span the data: projection keeps every norm and dot product
    np.testing.assert_allclose(np.linalg.norm(x @ w.T, axis=1), np.linalg.norm(x, axis=1), rtol=1e-4)


def test_dim_larger_than_input_keeps_cosines_exactly():
    cfg = ModelConfig(input_dim=8, frames=1, dim=32)
    z = np.random.default_rng(2).standard_normal((10, 1, 8)).astype(np.float32)
    m = build_model(cfg, z[:, 0], seed=0)
    with torch.no_grad():
        e = m.encode_video(torch.from_numpy(z)).numpy()
    zn = z[:, 0] / np.linalg.norm(z[:, 0], axis=1, keepdims=True)
    np.testing.assert_allclose(e @ e.T, zn @ zn.T, atol=1e-5)


def _save(tmp_path, cfg):
    m = build_model(cfg, seed=3)
    import dataclasses

    save_checkpoint(tmp_path / "m", kind="dual-encoder", config={"name": "toy", "model": dataclasses.asdict(cfg)},
                    model_state=m.state_dict())
    return m


def test_load_dual_encoder_api(tmp_path):
    cfg = ModelConfig(input_dim=20, frames=4, text_dim=6, dim=8)
    m = _save(tmp_path, cfg)
    enc = load_dual_encoder(tmp_path / "m")
    assert (enc.input_dim, enc.dim, enc.name) == (20, 8, "toy")
    z = np.random.default_rng(0).standard_normal((5, 4, 20)).astype(np.float16)
    v = enc.encode_video(z)
    assert v.dtype == np.float32
    assert v.shape == (5, 8)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(m.video(torch.from_numpy(z.astype(np.float32))), dim=-1).numpy()
        raw = enc.module(torch.from_numpy(z.astype(np.float32)))
    np.testing.assert_allclose(v, ref, atol=1e-5)
    assert isinstance(enc.module, torch.nn.Module)
    assert raw.shape == (5, 8)
    t = enc.encode_text(np.ones((3, 6), np.float32))
    assert t.shape == (3, 8)
    with pytest.raises(DimensionMismatch):
        enc.encode_video(np.zeros((2, 4, 21), np.float32))


def test_damaged_checkpoints_raise_checkpoint_error(tmp_path):
    with pytest.raises(InputNotFound):
        load_dual_encoder(tmp_path / "missing")
    cfg = ModelConfig(input_dim=20, frames=4, dim=8)
    _save(tmp_path, cfg)
    wf = tmp_path / "m" / "model.safetensors"
    wf.write_bytes(wf.read_bytes()[:100])                          # truncated weights
    with pytest.raises(CheckpointError, match="damaged"):
        load_dual_encoder(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_dual_encoder(tmp_path / "m")
    _save(tmp_path, cfg)
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["model"]["input_dim"] = 21                                  # config no longer matches weights
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match"):
        load_dual_encoder(tmp_path / "m")
    meta["kind"] = "rst"
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"is a 'rst' checkpoint \(from `rosetta train-rst`\), but this needs a 'dual-encoder' one"):
        load_dual_encoder(tmp_path / "m")
