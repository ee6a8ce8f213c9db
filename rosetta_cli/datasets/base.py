"""The `Manifest` every dataset loader returns, and the helpers that build its clip table.

A manifest is the list of clips `rosetta extract` will decode: one row per clip with the
store's clip columns (rosetta_cli.store.schema.CLIP_COLUMNS). Times are float seconds into
the video file; `end` NaN means "to the end of the video". `label` and `skill` are strings
here ("" = none); the store turns them into codes with `Manifest.labels` / `SKILLS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rosetta_cli.errors import PipelineFailure
from rosetta_cli.store.schema import CLIP_COLUMNS, VIEWS

# Skill vocabulary in code order: code 0 = "bad", code 1 = "good".
SKILLS = ("bad", "good")

_STR_COLUMNS = ("clip_id", "video", "view", "sync_id", "narration", "label", "skill", "split")


@dataclass
class Manifest:
    """The clips of one dataset, ready for extraction.

    dataset: loader name ("folder", "csv", "ego4d", "egoexo4d", "htm-aa").
    clips: DataFrame with exactly CLIP_COLUMNS (see module docstring); clip_id unique.
    role: "paired" (egoexo4d), "ego" (ego4d), "exo" (htm-aa) or None (folder/csv).
    labels: ordered label vocabulary; every non-empty `clips.label` is in it.
    options: resolved loader options (defaults filled in), for provenance.
    sources: annotation files read (absolute paths).
    stats: counts of rows dropped or adjusted, by reason (e.g. "unsure_dropped").
    skipped: bad annotation records left out, each failing alone ({"file", "entry", "reason",
        "error"}, see annot.skip); `rosetta extract` lists them and exits 3.
    """

    dataset: str
    clips: pd.DataFrame
    role: str | None = None
    labels: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    def skipped_by_reason(self) -> dict[str, int]:
        """{"<file name>: <reason>": count} of the skipped records, most frequent first."""
        return count_skipped(self.skipped)


def count_skipped(records: list[dict]) -> dict[str, int]:
    """{"<file name>: <reason>": count} of skipped records, most frequent first (ties by name)."""
    counts: dict[str, int] = {}
    for r in records:
        key = f"{Path(r['file']).name}: {r['reason']}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def fmt_time(x: float) -> str:
    """Compact seconds for clip ids: 4.0 -> '4', 1.25 -> '1.25', NaN -> 'end'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "end"
    s = f"{float(x):.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def window_id(base: str, start: float, end: float) -> str:
    """'<base>@<start>-<end>' (the id of a time window of one video)."""
    return f"{base}@{fmt_time(start)}-{fmt_time(end)}"


def unique_ids(ids: list[str]) -> tuple[list[str], int]:
    """Make ids unique deterministically: the k-th repeat (k >= 1) of an id gets '#k'.

    Returns (ids, number of ids that were renamed).
    """
    seen: dict[str, int] = {}
    taken = set(ids)
    out, renamed = [], 0
    for cid in ids:
        k = seen.get(cid, 0)
        seen[cid] = k + 1
        if k == 0:
            out.append(cid)
            continue
        new = f"{cid}#{k}"
        while new in taken:  # a literal 'x#1' elsewhere in the list: keep counting
            k += 1
            new = f"{cid}#{k}"
        seen[cid] = k + 1
        taken.add(new)
        out.append(new)
        renamed += 1
    return out, renamed


def clip_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows (dicts with any subset of CLIP_COLUMNS) -> a clip table with every column and dtype.

    Missing string fields become "", a missing start 0.0 and a missing end NaN.
    """
    df = pd.DataFrame.from_records(rows, columns=list(CLIP_COLUMNS)) if rows else pd.DataFrame(columns=list(CLIP_COLUMNS))
    for col in _STR_COLUMNS:
        df[col] = df[col].where(df[col].notna(), "").astype(str)
    df["start"] = pd.to_numeric(df["start"], errors="coerce").fillna(0.0).astype("float64")
    df["end"] = pd.to_numeric(df["end"], errors="coerce").astype("float64")
    return df.reset_index(drop=True)


def finish(manifest: Manifest) -> Manifest:
    """Check the invariants every loader promises; a failure here is a loader bug, not bad input."""
    df = manifest.clips
    problems = []
    if list(df.columns) != list(CLIP_COLUMNS):
        problems.append(f"columns {list(df.columns)}")
    if df["clip_id"].duplicated().any():
        problems.append(f"duplicate clip ids {df['clip_id'][df['clip_id'].duplicated()].head(3).tolist()}")
    if len(df) and not df["view"].isin(VIEWS).all():
        problems.append("view outside ego/exo")
    if len(df) and not df["skill"].isin(("",) + SKILLS).all():
        problems.append("skill outside good/bad")
    missing = set(df["label"]) - set(manifest.labels) - {""}
    if missing:
        problems.append(f"labels not in the vocabulary: {sorted(missing)[:3]}")
    if problems:
        raise PipelineFailure(f"dataset loader '{manifest.dataset}' built an invalid manifest: {'; '.join(problems)}")
    manifest.sources = [str(Path(s).absolute()) for s in manifest.sources]
    return manifest


def vocab(labels, first: list[str] | None = None) -> list[str]:
    """An ordered vocabulary: `first` (deduplicated, order kept), then the other labels sorted."""
    out = list(dict.fromkeys(x for x in (first or []) if x))
    have = set(out)
    out += sorted({x for x in labels if x and x not in have})
    return out
