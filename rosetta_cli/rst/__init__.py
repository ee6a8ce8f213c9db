"""Stage 2: the Rosetta Stone Translator (RST), a conditional diffusion model ego → exo in feature space.

  models.py     DiT-style denoiser eps_theta(z_t, t, z_ego) and the regression-MLP baseline; size registry
  diffusion.py  diffusers DDPM schedule, epsilon-MSE loss, DDPM/DDIM samplers with classifier-free guidance
  data.py       synchronized ego/exo pairs from paired stores, held-out split by take, normalisation, streaming
  train.py      `rosetta train-rst`: AdamW + warmup/cosine, EMA, DDP, exact resume, validation
  ckpt.py       checkpoint config and `Translator` (load an RST directory and translate features)
  translate.py  `rosetta translate`: ego store → translations store (resumable, shardable)
"""
