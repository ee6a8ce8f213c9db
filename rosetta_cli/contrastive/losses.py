"""Stage-4 losses (docs: /work/shared/METHOD.md, "view-invariant dual encoder"), as small pure functions.

All inputs are embeddings that are already L2-normalised, so a dot product is the cosine
`sim` of METHOD.md, and `logit_scale` = 1 / tau. Cross-rank gathering is NOT done here
(see rosetta_cli.train.dist.gather_with_grad): callers pass the local anchors plus the
(possibly gathered, global) candidate set and the index of each anchor's positive in it.

    InfoNCE_i = -log[ exp(s * a_i·c_{t_i}) / sum_j exp(s * a_i·c_j) ]

Reduction: the mean over anchors of w_i * InfoNCE_i (w = 1 unless given). Soft weights
therefore scale each term, as in METHOD.md's L_vv; they are not renormalised by sum(w).

Symmetric variants (option `symmetric=True`, not in the paper) average the anchor→candidate
loss with the reverse direction (candidate→anchor, e.g. exo→ego), CLIP-style; soft weights
apply to the pair in both directions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(anchors: torch.Tensor, candidates: torch.Tensor, targets: torch.Tensor,
             logit_scale: torch.Tensor | float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted InfoNCE. anchors [b, d], candidates [m, d], targets [b] (long, index into m),
    weight [b] or None → scalar mean_i w_i * -log softmax_j(s * a_i·c_j)[t_i]."""
    logits = logit_scale * anchors @ candidates.T                      # [b, m]
    nll = F.cross_entropy(logits, targets, reduction="none")          # [b]
    if weight is not None:
        nll = weight * nll
    return nll.mean()


def symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, a_all: torch.Tensor, b_all: torch.Tensor,
                       targets: torch.Tensor, logit_scale, weight: torch.Tensor | None = None) -> torch.Tensor:
    """0.5 * (a→b_all + b→a_all). a, b [n, d] local; a_all, b_all [m, d] global; targets [n] into m."""
    return 0.5 * (info_nce(a, b_all, targets, logit_scale, weight) + info_nce(b, a_all, targets, logit_scale, weight))


def _pair_loss(a, b, a_all, b_all, targets, logit_scale, weight, symmetric):
    if symmetric:
        return symmetric_info_nce(a, b, a_all, b_all, targets, logit_scale, weight)
    return info_nce(a, b_all, targets, logit_scale, weight)


def video_video_loss(f_ego, f_exo, targets, logit_scale, weight=None, *, f_ego_all=None, f_exo_all=None,
                     symmetric: bool = False) -> torch.Tensor:
    """Soft L_vv: anchor f(v_ego) [n, d], positive f(v_exo); negatives = every exo in the (global) batch.

    weight [n]: w = narration similarity for pseudo-pairs, 1 for synchronized pairs.
    f_*_all [m, d]: gathered global sets (default: the local ones).
    """
    f_ego_all = f_ego if f_ego_all is None else f_ego_all
    f_exo_all = f_exo if f_exo_all is None else f_exo_all
    return _pair_loss(f_ego, f_exo, f_ego_all, f_exo_all, targets, logit_scale, weight, symmetric)


def video_text_loss(f_ego, g_text, targets, logit_scale, *, f_ego_all=None, g_text_all=None,
                    symmetric: bool = False) -> torch.Tensor:
    """L_vt: anchor f(v_ego) [n, d], positive g(n_ego) [n, d]; negatives = every narration in the batch."""
    f_ego_all = f_ego if f_ego_all is None else f_ego_all
    g_text_all = g_text if g_text_all is None else g_text_all
    return _pair_loss(f_ego, g_text, f_ego_all, g_text_all, targets, logit_scale, None, symmetric)


def video_synthetic_loss(f_ego, f_syn, targets, logit_scale, *, f_ego_all=None, f_syn_all=None,
                         symmetric: bool = False) -> torch.Tensor:
    """L_vs: anchor f(v_ego) [n, d], positive f(T(z_ego)) [n, d] (f applied to the RST translation);
    negatives = the translations of every ego clip in the batch."""
    f_ego_all = f_ego if f_ego_all is None else f_ego_all
    f_syn_all = f_syn if f_syn_all is None else f_syn_all
    return _pair_loss(f_ego, f_syn, f_ego_all, f_syn_all, targets, logit_scale, None, symmetric)


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
