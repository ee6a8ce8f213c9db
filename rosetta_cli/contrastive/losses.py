"""Stage-4 losses (docs/method.md, "Stage 4"), as small pure functions.

All inputs are embeddings that are already L2-normalised, so a dot product is the cosine
`sim` of docs/method.md, and `logit_scale` = 1 / tau. Cross-rank gathering is NOT done here
(see rosetta_cli.runtime.dist.gather_with_grad): callers pass the local anchors plus the
(possibly gathered, global) candidate set and the index of each anchor's positive in it.

    InfoNCE_i = -log[ exp(s * a_i·c_{t_i}) / sum_j exp(s * a_i·c_j) ]

Reduction: the mean over anchors of w_i * InfoNCE_i (w = 1 unless given), or the sum divided by
`count`. Soft weights therefore scale each term, as in docs/method.md's L_vv; they are not
renormalised by sum(w). The trainer divides L_vs (pseudo-paired anchors only) by every anchor of the
batch (`count`), the paper's per-sample sum.

Symmetric variants (option `symmetric=True`, not in the paper) average the anchor→candidate
loss with the reverse direction (candidate→anchor, e.g. exo→ego), CLIP-style; soft weights
apply to the pair in both directions.

False negatives (`mask`): one ego clip appears once per exo camera among the synchronized
pairs, so the same moment's other camera (and the ego clip's own duplicate) would sit in the
denominator as a "negative". A boolean mask [b, m] (True = leave logit (i, j) out of the
softmax, i.e. set it to -inf) removes them; the target (i, t_i) is never masked. Masks built
from symmetric relations (same moment; candidate j left out) serve both directions of a
symmetric loss, since the reverse direction has the same (local i, global j) index layout.

Left-out anchors (`valid`): anchors with valid_i = False contribute nothing (e.g. a clip with
no narration in L_vt); `count` is the number of anchors the mean is over (default: the number
of valid local anchors). Under torchrun pass count = global valid anchors / world size, so the
rank-averaged gradient equals the gradient of the global mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def same_moment_mask(keys: torch.Tensor, keys_all: torch.Tensor) -> torch.Tensor:
    """[b] local moment keys, [m] (gathered) candidate keys → bool [b, m]: True where candidate j
    shows the same moment as anchor i (a false negative unless j is i's target)."""
    return keys[:, None] == keys_all[None, :]


def info_nce(anchors: torch.Tensor, candidates: torch.Tensor, targets: torch.Tensor,
             logit_scale: torch.Tensor | float, weight: torch.Tensor | None = None,
             mask: torch.Tensor | None = None, valid: torch.Tensor | None = None,
             count: torch.Tensor | float | None = None) -> torch.Tensor:
    """Weighted, masked InfoNCE. anchors [b, d], candidates [m, d], targets [b] (long, index into m),
    weight [b] or None, mask [b, m] bool or None (True → logit excluded; targets never are),
    valid [b] bool or None (False → anchor left out), count: divisor of the sum (default: #valid)
    → scalar sum_{i valid} w_i * -log softmax_{j unmasked}(s * a_i·c_j)[t_i] / count."""
    logits = logit_scale * anchors @ candidates.T                      # [b, m]
    if mask is not None:
        keep_target = F.one_hot(targets, logits.shape[1]).bool()      # [b, m]
        logits = logits.masked_fill(mask & ~keep_target, float("-inf"))
    nll = F.cross_entropy(logits, targets, reduction="none")          # [b]
    if weight is not None:
        nll = weight * nll
    if valid is None:
        return nll.mean() if count is None else nll.sum() / count
    nll = torch.where(valid, nll, torch.zeros_like(nll))             # where, not *: a left-out nll may be inf
    if count is None:
        count = valid.sum().clamp(min=1)
    return nll.sum() / count


def symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, a_all: torch.Tensor, b_all: torch.Tensor,
                       targets: torch.Tensor, logit_scale, weight: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None, valid: torch.Tensor | None = None,
                       count=None) -> torch.Tensor:
    """0.5 * (a→b_all + b→a_all). a, b [n, d] local; a_all, b_all [m, d] global; targets [n] into m;
    mask [n, m] (a symmetric relation: used for both directions), valid [n]."""
    kw = dict(mask=mask, valid=valid, count=count)
    return 0.5 * (info_nce(a, b_all, targets, logit_scale, weight, **kw)
                  + info_nce(b, a_all, targets, logit_scale, weight, **kw))


def _pair_loss(a, b, a_all, b_all, targets, logit_scale, weight, symmetric, mask=None, valid=None, count=None):
    if symmetric:
        return symmetric_info_nce(a, b, a_all, b_all, targets, logit_scale, weight, mask, valid, count)
    return info_nce(a, b_all, targets, logit_scale, weight, mask, valid, count)


def video_video_loss(f_ego, f_exo, targets, logit_scale, weight=None, *, f_ego_all=None, f_exo_all=None,
                     symmetric: bool = False, mask=None, valid=None, count=None) -> torch.Tensor:
    """Soft L_vv: anchor f(v_ego) [n, d], positive f(v_exo); negatives = every exo in the (global) batch
    except those of the anchor's own moment (mask [n, m]).

    weight [n]: w = narration similarity for pseudo-pairs, 1 for synchronized pairs.
    f_*_all [m, d]: gathered global sets (default: the local ones).
    """
    f_ego_all = f_ego if f_ego_all is None else f_ego_all
    f_exo_all = f_exo if f_exo_all is None else f_exo_all
    return _pair_loss(f_ego, f_exo, f_ego_all, f_exo_all, targets, logit_scale, weight, symmetric, mask, valid, count)


def video_text_loss(f_ego, g_text, targets, logit_scale, *, f_ego_all=None, g_text_all=None,
                    symmetric: bool = False, mask=None, valid=None, count=None) -> torch.Tensor:
    """L_vt: anchor f(v_ego) [n, d], positive g(n_ego) [n, d]; negatives = every narration in the batch.

    Clips without a narration are left out entirely: valid [n] = False for them as anchors, and
    mask [n, m] = True on their columns as candidates (so the loss equals L_vt over the rest)."""
    f_ego_all = f_ego if f_ego_all is None else f_ego_all
    g_text_all = g_text if g_text_all is None else g_text_all
    return _pair_loss(f_ego, g_text, f_ego_all, g_text_all, targets, logit_scale, None, symmetric, mask, valid, count)


def video_synthetic_loss(f_ego, f_syn, targets, logit_scale, *, f_ego_all=None, f_syn_all=None,
                         symmetric: bool = False, mask=None, valid=None, count=None) -> torch.Tensor:
    """L_vs: anchor f(v_ego) [n, d], positive f(T(z_ego)) [n, d] (f applied to the RST translation);
    negatives = the translations of every ego clip in the batch (bar the anchor's own moment)."""
    f_ego_all = f_ego if f_ego_all is None else f_ego_all
    f_syn_all = f_syn if f_syn_all is None else f_syn_all
    return _pair_loss(f_ego, f_syn, f_ego_all, f_syn_all, targets, logit_scale, None, symmetric, mask, valid, count)


def total_loss(l_vv: torch.Tensor, l_vt: torch.Tensor | None, l_vs: torch.Tensor | None,
               lambda1: float, lambda2: float) -> torch.Tensor:
    """L_paired = l1*L_vv + (1-l1)*L_vt;  L_pseudo = L_paired + l2*L_vs.

    A term that is None (no narrations; no translations / synthetic loss off) is left out
    with its weight; nothing is renormalised, so the loss keeps the paper's scale.
    """
    loss = lambda1 * l_vv
    if l_vt is not None:
        loss = loss + (1.0 - lambda1) * l_vt
    if l_vs is not None:
        loss = loss + lambda2 * l_vs
    return loss
