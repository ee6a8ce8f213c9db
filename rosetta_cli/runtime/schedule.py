"""Learning-rate schedule and weight EMA, one definition each, from diffusers.

Both trainers (rst, contrastive) use `warmup_cosine`: linear warmup over `warmup` steps, then a
half cosine to 0 at `total` (diffusers' get_cosine_schedule_with_warmup, a torch LambdaLR whose
state_dict resumes it exactly). `ema` wraps diffusers' EMAModel with its (1+s)/(10+s) warmup, so a
short run still gets a useful average. `adamw` is the optimizer both use (fused on CUDA).
"""

from __future__ import annotations


def warmup_cosine(optimizer, warmup: int, total: int):
    """A LambdaLR stepping once per optimisation step; warmup, total: steps (warmup > total: warmup only)."""
    from diffusers.optimization import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=total)


def ema(parameters, decay: float):
    """diffusers EMAModel over `parameters` (shadow copies, float32 for float32 params), updated with
    foreach kernels (one launch per op for all tensors, not one per parameter)."""
    from diffusers.training_utils import EMAModel

    return EMAModel(parameters, decay=decay, use_ema_warmup=False, foreach=True)


def adamw(params, device: str, **kw):
    """torch AdamW, fused on CUDA (one kernel for all parameters, step counts kept on the device, so
    no host sync), foreach elsewhere (the CPU: bit-reproducible, as the tests check). kw: lr, weight_decay,
    or parameter groups in `params`."""
    import torch

    fast = {"fused": True} if str(device).startswith("cuda") else {"foreach": True}
    return torch.optim.AdamW(params, **kw, **fast)
