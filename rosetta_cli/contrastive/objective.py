"""The objective of stage 4: one step's losses (L_vv, L_vt, L_vs and their total) on the local batch.

`compute_losses` embeds the `Part`s of a rank's batch and gathers candidates from every rank, so InfoNCE
negatives are global; `step_module` makes it one module's forward so DDP can average the gradients.
"""

from __future__ import annotations

from rosetta_cli.contrastive.batches import Part
from rosetta_cli.contrastive.config import PretrainConfig
from rosetta_cli.runtime import dist
from rosetta_cli.runtime.trainer import wrap_ddp

def compute_losses(model, parts: list[Part], cfg: PretrainConfig, rank: int, gather=None, gather_nograd=None) -> dict:
    """Embeds the local batch and returns {"loss", "l_vv", "l_vt", "l_vs"} (tensors; None if absent).

    gather: [n, d] → [world*n, d] with autograd (negatives from every rank); gather_nograd: the
    same for moment keys and narration flags. Both default to the identity (one process)."""
    import torch

    from rosetta_cli.contrastive import losses as L

    gather = gather or (lambda x: x)
    gather_nograd = gather_nograd or (lambda x: x)
    s, sym = model.logit_scale(), cfg.symmetric

    def pair(idx, a, b, fn, has=None, has_all=None, same_exo=False, **kw):
        """One InfoNCE over the parts `idx`: a, b [n, d] local rows, candidates gathered.

        same_exo: also leave out candidates showing the anchor's own exo clip (L_vv: an exo clip
        mined for several ego queries is the positive of one, not a negative of the others)."""
        n = len(a)
        tgt = torch.arange(n, device=a.device) + rank * n
        mask = None
        if cfg.mask_moments:
            keys = torch.cat([parts[i].key for i in idx])                    # [n]
            mask = L.same_moment_mask(keys, gather_nograd(keys))            # [n, m]
            if same_exo:
                xk = torch.cat([parts[i].exo_key for i in idx])               # [n]
                mask = mask | L.same_moment_mask(xk, gather_nograd(xk))
        if has is not None:  # clips without narration are neither anchors nor candidates of L_vt
            off = ~has_all[None, :].expand(n, -1)                          # [n, m]
            mask = off if mask is None else mask | off
            kw.update(valid=has, count=has_all.sum() * n / len(has_all))    # global count / world size
        return fn(a, b, tgt, s, f_ego_all=gather(a) if sym else a, symmetric=sym, mask=mask, **kw)

    every = list(range(len(parts)))
    ego = [model.encode_video(p.ego) for p in parts]
    f_ego, f_exo = torch.cat(ego), torch.cat([model.encode_video(p.exo) for p in parts])
    w = torch.cat([p.weight for p in parts])
    l_vv = pair(every, f_ego, f_exo, L.video_video_loss, weight=w, f_exo_all=gather(f_exo), same_exo=True)
    l_vt = l_vs = None
    with_text = [i for i, p in enumerate(parts) if p.text is not None]
    if with_text and model.text is not None:
        has = torch.cat([parts[i].has_text for i in with_text])
        has_all = gather_nograd(has)
        decided = parts[with_text[0]].text_any  # decided on the host (batches.global_text_any): no device read
        if decided if decided is not None else bool(has_all.any()):  # global, so every rank computes the same terms
            g = torch.cat([model.encode_text(parts[i].text) for i in with_text])
            l_vt = pair(with_text, torch.cat([ego[i] for i in with_text]), g, L.video_text_loss,
                        has=has, has_all=has_all, g_text_all=gather(g))
    with_syn = [i for i, p in enumerate(parts) if p.syn is not None]
    if with_syn and cfg.synthetic:
        f_syn = torch.cat([model.encode_video(parts[i].syn) for i in with_syn])
        # Per sample, as the paper's sum: L_vs's terms (pseudo-paired anchors only) are divided by
        # every anchor of the batch, as L_vv's are, so l2 keeps its weight whatever the batch mix.
        l_vs = pair(with_syn, torch.cat([ego[i] for i in with_syn]), f_syn, L.video_synthetic_loss,
                    f_syn_all=gather(f_syn), count=float(len(f_ego)))
    return {"loss": L.total_loss(l_vv, l_vt, l_vs, cfg.lambda1, cfg.lambda2), "l_vv": l_vv, "l_vt": l_vt, "l_vs": l_vs}


def step_module(model, cfg: PretrainConfig, info: dist.DistInfo, text_may_be_absent: bool = True):
    """compute_losses as one module's forward, wrapped in DDP under torchrun (DDP averages the gradients).

    The encoders run several times per step (ego, exo, text, translations), so DDP wraps this one
    forward rather than the model. find_unused_parameters (a DDP search of the graph every step) only when
    the text head may sit out a step: it has one and some training clip has no narration."""
    import torch

    class _Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, parts):
            d = info.distributed
            return compute_losses(self.model, parts, cfg, info.rank, gather=dist.gather_with_grad if d else None,
                                  gather_nograd=dist.gather_nograd if d else None)

    return wrap_ddp(_Step(), info, find_unused_parameters=model.text is not None and text_may_be_absent)
