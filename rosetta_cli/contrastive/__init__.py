"""Stage 4: the view-invariant dual encoder (f_theta video head, g_psi text head) over frozen features.

  config.py   ModelConfig / PretrainConfig
  model.py    the heads (residual, identity-initialised → starts as a projection of pooled features)
  losses.py   soft video-video, video-text, video-synthetic InfoNCE and their totals
  data.py     pairs from the stores, input checks, deterministic chunk-shuffled item streams
  monitor.py  held-out cross-view retrieval each epoch
  train.py    the loop: AdamW + cosine, torchrun, atomic checkpoints, exact resume
  api.py      load_dual_encoder (public, for bench)
  embed.py    features store → embeddings store
"""
