"""The ground floor: torchrun/distributed set-up, atomic checkpoints, shard specs.

Imports nothing from the rest of rosetta_cli except `errors` and `provenance`.
"""
