"""`ego4d`: narrated ego clips from Ego4D's narration.json (EgoVLP-style windows).

narration.json: {video_uid: {"narration_pass_1": {"narrations": [{"timestamp_sec",
"timestamp_frame", "narration_text", "annotation_uid"}], "summaries": [...]},
"narration_pass_2": {...}}}. Videos are {video_uid}.<ext> anywhere under root
(e.g. v2/full_scale/), or LaViLa's 5-minute chunks {video_uid}.mp4/{start_sec}.mp4 (a clip then
reads its chunk, times relative to it; one that runs past the chunk's end is cut there, counted in
stats["clips_cut_at_chunk_end"]); a missing video keeps its rows (expected path) unless missing="drop".

Windows (EgoVLP): a narration at time t gives [t - beta/(2 alpha), t + beta/(2 alpha)],
where beta is the video's mean gap between consecutive narrations (timestamps sorted) and
alpha is the mean of beta over all videos of the file that have >= 2 narrations, so the
mean window is 1 s. Choices the paper leaves open, stated here:
- beta is computed over ALL narrations of the chosen pass (including '#unsure' ones), so
  keep_unsure does not move the other clips' windows; alpha over the whole file, so the
  windows do not depend on which videos are on disk.
- A video with a single narration, or whose narrations share one timestamp (beta = 0),
  takes beta = alpha: a 1 s window centred on t. If no video has two distinct
  timestamps (alpha undefined or 0), every window is 1 s.
- start is clipped at 0; end is not clipped (the duration is unknown here).

Text cleaning: the tags '#C' (camera wearer) and '#O' (other person) are removed
wherever they appear, and the camera wearer's subject letter after a leading '#C' too:
"#C C cuts the pepper" -> "cuts the pepper"; "#O man X holds a cup" -> "man X holds a cup";
"#C C gives #O X a knife" -> "gives X a knife". The bare-verb form matches the exo
narration style (HTM-AA "cut the pepper") that the mining step compares it with.
Narrations tagged '#unsure' are dropped unless keep_unsure=True (then the tag is removed).
Narrations empty after cleaning are dropped. Counts of drops are in Manifest.stats.

Passes (narration_pass): Ego4D has two independent narration passes, and some videos have
only one. 1 (default) takes pass 1 and, for a video without pass 1 (absent or empty), its
pass 2; only-1 takes pass 1 alone and drops videos without it; 2 and only-2 take pass 2 alone.
Manifest.stats counts videos_fallback_pass and videos_without_pass.

Clip ids: '{video_uid}/p{pass}/{index}' with the pass actually used and the narration's index in its list.
"""

from __future__ import annotations

import re
from pathlib import Path

from rosetta_cli.datasets.annot import bad, find_file, get, read_json, skip
from rosetta_cli.datasets.base import Manifest, clip_frame, unique_ids
from rosetta_cli.datasets.videos import VideoIndex
from rosetta_cli.errors import AnnotationError, InputNotFound, UsageError

ANNOTATION = "narration.json"
_LEAD_C = re.compile(r"^\s*#c\s+c\b\s*", re.IGNORECASE)  # "#C C cuts" -> "cuts"
_TAG = re.compile(r"#[co]\b\s*", re.IGNORECASE)  # any remaining #C / #O tag
_UNSURE = re.compile(r"#\s*unsure\b", re.IGNORECASE)


def clean_text(text: str) -> str:
    """Remove Ego4D tags (see the module docstring); whitespace collapsed."""
    text = _UNSURE.sub(" ", text)
    text = _LEAD_C.sub("", text)
    text = _TAG.sub("", text)
    return " ".join(text.split())


def is_unsure(text: str) -> bool:
    return bool(_UNSURE.search(text))


def load(
    root: Path,
    *,
    narration_pass: int | str = 1,
    keep_unsure: bool = False,
    split: str = "train",
    missing: str = "keep",
) -> Manifest:
    """Ego clips, one per narration of the chosen pass (with the fallback described above)."""
    order = pass_order(narration_pass)
    check_missing(missing)
    path = find_file(root, ANNOTATION) if root.is_dir() else root
    if path is None:
        raise InputNotFound(f"no {ANNOTATION} under {root}", hint="pass the Ego4D root (with v2/annotations/narration.json)")
    videos_root = root if root.is_dir() else root.parent
    data = read_json(path)
    if not isinstance(data, dict):
        raise bad(path, None, "<top level>", f"must be an object {{video_uid: ...}}, got {type(data).__name__}")
    skipped: list[dict] = []
    chosen = {uid: _choose_pass(path, uid, entry, order, skipped) for uid, entry in sorted(data.items())}
    used = {uid: c[0] for uid, c in chosen.items() if c is not None}
    per_video = {uid: c[1] for uid, c in chosen.items() if c is not None}
    betas = {uid: _beta([t for _, t, _ in n]) for uid, n in per_video.items()}
    alpha = _alpha(betas.values())
    index = VideoIndex(videos_root)
    rows, stats = [], {"videos_without_pass": len(data) - len(per_video), "unsure_dropped": 0, "empty_dropped": 0,
                       "videos_fallback_pass": sum(1 for p in used.values() if p != order[0])}
    stats["clips_cut_at_chunk_end"] = 0
    for uid, narrs in per_video.items():
        if missing == "drop" and not index.has(uid):
            continue
        whole = None if index.is_chunked(uid) else index.path(uid)  # path() counts a missing video once
        for i, t, text in _kept(narrs, keep_unsure, stats):
            half = _half_width(betas[uid], alpha)
            video, start, end, cut = whole, max(0.0, t - half), t + half, False
            if whole is None:
                video, start, end, cut = index.locate(uid, start, end)
            stats["clips_cut_at_chunk_end"] += cut
            rows.append({"clip_id": f"{uid}/p{used[uid]}/{i}", "video": str(video.absolute()), "start": start,
                         "end": end, "narration": text, "view": "ego", "split": split})
    ids, _ = unique_ids([r["clip_id"] for r in rows])  # uids are unique keys: a no-op safeguard
    clips = clip_frame(rows).assign(clip_id=ids)
    stats["videos_missing"] = index.missing
    opts = {"alpha": alpha, "annotation": str(path.absolute()), "narration_pass": str(narration_pass)}
    return Manifest("ego4d", clips, role="ego", options=opts, sources=[str(path)], stats=stats, skipped=skipped)


def _kept(narrs, keep_unsure: bool, stats: dict):
    """(index, t, cleaned text) of the narrations kept; counts drops in stats."""
    for i, t, text in narrs:
        if is_unsure(text) and not keep_unsure:
            stats["unsure_dropped"] += 1
            continue
        text = clean_text(text)
        if not text:
            stats["empty_dropped"] += 1
            continue
        yield i, t, text


PASS_CHOICES = ("1", "2", "only-1", "only-2")


def pass_order(narration_pass) -> tuple[int, ...]:
    """'1' → (1, 2): pass 1, else pass 2; 'only-1' → (1,); '2' / 'only-2' → (2,). Ints work as strings."""
    mode = str(narration_pass).strip().lower()
    if mode not in PASS_CHOICES:
        raise UsageError(f"narration_pass must be one of {', '.join(PASS_CHOICES)}, got {narration_pass!r}",
                         hint="1 prefers pass 1 and falls back to pass 2; only-1 keeps pass 1 alone")
    return (1, 2) if mode == "1" else (int(mode[-1]),)


def _choose_pass(path: Path, uid: str, entry, order: tuple[int, ...], skipped: list[dict]):
    """(pass used, narrations) for one video, or None if it has none of the passes in `order`.

    An absent or empty preferred pass gives way to the next one in `order`; an empty pass is
    still "present" (no rows, not counted as without pass) when no pass has narrations.
    """
    present = None
    for p in order:
        narrs = _narrations(path, uid, entry, f"narration_pass_{p}", skipped)
        if narrs:
            return p, narrs
        if narrs is not None and present is None:
            present = (p, narrs)  # an empty pass: used only if no other pass has narrations
    return present


def check_missing(missing: str) -> None:
    if missing not in ("keep", "drop"):
        raise UsageError(f"missing must be 'keep' or 'drop', got {missing!r}",
                         hint="keep = rows of absent videos stay (marked failed by extract); drop = skip them")


def _narrations(path: Path, uid: str, entry, key: str, skipped: list[dict]) -> list[tuple[int, float, str]] | None:
    """[(index in the pass list, timestamp_sec, text)] sorted by time; None if the video lacks this pass.

    A narration with a null or non-numeric timestamp_sec or text is left out alone (annot.skip)."""
    where = f"video '{uid}'"
    if not isinstance(entry, dict):
        raise bad(path, where, "<entry>", f"must be an object with narration passes, got {type(entry).__name__}")
    block = get(entry, key, "dict", path, where, required=False)
    if block is None:
        return None
    items = get(block, "narrations", "list", path, f"{where} {key}")
    out = []
    for i, n in enumerate(items):
        at = f"{where} {key}.narrations[{i}]"
        try:
            out.append((i, float(get(n, "timestamp_sec", "num", path, at)), get(n, "narration_text", "str", path, at)))
        except AnnotationError as e:
            skip(skipped, e)
    return sorted(out, key=lambda x: (x[1], x[0]))


def _beta(times: list[float]) -> float | None:
    """Mean gap between consecutive sorted timestamps; None for < 2 narrations or all equal."""
    if len(times) < 2:
        return None
    beta = (max(times) - min(times)) / (len(times) - 1)  # mean of consecutive gaps telescopes
    return beta if beta > 0 else None


def _alpha(betas) -> float | None:
    vals = [b for b in betas if b is not None]
    return sum(vals) / len(vals) if vals else None


def _half_width(beta: float | None, alpha: float | None) -> float:
    """beta/(2 alpha), with beta := alpha when beta is undefined (a 1 s window)."""
    if beta is None or alpha is None or alpha <= 0:
        return 0.5
    return beta / (2.0 * alpha)
