"""`egoexo4d`: synchronized ego + exo clips from Ego-Exo4D (the paired set, and the benchmark).

Files (under root): takes.json (a list, or {"takes": [...]}); optional
annotations/proficiency_demonstrator_{train,val}.json and
annotations/atomic_descriptions_{train,val}.json, and keystep annotations in either form, each
looked for in annotations/, annotations/keystep_benchmark/, keystep_benchmark/ (first hit wins):
- the keystep benchmark's keystep_segment_{train,val}.json ({"segments": [{take_uid,
  start_time, end_time, label_id?, step_name?, ego_segment_name?, ...}]}) with label_mapping.csv
  (label_id, step_unique_id, step_name) in the same folder or in annotations/;
- the annotations part's keystep_{train,val}.json ({"annotations": {take_uid: {take_uid,
  take_name, segments: [{start_time, end_time, step_id, step_unique_id, step_name,
  step_description, is_essential, ...}]}}, "taxonomy": ..., "vocabulary": ...}).
Per split the benchmark form is used when present, else the full form (sync name
"<take_name>_<k>", k = the segment's index in its take).

Label space (option `label_space`, recorded as options["label_space_resolved"]):
- "benchmark": the keystep benchmark's classes, label_mapping.csv's step_name by the segment's
  label_id (benchmark form) or step_unique_id; a segment outside them keeps its rows unlabelled
  (counted in stats["segments_outside_label_space"]); the vocabulary is label_mapping's, in
  label_id order, and nothing else. Needs label_mapping.csv.
- "steps": every keystep's own step_name; the vocabulary is those names, sorted.
- "auto" (default): "benchmark" when label_mapping.csv is found, else "steps". Which file each
row came from is recorded in options["row_sources"]: [{"file", "form", "rows": [first, stop)}].

Cameras: the ego camera is the first (sorted) cam id starting with "aria" (stream
"rgb"); exo cameras are ids "camNN"/"gpNN" (stream "0"), sorted by number, except GoPros that the
capture marks egocentric: `is_ego` in the capture's camera list (captures.json next to takes.json,
[{capture_uid, cameras: [{cam_id, is_ego}]}], matched by the take's capture_uid, or a
`capture.cameras` list inside the take), which the official downloader reads to assign views. Those
are ego rows too, after the Aria one, and never counted among the exo cameras. Video file:
root/<root_dir>/frame_aligned_videos/downscaled/448/<name> (what the downloader's
downscaled_takes/448 part writes; preferred when both exist, as it decodes ~9x faster at 448 px and
the encoders resize to 224 px anyway), else root/<root_dir>/<relative_path>; if absent, a file with the same name under root/<root_dir>,
then under any folder of root named like the take (see _PathResolver); else the expected
path is kept (the pipeline marks the row failed) unless missing="drop".

Segments (option `segments`):
- "keystep": one group per keystep segment; split "train" from *_train.json, "test" from
  *_val.json; label = step_name (from label_mapping.csv by label_id when present).
- "take": one group per take over [task_start_sec, task_end_sec] (whole video when
  absent), or windows of `window`/`stride` seconds inside that span (for D_pair);
  split from the proficiency file that lists the take ("test" for val), else "train".
- "auto" (default): "keystep" when a keystep file exists, else "take".
Each group gives one ego row and the chosen exo rows, all with one sync_id
"{take_uid}/{ego_segment_name}" (keystep; the split and segment index when the name is
absent) or "{take_uid}" / "{take_uid}@<start>-<end>" (take). clip_id = "{sync_id}/{cam_id}".

Narrations (from atomic descriptions, when either file exists; otherwise rows have none):
`{"annotations": {take_uid: [{"annotation_uid", "annotator_id", "rejected", "reject_reason",
"descriptions": [{"text", "timestamp", "subject", "ego_visible", "unsure", "best_exo"}]}]}}`.
Rejected annotations are skipped. Flags (rejected, ego_visible, unsure) may be booleans, 0/1, "0"/"1"
or "true"/"false": the docs' own sample writes strings. Each group (the ego and exo rows of one keystep segment,
take or window) gets ONE description: among those whose timestamp lies in [start, end] (all
accepted annotations of the take), the ego_visible ones if there are any, the one nearest the
group's centre (ties: the earlier; a group with no end: the earliest). One sentence, not a
join of several, so paired narrations look like the one-sentence Ego4D/HTM narrations that the
same text encoder embeds. The camera wearer's leading subject is dropped as the Ego4D loader
drops "#C C": "C cuts the pepper" -> "cuts the pepper". Takes absent from takes.json are
counted in stats (descriptions_unknown_take), as are rejected annotations.

exo_cams: "all" | "best" (take's best_exo; the first exo cam when best_exo is absent or
unknown, counted in stats) | N (the first N exo cams sorted) | "cam01,cam03" (those ids).

Bad records (a keystep segment with end_time <= start_time or a null time or step name, a
description with a null text or timestamp, a camera stream without relative_path, a bad take
entry or proficiency entry) are left out alone and listed in Manifest.skipped (annot.skip).

Skill (proficiency_score -> "good"/"bad"; the paper does not publish its mapping):
- "expert-vs-novice" (default): Intermediate/Late Expert -> good; Novice/Early Expert -> bad
- "late-only": only Late Expert -> good, the rest bad
- "novice-only-bad": only Novice -> bad, the rest good
or a dict {level: "good"|"bad"|""}. Takes without a proficiency annotation get "".
"""

from __future__ import annotations

import bisect
import math
import re
from pathlib import Path

from rosetta_cli.datasets.annot import bad, find_file, get, read_csv, read_json, skip
from rosetta_cli.datasets.base import Manifest, clip_frame, unique_ids, vocab, window_id
from rosetta_cli.datasets.ego4d import check_missing
from rosetta_cli.datasets.folder import check_window, windows
from rosetta_cli.datasets.videos import list_videos
from rosetta_cli.errors import AnnotationError, InputNotFound, UsageError

ANNOTATION = "takes.json"
LEVELS = ("Novice", "Early Expert", "Intermediate Expert", "Late Expert")
SKILL_MAPS = {
    "expert-vs-novice": {"Novice": "bad", "Early Expert": "bad", "Intermediate Expert": "good", "Late Expert": "good"},
    "late-only": {"Novice": "bad", "Early Expert": "bad", "Intermediate Expert": "bad", "Late Expert": "good"},
    "novice-only-bad": {"Novice": "bad", "Early Expert": "good", "Intermediate Expert": "good", "Late Expert": "good"},
}
SPLITS = (("train", "train"), ("val", "test"))  # (file suffix, split name)
_EXO = re.compile(r"^(cam|gp)(\d+)$", re.IGNORECASE)


def load(
    root: Path,
    *,
    exo_cams: str | int = "all",
    skill_map: str | dict = "expert-vs-novice",
    segments: str = "auto",
    window: float | None = None,
    stride: float | None = None,
    missing: str = "keep",
    label_space: str = "auto",
) -> Manifest:
    """Synchronized ego/exo rows (see the module docstring)."""
    check_missing(missing)
    smap = resolve_skill_map(skill_map)
    takes_path = find_file(root, ANNOTATION) if root.is_dir() else root
    if takes_path is None:
        raise InputNotFound(f"no {ANNOTATION} under {root}", hint="pass the Ego-Exo4D root (with takes.json)")
    base = takes_path.parent
    skipped: list[dict] = []
    takes = parse_takes(takes_path, skipped)
    capture_sources = attach_is_ego(base, takes)
    ann = base / "annotations"
    keystep_files = find_keystep_files(base)
    mode = _mode(segments, keystep_files, window)
    stats: dict = {}
    skills, prof_split, prof_sources = _proficiency(ann, smap, takes, stats, skipped)
    map_path = _mapping_path(base, keystep_files)
    mapping, map_vocab = _label_mapping(map_path) if map_path else (None, [])
    space = resolve_label_space(label_space, mapping is not None)
    sources = [str(takes_path)] + capture_sources + prof_sources + ([str(map_path)] if mapping is not None else [])
    if mode == "keystep":
        groups = _keystep_groups(keystep_files, takes, mapping if space == "benchmark" else None, stats, skipped)
        sources += [str(p) for p, _, _ in keystep_files]
    else:
        groups = _take_groups(takes, prof_split, window, stride)
    syncs, _ = unique_ids([g["sync"] for g in groups])  # a repeated segment name must not merge groups
    for g, sync in zip(groups, syncs):
        g["sync"] = sync
    descs, desc_sources = _atomic_descriptions(ann, takes, stats, skipped)
    if desc_sources:
        attach_narrations(groups, descs, stats)
        sources += desc_sources
    rows = _rows(groups, takes, skills, exo_cams, base, root if root.is_dir() else base, missing, stats)
    ids, _ = unique_ids([r["clip_id"] for r in rows])
    clips = clip_frame(rows).assign(clip_id=ids)
    opts = {"segments_resolved": mode, "skill_map_resolved": smap, "label_space_resolved": space if mode == "keystep" else None,
            "row_sources": row_sources(rows, [str(Path(p).absolute()) for p, _, _ in keystep_files],
                                       [form for _, _, form in keystep_files])}
    return Manifest("egoexo4d", clips, role="paired",
                    labels=vocab(clips["label"], map_vocab if space == "benchmark" else []),
                    options=opts, sources=sources, stats=stats, skipped=skipped)


LABEL_SPACES = ("auto", "benchmark", "steps")


def resolve_label_space(label_space: str, have_mapping: bool) -> str:
    """"benchmark" (label_mapping.csv's classes) or "steps" (every keystep's step_name); auto = benchmark
    when label_mapping.csv is there."""
    if label_space not in LABEL_SPACES:
        raise UsageError(f"label_space must be one of {', '.join(LABEL_SPACES)}, got {label_space!r}")
    if label_space == "benchmark" and not have_mapping:
        raise InputNotFound("label_space='benchmark' needs the keystep benchmark's label_mapping.csv",
                            hint=f"put it next to the keystep files (in {', '.join(KEYSTEP_DIRS)}), "
                                 "or pass label_space='steps'")
    return label_space if label_space != "auto" else ("benchmark" if have_mapping else "steps")


def resolve_skill_map(skill_map) -> dict[str, str]:
    """A {level: 'good'|'bad'|''} dict from a preset name or a dict (every level must be mapped)."""
    if isinstance(skill_map, str):
        if skill_map not in SKILL_MAPS:
            raise UsageError(f"unknown skill_map {skill_map!r}", hint=f"choose one of {', '.join(SKILL_MAPS)} or pass a dict")
        return dict(SKILL_MAPS[skill_map])
    if not isinstance(skill_map, dict) or set(skill_map) != set(LEVELS) or not set(skill_map.values()) <= {"good", "bad", ""}:
        raise UsageError(f"skill_map must map each of {', '.join(LEVELS)} to 'good', 'bad' or ''")
    return dict(skill_map)


def parse_takes(path: Path, skipped: list[dict] | None = None) -> dict[str, dict]:
    """take_uid -> {name, root_dir, best_exo, start, end, cams{cam_id: relative_path}} (all validated).

    A bad take entry, or a camera stream without relative_path, is left out and recorded in
    `skipped` (annot.skip); without a `skipped` list it raises.
    """
    data = read_json(path)
    if isinstance(data, dict) and "takes" in data:
        data = data["takes"]
    if not isinstance(data, list):
        raise bad(path, None, "takes", f"must be a list of takes (or {{'takes': [...]}}), got {type(data).__name__}")
    takes = {}
    for i, t in enumerate(data):
        try:
            uid, take = _take(path, i, t, takes, skipped)
        except AnnotationError as e:
            if skipped is None:
                raise
            skip(skipped, e)
            continue
        takes[uid] = take
    return takes


def _take(path: Path, i: int, t, takes: dict, skipped) -> tuple[str, dict]:
    """(take_uid, parsed take) of takes.json entry i; AnnotationError when the entry is unusable."""
    at = f"entry {i}"
    uid = get(t, "take_uid", "str", path, at)
    at = f"entry {i} (take_uid {uid!r})"
    if uid in takes:
        raise bad(path, at, "take_uid", "repeats an earlier take", reason="'take_uid' repeats an earlier take")
    return uid, {
        "name": get(t, "take_name", "str", path, at),
        "root_dir": get(t, "root_dir", "str", path, at),
        "best_exo": get(t, "best_exo", "str", path, at, required=False),
        "start": get(t, "task_start_sec", "num", path, at, required=False),
        "end": get(t, "task_end_sec", "num", path, at, required=False),
        "capture_uid": _capture_uid(t),
        "is_ego": _embedded_is_ego(t),
        "cams": _cams(path, at, get(t, "frame_aligned_videos", "dict", path, at), skipped),
    }


def _cams(path: Path, at: str, fav: dict, skipped=None) -> dict[str, str]:
    """{cam_id: relative_path} for the ego (aria*, stream rgb) and exo (camNN/gpNN, stream 0) cameras.

    A camera stream without relative_path (null in some releases) is left out alone (recorded in
    `skipped`; raised without it)."""
    cams = {}
    for cam, streams in fav.items():
        stream = "rgb" if cam.lower().startswith("aria") else "0" if _EXO.match(cam) else None
        if stream is None:
            continue  # collage, audio-only or other non-camera entries
        field = f"frame_aligned_videos.{cam}"
        if not isinstance(streams, dict):
            raise bad(path, at, field, f"must be an object of streams, got {type(streams).__name__}")
        if stream in streams:
            try:
                cams[cam] = get(streams[stream], "relative_path", "str", path, at + f" {field}.{stream}")
            except AnnotationError as e:
                if skipped is None:
                    raise
                skip(skipped, e)
    return cams


def _capture_uid(t: dict) -> str | None:
    """The take's capture: `capture_uid`, or `capture.capture_uid` (both appear in takes.json)."""
    uid = t.get("capture_uid")
    cap = t.get("capture")
    if uid is None and isinstance(cap, dict):
        uid = cap.get("capture_uid")
    return uid if isinstance(uid, str) else None


def _embedded_is_ego(t: dict) -> dict[str, bool]:
    """{cam_id: is_ego} from a camera list inside the take (`capture.cameras`), where present."""
    cap = t.get("capture")
    return camera_flags(cap.get("cameras")) if isinstance(cap, dict) else {}


def camera_flags(cameras) -> dict[str, bool]:
    """{cam_id: is_ego} of a capture's `cameras` list ([{"cam_id", "is_ego", ...}]); entries without
    a readable flag are left out (their cameras keep the name rule)."""
    out = {}
    for cam in cameras if isinstance(cameras, list) else []:
        if isinstance(cam, dict) and isinstance(cam.get("cam_id"), str):
            flag = as_flag(cam.get("is_ego"))
            if flag is not None:
                out[cam["cam_id"]] = flag
    return out


CAPTURES = "captures.json"


def attach_is_ego(base: Path, takes: dict) -> list[str]:
    """Fill each take's {cam_id: is_ego} from captures.json next to takes.json (the capture's camera
    list, which the official downloader reads to label views); a flag inside the take wins. Files read."""
    path = base / CAPTURES
    if not path.is_file():
        return []
    data = read_json(path)
    caps = data.get("captures", data) if isinstance(data, dict) else data
    by_uid = {c["capture_uid"]: camera_flags(c.get("cameras")) for c in caps if isinstance(c, dict)
              and isinstance(c.get("capture_uid"), str)} if isinstance(caps, list) else {}
    for t in takes.values():
        t["is_ego"] = {**by_uid.get(t["capture_uid"], {}), **t["is_ego"]}
    return [str(path)]


def is_ego_cam(cam: str, flags: dict[str, bool]) -> bool:
    """Aria glasses are ego; a GoPro is ego when its capture says so (`is_ego`), else exo."""
    return flags.get(cam, cam.lower().startswith("aria"))


def ego_cam(cams: dict) -> str | None:
    aria = sorted(c for c in cams if c.lower().startswith("aria"))
    return aria[0] if aria else None


def exo_list(cams: dict, flags: dict[str, bool] | None = None) -> list[str]:
    """Exo cam ids sorted by (prefix, number): cam01 < cam02 < ... < gp01 (GoPros flagged is_ego left out)."""
    return sorted((c for c in cams if _EXO.match(c) and not (flags or {}).get(c, False)),
                  key=lambda c: (_EXO.match(c)[1].lower(), int(_EXO.match(c)[2])))


def ego_gopros(cams: dict, flags: dict[str, bool]) -> list[str]:
    """GoPros that the capture marks egocentric (is_ego), sorted: extra ego rows after the Aria one."""
    return sorted(c for c in cams if _EXO.match(c) and flags.get(c, False))


def choose_exo(exo_cams, exos: list[str], best: str | None, stats: dict) -> list[str]:
    """The exo cams to use for one take (see exo_cams in the module docstring)."""
    if exo_cams == "all":
        return exos
    if exo_cams == "best":
        if best in exos:
            return [best]
        stats["best_exo_fallback"] = stats.get("best_exo_fallback", 0) + 1
        return exos[:1]
    n = _as_int(exo_cams)
    if n is not None:
        if n < 1:
            raise UsageError(f"exo_cams must be >= 1, got {n}")
        return exos[:n]
    if isinstance(exo_cams, str) and exo_cams.strip():
        wanted = [c.strip() for c in exo_cams.split(",") if c.strip()]
        return [c for c in exos if c in wanted]
    raise UsageError(f"exo_cams must be 'all', 'best', a count or 'cam01,cam02', got {exo_cams!r}")


def _as_int(x) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, str) and re.fullmatch(r"-?\d+", x.strip()):
        return int(x)
    return None


KEYSTEP_DIRS = ("annotations", "annotations/keystep_benchmark", "keystep_benchmark")


def find_keystep_files(base: Path) -> list[tuple[Path, str, str]]:
    """[(path, split, form)] per split: the benchmark's keystep_segment_*.json ("segment") if any, else keystep_*.json ("full")."""
    out = []
    for suffix, split in SPLITS:
        for form, name in (("segment", f"keystep_segment_{suffix}.json"), ("full", f"keystep_{suffix}.json")):
            hit = next((base / d / name for d in KEYSTEP_DIRS if (base / d / name).is_file()), None)
            if hit is not None:
                out.append((hit, split, form))
                break
    return out


def _mapping_path(base: Path, keystep_files) -> Path | None:
    """label_mapping.csv next to the first keystep file, else in any keystep folder."""
    dirs = [p.parent for p, _, _ in keystep_files] + [base / d for d in KEYSTEP_DIRS]
    return next((d / "label_mapping.csv" for d in dirs if (d / "label_mapping.csv").is_file()), None)


def row_sources(rows: list[dict], files: list[str], forms: list[str]) -> list[dict]:
    """Contiguous row ranges per keystep file: [{"file", "form", "rows": [first, stop)}] (rows carry "_source")."""
    out: list[dict] = []
    for i, r in enumerate(rows):
        k = r.get("_source")
        if k is None:
            continue
        if out and out[-1]["_k"] == k and out[-1]["rows"][1] == i:
            out[-1]["rows"][1] = i + 1
        else:
            out.append({"_k": k, "file": files[k], "form": forms[k], "rows": [i, i + 1]})
    return [{key: v for key, v in o.items() if key != "_k"} for o in out]


def _mode(segments: str, keystep_files: list, window) -> str:
    if segments not in ("auto", "keystep", "take"):
        raise UsageError(f"segments must be 'auto', 'keystep' or 'take', got {segments!r}")
    mode = segments if segments != "auto" else ("keystep" if keystep_files else "take")
    if mode == "keystep" and not keystep_files:
        raise InputNotFound("segments='keystep' but no keystep_segment_{train,val}.json or keystep_{train,val}.json "
                            f"in {', '.join(KEYSTEP_DIRS)} next to takes.json")
    if mode == "keystep" and window is not None:
        raise UsageError("window applies to segments='take' only", hint="drop window, or pass segments='take'")
    return mode


def _proficiency(ann: Path, smap: dict, takes: dict, stats: dict, skipped: list[dict]) -> tuple[dict, dict, list[str]]:
    """take_uid -> skill, take_uid -> split, and the files read.

    Entries naming takes absent from takes.json (the real release has some) are counted in
    stats["proficiency_unknown_take"] and skipped.
    """
    stats["proficiency_unknown_take"] = 0
    skills, splits, sources = {}, {}, []
    for suffix, split in SPLITS:
        path = ann / f"proficiency_demonstrator_{suffix}.json"
        if not path.is_file():
            continue
        data = read_json(path)
        items = get(data, "annotations", "list", path, None)
        for i, a in enumerate(items):
            try:
                uid = get(a, "take_uid", "str", path, f"annotations[{i}]")
                score = get(a, "proficiency_score", "str", path, f"annotations[{i}]")
                if score not in smap:
                    raise bad(path, f"annotations[{i}]", "proficiency_score",
                              f"must be one of {', '.join(LEVELS)}, got {score!r}")
            except AnnotationError as e:
                skip(skipped, e)
                continue
            if uid not in takes:
                stats["proficiency_unknown_take"] += 1
                continue
            skills[uid], splits[uid] = smap[score], split
        sources.append(str(path))
    return skills, splits, sources


def _label_mapping(path: Path) -> tuple[dict | None, list[str]]:
    """{label_id: step_name, "uid:<step_unique_id>": step_name}, and the vocab ordered by label_id
    (None, [] when the file is absent)."""
    if not path.is_file():
        return None, []
    df = read_csv(path, ("label_id", "step_name"))
    ids = []
    for i, v in enumerate(df["label_id"].str.strip()):
        if not re.fullmatch(r"-?\d+", v):
            raise bad(path, f"row {i} (line {i + 2})", "label_id", f"must be an integer, got {v!r}")
        ids.append(int(v))
    mapping: dict = dict(zip(ids, df["step_name"].str.strip()))
    vocab_ = [mapping[k] for k in sorted(mapping)]
    if "step_unique_id" in df.columns:  # the full keystep form names steps by step_unique_id
        mapping.update({f"uid:{u.strip()}": n.strip() for u, n in zip(df["step_unique_id"], df["step_name"])})
    return mapping, vocab_


def _keystep_groups(files, takes: dict, mapping: dict | None, stats: dict, skipped: list[dict]) -> list[dict]:
    """One group {take, sync, start, end, label, split, source} per keystep segment (source: index into files).

    A bad segment (end_time <= start_time, a null time or step name) is left out alone (annot.skip)."""
    groups = []
    stats["segments_unknown_take"] = 0
    for k, (path, split, form) in enumerate(files):
        for at, s, name in _segment_list(path, form, split):
            try:
                g = _keystep_group(path, form, at, s, name, mapping)
            except AnnotationError as e:
                skip(skipped, e)
                continue
            if g["take"] not in takes:
                stats["segments_unknown_take"] += 1
                continue
            stats["segments_outside_label_space"] = stats.get("segments_outside_label_space", 0) + (not g["label"])
            groups.append({**g, "split": split, "source": k})
    return groups


def _keystep_group(path: Path, form: str, at: str, s: dict, name: str, mapping: dict | None) -> dict:
    """{take, sync, start, end, label} of one keystep segment; AnnotationError when it is unusable."""
    uid = get(s, "take_uid", "str", path, at) if form == "segment" else s["_take_uid"]
    start, end = get(s, "start_time", "num", path, at), get(s, "end_time", "num", path, at)
    if end <= start:
        raise bad(path, at, "end_time", f"must be greater than start_time ({start}), got {end}",
                  reason="end_time <= start_time")
    label = _label(path, at, s, mapping, form)
    if form == "segment":
        name = get(s, "ego_segment_name", "str", path, at, required=False) or name
    return {"take": uid, "sync": f"{uid}/{name}", "start": float(start), "end": float(end), "label": label}


def _segment_list(path: Path, form: str, split: str) -> list[tuple[str, dict, str]]:
    """[(where, segment, default sync name)] of one keystep file, in file order."""
    data = read_json(path)
    if form == "segment":
        return [(f"segments[{i}]", s, f"{split}{i}") for i, s in enumerate(get(data, "segments", "list", path, None))]
    out = []
    for uid, take in get(data, "annotations", "dict", path, None).items():
        at = f"annotations[{uid!r}]"
        tname = get(take, "take_name", "str", path, at, required=False) or uid
        for j, seg in enumerate(get(take, "segments", "list", path, at)):
            if not isinstance(seg, dict):
                raise bad(path, f"{at}.segments[{j}]", "segments", f"must hold objects, got {type(seg).__name__}")
            out.append((f"{at}.segments[{j}]", {**seg, "_take_uid": get(take, "take_uid", "str", path, at, required=False) or uid},
                        f"{tname}_{j}"))
    return out


def _label(path: Path, at: str, seg: dict, mapping: dict | None, form: str) -> str:
    """The segment's class. Steps space (mapping None): its step_name. Benchmark space: label_mapping's
    step_name for its label_id (benchmark form) or its step_unique_id, and "" for a step outside the
    benchmark's classes (the row stays, unlabelled, for pairs; counted in stats)."""
    if mapping is None:
        return get(seg, "step_name", "str", path, at).strip()
    label_id = get(seg, "label_id", "num", path, at, required=False) if form == "segment" else None
    if label_id is not None and int(label_id) in mapping:
        return mapping[int(label_id)]
    uid = seg.get("step_unique_id")
    return mapping.get(f"uid:{str(uid).strip()}", "") if uid is not None else ""


def _take_groups(takes: dict, prof_split: dict, window, stride) -> list[dict]:
    """One group per take (or per window of the task span)."""
    stride = check_window(window, stride)
    groups = []
    for uid, t in takes.items():
        start = float(t["start"]) if t["start"] is not None else 0.0
        end = float(t["end"]) if t["end"] is not None else math.nan
        common = {"take": uid, "label": "", "split": prof_split.get(uid, "train")}
        spans = None
        if window is not None and end > start:
            spans = [(start + s, start + e) for s, e in windows(end - start, window, stride)]
        if not spans:
            groups.append({**common, "sync": uid, "start": start, "end": end})
        else:
            groups += [{**common, "sync": window_id(uid, s, e), "start": s, "end": e} for s, e in spans]
    return groups


def _rows(groups, takes, skills, exo_cams, base: Path, search_root: Path, missing: str, stats: dict) -> list[dict]:
    """Ego + chosen exo rows per group, sharing the group's sync_id."""
    resolve = _PathResolver(base, search_root)
    chosen = {}
    rows = []
    for g in groups:
        t = takes[g["take"]]
        if g["take"] not in chosen:
            exos = choose_exo(exo_cams, exo_list(t["cams"], t["is_ego"]), t["best_exo"], stats)
            ego = ego_cam(t["cams"])
            chosen[g["take"]] = ([ego] if ego else []) + ego_gopros(t["cams"], t["is_ego"]) + exos
        for cam in chosen[g["take"]]:
            video, found = resolve(t["root_dir"], t["cams"][cam])
            if not found and missing == "drop":
                continue
            view = "ego" if is_ego_cam(cam, t["is_ego"]) else "exo"
            rows.append({"clip_id": f"{g['sync']}/{cam}", "video": video, "start": g["start"], "end": g["end"],
                         "view": view, "sync_id": g["sync"], "label": g["label"], "narration": g.get("narration", ""),
                         "skill": skills.get(g["take"], ""), "split": g["split"], "_source": g.get("source")})
    stats["videos_missing"] = resolve.missing
    stats["takes_without_ego"] = sum(1 for uid, c in chosen.items() if not any(is_ego_cam(x, takes[uid]["is_ego"]) for x in c))
    stats["ego_gopros"] = sum(len(ego_gopros(takes[uid]["cams"], takes[uid]["is_ego"])) for uid in chosen)
    return rows


_LEAD_C = re.compile(r"^\s*C\s+(?=\S)")  # "C cuts the pepper" -> "cuts the pepper" (the camera wearer)


def _atomic_descriptions(ann: Path, takes: dict, stats: dict, skipped: list[dict]) -> tuple[dict[str, list[tuple]], list[str]]:
    """take_uid -> [(timestamp, ego_visible, text)] sorted by time, from accepted annotations; files read."""
    descs: dict[str, list[tuple]] = {}
    sources = []
    for suffix, _ in SPLITS:
        path = ann / f"atomic_descriptions_{suffix}.json"
        if not path.is_file():
            continue
        sources.append(str(path))
        items = get(read_json(path), "annotations", "dict", path, None)
        for uid, anns in items.items():
            at = f"annotations[{uid!r}]"
            if not isinstance(anns, list):
                raise bad(path, at, "annotations", f"must map each take_uid to a list of annotations, got {type(anns).__name__}")
            if uid not in takes:
                stats["descriptions_unknown_take"] = stats.get("descriptions_unknown_take", 0) + 1
                continue
            for j, a in enumerate(anns):
                descs.setdefault(uid, []).extend(_annotation(path, f"{at}[{j}]", a, stats, skipped))
    for v in descs.values():
        v.sort(key=lambda d: d[0])
    return descs, sources


def _annotation(path: Path, at: str, a, stats: dict, skipped: list[dict]) -> list[tuple]:
    """(timestamp, ego_visible, cleaned text) of one annotator pass; [] when it was rejected.

    A bad annotation or description (a null text or timestamp, an unreadable flag) is left out alone."""
    try:
        rejected = _flag(a, "rejected", path, at, default=False)
        items = get(a, "descriptions", "list", path, at)
    except AnnotationError as e:
        skip(skipped, e)
        return []
    if rejected:
        stats["description_annotations_rejected"] = stats.get("description_annotations_rejected", 0) + 1
        return []
    out = []
    for k, d in enumerate(items):
        where_ = f"{at}.descriptions[{k}]"
        try:
            text = _LEAD_C.sub("", get(d, "text", "str", path, where_)).strip()
            t = float(get(d, "timestamp", "num", path, where_))
            visible = _flag(d, "ego_visible", path, where_, default=True)
        except AnnotationError as e:
            skip(skipped, e)
            continue
        if text:
            out.append((t, visible, text))
    return out


_TRUE, _FALSE = ("1", "true"), ("0", "false")


def as_flag(val) -> bool | None:
    """A flag as the releases write it: true/false, 1/0, "1"/"0", "true"/"false" (any case) -> bool;
    None for anything else (null included)."""
    if isinstance(val, bool):
        return val
    if isinstance(val, int) and val in (0, 1):
        return bool(val)
    if isinstance(val, str) and val.strip().lower() in _TRUE + _FALSE:
        return val.strip().lower() in _TRUE
    return None


def _flag(obj, key: str, path: Path, at: str, default: bool) -> bool:
    """A flag field (absent or null -> default); the Ego-Exo4D docs' own sample writes "1"/"0" strings."""
    if not isinstance(obj, dict):
        raise bad(path, at, key, f"cannot be read: the entry is {type(obj).__name__}, not an object")
    val = obj.get(key)
    if val is None:
        return default
    flag = as_flag(val)
    if flag is None:
        raise bad(path, at, key, f"must be true/false, 1/0, \"1\"/\"0\" or \"true\"/\"false\", "
                                 f"got {type(val).__name__} {str(val)[:40]!r}")
    return flag


def attach_narrations(groups: list[dict], descs: dict[str, list[tuple]], stats: dict) -> None:
    """Set each group's "narration" to its one description (the rule in the module docstring)."""
    missing = 0
    for g in groups:
        g["narration"] = pick_description(descs.get(g["take"], []), g["start"], g["end"])
        missing += not g["narration"]
    stats["groups_without_narration"] = missing


def pick_description(descs: list[tuple], start: float, end: float) -> str:
    """descs: [(timestamp, ego_visible, text)] sorted by time -> the text for clip [start, end] ("" if none)."""
    end = end if math.isfinite(end) else math.inf
    inside = [d for d in descs[bisect.bisect_left(descs, (start,)):] if d[0] <= end]
    if not inside:
        return ""
    visible = [d for d in inside if d[1]] or inside
    centre = (start + end) / 2 if math.isfinite(end) else start
    return min(visible, key=lambda d: (abs(d[0] - centre), d[0]))[2]


class _PathResolver:
    """Where a take's camera video is (cached per file).

    0. root/<root_dir>/<folder of relative_path>/downscaled/448/<name> (the downloader's
       downscaled_takes/448 part), preferred when it exists;
    1. root/<root_dir>/<relative_path>;
    2. else a file with that name anywhere under root/<root_dir> (e.g. a downscaled copy);
    3. else a file with that name anywhere under root whose path has a folder named like
       the take (the last part of root_dir): camera file names (cam01.mp4, aria01_214-1.mp4)
       repeat across takes, so another take's file is never picked;
    4. else the expected path of step 1, counted as missing.
    """

    def __init__(self, base: Path, search_root: Path):
        self.base, self.search_root = base, search_root
        self.by_name: dict[str, list[Path]] | None = None
        self.take_videos: dict[Path, list[Path]] = {}
        self.cache: dict[tuple, tuple[str, bool]] = {}
        self.missing = 0

    def __call__(self, root_dir: str, rel: str) -> tuple[str, bool]:
        key = (root_dir, rel)
        if key not in self.cache:
            path = self.base / root_dir / rel
            small = path.parent / "downscaled" / "448" / path.name
            alt = small if small.is_file() else path if path.is_file() else self._search(root_dir, Path(rel).name)
            self.missing += alt is None
            self.cache[key] = (str((alt or path).absolute()), alt is not None)
        return self.cache[key]

    def _search(self, root_dir: str, name: str) -> Path | None:
        take_dir = self.base / root_dir
        if take_dir not in self.take_videos:
            self.take_videos[take_dir] = list_videos(take_dir) if take_dir.is_dir() else []
        hits = [p for p in self.take_videos[take_dir] if p.name == name]
        if not hits:
            if self.by_name is None:
                self.by_name = {}
                for p in list_videos(self.search_root) if self.search_root.is_dir() else []:
                    self.by_name.setdefault(p.name, []).append(p)
            take = Path(root_dir).name
            hits = [p for p in self.by_name.get(name, []) if take in p.relative_to(self.search_root).parts[:-1]]
        return min(hits, key=lambda p: (len(p.parts), str(p))) if hits else None
