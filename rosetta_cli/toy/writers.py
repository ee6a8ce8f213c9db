"""Annotation writers in the real dataset formats (Ego-Exo4D, Ego4D, HTM-AA) + world.json truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from rosetta_cli.toy.kitchen import kitchen_roles
from rosetta_cli.toy.plan import VideoPlan
from rosetta_cli.toy.spec import CLASSES, FPS, PROFICIENCY, SIZE, STEP_ID_BASE, Scale, step_name


def _dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")


def _rel(plan: VideoPlan, cam: str) -> str:
    """Path relative to the take's root_dir (Ego-Exo4D's frame_aligned_videos relative_path)."""
    return plan.files[cam].split(f"takes/{plan.name}/", 1)[1]


def take_entry(p: VideoPlan) -> dict:
    fav = {"aria01": {"rgb": {"relative_path": _rel(p, "aria01")}}}
    for cam in sorted(c for c in p.files if c.startswith("cam")):
        fav[cam] = {"0": {"relative_path": _rel(p, cam)}}
    return {"take_uid": p.uid, "take_name": p.name, "root_dir": f"takes/{p.name}", "best_exo": "cam01",
            "task_start_sec": p.ep.segments[0].start, "task_end_sec": p.ep.segments[-1].end,
            "scenario_name": "Cooking", "frame_aligned_videos": fav}


def keystep_segments(p: VideoPlan) -> list[dict]:
    return [{"ego_segment_name": f"{p.name}_{k}", "take_uid": p.uid, "take_name": p.name,
             "start_time": g.start, "end_time": g.end, "step_unique_id": STEP_ID_BASE + g.label_id,
             "label_id": g.label_id, "step_name": step_name(g.label_id)} for k, g in enumerate(p.ep.segments)]


def keystep_full(ps: list[VideoPlan]) -> dict:
    """The annotations part's keystep_{train,val}.json: {"annotations": {take_uid: {take_uid, take_name, segments}},
    "taxonomy", "vocabulary"} (the same segments as keystep_segment_*.json, in the full form's fields)."""
    takes = {}
    for p in ps:
        segs = [{"start_time": g.start, "end_time": g.end, "step_id": g.label_id,
                 "step_unique_id": STEP_ID_BASE + g.label_id, "step_name": step_name(g.label_id),
                 "step_description": step_name(g.label_id), "is_essential": True, "parent_id": None,
                 "parent_name": None, "is_relevant": "Essential"} for g in p.ep.segments]
        takes[p.uid] = {"take_uid": p.uid, "take_name": p.name, "scenario": "Cooking", "segments": segs}
    ids = sorted({g.label_id for p in ps for g in p.ep.segments})
    return {"annotations": takes,
            "taxonomy": {"Cooking": {str(STEP_ID_BASE + i): {"name": step_name(i), "id": STEP_ID_BASE + i} for i in ids}},
            "vocabulary": {str(STEP_ID_BASE + i): step_name(i) for i in ids}}


def proficiency_entry(p: VideoPlan, rng: np.random.Generator) -> dict:
    paths = {"ego": p.files["aria01"].removeprefix("egoexo4d/")}
    for k, cam in enumerate(sorted(c for c in p.files if c.startswith("cam"))):
        paths[f"exo{k + 1}"] = p.files[cam].removeprefix("egoexo4d/")
    levels = PROFICIENCY[p.ep.skill]
    return {"take_uid": p.uid, "scenario_name": "Cooking", "video_paths": paths,
            "proficiency_score": levels[int(rng.integers(len(levels)))]}


# The fields of an Ego-Exo4D atomic description (plans also hold truth fields, kept out of the file).
DESCRIPTION_FIELDS = ("text", "timestamp", "subject", "ego_visible", "unsure", "best_exo")
ANNOTATION_FIELDS = ("annotation_uid", "annotator_id", "rejected", "reject_reason")


def atomic_descriptions(plans: list[VideoPlan]) -> dict:
    """{"annotations": {take_uid: [{annotation_uid, annotator_id, rejected, reject_reason, descriptions}]}}."""
    out = {}
    for p in plans:
        out[p.uid] = [{k: a[k] for k in ANNOTATION_FIELDS} | {"descriptions": [{k: d[k] for k in DESCRIPTION_FIELDS}
                                                                          for d in a["descriptions"]]}
                      for a in p.descriptions]
    return {"annotations": out}


def write_egoexo4d(root: Path, plans: list[VideoPlan], sc: Scale, seed: int) -> None:
    """takes.json, keystep train/val (benchmark and full forms), atomic descriptions train/val, label_mapping.csv, proficiency train/val."""
    _dump(root / "takes.json", [take_entry(p) for p in plans])
    rng = np.random.default_rng([seed, 99])
    for split in ("train", "val"):
        ps = [p for p in plans if p.split == split]
        _dump(root / f"annotations/keystep_segment_{split}.json", {"segments": [s for p in ps for s in keystep_segments(p)]})
        _dump(root / f"annotations/keystep_{split}.json", keystep_full(ps))
        _dump(root / f"annotations/proficiency_demonstrator_{split}.json",
              {"annotations": [proficiency_entry(p, rng) for p in ps]})
        _dump(root / f"annotations/atomic_descriptions_{split}.json", atomic_descriptions(ps))
    with open(root / "annotations/label_mapping.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label_id", "step_unique_id", "step_name", "scenario_name"])
        for lab in range(sc.n_classes):
            w.writerow([lab, STEP_ID_BASE + lab, step_name(lab), "Cooking"])


def write_ego4d(root: Path, plans: list[VideoPlan]) -> None:
    """narration.json: {video_uid: {"narration_pass_1": {"narrations": [...], "summaries": []}}}."""
    keys = ("timestamp_sec", "timestamp_frame", "narration_text", "annotation_uid")
    out = {p.uid: {"narration_pass_1": {"narrations": [{k: n[k] for k in keys} for n in p.narrations], "summaries": []}}
           for p in plans}
    _dump(root / "narration.json", out)


def write_htm(root: Path, plans: list[VideoPlan]) -> None:
    """htm_aa_v1.csv with columns vid,timestamp,text (integer seconds)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "htm_aa_v1.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["vid", "timestamp", "text"])
        for p in plans:
            for n in p.narrations:
                w.writerow([p.uid, n["timestamp"], n["text"]])


def _truth_segments(p: VideoPlan) -> list[dict]:
    return [{"start_time": g.start, "end_time": g.end, "label_id": g.label_id, "step_name": step_name(g.label_id),
             "verb": g.verb, "object": g.obj, "skill": p.ep.skill} for g in p.ep.segments]


def world_json(plans: list[VideoPlan], sc: Scale, seed: int) -> dict:
    """Ground truth for tests: every video file with its segments, and every narration with its true class."""
    videos, narrs = {}, []
    for p in plans:
        for cam, path in p.files.items():
            videos[path] = {"dataset": p.dataset, "uid": p.uid, "name": p.name, "cam": cam, "kitchen": p.kitchen.id,
                            "view": "ego" if cam.startswith("aria") else "exo", "split": p.split, "skill": p.ep.skill,
                            "n_frames": p.ep.n_frames, "fps": FPS, "duration_sec": p.ep.duration, "width": SIZE,
                            "height": SIZE, "segments": _truth_segments(p)}
        for n in p.narrations:
            t = n.get("timestamp_sec", n.get("timestamp"))
            narrs.append({"dataset": p.dataset, "uid": p.uid, "video": next(iter(p.files.values())),
                          "timestamp_sec": t, "text": n.get("narration_text", n.get("text")),
                          "kind": n["kind"], "true_label_id": n["true_label_id"]} |
                         ({"annotation_uid": n["annotation_uid"]} if "annotation_uid" in n else {}))
    descs = [{"uid": p.uid, "video": p.files["aria01"], "annotation_uid": a["annotation_uid"], "rejected": a["rejected"],
              "timestamp_sec": d["timestamp"], "text": d["text"], "kind": d["kind"], "true_label_id": d["true_label_id"]}
             for p in plans for a in p.descriptions for d in a["descriptions"]]
    classes = [{"label_id": i, "verb": v, "object": o, "step_name": step_name(i)} for i, (v, o) in enumerate(CLASSES[:sc.n_classes])]
    return {"version": 3, "scale": sc.name, "seed": seed, "bench_new_kitchens": sc.bench_new_kitchens, "fps": FPS, "width": SIZE, "height": SIZE, "classes": classes,
            "proficiency_of_skill": {k: list(v) for k, v in PROFICIENCY.items()}, "kitchens": _kitchens(plans, sc),
            "videos": videos, "narrations": narrs, "atomic_descriptions": descs}


def _kitchens(plans: list[VideoPlan], sc: Scale) -> list[dict]:
    """Every kitchen's spec, role (kitchen_roles) and how many videos of each dataset it hosts."""
    roles, specs = kitchen_roles(sc), {p.kitchen.id: p.kitchen for p in plans}
    out = []
    for k in sorted(specs):
        count = lambda ds, split=None: sum(p.kitchen.id == k and p.dataset == ds and split in (None, p.split) for p in plans)
        out.append({"id": k, "role": roles[k], "paired_train_takes": count("egoexo4d", "train"),
                    "benchmark_takes": count("egoexo4d", "val"), "ego4d_videos": count("ego4d"),
                    "htm_videos": count("htm-aa"), "spec": specs[k].to_json()})
    return out


def write_world(out: Path, plans: list[VideoPlan], sc: Scale, seed: int) -> None:
    _dump(out / "world.json", world_json(plans, sc, seed))
