"""Forward process, epsilon loss and samplers, driven by diffusers' DDPMScheduler / DDIMScheduler.

Shapes: features x0 [B, T, D] in normalised units (per-dim zero mean, unit variance); diffusers' schedulers
work on any tensor shape. The schedule (trailing timesteps, x0 clamped to the training data's range) is
saved in the RST checkpoint as diffusers configs and rebuilt with `from_config` (see scheduler_config).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rosetta_cli.rst.config import SAMPLERS  # noqa: F401  (re-exported: the sampler names)

# "trailing" (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", table 2):
# the first sampling step is the last training step, t = T - 1, so sampling starts from pure noise.
# diffusers' default "leading" starts DDIM-25 over T = 1000 at t = 960, a noise level the sampler's
# z_T ~ N(0, I) does not match. Checkpoints written before the schedule was saved sampled with "leading".
TIMESTEP_SPACING = "trailing"
LEGACY_SPACING = "leading"


def scheduler_config(train_steps: int, beta_schedule: str, spacing: str = TIMESTEP_SPACING,
                     clip_range: float | None = None) -> dict:
    """JSON config of the noise schedule and of both samplers, as saved in an RST checkpoint.

    clip_range: clamp each step's x0 prediction to [-clip_range, clip_range] (normalised units; training
    stores the largest |normalised exo| of its pairs). Why: the capped cosine schedule has
    abar_{T-1} ≈ 2e-9, and an epsilon-predicting model's x0 = (z - sqrt(1 - abar) eps) / sqrt(abar) multiplies
    its error by 1/sqrt(abar) ≈ 2e4 at t = T - 1; unclamped, a trailing DDIM-25 draw comes out ~85x too
    large (measured on tests/test_rst.py's synthetic world). None: no clamping (diffusers' clip_sample=False).
    → {"ddpm": DDPMScheduler config, "ddim": DDIMScheduler config}, diffusers' own keys minus its private
    "_..." bookkeeping; `scheduler_from_config` rebuilds the schedulers from it with `from_config`.
    """
    from diffusers import DDIMScheduler, DDPMScheduler

    shared = dict(num_train_timesteps=train_steps, beta_schedule=beta_schedule, prediction_type="epsilon",
                  timestep_spacing=spacing, clip_sample=clip_range is not None)
    if clip_range is not None:
        shared["clip_sample_range"] = float(clip_range)
    ddpm = DDPMScheduler(**shared)
    ddim = DDIMScheduler(**shared, set_alpha_to_one=False)  # the final step lands on abar_0, not on abar = 1
    return {"ddpm": _public(ddpm.config), "ddim": _public(ddim.config)}


def legacy_scheduler_config(train_steps: int, beta_schedule: str) -> dict:
    """What checkpoints without a saved scheduler config sampled with: leading spacing, no x0 clamping."""
    return scheduler_config(train_steps, beta_schedule, spacing=LEGACY_SPACING)


def _public(config) -> dict:
    return {k: v for k, v in dict(config).items() if not k.startswith("_")}


def scheduler_from_config(kind: str, config: dict):
    """The scheduler `kind` ('ddpm': training schedule and ancestral sampler, 'ddim') from a saved config."""
    from diffusers import DDIMScheduler, DDPMScheduler

    classes = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}
    if kind not in classes:
        raise ValueError(f"unknown sampler {kind!r}; choose from {SAMPLERS}")
    return classes[kind].from_config(config[kind])


def make_scheduler(kind: str, train_steps: int, beta_schedule: str, clip_range: float | None = None):
    """The training schedule (kind 'ddpm') or a sampler over the same betas ('ddim'), trailing spacing."""
    return scheduler_from_config(kind, scheduler_config(train_steps, beta_schedule, clip_range=clip_range))


def predict_eps(model, scheduler, x, t, ego, drop=None):
    """eps_theta(z_t, t, z_ego) = sqrt(1 - abar_t) z_t + F(z_t, t, z_ego).

    The first term is E[eps | z_t] for unit-variance data (the "c_skip" preconditioning of Karras et al.
    2022): it carries the full-rank part of the noise, so a denoiser narrower than D (F's output is a
    width-limited projection per token) only has to learn the condition-dependent residual.
    """
    abar = scheduler.alphas_cumprod.to(x.device)[t].to(x.dtype)               # [B]
    skip = (1 - abar).sqrt().view(-1, *([1] * (x.dim() - 1))) * x              # [B, T, D]
    return skip + model(x, t, ego, drop)


def step_generator(seed: int, step: int, rank: int, device="cpu") -> torch.Generator:
    """Noise of training step `step` on `rank`: a pure function of (seed, step, rank), so resume is exact.

    device: where the noise is drawn (a CUDA generator draws on the GPU: no host copy per step)."""
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + step) * 1009 + rank)


def diffusion_loss(model, scheduler, x0, ego, gen: torch.Generator, cond_drop: float):
    """L = E ||eps - eps_theta(z_t, t, z_ego)||^2 (Ho et al. 2020, eq. 14, the "simple" loss).

    x0 [B, T_exo, D] normalised exo; ego [B, T_ego, D] normalised ego; noise drawn from `gen` on its
    device (step_generator), then moved to x0's (a no-op when they match).
    """
    b, dev = x0.shape[0], gen.device
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=gen, device=dev)
    noise = torch.randn(x0.shape, generator=gen, device=dev)
    drop = torch.rand(b, generator=gen, device=dev) < cond_drop
    t, noise, drop = t.to(x0.device), noise.to(x0.device), drop.to(x0.device)
    xt = scheduler.add_noise(x0, noise, t)                                     # q(z_t | z_0), eq. 4
    eps = predict_eps(model, scheduler, xt, t, ego, drop)                      # [B, T_exo, D]
    return F.mse_loss(eps.float(), noise)


def regression_loss(model, x0, ego):
    """Baseline: plain MSE between the MLP's prediction and the true exo feature (normalised units)."""
    return F.mse_loss(model(ego).float(), x0)


def row_generators(seed: int, rows, k: int) -> list[torch.Generator]:
    """One generator per (row, draw): the noise of a row depends only on (seed, row, draw),
    never on the batch it lands in or the rank that computes it."""
    return [torch.Generator().manual_seed((seed * 1_000_003 + int(r)) * 131 + j) for r in rows for j in range(k)]


@torch.no_grad()
def sample(model, scheduler, ego, gens: list[torch.Generator], shape: tuple, steps: int,
           guidance: float = 1.0):
    """Reverse process from noise, conditioned on ego [B, T_ego, D] → x0 [B, *shape] (normalised).

    guidance g: eps = eps_uncond + g (eps_cond - eps_uncond) (classifier-free guidance, Ho & Salimans
    2022); g = 1 is the plain conditional model and needs one forward per step.
    """
    from diffusers.utils.torch_utils import randn_tensor

    dev = ego.device
    b = ego.shape[0]
    scheduler.set_timesteps(steps)
    x = randn_tensor((b, *shape), generator=gens, device=dev, dtype=torch.float32)  # z_T ~ N(0, I)
    for t in scheduler.timesteps:
        tt = torch.full((b,), int(t), device=dev, dtype=torch.long)
        eps = _guided_eps(model, scheduler, x, tt, ego, guidance)
        x = scheduler.step(eps, int(t), x, generator=gens).prev_sample          # p(z_{t-1} | z_t)
    return x


def _guided_eps(model, scheduler, x, t, ego, guidance: float):
    if guidance == 1.0:
        return predict_eps(model, scheduler, x, t, ego).float()
    b = x.shape[0]
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
    eps = predict_eps(model, scheduler, torch.cat([x, x]), torch.cat([t, t]), torch.cat([ego, ego]), drop).float()
    cond, uncond = eps[:b], eps[b:]
    return uncond + guidance * (cond - uncond)
