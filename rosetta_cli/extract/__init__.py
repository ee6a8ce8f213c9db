"""The extraction pipeline: `run_extract(ExtractConfig(...))` → a features store."""

from rosetta_cli.extract.config import ExtractConfig
from rosetta_cli.extract.pipeline import ExtractResult, Reporter, run_extract

__all__ = ["ExtractConfig", "ExtractResult", "Reporter", "run_extract"]
