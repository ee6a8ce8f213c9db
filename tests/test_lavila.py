"""lavila:CKPT / egovlp:CKPT on small random models saved in the official checkpoint layouts.

The reference below is written independently of rosetta_cli.encoders.lavila, straight from
LaViLa's algorithm (per-group attention loops, LND text transformer), with LaViLa's parameter
names; its state_dict is saved the way LaViLa saves it ({'state_dict': {'module.'+k}, 'args'}).
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import torch
from torch import nn  # noqa: E402

from rosetta_cli.encoders import get_text_encoder, get_visual_encoder  # noqa: E402
from rosetta_cli.encoders.lavila import MEAN_255, STD_255, interpolate_temporal  # noqa: E402
from rosetta_cli.errors import CheckpointError, InputNotFound, UsageError  # noqa: E402
from rosetta_cli.video import read_clip  # noqa: E402

VIDEOS = Path(__file__).parent / "data" / "videos"
W, LAYERS, PATCH, SIZE, FRAMES, TW, EMBED = 64, 2, 16, 32, 4, 64, 32
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------ the reference (LaViLa's algorithm)

class RefQuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class RefMlp(nn.Module):
    def __init__(self, d, act):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, 4 * d), act(), nn.Linear(4 * d, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def ref_attend(q, k, v):  # [S, dh] x3 → [S, dh]
    return torch.softmax(q @ k.T, -1) @ v


class RefVarAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x, f, over):
        """One sample, one head, one group at a time: slow and plain."""
        b, length, d = x.shape
        n, dh = (length - 1) // f, d // self.h
        q, k, v = self.qkv(x).chunk(3, -1)
        out = torch.zeros_like(q)
        for bi in range(b):
            for hi in range(self.h):
                sl = slice(hi * dh, (hi + 1) * dh)
                qh, kh, vh = q[bi, :, sl] * dh ** -0.5, k[bi, :, sl], v[bi, :, sl]
                out[bi, 0, sl] = ref_attend(qh[:1], kh, vh)[0]
                groups = ([[1 + fi * n + j for j in range(n)] for fi in range(f)] if over == "space"
                          else [[1 + fi * n + j for fi in range(f)] for j in range(n)])
                for g in groups:
                    idx = [0] + g
                    out[bi, g, sl] = ref_attend(qh[g], kh[idx], vh[idx])
        return self.proj(out)


class RefBlock(nn.Module):
    def __init__(self, d, heads, act):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d, eps=1e-6) for _ in range(3))
        self.attn, self.timeattn, self.mlp = RefVarAttention(d, heads), RefVarAttention(d, heads), RefMlp(d, act)

    def forward(self, x, f):
        time_residual = x + self.timeattn(self.norm3(x), f, "time")
        space_residual = x + self.attn(self.norm1(time_residual), f, "space")
        return space_residual + self.mlp(self.norm2(space_residual))


class RefPatch(nn.Module):
    def __init__(self, ln_pre):
        super().__init__()
        self.proj = nn.Conv2d(3, W, PATCH, PATCH, bias=not ln_pre)


class RefSpaceTime(nn.Module):
    def __init__(self, ln_pre=True, act=RefQuickGELU):
        super().__init__()
        n = (SIZE // PATCH) ** 2
        self.patch_embed = RefPatch(ln_pre)
        self.cls_token = nn.Parameter(torch.randn(1, 1, W) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, W) * 0.02)
        self.temporal_embed = nn.Parameter(torch.randn(1, FRAMES, W) * 0.5)
        if ln_pre:
            self.ln_pre = nn.LayerNorm(W)
        self.blocks = nn.ModuleList(RefBlock(W, 1, act) for _ in range(LAYERS))
        self.norm = nn.LayerNorm(W, eps=1e-6)

    def forward(self, x):  # LaViLa's input order: [B, C, T, H, W]
        x = x.permute(0, 2, 1, 3, 4)
        b, f = x.shape[:2]
        tokens = [[self.patch_embed.proj(x[bi, fi]).flatten(1).T for fi in range(f)] for bi in range(b)]
        n = tokens[0][0].shape[0]
        rows = []
        for bi in range(b):
            seq = [self.cls_token[0, 0] + self.pos_embed[0, 0]]
            for fi in range(f):
                for j in range(n):
                    seq.append(tokens[bi][fi][j] + self.pos_embed[0, 1 + j] + self.temporal_embed[0, fi])
            rows.append(torch.stack(seq))
        x = torch.stack(rows)
        if hasattr(self, "ln_pre"):
            x = self.ln_pre(x)
        for blk in self.blocks:
            x = blk(x, f)
        return self.norm(x)[:, 0]


class RefResBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.attn, self.ln_1, self.ln_2 = nn.MultiheadAttention(d, heads), nn.LayerNorm(d), nn.LayerNorm(d)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(d, 4 * d))
        self.mlp.add_module("gelu", RefQuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * d, d))

    def forward(self, x, mask):  # x: [L, N, D]
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class RefText(nn.Module):
    def __init__(self):
        super().__init__()
        self.resblocks = nn.Sequential(*[RefResBlock(TW, 1) for _ in range(LAYERS)])


class RefLavila(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = RefSpaceTime()
        self.transformer = RefText()
        self.token_embedding = nn.Embedding(49408, TW)
        self.positional_embedding = nn.Parameter(torch.randn(77, TW) * 0.01)
        self.ln_final = nn.LayerNorm(TW)
        self.image_projection = nn.Parameter(torch.randn(W, EMBED) * W ** -0.5)
        self.text_projection = nn.Parameter(torch.randn(TW, EMBED) * TW ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))

    def encode_image(self, x):
        return self.visual(x) @ self.image_projection

    def encode_text(self, ids):
        mask = torch.full((77, 77), float("-inf")).triu_(1)
        x = (self.token_embedding(ids) + self.positional_embedding).permute(1, 0, 2)
        for blk in self.transformer.resblocks:
            x = blk(x, mask)
        x = self.ln_final(x.permute(1, 0, 2))
        return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ self.text_projection


def randomise(model):
    """Non-trivial weights everywhere (LaViLa's zero-initialised time attention would hide bugs)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p) if name.endswith("weight") else 0.1 * torch.randn_like(p))
            elif p.ndim >= 2 and "embed" not in name and "projection" not in name and "cls" not in name:
                p.copy_(torch.randn_like(p) * p.shape[-1] ** -0.5)
    return model.eval()


def save_official(model, path: Path, model_name: str = "CLIP_OPENAI_TIMESFORMER_BASE", prefix: str = "module."):
    args = argparse.Namespace(model=model_name, project_embed_dim=EMBED, clip_length=FRAMES, lr=3e-5, norm_embed=True)
    torch.save({"epoch": 5, "args": args, "state_dict": {prefix + k: v for k, v in model.state_dict().items()},
                "best_acc1": 0.0}, path)
    return path


@pytest.fixture(scope="module")
def ref():
    return randomise(RefLavila())


@pytest.fixture(scope="module")
def ckpt(ref, tmp_path_factory):
    return save_official(ref, tmp_path_factory.mktemp("lavila") / "clip_openai_timesformer_base.tiny.pth")


def ref_input(frames_u8: np.ndarray) -> "torch.Tensor":
    """uint8 [B, T, S, S, 3] → LaViLa's normalised float [B, 3, T, S, S] on the 0-255 scale."""
    x = torch.as_tensor(frames_u8).float().permute(0, 4, 1, 2, 3)
    mean, std = torch.tensor(MEAN_255).view(1, 3, 1, 1, 1), torch.tensor(STD_255).view(1, 3, 1, 1, 1)
    return (x - mean) / std


def random_clips(b=3, t=FRAMES, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (b, t, SIZE, SIZE, 3), dtype=np.uint8)


# ------------------------------------------------------------------ tests


def test_state_dict_names_match_the_reference(ref):
    from rosetta_cli.encoders.lavila import build_model, text_config, visual_config

    sd = ref.state_dict()
    ours = build_model(visual_config(sd, "visual.", True), text_config(sd), EMBED).state_dict()
    assert set(ours) == set(sd)
    assert all(ours[k].shape == sd[k].shape for k in sd)
    assert "visual.ln_pre.weight" in ours
    assert "visual.patch_embed.proj.bias" not in ours


def test_visual_features_match_reference_forward(ref, ckpt):
    enc = get_visual_encoder(f"lavila:{ckpt}")
    clips = random_clips()
    got = enc.encode_clips(clips)
    with torch.no_grad():
        want = ref.encode_image(ref_input(clips)).numpy()
    assert got.shape == (3, 1, EMBED)
    assert enc.dim == EMBED
    assert enc.frames_out(FRAMES) == 1
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-4, atol=1e-4)
    # The clip is seen as a whole: shuffling its frames changes the feature (time embedding + attention).
    assert np.abs(enc.encode_clips(clips[:, ::-1].copy()) - got).max() > 1e-3
    info = enc.info()
    assert info["clip_level"]
    assert info["model"] == "CLIP_OPENAI_TIMESFORMER_BASE"
    assert info["weights_sha256"]
    assert len(info["weights_sha256"]) == 64
    assert info["preprocess"]["crop"] == SIZE
    assert np.allclose(np.array(info["preprocess"]["mean"]) * 255, MEAN_255)
    json.dumps(info)  # store attributes are JSON-only


def test_other_frame_counts_interpolate_temporal_embedding(ref, ckpt):
    enc = get_visual_encoder(f"lavila:{ckpt}")
    te = ref.visual.temporal_embed.detach()
    # More frames: bilinear over time, end points kept (align_corners=False keeps the mean of a pair).
    up = interpolate_temporal(te, 8)
    assert up.shape == (1, 8, W)
    assert torch.allclose(up[0, 0], te[0, 0])
    assert torch.allclose(up[0, -1], te[0, -1])
    assert torch.allclose(up[0, 1], 0.75 * te[0, 0] + 0.25 * te[0, 1], atol=1e-6)
    assert torch.equal(interpolate_temporal(te, 2), te[:, :2])  # fewer: LaViLa keeps the first rows
    clips = random_clips(b=2, t=8, seed=3)
    with torch.no_grad():
        ref.visual.temporal_embed.data = up.clone()
        want = ref.encode_image(ref_input(clips)).numpy()
        ref.visual.temporal_embed.data = te.clone()
    np.testing.assert_allclose(enc.encode_clips(clips)[:, 0], want, rtol=1e-4, atol=1e-4)


def test_text_embeddings_match_reference(ref, ckpt):
    from rosetta_cli.encoders.lavila import clip_tokenizer, tokenize

    txt = get_text_encoder(f"lavila:{ckpt}")
    texts = ["#C C cuts a pepper with a knife", "#C C pours milk into the cup", "x " * 120]
    got = txt.encode(texts)
    ids = tokenize(clip_tokenizer(), texts, 77)
    assert ids[0, 0] == 49406
    assert ids[0, :12].tolist().count(49407) == 1
    assert ids[2, -1] != 49407
    assert ids[0].tolist()[1:3] == [258, 322]  # '#', 'c' in CLIP's BPE vocabulary
    with torch.no_grad():
        want = torch.nn.functional.normalize(ref.encode_text(ids), dim=-1).numpy()
    assert got.shape == (3, EMBED)
    assert txt.dim == EMBED
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


def test_extract_with_lavila_on_videos(ref, ckpt, tmp_path, cli):
    from rosetta_cli.store import Store

    rows = [{"video": str(VIDEOS / v), "start": s, "end": s + 2.0, "narration": n}
            for v, s, n in [("box.mp4", 0.0, "#C C picks up a box"), ("cup.mp4", 1.0, "#C C lifts the cup"),
                            ("box.mp4", 4.0, "#C C opens the box")]]
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    out = tmp_path / "lavila.zarr"
    r = cli("extract", "--videos", tmp_path / "manifest.csv", "--out", out, "--encoder", f"lavila:{ckpt}",
            "--text-encoder", f"lavila:{ckpt}", "--frames", FRAMES, "--workers", 0)
    assert r.code == 0, r.err
    with Store.open(out) as s:
        feats, text, meta, frames = s.features().astype(np.float32), s.text(), s.meta, s.frames
    assert feats.shape == (3, 1, EMBED)
    assert frames == 1
    # The same clips, decoded and cropped the way extract does, through the reference.
    enc = get_visual_encoder(f"lavila:{ckpt}")
    from rosetta_cli.encoders.base import resize_crop

    clips = np.stack([resize_crop(read_clip(row["video"], row["start"], row["end"], frames=FRAMES), enc.preprocess)
                      .numpy() for row in rows])
    with torch.no_grad():
        want = ref.encode_image(ref_input(clips)).numpy()
    np.testing.assert_allclose(feats[:, 0], want, rtol=2e-2, atol=2e-2)  # fp16 storage
    cos = (feats[:, 0] * want).sum(1) / np.linalg.norm(feats[:, 0], axis=1) / np.linalg.norm(want, axis=1)
    assert (cos > 0.999).all()
    assert meta["encoder"]["name"] == f"lavila:{ckpt.resolve()}"
    assert meta["encoder"]["clip_level"]
    assert meta["text_encoder"]["name"] == f"lavila:{ckpt.resolve()}"
    assert text.shape == (3, EMBED)
    assert np.allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-4)


def test_bad_checkpoints_fail_with_one_line(ckpt, tmp_path, cli):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError) as e:
        get_visual_encoder(f"lavila:{truncated}")
    assert "not a loadable checkpoint" in e.value.one_line()
    assert "\n" not in e.value.one_line()

    wrong = tmp_path / "wrong.pth"
    torch.save({"state_dict": nn.Linear(3, 4).state_dict(), "args": argparse.Namespace(model="x")}, wrong)
    with pytest.raises(CheckpointError) as e:
        get_visual_encoder(f"lavila:{wrong}")
    assert "not a LaViLa dual-encoder checkpoint" in e.value.one_line()
    assert "visual.temporal_embed" in str(e.value)

    bare = tmp_path / "bare.pth"
    torch.save(nn.Linear(3, 4).state_dict(), bare)
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        get_visual_encoder(f"lavila:{bare}")

    with pytest.raises(InputNotFound):
        get_visual_encoder(f"lavila:{tmp_path / 'absent.pth'}")
    with pytest.raises(UsageError, match="expected lavila:CKPT"):
        get_visual_encoder("lavila:")

    r = cli("extract", "--videos", VIDEOS, "--out", tmp_path / "x.zarr", "--encoder", f"lavila:{truncated}")
    assert r.code == 2
    assert "not a loadable checkpoint" in r.err
    assert "Traceback" not in r.err
    assert len([ln for ln in r.err.splitlines() if ln.strip()]) == 1


class Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_loading_never_unpickles_other_objects(ref, tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in ref.state_dict().items()},
                "args": argparse.Namespace(model="CLIP_OPENAI_TIMESFORMER_BASE"), "extra": Evil()}, evil,
               pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        get_visual_encoder(f"lavila:{evil}")
    assert "unpickled!" not in capsys.readouterr().out


def test_checkpoint_without_module_prefix_and_mismatched_shape(ref, tmp_path):
    plain = save_official(ref, tmp_path / "plain.pth", prefix="")
    enc = get_visual_encoder(f"lavila:{plain}")
    assert enc.encode_clips(random_clips(b=1)).shape == (1, 1, EMBED)
    sd = {"module." + k: v for k, v in ref.state_dict().items()}
    sd["module.visual.blocks.0.mlp.fc1.weight"] = torch.zeros(3, 3)
    torch.save({"state_dict": sd, "args": argparse.Namespace(model="CLIP_OPENAI_TIMESFORMER_BASE")},
               tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="does not match the model"):
        get_visual_encoder(f"lavila:{tmp_path / 'bad.pth'}")


def test_egovlp_video_tower_both_layouts(tmp_path):
    torch.manual_seed(2)
    visual = randomise(RefSpaceTime(ln_pre=False, act=nn.GELU))
    proj = nn.Linear(W, EMBED)
    own = {**{f"module.video_model.{k}": v for k, v in visual.state_dict().items()},
           **{f"module.vid_proj.0.{k}": v for k, v in proj.state_dict().items()},
           "module.txt_proj.1.weight": torch.zeros(EMBED, 768)}
    converted = {k.replace("video_model", "visual").replace("vid_proj", "image_projection")
                 .replace("txt_proj", "text_projection"): v.half() for k, v in own.items()}
    torch.save({"epoch": 0, "state_dict": own}, tmp_path / "egovlp.pth")
    torch.save({"epoch": 0, "state_dict": converted, "best_acc1": 0}, tmp_path / "egovlp_converted_f16.pth")
    clips = random_clips(b=2, seed=5)
    x = torch.as_tensor(clips).float().div(255).permute(0, 4, 1, 2, 3)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        want = proj(visual((x - mean) / std)).numpy()
    got = get_visual_encoder(f"egovlp:{tmp_path / 'egovlp.pth'}").encode_clips(clips)
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-4, atol=1e-4)
    half = get_visual_encoder(f"egovlp:{tmp_path / 'egovlp_converted_f16.pth'}").encode_clips(clips)
    np.testing.assert_allclose(half[:, 0], want, rtol=0.05, atol=0.05)  # fp16 weights, fp32 compute
    with pytest.raises(CheckpointError, match="not an EgoVLP checkpoint"):
        torch.save({"state_dict": {"module.x": torch.zeros(1)}}, tmp_path / "x.pth")
        get_visual_encoder(f"egovlp:{tmp_path / 'x.pth'}")


def test_registry_lists_lavila_and_egovlp():
    from rosetta_cli.encoders import list_encoders

    rows = [(e["name"], e["kind"]) for e in list_encoders()]
    assert ("lavila:CKPT", "visual") in rows
    assert ("lavila:CKPT", "text") in rows
    assert ("egovlp:CKPT", "visual") in rows


def softmax_var_attention(attn, x, frames: int, over: str):
    """The hand-written divided attention that `VarAttention` used before scaled_dot_product_attention
    (explicit scale, softmax, matmul), kept as the reference: x [B, 1 + F*N, D] → [B, 1 + F*N, D]."""
    b, length, d = x.shape
    n, h = (length - 1) // frames, attn.heads
    q, k, v = (t.reshape(b, length, h, -1).transpose(1, 2) for t in attn.qkv(x).chunk(3, -1))
    q = q * (d // h) ** -0.5
    cls_out = torch.softmax(q[:, :, :1] @ k.transpose(-1, -2), -1) @ v

    def groups(t):
        t = t[:, :, 1:].reshape(b, h, frames, n, -1)
        return t if over == "space" else t.transpose(2, 3)

    qg, kg, vg = groups(q), groups(k), groups(v)
    g = qg.shape[2]
    kg = torch.cat([k[:, :, None, :1].expand(-1, -1, g, -1, -1), kg], 3)
    vg = torch.cat([v[:, :, None, :1].expand(-1, -1, g, -1, -1), vg], 3)
    out = torch.softmax(qg @ kg.transpose(-1, -2), -1) @ vg
    if over == "time":
        out = out.transpose(2, 3)
    out = torch.cat([cls_out, out.reshape(b, h, frames * n, -1)], 2)
    return attn.proj(out.transpose(1, 2).reshape(b, length, d))


@pytest.mark.parametrize("over", ["space", "time"])
def test_sdpa_attention_equals_the_softmax_it_replaced(over):
    """fp32: equal within float rounding; bf16 autocast: within bf16's precision of the fp32 reference."""
    from rosetta_cli.encoders.lavila import _modules

    torch.manual_seed(0)
    attn = _modules()["VarAttention"](96, 4).eval()
    x = torch.randn(3, 1 + 4 * 9, 96) * 2  # B=3, F=4 frames of N=9 patches, D=96, 4 heads
    with torch.no_grad():
        ref, got = softmax_var_attention(attn, x, 4, over), attn(x, 4, over)
        assert torch.allclose(got, ref, atol=1e-5, rtol=1e-5), (got - ref).abs().max()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = attn(x, 4, over).float()
    assert (low - ref).abs().max() <= 0.05 * ref.abs().max(), (low - ref).abs().max()
    assert not torch.allclose(attn(x, 1, "space" if over == "time" else "time"), ref)  # the check can fail
