"""The extraction stage: `run(ExtractConfig(...), progress) -> ExtractResult` → a features store."""

from rosetta_cli.extract.config import ExtractConfig
from rosetta_cli.extract.pipeline import ExtractResult
from rosetta_cli.extract.pipeline import run as run_extract  # not `run`: keep the name apart from submodules

__all__ = ["ExtractConfig", "ExtractResult", "run_extract"]
