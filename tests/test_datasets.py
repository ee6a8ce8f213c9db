"""Dataset manifest importers (rosetta_cli.datasets) on small fixtures in the real layouts."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rosetta_cli.datasets import LOADERS, detect_dataset, load_manifest
from rosetta_cli.datasets.ego4d import clean_text
from rosetta_cli.datasets.egoexo4d import resolve_skill_map
from rosetta_cli.errors import AnnotationError, InputNotFound, UsageError
from rosetta_cli.store.schema import CLIP_COLUMNS

FIX = Path(__file__).parent / "data" / "fixtures"


def copy_fixture(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    if (FIX / name).is_dir():
        shutil.copytree(FIX / name, dst)
    else:
        shutil.copy(FIX / name, dst)
    return dst


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def by_id(m) -> dict:
    return {r.clip_id: r for r in m.clips.itertuples(index=False)}


# ---------------------------------------------------------------- ego4d

def test_ego4d_egovlp_windows_hand_computed(tmp_path):
    root = copy_fixture("ego4d", tmp_path)
    touch(root / "v2" / "full_scale" / "vid_a.mp4")
    touch(root / "v2" / "full_scale" / "vid_b.MP4")
    m = load_manifest(root)
    assert m.dataset == "ego4d"
    assert m.role == "ego"
    assert list(m.clips.columns) == list(CLIP_COLUMNS)
    # pass 1 timestamps: vid_a {2,4,6,8} (6 is #unsure, still counts for beta) -> beta 2;
    # vid_b {0.2,1.2} -> beta 1; vid_c one narration -> excluded from alpha.
    alpha = (2.0 + 1.0) / 2
    assert m.options["alpha"] == pytest.approx(alpha)
    ha, hb = 2.0 / (2 * alpha), 1.0 / (2 * alpha)  # 2/3 and 1/3
    expect = {
        "vid_a/p1/1": (2 - ha, 2 + ha, "picks up a knife"),
        "vid_a/p1/0": (4 - ha, 4 + ha, "cuts the pepper"),
        "vid_a/p1/2": (8 - ha, 8 + ha, "man X holds a cup"),
        "vid_b/p1/0": (0.0, 0.2 + hb, "opens the fridge"),  # 0.2 - 1/3 < 0: clipped
        "vid_b/p1/1": (1.2 - hb, 1.2 + hb, "closes the fridge"),
        "vid_c/p1/0": (4.5, 5.5, "stirs the soup"),  # single narration: beta := alpha, 1 s
    }
    rows = by_id(m)
    assert set(rows) == set(expect)  # the #unsure narration (index 3) is dropped
    for cid, (s, e, text) in expect.items():
        assert (rows[cid].start, rows[cid].end) == pytest.approx((s, e)), cid
        assert rows[cid].narration == text
        assert rows[cid].view == "ego"
        assert rows[cid].split == "train"
        assert rows[cid].sync_id == ""
    assert m.stats["unsure_dropped"] == 1
    # videos: found anywhere under root (any case of extension); a missing one keeps the expected path
    assert rows["vid_a/p1/0"].video == str((root / "v2/full_scale/vid_a.mp4").absolute())
    assert rows["vid_b/p1/0"].video.endswith("vid_b.MP4")
    assert rows["vid_c/p1/0"].video == str((root / "v2/full_scale/vid_c.mp4").absolute())
    assert m.stats["videos_missing"] == 1
    assert m.sources == [str((root / "narration.json").absolute())]


def test_ego4d_keep_unsure_does_not_move_windows(tmp_path):
    root = copy_fixture("ego4d", tmp_path)
    a = by_id(load_manifest(root))
    b = by_id(load_manifest(root, keep_unsure=True))
    assert set(b) - set(a) == {"vid_a/p1/3"}
    assert b["vid_a/p1/3"].narration == "picks from the table"
    assert (b["vid_a/p1/3"].start, b["vid_a/p1/3"].end) == pytest.approx((6 - 2 / 3, 6 + 2 / 3))
    assert all(a[k].start == b[k].start and a[k].end == b[k].end for k in a)


def test_ego4d_pass_2_and_split(tmp_path):
    m = load_manifest(copy_fixture("ego4d", tmp_path), "ego4d", narration_pass=2, split="val")
    rows = by_id(m)
    # only vid_a has pass 2: beta = 6 = alpha -> 1 s windows
    assert set(rows) == {"vid_a/p2/0", "vid_a/p2/1"}
    assert (rows["vid_a/p2/0"].start, rows["vid_a/p2/0"].end) == pytest.approx((2.5, 3.5))
    assert rows["vid_a/p2/1"].narration == "gives X a knife"
    assert set(m.clips.split) == {"val"}
    assert m.stats["videos_without_pass"] == 2
    with pytest.raises(UsageError, match="narration_pass"):
        load_manifest(FIX / "ego4d", narration_pass=3)


def test_ego4d_missing_drop(tmp_path):
    root = copy_fixture("ego4d", tmp_path)
    touch(root / "vids" / "vid_b.mp4")
    m = load_manifest(root, missing="drop")
    assert sorted(m.clips.clip_id) == ["vid_b/p1/0", "vid_b/p1/1"]


@pytest.mark.parametrize("raw, clean", [
    ("#C C cuts the pepper", "cuts the pepper"),
    ("#c c  opens   the door ", "opens the door"),
    ("#C picks a cup", "picks a cup"),
    ("#O man X holds a cup", "man X holds a cup"),
    ("#C C gives #O X a knife", "gives X a knife"),
    ("#C C drops #unsure", "drops"),
    ("#C C Cuts carrots", "Cuts carrots"),
    ("#C", ""),
])
def test_tag_cleaning(raw, clean):
    assert clean_text(raw) == clean


# ---------------------------------------------------------------- egoexo4d

def egoexo_root(tmp_path) -> Path:
    root = copy_fixture("egoexo4d", tmp_path)
    fav = root / "takes" / "cmu_cooking_1" / "frame_aligned_videos"
    for name in ("aria01_214-1.mp4", "cam01.mp4", "cam02.mp4"):
        touch(fav / name)
    touch(fav / "downscaled" / "448" / "cam03.mp4")  # found by name inside the take folder
    return root


def test_egoexo4d_sync_groups_all_cams(tmp_path):
    root = egoexo_root(tmp_path)
    m = load_manifest(root)
    assert m.dataset == "egoexo4d"
    assert m.role == "paired"
    df = m.clips
    assert len(df) == 2 * 4 + 2 * 3  # take a: aria01 + 3 exo; take b: aria02 + 2 exo (2 segments each)
    for sync, g in df.groupby("sync_id"):
        assert (g.view == "ego").sum() == 1, sync
        assert g.start.nunique() == 1
        assert g.end.nunique() == 1
        assert g.label.nunique() == 1
        assert g.clip_id.tolist() == [f"{sync}/{cam}" for cam in g.clip_id.str.rsplit("/", n=1).str[1]]
    assert sorted(df.sync_id.unique()) == ["uid-a/uid-a_0", "uid-a/uid-a_1", "uid-b/uid-b_0", "uid-b/uid-b_1"]
    g = df[df.sync_id == "uid-a/uid-a_0"]
    assert g.clip_id.tolist() == ["uid-a/uid-a_0/aria01", "uid-a/uid-a_0/cam01", "uid-a/uid-a_0/cam02", "uid-a/uid-a_0/cam03"]
    assert g.view.tolist() == ["ego", "exo", "exo", "exo"]
    assert (g.start.iloc[0], g.end.iloc[0]) == (2.0, 5.5)
    assert m.stats["segments_unknown_take"] == 1


def test_egoexo4d_labels_splits_and_paths(tmp_path):
    root = egoexo_root(tmp_path)
    m = load_manifest(root)
    rows = by_id(m)
    # the benchmark's label space (label_mapping.csv is there): its classes, ordered by label_id, and nothing else
    assert m.labels == ["Get a knife", "Wash pepper", "Slice pepper"]
    assert m.options["label_space_resolved"] == "benchmark"
    assert rows["uid-a/uid-a_0/cam01"].label == "Get a knife"  # mapping name wins over step_name
    assert rows["uid-b/uid-b_1/cam01"].label == ""  # label_id 5 is not a benchmark class: unlabelled, kept
    assert m.stats["segments_outside_label_space"] == 1
    steps = load_manifest(root, label_space="steps")  # every keystep's own step_name
    assert steps.labels == ["Get knife", "Plate the food", "Slice pepper", "Wash pepper"]
    assert by_id(steps)["uid-b/uid-b_1/cam01"].label == "Plate the food"
    assert rows["uid-b/uid-b_1/aria02"].split == "test"
    assert rows["uid-a/uid-a_0/aria01"].split == "train"
    fav = root / "takes" / "cmu_cooking_1" / "frame_aligned_videos"
    assert rows["uid-a/uid-a_0/aria01"].video == str((fav / "aria01_214-1.mp4").absolute())
    assert rows["uid-a/uid-a_0/cam03"].video == str((fav / "downscaled/448/cam03.mp4").absolute())
    # take b has no files: expected paths are kept (not the other take's cam01.mp4)
    assert rows["uid-b/uid-b_0/cam01"].video == str((root / "takes/upenn_cooking_2/frame_aligned_videos/cam01.mp4").absolute())
    assert m.stats["videos_missing"] == 3
    assert len(load_manifest(root, missing="drop").clips) == 8
    # take b relocated under another folder named like the take: found by name there
    touch(root / "moved" / "upenn_cooking_2" / "cam01.mp4")
    rows = by_id(load_manifest(root))
    assert rows["uid-b/uid-b_0/cam01"].video == str((root / "moved/upenn_cooking_2/cam01.mp4").absolute())


def test_egoexo4d_repeated_segment_names_stay_separate(tmp_path):
    root = copy_fixture("egoexo4d", tmp_path)
    val = json.loads((root / "annotations/keystep_segment_val.json").read_text())
    val["segments"][0]["ego_segment_name"] = "uid-b_0"  # same name as a train segment of take b
    write(root / "annotations/keystep_segment_val.json", val)
    m = load_manifest(root)
    assert (m.clips.groupby("sync_id").view.apply(lambda v: (v == "ego").sum()) == 1).all()
    assert "uid-b/uid-b_0#1" in set(m.clips.sync_id)


def _desc(text, t, ego_visible=True, unsure=False, cam="cam01"):
    return {"text": text, "timestamp": t, "subject": "C", "ego_visible": ego_visible, "unsure": unsure,
            "best_exo": {"cam_id": cam}}


def _ann(uid, descriptions, rejected=False):
    return {"annotation_uid": uid, "annotator_id": "a7", "rejected": rejected,
            "reject_reason": "inaccurate" if rejected else None, "descriptions": descriptions}


def atomic_root(tmp_path) -> Path:
    """The egoexo4d fixture plus hand-written atomic descriptions in the real field names.

    Segments: uid-a [2, 5.5] and [6, 9] (train); uid-b [1, 4] (train) and [5, 8] (val).
    """
    root = egoexo_root(tmp_path)
    write(root / "annotations/atomic_descriptions_train.json", {"annotations": {
        "uid-a": [
            _ann("ann-1", [_desc("C picks up the knife", 1.5),  # before the first segment
                           _desc("C takes a knife from the drawer", 3.0),
                           _desc("C looks at the knife", 3.9, ego_visible=False),  # nearer 3.75, not ego-visible
                           _desc("C slices the pepper", 7.0),
                           _desc("C cuts the pepper in half", 7.6)]),  # nearest the centre 7.5
            _ann("ann-2", [_desc("C dances", 3.75), _desc("C sings", 7.5)], rejected=True),
        ],
        "uid-zzz": [_ann("ann-3", [_desc("C waves", 1.5)])],  # not in takes.json
    }})
    write(root / "annotations/atomic_descriptions_val.json", {"annotations": {
        "uid-b": [_ann("ann-4", [_desc("C plates the food", 6.0, ego_visible=False, unsure=True, cam="cam04")])],
    }})
    return root


def test_egoexo4d_atomic_descriptions_become_narrations(tmp_path):
    m = load_manifest(atomic_root(tmp_path))
    narr = m.clips.groupby("sync_id").narration.agg(lambda v: sorted(set(v)))
    assert narr.to_dict() == {
        "uid-a/uid-a_0": ["takes a knife from the drawer"],  # ego_visible preferred; the rejected pass ignored
        "uid-a/uid-a_1": ["cuts the pepper in half"],  # nearest the segment centre
        "uid-b/uid-b_0": [""],  # no description inside [1, 4]
        "uid-b/uid-b_1": ["plates the food"],  # only a not-ego-visible one: used
    }
    assert (m.clips.groupby("sync_id").narration.nunique() == 1).all()  # ego and exo rows share it
    assert m.stats["description_annotations_rejected"] == 1
    assert m.stats["descriptions_unknown_take"] == 1
    assert m.stats["groups_without_narration"] == 1
    assert sum(s.endswith(("atomic_descriptions_train.json", "atomic_descriptions_val.json")) for s in m.sources) == 2
    # take mode: uid-a spans [1, 21] (centre 11): the latest ego-visible one; uid-b has no end: the earliest
    t = load_manifest(atomic_root(tmp_path / "t"), segments="take")
    assert dict(zip(t.clips.sync_id, t.clips.narration)) == {"uid-a": "cuts the pepper in half", "uid-b": "plates the food"}


def test_egoexo4d_without_atomic_descriptions_has_no_narration(tmp_path):
    m = load_manifest(egoexo_root(tmp_path))
    assert (m.clips.narration == "").all()
    assert "groups_without_narration" not in m.stats
    assert not any("atomic_descriptions" in s for s in m.sources)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["annotations"]["uid-a"][0]["descriptions"][1].update(timestamp="3.0"),
     r"atomic_descriptions_train\.json annotations\['uid-a'\]\[0\]\.descriptions\[1\]: field 'timestamp' must be a number"),
    (lambda d: d["annotations"]["uid-a"][0]["descriptions"][2].pop("text"),
     r"annotations\['uid-a'\]\[0\]\.descriptions\[2\]: field 'text' is missing"),
    (lambda d: d["annotations"]["uid-a"][1].update(rejected="yes"),
     r"annotations\['uid-a'\]\[1\]: field 'rejected' must be true/false"),
    (lambda d: d["annotations"]["uid-a"][0]["descriptions"][0].update(ego_visible=2),
     r"descriptions\[0\]: field 'ego_visible' must be true/false, 1/0"),
    (lambda d: d["annotations"]["uid-a"][0].pop("descriptions"), r"annotations\['uid-a'\]\[0\]: field 'descriptions' is missing"),
    (lambda d: d["annotations"].update({"uid-a": {"descriptions": []}}), r"annotations\['uid-a'\]: field 'annotations' must map"),
    (lambda d: d.update(annotations=[]), r"atomic_descriptions_train\.json: field 'annotations' must be an object"),
])
def test_egoexo4d_atomic_descriptions_errors(tmp_path, mutate, match):
    root = atomic_root(tmp_path)
    path = root / "annotations/atomic_descriptions_train.json"
    data = json.loads(path.read_text())
    mutate(data)
    write(path, data)
    with pytest.raises(AnnotationError, match=match):
        load_manifest(root, strict=True)  # without strict a bad record is skipped (tests/test_real_formats.py)


def test_egoexo4d_rejected_annotation_is_not_parsed(tmp_path):
    """A rejected pass is skipped whole: a damaged description inside it does not stop the import."""
    root = atomic_root(tmp_path)
    path = root / "annotations/atomic_descriptions_train.json"
    data = json.loads(path.read_text())
    data["annotations"]["uid-a"][1]["descriptions"][0]["timestamp"] = None
    write(path, data)
    assert "takes a knife from the drawer" in set(load_manifest(root).clips.narration)


@pytest.mark.parametrize("exo_cams, take_a, take_b, fallback", [
    ("all", ["cam01", "cam02", "cam03"], ["cam01", "cam04"], 0),
    ("best", ["cam02"], ["cam01"], 1),  # take b has best_exo null: first exo cam, counted
    (2, ["cam01", "cam02"], ["cam01", "cam04"], 0),
    ("1", ["cam01"], ["cam01"], 0),
    ("cam03,cam04", ["cam03"], ["cam04"], 0),
])
def test_egoexo4d_exo_cams(tmp_path, exo_cams, take_a, take_b, fallback):
    m = load_manifest(egoexo_root(tmp_path), exo_cams=exo_cams)
    exo = m.clips[m.clips.view == "exo"]
    cams = lambda sync: exo[exo.sync_id == sync].clip_id.str.rsplit("/", n=1).str[1].tolist()
    assert cams("uid-a/uid-a_1") == take_a
    assert cams("uid-b/uid-b_0") == take_b
    assert (m.clips.view == "ego").sum() == 4
    assert m.stats.get("best_exo_fallback", 0) == fallback


def test_egoexo4d_exo_cams_invalid():
    with pytest.raises(UsageError, match="exo_cams"):
        load_manifest(FIX / "egoexo4d", exo_cams=0)


@pytest.mark.parametrize("name, a, b", [
    ("expert-vs-novice", "good", "bad"),  # a: Intermediate Expert, b: Early Expert
    ("late-only", "bad", "bad"),
    ("novice-only-bad", "good", "good"),
])
def test_egoexo4d_skill_maps(name, a, b):
    m = load_manifest(FIX / "egoexo4d", skill_map=name)
    sk = m.clips.groupby(m.clips.sync_id.str.split("/").str[0]).skill.unique()
    assert list(sk["uid-a"]) == [a]
    assert list(sk["uid-b"]) == [b]
    assert m.options["skill_map"] == name


def test_skill_map_tables():
    levels = ["Novice", "Early Expert", "Intermediate Expert", "Late Expert"]
    table = {n: [resolve_skill_map(n)[lv] for lv in levels] for n in ("expert-vs-novice", "late-only", "novice-only-bad")}
    assert table == {
        "expert-vs-novice": ["bad", "bad", "good", "good"],
        "late-only": ["bad", "bad", "bad", "good"],
        "novice-only-bad": ["bad", "good", "good", "good"],
    }
    custom = dict(zip(levels, ["bad", "", "", "good"]))
    assert resolve_skill_map(custom) == custom
    with pytest.raises(UsageError, match="skill_map"):
        resolve_skill_map("median")
    with pytest.raises(UsageError, match="skill_map"):
        resolve_skill_map({"Novice": "bad"})


def test_egoexo4d_take_mode_windows_and_dict_form(tmp_path):
    root = tmp_path / "ee"
    root.mkdir()
    takes = json.loads((FIX / "egoexo4d" / "takes.json").read_text())
    (root / "takes.json").write_text(json.dumps({"takes": takes}))
    m = load_manifest(root, exo_cams="best")  # no keystep files: auto -> take mode
    assert m.options["segments_resolved"] == "take"
    assert sorted(m.clips.sync_id.unique()) == ["uid-a", "uid-b"]
    a = m.clips[m.clips.sync_id == "uid-a"]
    assert (a.start.iloc[0], a.end.iloc[0]) == (1.0, 21.0)  # task span
    assert math.isnan(m.clips[m.clips.sync_id == "uid-b"].end.iloc[0])  # no task span: whole video
    w = load_manifest(root, segments="take", window=8, stride=6, exo_cams=1)
    wa = w.clips[w.clips.clip_id.str.startswith("uid-a")]
    # span [1, 21] = 20 s: windows at offsets 0, 6, 12 (18 + 8 > 20 is dropped)
    assert sorted(wa.sync_id.unique()) == ["uid-a@1-9", "uid-a@13-21", "uid-a@7-15"]
    assert (wa.groupby("sync_id").size() == 2).all()
    with pytest.raises(InputNotFound, match="keystep"):
        load_manifest(root, segments="keystep")


# ---------------------------------------------------------------- htm-aa

def test_htm_aa_windows(tmp_path):
    root = copy_fixture("htm-aa", tmp_path)
    touch(root / "videos" / "yt_a.mkv")
    m = load_manifest(root)
    assert m.dataset == "htm-aa"
    assert m.role == "exo"
    rows = by_id(m)
    assert list(rows) == ["yt_a@0-3", "yt_a@8-12", "yt_b@3-7"]  # t=1 -> [-1, 3] clipped at 0
    assert rows["yt_b@3-7"].narration == "whisk the eggs, slowly"
    assert rows["yt_a@0-3"].video == str((root / "videos" / "yt_a.mkv").absolute())
    assert rows["yt_b@3-7"].video == str((root / "videos" / "yt_b.mp4").absolute())  # expected path
    assert set(m.clips.view) == {"exo"}
    assert m.stats["empty_dropped"] == 1
    m2 = load_manifest(root, window=1)
    assert list(by_id(m2)) == ["yt_a@0.5-1.5", "yt_a@9.5-10.5", "yt_b@4.5-5.5"]


def test_htm_aa_asr_source(tmp_path):
    asr = tmp_path / "sentencified"
    asr.mkdir()
    (asr / "yt_c.csv").write_text("start,end,text\n0.5,2.25,hello there\n3,4,\n")
    m = load_manifest(tmp_path, "htm-aa", source="asr")
    assert list(m.clips.clip_id) == ["yt_c@0.5-2.25"]
    assert (m.clips.start[0], m.clips.end[0]) == (0.5, 2.25)


# ---------------------------------------------------------------- csv

def test_csv_manifest(tmp_path):
    path = copy_fixture("manifest.csv", tmp_path)
    m = load_manifest(path)
    assert m.dataset == "csv"
    assert m.role is None
    df = m.clips
    assert df.clip_id.tolist() == ["videos/a.mp4", "videos/b.mp4@1.5-3", "videos/a.mp4@2-4"]
    assert df.video.tolist() == [str((tmp_path / "videos" / n).absolute()) for n in ("a.mp4", "b.mp4", "a.mp4")]
    assert df.start.tolist() == [0.0, 1.5, 2.0]
    assert math.isnan(df.end[0])
    assert df.end[2] == 4.0
    assert df.view.tolist() == ["ego", "exo", "ego"]  # empty view -> the `view` option
    assert df.skill.tolist() == ["good", "good", ""]
    assert df.split.tolist() == ["train", "train", "test"]
    assert m.labels == ["Slice pepper"]
    assert load_manifest(path, view="exo").clips.view.tolist() == ["ego", "exo", "exo"]


def test_csv_minimal_and_duplicates(tmp_path):
    (tmp_path / "m.csv").write_text("video\nx.mp4\nsub/x.mp4\nx.mp4\n")
    m = load_manifest(tmp_path / "m.csv")
    assert m.clips.clip_id.tolist() == ["x.mp4", "sub/x.mp4", "x.mp4#1"]
    (tmp_path / "n.csv").write_text("video,clip_id\nx.mp4,a\ny.mp4,a\n")
    with pytest.raises(AnnotationError, match=r"n\.csv row 1 \(line 3\): field 'clip_id'"):
        load_manifest(tmp_path / "n.csv")


@pytest.mark.parametrize("body, field", [
    ("video,start\na.mp4,soon\n", "start"),
    ("video,start,end\na.mp4,3,2\n", "end"),
    ("video,view\na.mp4,top\n", "view"),
    ("video,skill\na.mp4,great\n", "skill"),
    ("video,end\n,3\n", "video"),
    ("path,start\na.mp4,1\n", "video"),
])
def test_csv_errors_name_file_and_field(tmp_path, body, field):
    (tmp_path / "bad.csv").write_text(body)
    with pytest.raises(AnnotationError, match=rf"bad\.csv.*field '{field}'"):
        load_manifest(tmp_path / "bad.csv", "csv")


# ---------------------------------------------------------------- folder

def test_folder_recursive_sorted_unique_ids(tmp_path):
    for rel in ("b/clip.mp4", "a/clip.mp4", "a/x/Z.MOV", "c.webm", "notes.txt", ".hidden/h.mp4", "a/._clip.mp4"):
        touch(tmp_path / rel)
    m = load_manifest(tmp_path, view="exo")
    assert m.dataset == "folder"
    assert m.role is None
    assert m.clips.clip_id.tolist() == ["a/clip.mp4", "a/x/Z.MOV", "b/clip.mp4", "c.webm"]
    assert set(m.clips.view) == {"exo"}
    assert m.clips.end.isna().all()
    assert (m.clips.start == 0).all()
    assert m.clips.video[0] == str((tmp_path / "a" / "clip.mp4").absolute())


def test_folder_windows(tmp_path):
    for rel in ("long.mp4", "short.mp4", "broken.mp4", "raises.mp4"):
        touch(tmp_path / rel)
    durations = {"long.mp4": 10.0, "short.mp4": 2.5, "broken.mp4": None}

    def probe(path):
        if path.name == "raises.mp4":
            raise RuntimeError("moov atom not found")
        return durations[path.name]

    m = load_manifest(tmp_path, window=4, stride=3, duration_fn=probe)
    ids = m.clips.clip_id.tolist()
    # long: starts 0, 3, 6 (9 + 4 > 10 dropped); short: one [0, 2.5]; unreadable: whole-video rows
    assert ids == ["broken.mp4", "long.mp4@0-4", "long.mp4@3-7", "long.mp4@6-10", "raises.mp4", "short.mp4@0-2.5"]
    assert math.isnan(m.clips.end[0])
    assert m.stats["unknown_duration"] == 2
    assert m.options["window"] == 4
    assert m.options["stride"] == 3
    with pytest.raises(UsageError, match="duration"):
        load_manifest(tmp_path, "folder", window=4)
    with pytest.raises(UsageError, match="view"):
        load_manifest(tmp_path, view="side")


def test_single_video_file(tmp_path):
    v = touch(tmp_path / "one.mkv")
    assert detect_dataset(v) == "folder"
    assert load_manifest(v).clips.clip_id.tolist() == ["one.mkv"]


# ---------------------------------------------------------------- auto-detection

def test_detect_dataset(tmp_path):
    assert detect_dataset(FIX / "ego4d") == "ego4d"
    assert detect_dataset(FIX / "egoexo4d") == "egoexo4d"
    assert detect_dataset(FIX / "htm-aa") == "htm-aa"
    assert detect_dataset(FIX / "manifest.csv") == "csv"
    assert detect_dataset(FIX / "egoexo4d" / "takes.json") == "egoexo4d"
    nested = tmp_path / "ego4d_root" / "v2" / "annotations"
    nested.mkdir(parents=True)
    shutil.copy(FIX / "ego4d" / "narration.json", nested)
    assert detect_dataset(tmp_path / "ego4d_root") == "ego4d"
    assert len(load_manifest(tmp_path / "ego4d_root")) == 6
    touch(tmp_path / "vids" / "a.mp4")
    assert detect_dataset(tmp_path / "vids") == "folder"
    with pytest.raises(InputNotFound):
        detect_dataset(tmp_path / "nope")
    with pytest.raises(InputNotFound):
        load_manifest(tmp_path / "nope")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(AnnotationError, match="'video'"):
        detect_dataset(tmp_path / "other.csv")


def test_registry_and_options():
    assert set(LOADERS) == {"folder", "csv", "ego4d", "egoexo4d", "htm-aa"}
    with pytest.raises(UsageError, match="exo_cams"):
        load_manifest(FIX / "ego4d", exo_cams="all")
    with pytest.raises(UsageError, match="unknown dataset"):
        load_manifest(FIX / "ego4d", "kinetics")
    m = load_manifest(FIX / "egoexo4d", "ego-exo4d", exo_cams=None)  # None = default
    assert m.options["exo_cams"] == "all"
    assert m.options["dataset"] == "egoexo4d"


def test_deterministic_and_unique():
    for name in ("ego4d", "egoexo4d", "htm-aa", "manifest.csv"):
        a, b = load_manifest(FIX / name), load_manifest(FIX / name)
        pd.testing.assert_frame_equal(a.clips, b.clips)
        assert a.clips.clip_id.is_unique


# ---------------------------------------------------------------- malformed annotations

def write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def takes_with(tmp_path, mutate) -> Path:
    takes = json.loads((FIX / "egoexo4d" / "takes.json").read_text())
    mutate(takes)
    write(tmp_path / "takes.json", takes)
    return tmp_path


def test_error_bad_json(tmp_path):
    write(tmp_path / "narration.json", '{"vid_a": {"narration_pass_1": ')
    with pytest.raises(AnnotationError, match=r"narration\.json: not valid JSON \(line 1"):
        load_manifest(tmp_path)


def test_error_missing_take_field(tmp_path):
    root = takes_with(tmp_path, lambda t: t[1].pop("root_dir"))
    with pytest.raises(AnnotationError, match=r"takes\.json entry 1 \(take_uid 'uid-b'\): field 'root_dir' is missing"):
        load_manifest(root, strict=True)


def test_error_wrong_type_relative_path(tmp_path):
    def mutate(t):
        t[0]["frame_aligned_videos"]["cam01"]["0"]["relative_path"] = 7
    with pytest.raises(AnnotationError, match=r"takes\.json entry 0 .*field 'relative_path' must be a string"):
        load_manifest(takes_with(tmp_path, mutate), strict=True)


def test_error_ego4d_timestamp_type(tmp_path):
    data = json.loads((FIX / "ego4d" / "narration.json").read_text())
    data["vid_b"]["narration_pass_1"]["narrations"][1]["timestamp_sec"] = "1.2"
    write(tmp_path / "narration.json", data)
    with pytest.raises(AnnotationError) as e:
        load_manifest(tmp_path, strict=True)
    msg = str(e.value)
    assert "narration.json" in msg
    assert "video 'vid_b'" in msg
    assert "narrations[1]" in msg
    assert "'timestamp_sec'" in msg


def test_error_keystep_and_proficiency(tmp_path):
    root = copy_fixture("egoexo4d", tmp_path)
    ann = root / "annotations"
    segs = json.loads((ann / "keystep_segment_val.json").read_text())
    del segs["segments"][0]["end_time"]
    write(ann / "keystep_segment_val.json", segs)
    with pytest.raises(AnnotationError, match=r"keystep_segment_val\.json segments\[0\]: field 'end_time' is missing"):
        load_manifest(root, strict=True)
    shutil.copy(FIX / "egoexo4d/annotations/keystep_segment_val.json", ann)
    prof = json.loads((ann / "proficiency_demonstrator_train.json").read_text())
    prof["annotations"][0]["proficiency_score"] = "Master"
    write(ann / "proficiency_demonstrator_train.json", prof)
    with pytest.raises(AnnotationError, match=r"proficiency_demonstrator_train\.json annotations\[0\]: field 'proficiency_score'"):
        load_manifest(root, strict=True)


def test_error_htm_aa_timestamp(tmp_path):
    write(tmp_path / "htm_aa_v1.csv", "vid,timestamp,text\nyt_a,1,ok\nyt_b,ten,bad\n")
    with pytest.raises(AnnotationError, match=r"htm_aa_v1\.csv row 1 \(line 3\): field 'timestamp'"):
        load_manifest(tmp_path, strict=True)
    m = load_manifest(tmp_path)  # without strict the bad row is skipped alone
    assert list(m.clips.clip_id) == ["yt_a@0-3"]
    assert m.skipped_by_reason() == {"htm_aa_v1.csv: 'timestamp' is invalid": 1}
    write(tmp_path / "htm_aa_v1.csv", "vid,time,text\nyt_a,1,ok\n")
    with pytest.raises(AnnotationError, match=r"htm_aa_v1\.csv: field 'timestamp' is missing"):
        load_manifest(tmp_path)


# ---------------------------------------------------------------- ego4d narration passes (fallback)

def _narr(t: float, text: str, uid: str) -> dict:
    return {"timestamp_sec": t, "timestamp_frame": int(round(t * 30)), "narration_text": text, "annotation_uid": uid}


def _ego4d_passes(tmp_path: Path) -> Path:
    """vid_p1: pass 1 only; vid_p2: pass 2 only; vid_both: both; vid_empty: an empty pass 1 and a pass 2."""
    data = {
        "vid_p1": {"narration_pass_1": {"narrations": [_narr(1.0, "#C C cuts the pepper", "a1"),
                                                       _narr(5.0, "#C C washes a cup", "a1")], "summaries": []}},
        "vid_p2": {"narration_pass_2": {"narrations": [_narr(10.0, "#C C pours milk", "b2"),
                                                       _narr(2.0, "#C C opens the fridge", "b2")], "summaries": []}},
        "vid_both": {"narration_pass_1": {"narrations": [_narr(3.0, "#C C stirs the soup", "c1")], "summaries": []},
                     "narration_pass_2": {"narrations": [_narr(4.0, "#C C tastes the soup", "c2")], "summaries": []}},
        "vid_empty": {"narration_pass_1": {"narrations": [], "summaries": []},
                      "narration_pass_2": {"narrations": [_narr(7.0, "#C C dries a plate", "d2")], "summaries": []}},
    }
    root = tmp_path / "ego4d_passes"
    root.mkdir(parents=True)
    (root / "narration.json").write_text(json.dumps(data))
    return root


def test_ego4d_pass_1_falls_back_to_pass_2(tmp_path):
    m = load_manifest(_ego4d_passes(tmp_path), "ego4d")  # default narration_pass=1
    rows = {r.clip_id: r for r in m.clips.itertuples()}
    assert set(rows) == {"vid_p1/p1/0", "vid_p1/p1/1", "vid_p2/p2/0", "vid_p2/p2/1", "vid_both/p1/0",
                         "vid_empty/p2/0"}
    # beta(vid_p1) = 4, beta(vid_p2) = 8 (its pass 2 times 2, 10), others single: alpha = 6.
    assert m.options["alpha"] == pytest.approx(6.0)
    p2 = rows["vid_p2/p2/1"]  # index 1 in the list = t 2.0 (sorted first), half width 8 / 12
    assert (p2.start, p2.end) == pytest.approx((2.0 - 2 / 3, 2.0 + 2 / 3))
    assert p2.narration == "opens the fridge"
    assert rows["vid_both/p1/0"].narration == "stirs the soup"  # pass 1 wins where both exist
    assert (rows["vid_p1/p1/0"].start, rows["vid_p1/p1/0"].end) == pytest.approx((1 - 1 / 3, 1 + 1 / 3))
    assert m.stats["videos_fallback_pass"] == 2
    assert m.stats["videos_without_pass"] == 0
    again = load_manifest(_ego4d_passes(tmp_path / "b"), "ego4d", narration_pass="1").clips
    assert again[["clip_id", "start", "end", "narration"]].equals(m.clips[["clip_id", "start", "end", "narration"]])


def test_ego4d_only_1_keeps_the_strict_filter(tmp_path):
    root = _ego4d_passes(tmp_path)
    m = load_manifest(root, "ego4d", narration_pass="only-1")
    assert set(m.clips.clip_id) == {"vid_p1/p1/0", "vid_p1/p1/1", "vid_both/p1/0"}
    assert m.stats["videos_without_pass"] == 1
    assert m.stats["videos_fallback_pass"] == 0  # vid_p2 dropped
    # alpha only over the videos kept: beta(vid_p1) = 4
    assert m.options["alpha"] == pytest.approx(4.0)
    for two in (2, "2", "only-2"):
        m2 = load_manifest(root, "ego4d", narration_pass=two)
        assert set(m2.clips.clip_id) == {"vid_p2/p2/0", "vid_p2/p2/1", "vid_both/p2/0", "vid_empty/p2/0"}
    with pytest.raises(UsageError, match="only-1"):
        load_manifest(root, "ego4d", narration_pass="only-3")


def test_ego4d_narration_pass_cli_option(tmp_path, cli):
    from rosetta_cli.store import Store

    root = _ego4d_passes(tmp_path)
    for opt, n in (("1", 6), ("only-1", 3)):
        out = tmp_path / f"p{opt}.zarr"
        r = cli("extract", "--videos", root, "--dataset", "ego4d", "--narration-pass", opt, "--out", out,
                "--text-encoder", "none", "--frames", "1", "--workers", "0")
        assert r.code == 3, r.err  # the videos are not on disk: every row fails, the table is still built
        with Store.open(out) as s:
            assert len(s) == n
            assert s.meta["dataset_options"]["narration_pass"] == opt


# ---------------------------------------------------------------- Ego-Exo4D as downloaded
def _takes_only(tmp_path) -> Path:
    root = tmp_path / "ee"
    root.mkdir()
    shutil.copy(FIX / "egoexo4d" / "takes.json", root / "takes.json")
    return root


# keystep_train.json of the annotations part: the full form, with the real field names
FULL_TRAIN = {
    "annotations": {
        "uid-a": {"take_uid": "uid-a", "take_name": "cmu_cooking_1", "segments": [
            {"start_time": 2.0, "end_time": 5.5, "step_id": 1, "step_unique_id": "s1", "step_name": "Get knife",
             "step_description": "get a knife from the drawer", "is_essential": True, "parent_id": None},
            {"start_time": 6.0, "end_time": 9.0, "step_id": 3, "step_unique_id": "s9", "step_name": "Rinse board",
             "step_description": "rinse the board", "is_essential": False, "parent_id": None},
        ]},
        "uid-zzz": {"take_uid": "uid-zzz", "take_name": "gone", "segments": [
            {"start_time": 0.0, "end_time": 1.0, "step_id": 1, "step_unique_id": "s1", "step_name": "Get knife"}]},
    },
    "taxonomy": {"Cooking": {}}, "vocabulary": {},
}


def test_egoexo4d_full_keystep_form(tmp_path):
    root = _takes_only(tmp_path)
    write(root / "annotations" / "keystep_train.json", FULL_TRAIN)
    write(root / "annotations" / "label_mapping.csv", "label_id,step_unique_id,step_name\n0,s1,Get a knife\n")
    m = load_manifest(root, dataset="egoexo4d", exo_cams="best")
    ego = m.clips[m.clips.view == "ego"].reset_index(drop=True)
    # s1 is in label_mapping (its step_name there wins), s9 is not a benchmark class: unlabelled
    assert list(ego.label) == ["Get a knife", ""]
    assert m.labels == ["Get a knife"]
    steps = load_manifest(root, dataset="egoexo4d", exo_cams="best", label_space="steps")
    assert list(steps.clips[steps.clips.view == "ego"].label) == ["Get knife", "Rinse board"]
    assert steps.options["label_space_resolved"] == "steps"
    assert list(ego.sync_id) == ["uid-a/cmu_cooking_1_0", "uid-a/cmu_cooking_1_1"]
    assert list(ego.start) == [2.0, 6.0]
    assert list(ego.end) == [5.5, 9.0]
    assert set(ego.split) == {"train"}
    assert m.stats["segments_unknown_take"] == 1      # uid-zzz is not in takes.json
    src = m.options["row_sources"]
    assert len(src) == 1
    assert src[0]["form"] == "full"
    assert src[0]["rows"] == [0, len(m.clips)]
    assert src[0]["file"].endswith("annotations/keystep_train.json")


def test_egoexo4d_benchmark_form_in_keystep_benchmark_folder_wins(tmp_path):
    root = _takes_only(tmp_path)
    bench = root / "keystep_benchmark"
    bench.mkdir()
    for f in ("keystep_segment_train.json", "keystep_segment_val.json", "label_mapping.csv"):
        shutil.copy(FIX / "egoexo4d" / "annotations" / f, bench / f)
    write(root / "annotations" / "keystep_train.json", FULL_TRAIN)  # both forms: the benchmark's is used
    write(root / "annotations" / "keystep_val.json", {"annotations": {}})
    m = load_manifest(root, dataset="egoexo4d", exo_cams="best")
    forms = [(s["form"], Path(s["file"]).name) for s in m.options["row_sources"]]
    assert forms == [("segment", "keystep_segment_train.json"), ("segment", "keystep_segment_val.json")]
    assert "Rinse board" not in set(m.clips.label)   # nothing from the full form
    assert str((bench / "label_mapping.csv").absolute()) in m.sources
    train = m.options["row_sources"][0]["rows"]
    assert set(m.clips.split.iloc[train[0]:train[1]]) == {"train"}
    assert set(m.clips.split.iloc[train[1]:]) == {"test"}


def test_egoexo4d_downscaled_448_videos_preferred(tmp_path):
    root = _takes_only(tmp_path)
    fav = root / "takes" / "cmu_cooking_1" / "frame_aligned_videos"
    for p in (fav / "cam01.mp4", fav / "downscaled" / "448" / "cam01.mp4", fav / "downscaled" / "448" / "cam02.mp4"):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\0")
    m = load_manifest(root, dataset="egoexo4d", segments="take")
    vids = dict(zip(m.clips.clip_id, m.clips.video))
    assert vids["uid-a/cam01"] == str((fav / "downscaled" / "448" / "cam01.mp4").absolute())  # both: the 448 one
    assert vids["uid-a/cam02"] == str((fav / "downscaled" / "448" / "cam02.mp4").absolute())  # only the 448 one
    assert vids["uid-a/cam03"] == str((fav / "cam03.mp4").absolute())                          # neither: expected path
    assert m.stats["videos_missing"] == 5  # aria01, cam03 of take a; aria02, cam04, cam01 of take b


def test_egoexo4d_proficiency_of_unknown_takes_counted(tmp_path):
    root = _takes_only(tmp_path)
    write(root / "annotations" / "proficiency_demonstrator_train.json", {"annotations": [
        {"take_uid": "uid-a", "proficiency_score": "Late Expert"},
        {"take_uid": "uid-not-in-takes", "proficiency_score": "Novice"},
        {"take_uid": "uid-also-gone", "proficiency_score": "Novice"}]})
    m = load_manifest(root, dataset="egoexo4d", segments="take")
    assert m.stats["proficiency_unknown_take"] == 2
    assert set(m.clips[m.clips.sync_id == "uid-a"].skill) == {"good"}


def test_toy_world_writes_both_keystep_forms_alike(tmp_path):
    from rosetta_cli.toy.world import render_world

    render_world(tmp_path / "toy", scale="tiny", seed=0)
    root = tmp_path / "toy" / "egoexo4d"
    full = json.loads((root / "annotations" / "keystep_train.json").read_text())
    seg = next(iter(full["annotations"].values()))["segments"][0]
    assert {"start_time", "end_time", "step_id", "step_unique_id", "step_name", "step_description", "is_essential"} <= set(seg)
    a = load_manifest(root, dataset="egoexo4d")
    for f in ("keystep_segment_train.json", "keystep_segment_val.json"):
        (root / "annotations" / f).unlink()
    b = load_manifest(root, dataset="egoexo4d")
    assert {s["form"] for s in a.options["row_sources"]} == {"segment"}
    assert {s["form"] for s in b.options["row_sources"]} == {"full"}
    cols = ["clip_id", "video", "start", "end", "view", "sync_id", "label", "split", "skill"]
    pd.testing.assert_frame_equal(a.clips[cols], b.clips[cols])


def test_egoexo4d_row_sources_reach_the_store(tmp_path, cli):
    from rosetta_cli.store import Store

    root = _takes_only(tmp_path)
    write(root / "annotations" / "keystep_train.json", FULL_TRAIN)
    out = tmp_path / "p.zarr"
    r = cli("extract", "--videos", root, "--dataset", "egoexo4d", "--out", out, "--text-encoder", "none",
            "--frames", "1", "--workers", "0")
    assert r.code == 3, r.err  # no videos on disk: rows fail, the table is still built
    with Store.open(out) as s:
        src = s.meta["dataset_options"]["row_sources"]
        assert [x["form"] for x in src] == ["full"]
        assert src[0]["rows"] == [0, len(s)]
        assert src[0]["file"] == str((root / "annotations" / "keystep_train.json").absolute())
