"""Fair pretraining (issue #12): equal step budgets, same-moment negatives masked, no benchmark rows
in the PCA init, narration-less clips out of L_vt, nested --unpaired-fraction subsets."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from rosetta_cli.contrastive import data
from rosetta_cli.contrastive import losses
from rosetta_cli.contrastive.config import ModelConfig, PretrainConfig
from rosetta_cli.contrastive.model import build_model
from rosetta_cli.synthetic.pretrain_world import World, make_paired, make_unpaired
from rosetta_cli.contrastive.train import Part, Trainer, compute_losses
from rosetta_cli.contrastive.train import run as pretrain
from rosetta_cli.errors import UsageError
from rosetta_cli.store import DONE, Store
from rosetta_cli.runtime.checkpoint import load_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------- helpers
def ref_masked(a, c, t, s, keys_a, keys_c, w=None, valid=None, drop_cols=None, extra=None, count=None):
    """Loop reference: sum over valid anchors of w_i * (lse over the allowed set - target logit), divided by
    `count` (default: the number of valid anchors). Allowed: j == t_i, or (key_c[j] != key_a[i] and j not
    dropped and, with extra = (keys2_a, keys2_c), keys2_c[j] != keys2_a[i])."""
    a, c = a.double().numpy(), c.double().numpy()
    total, n = 0.0, 0
    for i in range(len(a)):
        if valid is not None and not valid[i]:
            continue
        dropped = np.zeros(len(c), bool) if drop_cols is None else drop_cols
        other = (lambda j: True) if extra is None else (lambda j: extra[1][j] != extra[0][i])
        allowed = [j for j in range(len(c)) if j == t[i] or (keys_c[j] != keys_a[i] and not dropped[j] and other(j))]
        logits = [s * float(a[i] @ c[j]) for j in allowed]
        m = max(logits)
        lse = m + math.log(sum(math.exp(x - m) for x in logits))
        total += (1.0 if w is None else float(w[i])) * (lse - s * float(a[i] @ c[int(t[i])]))
        n += 1
    return total / (max(n, 1) if count is None else count)


def unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1)


def paired_store(path, takes=8, per_take=4, cams=2, dim=16, text_dim=8, split_of=None, no_text=(), nan_text=(),
                 feat=None, seed=0):
    """Synchronized store: per moment one ego row and `cams` exo rows sharing sync_id 't{t}/{m}'.
    split_of(take) → split; no_text / nan_text: moments whose ego narration is missing (zero / NaN
    embedding); feat(take, split, rng) → [D] feature of one row."""
    rng = np.random.default_rng(seed)
    rows, feats, text = [], [], []
    for t in range(takes):
        split = split_of(t) if split_of else "train"
        for m in range(per_take):
            sid = f"t{t}/{m}"
            for v in ["ego"] + ["exo"] * cams:
                moment = t * per_take + m
                narr = "" if (v == "ego" and moment in no_text) else f"step {moment % 5}"
                rows.append({"clip_id": f"{sid}/{v}{len(rows)}", "view": v, "sync_id": sid, "split": split,
                             "narration": narr, "label": f"k{moment % 5}"})
                feats.append(feat(t, split, rng) if feat else rng.standard_normal(dim))
                e = rng.standard_normal(text_dim)
                e = e / np.linalg.norm(e)
                if v == "ego" and moment in no_text:
                    e = np.zeros(text_dim)
                if v == "ego" and moment in nan_text:
                    e = np.full(text_dim, np.nan)
                text.append(e)
    s = Store.create(path, kind="features", clips=pd.DataFrame(rows), frames=1, dim=dim,
                     text_dim=text_dim if text_dim else None, chunk_rows=32)
    s.write_rows(0, features=np.asarray(feats)[:, None, :], text=np.asarray(text) if text_dim else None,
                 status=np.full(len(rows), DONE, np.uint8))
    s.finalize()
    return s


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fair")
    w = World(dim=16, frames=4, classes=8, seed=0)
    make_unpaired(w, root, 200, 200, seed=1, chunk_rows=64)
    make_paired(w, root / "paired.zarr", takes=10, per_take=8, seed=2, chunk_rows=64)
    return root


def cfg_for(root, out, **kw):
    base = dict(out=str(out), paired=str(root / "paired.zarr"), ego=str(root / "ego.zarr"), exo=str(root / "exo.zarr"),
                pairs=str(root / "pairs.zarr"), translated=str(root / "translated.zarr"), batch_size=32, dim=16,
                log_every=2, threads=1, monitor_max=64)
    base.update(kw)
    return PretrainConfig(**base)


def step_records(out):
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["type"] == "step"]


# ---------------------------------------------------------------------------- 2. masked InfoNCE
def test_masked_info_nce_hand_computed_three_anchors():
    """Anchors 0 and 1 share a moment (key 7), anchor 2 is alone (key 9). With a = I, logits = c.T."""
    logits = torch.tensor([[2.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 2.0]], dtype=torch.float64)
    a, c = torch.eye(3, dtype=torch.float64), logits.T.clone()
    t, keys = torch.arange(3), torch.tensor([7, 7, 9])
    mask = losses.same_moment_mask(keys, keys)
    assert mask.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    # row 0 drops j=1, row 1 drops j=0, row 2 keeps everything; targets stay
    want = ((-2 + math.log(math.exp(2) + math.exp(0)))
            + (-2 + math.log(math.exp(2) + math.exp(0.5)))
            + (-2 + math.log(math.exp(0) + math.exp(0.5) + math.exp(2)))) / 3
    assert float(losses.info_nce(a, c, t, 1.0, mask=mask)) == pytest.approx(want, rel=1e-12)
    unmasked = sum(-2 + math.log(sum(math.exp(x) for x in row)) for row in logits.tolist()) / 3
    assert float(losses.info_nce(a, c, t, 1.0)) == pytest.approx(unmasked, rel=1e-12)
    assert want < unmasked                                       # a removed false negative lowers the loss
    # a mask that covers everything still keeps each target: only the positive is left → loss 0
    assert float(losses.info_nce(a, c, t, 1.0, mask=torch.ones(3, 3, dtype=torch.bool))) == pytest.approx(0.0, abs=1e-12)
    # soft weights and left-out anchors: mean over valid anchors of w_i * term_i
    w = torch.tensor([0.5, 1.0, 1.0], dtype=torch.float64)
    valid = torch.tensor([True, False, True])
    t0 = -2 + math.log(math.exp(2) + math.exp(0))
    t2 = -2 + math.log(math.exp(0) + math.exp(0.5) + math.exp(2))
    got = losses.info_nce(a, c, t, 1.0, w, mask=mask, valid=valid)
    assert float(got) == pytest.approx((0.5 * t0 + t2) / 2, rel=1e-12)
    assert float(losses.info_nce(a, c, t, 1.0, w, mask=mask, valid=valid, count=4.0)) == pytest.approx((0.5 * t0 + t2) / 4)


@pytest.mark.parametrize("seed", range(3))
def test_masked_losses_match_loop_reference_with_gathered_candidates(seed):
    """Local anchors 4..7 of a global batch of 10 (rank 1 of a gathered set); random shared keys."""
    rng = np.random.default_rng(seed)
    a_all, b_all = unit(10, 6, seed), unit(10, 6, seed + 50)
    keys_all = torch.from_numpy(rng.integers(0, 4, 10))
    lo = slice(4, 8)
    a, b, keys, t = a_all[lo], b_all[lo], keys_all[lo], torch.arange(4) + 4
    w = torch.rand(4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    mask = losses.same_moment_mask(keys, keys_all)
    k_np, ka_np = keys.numpy(), keys_all.numpy()
    fwd = ref_masked(a, b_all, t, 5.0, k_np, ka_np, w)
    rev = ref_masked(b, a_all, t, 5.0, k_np, ka_np, w)
    got = losses.video_video_loss(a, b, t, 5.0, w, f_ego_all=a_all, f_exo_all=b_all, mask=mask)
    assert float(got) == pytest.approx(fwd, rel=1e-9)
    got = losses.video_video_loss(a, b, t, 5.0, w, f_ego_all=a_all, f_exo_all=b_all, mask=mask, symmetric=True)
    assert float(got) == pytest.approx(0.5 * (fwd + rev), rel=1e-9)
    got = losses.video_synthetic_loss(a, b, t, 5.0, f_ego_all=a_all, f_syn_all=b_all, mask=mask)
    assert float(got) == pytest.approx(ref_masked(a, b_all, t, 5.0, k_np, ka_np), rel=1e-9)


def test_video_text_loss_without_narrations_equals_loss_over_the_rest():
    """Leaving items out (valid + masked columns) gives exactly L_vt of the batch without them."""
    f, g = unit(6, 5, 1), unit(6, 5, 2)
    has = torch.tensor([True, False, True, True, False, True])
    t = torch.arange(6)
    off = ~has[None, :].expand(6, -1)
    for sym in (False, True):
        got = losses.video_text_loss(f, g, t, 4.0, mask=off, valid=has, symmetric=sym)
        sub = losses.video_text_loss(f[has], g[has], torch.arange(int(has.sum())), 4.0, symmetric=sym)
        assert float(got) == pytest.approx(float(sub), rel=1e-12)
    # the NaN-free gradient never reaches a left-out anchor
    fr = f.clone().requires_grad_(True)
    losses.video_text_loss(fr, g, t, 4.0, mask=off, valid=has).backward()
    assert torch.all(fr.grad[~has] == 0)
    assert fr.grad[has].abs().sum() > 0


def _part(ego, exo, text, has, key, syn=None, weight=None, exo_key=None):
    n = len(ego)
    exo_key = range(100, 100 + n) if exo_key is None else exo_key
    return Part(torch.from_numpy(ego), torch.from_numpy(exo), torch.ones(n, dtype=torch.float64) if weight is None else weight,
                None if text is None else torch.from_numpy(text), syn, torch.tensor(key), torch.tensor(list(exo_key)), has)


def test_compute_losses_masks_moments_and_skips_missing_narrations():
    """One batch: 4 paired items (moments A, A, B, C: one ego row, two exo cameras for A) and 2
    pseudo items that mined the same exo clip; items 1 and 4 have no narration.

    Checked against the loop reference: L_vv leaves out the same moment's other camera and the
    anchor's own exo clip mined for another query (the two pseudo items are not each other's
    negatives); L_vs sums over the 2 pseudo anchors and divides by all 6 anchors, as L_vv does
    (per sample, the paper's sum), not by the 2 it has."""
    torch.manual_seed(0)
    mcfg = ModelConfig(input_dim=8, frames=1, text_dim=4, dim=8, arch="mlp", init="orthogonal")
    model = build_model(mcfg, seed=0).double()
    rng = np.random.default_rng(0)
    z = lambda n: rng.standard_normal((n, 1, 8))                          # noqa: E731
    ego_a = z(1)
    paired = _part(np.concatenate([ego_a, ego_a, z(2)]), z(4), rng.standard_normal((4, 4)),
                   torch.tensor([True, False, True, True]), [0, 0, 1, 2], exo_key=[10, 11, 12, 13])
    paired.text[1] = 0.0
    pseudo = _part(z(2), z(2), rng.standard_normal((2, 4)), torch.tensor([False, True]), [-1, -6],
                   syn=torch.from_numpy(z(2)), weight=torch.tensor([0.5, 0.9], dtype=torch.float64), exo_key=[-8, -8])
    pseudo.text[0] = 0.0
    cfg = PretrainConfig(synthetic=True)
    out = {k: (v.detach() if v is not None else None) for k, v in compute_losses(model, [paired, pseudo], cfg, rank=0).items()}
    with torch.no_grad():
        f_ego = model.encode_video(torch.cat([paired.ego, pseudo.ego]))
        f_exo = model.encode_video(torch.cat([paired.exo, pseudo.exo]))
        g = model.encode_text(torch.cat([paired.text, pseudo.text]))
        f_syn = model.encode_video(pseudo.syn)
    keys = np.array([0, 0, 1, 2, -1, -6])
    s, t = float(model.logit_scale()), torch.arange(6)
    w = torch.tensor([1, 1, 1, 1, 0.5, 0.9], dtype=torch.float64)
    exo_ids = np.array([10, 11, 12, 13, -8, -8])
    assert float(out["l_vv"]) == pytest.approx(ref_masked(f_ego, f_exo, t, s, keys, keys, w, extra=(exo_ids, exo_ids)),
                                               rel=1e-9)
    # the exo-identity mask matters here: without it the two pseudo items would be each other's negatives
    assert float(out["l_vv"]) != pytest.approx(ref_masked(f_ego, f_exo, t, s, keys, keys, w), rel=1e-6)
    has = np.array([True, False, True, True, False, True])
    want_vt = ref_masked(f_ego, g, t, s, keys, keys, valid=has, drop_cols=~has)
    assert float(out["l_vt"]) == pytest.approx(want_vt, rel=1e-9)
    l_vs = ref_masked(f_ego[4:], f_syn, torch.arange(2), s, keys[4:], keys[4:], count=6)
    assert float(out["l_vs"]) == pytest.approx(l_vs, rel=1e-9)
    assert float(out["l_vs"]) == pytest.approx(ref_masked(f_ego[4:], f_syn, torch.arange(2), s, keys[4:], keys[4:]) * 2 / 6,
                                               rel=1e-9)
    # --no-moment-mask: the other camera of moment A is a negative again (the plain InfoNCE)
    plain = compute_losses(model, [paired, pseudo], PretrainConfig(mask_moments=False), rank=0)
    none = np.arange(6)
    assert float(plain["l_vv"].detach()) == pytest.approx(ref_masked(f_ego, f_exo, t, s, none, none, w), rel=1e-9)
    assert float(plain["l_vv"].detach()) > float(out["l_vv"])
    # nobody narrated: no L_vt term at all (not a loss against zero vectors)
    for p in (paired, pseudo):
        p.has_text = torch.zeros_like(p.has_text)
    assert compute_losses(model, [paired, pseudo], cfg, rank=0)["l_vt"] is None


def test_paired_items_key_moments_by_sync_id(tmp_path):
    s = paired_store(tmp_path / "p.zarr", takes=3, per_take=2, cams=2)
    items = data.paired_items(s, val_frac=0.0)
    sync = s.column("sync_id")
    assert len(items.ego_rows) == 12
    assert len(np.unique(items.keys)) == 6
    assert (items.keys >= 0).all()
    for i in range(12):
        for j in range(12):
            assert (items.keys[i] == items.keys[j]) == (sync[items.ego_rows[i]] == sync[items.ego_rows[j]])
    assert list(data.pseudo_keys(np.array([0, 3, 3]))) == [-1, -4, -4]   # negative: never a sync code


# ---------------------------------------------------------------------------- 1. equal budget
def test_same_steps_give_paired_only_and_mixed_runs_the_same_budget(world, tmp_path, cli):
    root = world
    r = cli("pretrain", "--paired", root / "paired.zarr", "--out", tmp_path / "vi", "--steps", 7, "--batch-size", 32,
            "--dim", 16, "--threads", 1, "--json")
    assert r.code == 0, r
    vi = json.loads(r.out)
    mixed = pretrain(cfg_for(root, tmp_path / "ours", steps=7)).to_dict()
    assert vi["steps_per_epoch"] != mixed["steps_per_epoch"]          # epochs would give different budgets
    for s, out in ((vi, tmp_path / "vi"), (mixed, tmp_path / "ours")):
        assert s["step"] == s["total_steps"] == 7
        assert s["batch_size"] == 32
        assert s["samples_seen"] == 224
        meta = json.loads((out / "config.json").read_text())
        assert meta["step"] == meta["total_steps"] == 7
        assert meta["train"]["steps"] == 7
        assert meta["train"]["batch_size"] == 32
        assert step_records(out)[-1]["step"] == 7
    # without --steps the budget follows the data: epochs x steps_per_epoch
    ep = pretrain(cfg_for(root, tmp_path / "ep", paired=None, epochs=2))
    assert ep.step == ep.total_steps == 2 * ep.steps_per_epoch


def test_steps_with_eval_interval_checkpoint_points_and_exact_resume(world, tmp_path):
    root = world
    kw = dict(steps=10, eval_every=4, learn_tau=True)
    pretrain(cfg_for(root, tmp_path / "full", **kw))
    epochs = [r for r in map(json.loads, (tmp_path / "full" / "metrics.jsonl").read_text().splitlines())
              if r["type"] == "epoch"]
    assert [r["step"] for r in epochs] == [0, 4, 8, 10]                # every 4 steps, and the last step
    pretrain(cfg_for(root, tmp_path / "part", **kw), stop_after_epochs=1)
    meta = json.loads((tmp_path / "part" / "config.json").read_text())
    assert meta["step"] == 4
    assert meta["total_steps"] == 10
    pretrain(replace(cfg_for(root, tmp_path / "part", **kw), resume=True))
    a, b = load_weights(tmp_path / "full"), load_weights(tmp_path / "part")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["loss"] for r in step_records(tmp_path / "full")] == [r["loss"] for r in step_records(tmp_path / "part")]
    with pytest.raises(UsageError, match="--steps"):
        pretrain(cfg_for(root, tmp_path / "bad", steps=0))


# ---------------------------------------------------------------------------- 3. PCA leak
def _pca_stores(tmp_path):
    """Train rows live in dims 0..7; test/val rows are huge along dim 15 (the last 4 takes)."""
    def feat(t, split, rng):
        x = np.zeros(16)
        if split == "train":
            x[:8] = rng.standard_normal(8)
        else:
            x[15] = 100.0
        return x

    split = lambda t: "train" if t < 6 else ("test" if t < 7 else "val")   # noqa: E731
    with_eval = paired_store(tmp_path / "with.zarr", takes=8, split_of=split, feat=feat)
    without = paired_store(tmp_path / "without.zarr", takes=6, feat=feat)
    return with_eval, without


def test_benchmark_rows_never_enter_the_pca_init(tmp_path):
    with_eval, without = _pca_stores(tmp_path)
    sample = data.pooled_sample(data.Sources(paired=with_eval), 4096, seed=0)
    train_rows = with_eval.trainable_mask()
    assert len(sample) == int(train_rows.sum()) == 6 * 4 * 3
    assert np.abs(sample[:, 8:]).max() == 0                               # no test/val row made it in
    np.testing.assert_array_equal(sample, data.pooled_sample(data.Sources(paired=without), 4096, seed=0))
    weights = []
    for store in (with_eval, without):
        cfg = PretrainConfig(out=str(tmp_path / f"m-{store.path.stem}"), paired=str(store.path), dim=4, batch_size=8,
                             threads=1, val_frac=0.0)
        weights.append(Trainer(cfg).model.video.proj.weight.detach().numpy())
    assert np.abs(weights[0][:, 15]).max() < 1e-6                       # the leaked direction would be the top PC
    np.testing.assert_allclose(weights[0], weights[1], atol=1e-6)


# ---------------------------------------------------------------------------- 4. narrations
def test_paired_only_run_trains_video_text_on_paired_narrations(world, tmp_path):
    pretrain(cfg_for(world, tmp_path / "vi", pairs=None, translated=None, steps=4))
    recs = step_records(tmp_path / "vi")
    assert recs
    assert all(r["l_vt"] is not None and np.isfinite(r["l_vt"]) for r in recs)


def test_paired_rows_without_narration_are_left_out_of_video_text(tmp_path):
    store = paired_store(tmp_path / "p.zarr", takes=8, per_take=4, no_text={0, 1, 2, 5, 9}, nan_text={3, 7})
    cfg = PretrainConfig(out=str(tmp_path / "m"), paired=str(store.path), dim=8, batch_size=16, steps=6, log_every=1,
                         threads=1, val_frac=0.0)
    s = pretrain(cfg)
    # 7 narration-less moments x 2 exo cameras = 14 of the 64 items
    assert any(n.startswith("14 of 64 paired items have no narration") for n in s.notes), s.notes
    recs = step_records(tmp_path / "m")
    assert len(recs) == 6
    assert all(np.isfinite(r["loss"]) and r["l_vt"] is not None for r in recs)
    for p in load_weights(tmp_path / "m").values():
        assert torch.isfinite(p).all()
    # what a batch gets: zeros + has_text False for zero and NaN rows, and the reader's array untouched
    raw = store.text(slice(0, 12))                                    # moments 0..3: ego rows 0, 3, 6, 9
    clean, has = data.narrated(raw)
    assert list(np.flatnonzero(~has)) == [0, 3, 6, 9]
    assert np.isnan(raw[9]).all()
    assert (clean[~has] == 0).all()
    assert np.array_equal(clean[has], raw[has])
    # no narration anywhere (all-zero text array): no L_vt term, still trains
    silent = paired_store(tmp_path / "q.zarr", takes=8, per_take=4, no_text=set(range(32)))
    s = pretrain(PretrainConfig(out=str(tmp_path / "q"), paired=str(silent.path), dim=8, batch_size=16, steps=2,
                                threads=1, val_frac=0.0))
    assert all(r["l_vt"] is None for r in step_records(tmp_path / "q"))
    assert s.step == 2


# ---------------------------------------------------------------------------- 5. unpaired fraction
def test_unpaired_subsets_are_nested_and_sized():
    rng = np.random.default_rng(0)
    q = np.concatenate([rng.permutation(1000)[:800], rng.permutation(1000)[:300]])   # top-2 for some queries
    uniq = np.unique(q)
    chosen = {}
    for f in (0.1, 0.25, 0.5, 0.75, 1.0):
        keep = data.unpaired_subset(q, 1000, f, seed=3)
        chosen[f] = set(q[keep])
        assert len(chosen[f]) == round(f * len(uniq))
        assert np.array_equal(keep, np.isin(q, list(chosen[f])))        # all pairs of a chosen query come along
    fs = sorted(chosen)
    assert all(chosen[a] < chosen[b] for a, b in zip(fs, fs[1:]))        # strictly nested
    assert chosen[0.5] == set(q[data.unpaired_subset(q, 1000, 0.5, seed=3)])  # deterministic
    assert chosen[0.5] != set(q[data.unpaired_subset(q, 1000, 0.5, seed=4)])  # and seeded
    # another pairs store over the same ego queries picks the same ego clips
    assert set(uniq[data.unpaired_subset(uniq, 1000, 0.25, seed=3)]) == chosen[0.25]


def test_unpaired_fraction_run_records_subset(world, tmp_path):
    s = pretrain(cfg_for(world, tmp_path / "q", steps=3, unpaired_fraction=0.5))
    assert s.items["pseudo"] == 100
    assert s.unpaired == {"fraction": 0.5, "queries": 100, "queries_all": 200}
    meta = json.loads((tmp_path / "q" / "config.json").read_text())
    assert meta["train"]["unpaired_fraction"] == 0.5
    assert meta["unpaired"]["queries"] == 100
    with pytest.raises(UsageError, match="unpaired-fraction"):
        pretrain(cfg_for(world, tmp_path / "bad", unpaired_fraction=0.0))
    with pytest.raises(UsageError, match="unpaired-fraction"):
        pretrain(cfg_for(world, tmp_path / "bad", pairs=None, translated=None, unpaired_fraction=0.5))
