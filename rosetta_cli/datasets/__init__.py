"""Dataset manifest importers: turn a dataset folder into the list of clips to extract.

    from rosetta_cli.datasets import load_manifest
    m = load_manifest(Path("/data/egoexo4d"), exo_cams="best")   # dataset="auto"
    m.clips  # DataFrame with rosetta_cli.store.schema.CLIP_COLUMNS, one row per clip

Loaders (LOADERS; each module's docstring states its choices):
  folder    every video under a folder                                   role None
  csv       a manifest CSV (video,start,end,view,sync_id,narration,...) role None
  ego4d     narration.json, EgoVLP windows                               role "ego"
  egoexo4d  takes.json + keystep/proficiency annotations, synced groups  role "paired"
  htm-aa    htm_aa_v1.csv (or sentencified ASR: the released JSON or CSVs) role "exo"

Every annotation file is parsed and checked before load_manifest returns: a malformed
file raises AnnotationError naming the file, the entry and the field; a bad record inside
a good file is left out alone and listed in Manifest.skipped (strict=True raises it). A video the
annotations name but that is not on disk is not an error: its rows keep the expected
path and the extraction pipeline marks them failed (or pass missing="drop").
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

from rosetta_cli.datasets import csvfile, ego4d, egoexo4d, folder, htm_aa
from rosetta_cli.datasets.annot import find_files
from rosetta_cli.datasets.base import SKILLS, Manifest, finish
from rosetta_cli.datasets.videos import VIDEO_EXTS, is_video
from rosetta_cli.errors import AnnotationError, InputNotFound, UsageError

__all__ = ["LOADERS", "Manifest", "SKILLS", "VIDEO_EXTS", "detect_dataset", "load_manifest"]

LOADERS: dict[str, Callable[..., Manifest]] = {
    "folder": folder.load,
    "csv": csvfile.load,
    "ego4d": ego4d.load,
    "egoexo4d": egoexo4d.load,
    "htm-aa": htm_aa.load,
}
_ALIASES = {"ego-exo4d": "egoexo4d", "htm_aa": "htm-aa", "htmaa": "htm-aa", "manifest": "csv"}

# Marker files, in priority order, searched in root and up to 3 folder levels below it.
MARKERS = (
    (egoexo4d.ANNOTATION, "egoexo4d"),
    (ego4d.ANNOTATION, "ego4d"),
    (htm_aa.ANNOTATION, "htm-aa"),
    ("manifest.csv", "csv"),
)


def detect_dataset(root: Path) -> str:
    """The loader name for `root`.

    A file: takes.json -> egoexo4d, narration.json -> ego4d, htm_aa_v1.csv -> htm-aa,
    another .csv with a `video` column -> csv, a video -> folder.
    A folder: the first marker found (takes.json, narration.json, htm_aa_v1.csv,
    manifest.csv; in that priority, in root or up to 3 levels down), else folder.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InputNotFound(f"dataset path not found: {root}", hint="check the path")
    if root.is_file():
        return _detect_file(root)
    found = find_files(root, tuple(name for name, _ in MARKERS))
    return next((dataset for name, dataset in MARKERS if name in found), "folder")


def _detect_file(path: Path) -> str:
    for name, dataset in MARKERS[:3]:
        if path.name == name:
            return dataset
    if path.suffix.lower() == ".csv":
        from rosetta_cli.datasets.annot import read_csv

        read_csv(path, ("video",))  # raises AnnotationError naming the missing 'video' column
        return "csv"
    if is_video(path):
        return "folder"
    raise UsageError(f"cannot tell which dataset {path} is",
                     hint="pass a dataset folder, a manifest .csv, or dataset=<" + "|".join(LOADERS) + ">")


def load_manifest(
    root: Path,
    dataset: str = "auto",
    *,
    duration_fn: Callable[[Path], float | None] | None = None,
    strict: bool = False,
    **options,
) -> Manifest:
    """Load the clips of `root` with the named loader ("auto" = detect_dataset(root)).

    A bad annotation record (a keystep segment ending before it starts, a null timestamp, text or
    relative_path, ...) is left out and listed in `Manifest.skipped`, and the rest loads; with
    strict=True the first one raises AnnotationError instead, as a malformed file does.

    options: the loader's keyword options (see each module); options set to None mean
    "use the default" (convenient for CLI flags that were not given). duration_fn is
    passed to loaders that take it (folder) and ignored by the others.
    Returns a checked Manifest whose `options` holds every resolved option.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InputNotFound(f"dataset path not found: {root}", hint="check the path")
    name = detect_dataset(root) if dataset in (None, "auto") else _ALIASES.get(dataset.lower(), dataset.lower())
    if name not in LOADERS:
        raise UsageError(f"unknown dataset {dataset!r}", hint=f"choose one of auto, {', '.join(LOADERS)}")
    loader = LOADERS[name]
    params = inspect.signature(loader).parameters
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(params) - {"duration_fn"})
    if unknown:
        accepted = [p for p in params if p not in ("root", "duration_fn")]
        raise UsageError(f"option {unknown[0]!r} does not apply to dataset {name!r}",
                         hint=f"{name} accepts: {', '.join(accepted) or 'no options'}")
    if "duration_fn" in params:
        given["duration_fn"] = duration_fn
    manifest = loader(root, **given)
    if strict and manifest.skipped:
        first = manifest.skipped[0]
        more = f" (and {len(manifest.skipped) - 1} more bad record(s))" if len(manifest.skipped) > 1 else ""
        raise AnnotationError(first["error"] + more, hint=f"{first['hint']}; without --strict bad records are skipped")
    resolved = {k: p.default for k, p in params.items() if k not in ("root", "duration_fn")}
    resolved.update({k: v for k, v in given.items() if k != "duration_fn"})
    manifest.options = {"root": str(root.absolute()), "dataset": name,
                        **{k: _plain(v) for k, v in resolved.items()}, **manifest.options}
    return finish(manifest)


def _plain(v):
    """JSON-friendly option values for provenance."""
    return str(v) if isinstance(v, Path) else v
