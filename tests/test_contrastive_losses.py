"""Stage-4 losses vs a plain loop reference and hand-computed two-sample cases."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rosetta_cli.contrastive import losses


def ref_info_nce(a, c, t, s, w=None):
    """Loop reference: mean_i w_i * (logsumexp_j s a_i·c_j - s a_i·c_{t_i})."""
    a, c = a.double().numpy(), c.double().numpy()
    total = 0.0
    for i in range(len(a)):
        logits = [s * float(a[i] @ c[j]) for j in range(len(c))]
        m = max(logits)
        lse = m + math.log(sum(math.exp(x - m) for x in logits))
        total += (1.0 if w is None else float(w[i])) * (lse - logits[int(t[i])])
    return total / len(a)


def unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1)


@pytest.mark.parametrize("seed", range(4))
def test_info_nce_matches_loop_reference_with_global_candidates(seed):
    a, c = unit(5, 8, seed), unit(12, 8, seed + 100)     # 12 "gathered" candidates
    t = torch.tensor([3, 4, 5, 6, 7])                    # this rank's positives sit at offset 3
    w = torch.rand(5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    got = losses.info_nce(a, c, t, 1 / 0.07, w)
    assert float(got) == pytest.approx(ref_info_nce(a, c, t, 1 / 0.07, w), rel=1e-9)
    assert float(losses.info_nce(a, c, t, 2.0)) == pytest.approx(ref_info_nce(a, c, t, 2.0), rel=1e-9)


def test_two_sample_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    t = torch.tensor([0, 1])
    # logits with s = 1: [[1, 0], [0, 1]] → each term = log(1 + e^-1)
    base = math.log(1 + math.exp(-1))
    assert float(losses.info_nce(a, a, t, 1.0)) == pytest.approx(base)
    # soft weights scale each term; the mean is over anchors (not renormalised by sum w)
    w = torch.tensor([1.0, 0.5], dtype=torch.float64)
    assert float(losses.video_video_loss(a, a, t, 1.0, w)) == pytest.approx(0.75 * base)
    # swapped positives: each anchor's positive is orthogonal → log(1 + e)
    assert float(losses.info_nce(a, a, torch.tensor([1, 0]), 1.0)) == pytest.approx(math.log(1 + math.e))
    # tau = 0.5 (s = 2): log(1 + e^-2)
    assert float(losses.video_text_loss(a, a, t, 2.0)) == pytest.approx(math.log(1 + math.exp(-2)))


def test_named_losses_and_symmetric_variant():
    f_ego, f_exo = unit(6, 5, 1), unit(6, 5, 2)
    t = torch.arange(6)
    w = torch.linspace(0.2, 1.0, 6, dtype=torch.float64)
    fwd = ref_info_nce(f_ego, f_exo, t, 5.0, w)
    rev = ref_info_nce(f_exo, f_ego, t, 5.0, w)
    assert float(losses.video_video_loss(f_ego, f_exo, t, 5.0, w)) == pytest.approx(fwd)
    assert float(losses.video_video_loss(f_ego, f_exo, t, 5.0, w, symmetric=True)) == pytest.approx(0.5 * (fwd + rev))
    assert float(losses.video_synthetic_loss(f_ego, f_exo, t, 5.0)) == pytest.approx(ref_info_nce(f_ego, f_exo, t, 5.0))
    # with gathered sets, the reverse direction ranks the local exo against the global ego set
    ego_all = torch.cat([unit(3, 5, 9), f_ego])
    exo_all = torch.cat([unit(3, 5, 8), f_exo])
    got = losses.video_text_loss(f_ego, f_exo, t + 3, 5.0, f_ego_all=ego_all, g_text_all=exo_all, symmetric=True)
    want = 0.5 * (ref_info_nce(f_ego, exo_all, t + 3, 5.0) + ref_info_nce(f_exo, ego_all, t + 3, 5.0))
    assert float(got) == pytest.approx(want)


def test_totals():
    vv, vt, vs = torch.tensor(2.0), torch.tensor(4.0), torch.tensor(8.0)
    assert float(losses.total_loss(vv, vt, None, 0.25, 0.5)) == pytest.approx(0.25 * 2 + 0.75 * 4)       # L_paired
    assert float(losses.total_loss(vv, vt, vs, 0.25, 0.5)) == pytest.approx(0.25 * 2 + 0.75 * 4 + 4)     # L_pseudo
    assert float(losses.total_loss(vv, None, None, 0.5, 0.5)) == pytest.approx(1.0)                      # no text


def test_gradient_flows_to_both_views_and_weight_zero_silences_a_pair():
    a = unit(4, 3, 5).requires_grad_(True)
    c = unit(4, 3, 6).requires_grad_(True)
    w = torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    losses.video_video_loss(a, c, torch.arange(4), 3.0, w).backward()
    assert torch.all(a.grad[0] == 0)
    assert a.grad[1:].abs().sum() > 0
    assert c.grad.abs().sum() > 0
    assert np.isfinite(a.grad.numpy()).all()
