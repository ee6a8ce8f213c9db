"""RST sampling schedule: trailing timestep spacing (sampling starts at t = T - 1) and its saved config.

diffusers' default "leading" spacing starts DDIM-25 over T = 1000 at t = 960; trailing starts at 999 and
steps down by T / steps: 999, 959, ..., 39 (Lin et al. 2024, table 2). The checkpoint-level round trip
(save → load → identical config, timesteps and translations) is in tests/test_rst.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import diffusers  # noqa: F401  (a declared dependency: its absence is a failure, not a skip)
import torch

from rosetta_cli.rst.diffusion import (  # noqa: E402
    SAMPLERS, make_scheduler, sample, scheduler_config, scheduler_from_config)

BETAS = "squaredcos_cap_v2"


@pytest.mark.parametrize("kind", SAMPLERS)
@pytest.mark.parametrize("train_steps,steps", [(1000, 25), (1000, 50), (1000, 10), (100, 10), (500, 25)])
def test_first_timestep_is_the_last_training_step(kind, train_steps, steps):
    s = make_scheduler(kind, train_steps, BETAS)
    s.set_timesteps(steps)
    t = s.timesteps.numpy()
    assert t[0] == train_steps - 1
    # hand-computed trailing grid: T-1, T-1-T/steps, ..., T/steps - 1 (T/steps is an integer here)
    stride = train_steps // steps
    np.testing.assert_array_equal(t, np.arange(train_steps - 1, -1, -stride))
    assert len(t) == steps
    assert t[-1] == stride - 1


def test_ddim_25_over_1000_steps_exactly():
    s = make_scheduler("ddim", 1000, BETAS)
    s.set_timesteps(25)
    assert s.timesteps.tolist() == [999 - 40 * i for i in range(25)]
    assert s.config.timestep_spacing == "trailing"
    assert s.config.set_alpha_to_one is False
    leading = scheduler_from_config("ddim", scheduler_config(1000, BETAS, spacing="leading"))
    leading.set_timesteps(25)
    assert int(leading.timesteps[0]) == 960  # the schedule this fix replaces


def test_sampler_evaluates_the_model_first_at_t_max():
    """The reverse process really starts from t = T - 1: record the timesteps the denoiser is called with."""
    seen = []

    def model(x, t, ego, drop=None):  # [B, T, D] → zeros; records t [B]
        seen.append(t.tolist())
        return torch.zeros_like(x)

    gens = [torch.Generator().manual_seed(i) for i in range(3)]
    x = sample(model, make_scheduler("ddim", 1000, BETAS), torch.zeros(3, 1, 4), gens, (1, 4), steps=10)
    assert [s[0] for s in seen] == list(range(999, -1, -100))
    assert all(len(set(s)) == 1 for s in seen)
    assert x.shape == (3, 1, 4)
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("kind", SAMPLERS)
def test_scheduler_config_json_round_trip(kind):
    saved = scheduler_config(1000, BETAS)
    loaded = json.loads(json.dumps(saved))            # what config.json holds
    assert loaded == saved
    assert not any(k.startswith("_") for c in saved.values() for k in c)
    a, b = scheduler_from_config(kind, saved), scheduler_from_config(kind, loaded)
    assert {k: v for k, v in dict(b.config).items() if not k.startswith("_")} == saved[kind]
    torch.testing.assert_close(a.alphas_cumprod, b.alphas_cumprod, rtol=0, atol=0)
    for steps in (10, 25, 50):
        a.set_timesteps(steps)
        b.set_timesteps(steps)
        assert torch.equal(a.timesteps, b.timesteps)


def test_ddpm_and_ddim_share_the_noise_schedule():
    """Training (DDPM add_noise) and DDIM sampling must use the same abar_t."""
    c = scheduler_config(1000, BETAS)
    ddpm, ddim = scheduler_from_config("ddpm", c), scheduler_from_config("ddim", c)
    torch.testing.assert_close(ddpm.alphas_cumprod, ddim.alphas_cumprod, rtol=0, atol=0)
    # ddim's final step goes to abar_0 (set_alpha_to_one=False), not to a noise-free abar = 1
    assert float(ddim.final_alpha_cumprod) == pytest.approx(float(ddpm.alphas_cumprod[0]))


def test_unknown_sampler_is_rejected():
    with pytest.raises(ValueError, match="unknown sampler"):
        scheduler_from_config("euler", scheduler_config(1000, BETAS))
