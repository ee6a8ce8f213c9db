"""Shared training infrastructure: atomic checkpoints, chunk-shuffled streaming, torchrun helpers."""
