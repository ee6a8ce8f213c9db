"""Chunked feature stores (zarr v3 / HDF5), the contract between stages."""

from rosetta_cli.store.core import Store, open_store, parent_entry
from rosetta_cli.store.schema import DONE, FAILED, PENDING

__all__ = ["Store", "open_store", "parent_entry", "DONE", "FAILED", "PENDING"]
