"""Learning-rate schedule and weight EMA, one definition each, from diffusers.

Both trainers (rst, contrastive) use `warmup_cosine`: linear warmup over `warmup` steps, then a
half cosine to 0 at `total` (diffusers' get_cosine_schedule_with_warmup, a torch LambdaLR whose
state_dict resumes it exactly). `ema` wraps diffusers' EMAModel with its (1+s)/(10+s) warmup, so a
short run still gets a useful average.
"""

from __future__ import annotations


def warmup_cosine(optimizer, warmup: int, total: int):
    """A LambdaLR stepping once per optimisation step; warmup, total: steps (warmup > total: warmup only)."""
    from diffusers.optimization import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=total)


def ema(parameters, decay: float):
    """diffusers EMAModel over `parameters` (shadow copies, float32 for float32 params)."""
    from diffusers.training_utils import EMAModel

    return EMAModel(parameters, decay=decay, use_ema_warmup=False)
