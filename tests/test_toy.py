"""`rosetta toy`: the tiny world renders real MP4s and real-format annotations, deterministically."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest

from rosetta_cli.toy import SCALES, label_at, render_world
from rosetta_cli.toy.motion import episode_states
from rosetta_cli.toy.plan import plan_world
from rosetta_cli.toy.spec import CLASSES, FPS, GEOM, OBJECTS, PROFICIENCY, SIZE, STEP_ID_BASE, Episode, Segment
from rosetta_cli.toy.video import read_frames


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "w"
    summary = render_world(out, scale="tiny", seed=3)
    return out, summary, json.loads((out / "world.json").read_text())


def _load(p: Path):
    return json.loads(p.read_text())


def test_summary_counts_match_scale(world):
    out, summary, W = world
    sc = SCALES["tiny"]
    assert summary["paired_takes"] == sc.paired_takes == 3
    assert summary["ego4d_videos"] == sc.ego_videos and summary["htm_videos"] == sc.htm_videos
    assert summary["video_files"] == sc.paired_takes * (1 + sc.exo_cams) + sc.ego_videos + sc.htm_videos == 13
    assert summary["paired_train"] >= 1 and summary["paired_val"] >= 1
    assert len(W["videos"]) == summary["video_files"]
    assert summary["seconds"] < 30  # documented ~1 s; generous for a busy shared machine


def test_every_mp4_decodes_with_expected_frames_and_size(world):
    out, _, W = world
    for rel, v in W["videos"].items():
        path = out / rel
        assert path.is_file(), rel
        with av.open(str(path)) as c:
            st = c.streams.video[0]
            assert st.codec_context.name == "h264" and st.codec_context.pix_fmt == "yuv420p"
            assert float(st.average_rate) == FPS
            n = sum(1 for _ in c.decode(video=0))
        assert n == v["n_frames"] == round(v["duration_sec"] * FPS)
        f = read_frames(path)
        assert f.shape == (v["n_frames"], SIZE, SIZE, 3) and f.dtype == np.uint8


def test_takes_json_fields(world):
    out, _, W = world
    takes = _load(out / "egoexo4d/takes.json")
    assert isinstance(takes, list) and len(takes) == 3
    for t in takes:
        assert set(t) == {"take_uid", "take_name", "root_dir", "best_exo", "task_start_sec", "task_end_sec",
                          "scenario_name", "frame_aligned_videos"}
        assert t["root_dir"] == f"takes/{t['take_name']}" and t["best_exo"] == "cam01" and t["scenario_name"] == "Cooking"
        fav = t["frame_aligned_videos"]
        assert set(fav) == {"aria01", "cam01", "cam02"}
        assert fav["aria01"]["rgb"]["relative_path"] == "frame_aligned_videos/aria01_214-1.mp4"
        for cam in ("cam01", "cam02"):
            assert fav[cam]["0"]["relative_path"] == f"frame_aligned_videos/{cam}.mp4"
        for streams in fav.values():
            for s in streams.values():
                assert (out / "egoexo4d" / t["root_dir"] / s["relative_path"]).is_file()
        dur = W["videos"][f"egoexo4d/{t['root_dir']}/frame_aligned_videos/cam01.mp4"]["duration_sec"]
        assert 0 <= t["task_start_sec"] < t["task_end_sec"] <= dur


def test_keystep_segments_and_label_mapping(world):
    out, _, W = world
    ann = out / "egoexo4d/annotations"
    with open(ann / "label_mapping.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["label_id", "step_unique_id", "step_name", "scenario_name"]
    mapping = {int(r["label_id"]): r for r in rows}
    assert sorted(mapping) == list(range(SCALES["tiny"].n_classes))
    takes = {t["take_uid"]: t for t in _load(out / "egoexo4d/takes.json")}
    seen_takes = {}
    for split in ("train", "val"):
        segs = _load(ann / f"keystep_segment_{split}.json")["segments"]
        assert segs, split
        for s in segs:
            assert set(s) == {"ego_segment_name", "take_uid", "take_name", "start_time", "end_time",
                              "step_unique_id", "label_id", "step_name"}
            t = takes[s["take_uid"]]
            assert s["take_name"] == t["take_name"]
            assert s["step_unique_id"] == STEP_ID_BASE + s["label_id"] == int(mapping[s["label_id"]]["step_unique_id"])
            assert s["step_name"] == mapping[s["label_id"]]["step_name"]
            v = W["videos"][f"egoexo4d/takes/{t['take_name']}/frame_aligned_videos/aria01_214-1.mp4"]
            assert v["split"] == split
            assert 0 <= s["start_time"] < s["end_time"] <= v["duration_sec"]
            assert t["task_start_sec"] <= s["start_time"] and s["end_time"] <= t["task_end_sec"]
            assert label_at(v["segments"], (s["start_time"] + s["end_time"]) / 2) == s["label_id"]
            seen_takes.setdefault(s["take_uid"], set()).add(split)
    assert set(seen_takes) == set(takes) and all(len(v) == 1 for v in seen_takes.values())  # no take in both


def test_proficiency_files(world):
    out, _, W = world
    by_uid = {v["uid"]: v for v in W["videos"].values()}
    n = 0
    for split in ("train", "val"):
        for a in _load(out / f"egoexo4d/annotations/proficiency_demonstrator_{split}.json")["annotations"]:
            assert set(a) == {"take_uid", "scenario_name", "video_paths", "proficiency_score"}
            assert set(a["video_paths"]) == {"ego", "exo1", "exo2"}
            for p in a["video_paths"].values():
                assert (out / "egoexo4d" / p).is_file()
            assert a["proficiency_score"] in PROFICIENCY[by_uid[a["take_uid"]]["skill"]]
            n += 1
    assert n == 3


def test_ego4d_narrations(world):
    out, _, W = world
    narr = _load(out / "ego4d/narration.json")
    assert len(narr) == 2
    for uid, passes in narr.items():
        assert set(passes) == {"narration_pass_1"}
        p1 = passes["narration_pass_1"]
        assert set(p1) == {"narrations", "summaries"}
        v = W["videos"][f"ego4d/v2/full_scale/{uid}.mp4"]
        assert v["view"] == "ego" and (out / f"ego4d/v2/full_scale/{uid}.mp4").is_file()
        assert len(p1["narrations"]) == len(v["segments"])
        for n, seg in zip(p1["narrations"], v["segments"]):
            assert set(n) == {"timestamp_sec", "timestamp_frame", "narration_text", "annotation_uid"}
            assert n["narration_text"].startswith("#")
            assert seg["start_time"] <= n["timestamp_sec"] < seg["end_time"]
            assert n["timestamp_frame"] == round(n["timestamp_sec"] * FPS)


def test_htm_csv(world):
    out, _, W = world
    with open(out / "htm-aa/htm_aa_v1.csv", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["vid", "timestamp", "text"]
        rows = list(reader)
    assert len(rows) == sum(len(v["segments"]) for v in W["videos"].values() if v["dataset"] == "htm-aa")
    for vid, ts, text in rows:
        v = W["videos"][f"htm-aa/videos/{vid}.mp4"]
        assert v["view"] == "exo" and text and ts == str(int(ts))
        assert label_at(v["segments"], int(ts)) is not None  # integer second lies inside an action


def test_world_truth_recovers_narration_labels(world):
    _, _, W = world
    assert [c["label_id"] for c in W["classes"]] == list(range(SCALES["tiny"].n_classes))
    for n in W["narrations"]:
        segs = W["videos"][n["video"]]["segments"]
        assert label_at(segs, n["timestamp_sec"]) == n["true_label_id"]
        assert n["kind"] in {"correct", "wrong_object", "uninformative", "unsure", "misaligned"}


def test_same_seed_is_deterministic_other_seed_differs(world, tmp_path):
    out, _, W = world
    again = tmp_path / "again"
    render_world(again, scale="tiny", seed=3)
    for rel in ["world.json", "egoexo4d/takes.json", "egoexo4d/annotations/keystep_segment_train.json",
                "egoexo4d/annotations/proficiency_demonstrator_val.json", "ego4d/narration.json", "htm-aa/htm_aa_v1.csv"]:
        assert (out / rel).read_text() == (again / rel).read_text(), rel
    for rel in W["videos"]:
        assert hashlib.sha256((out / rel).read_bytes()).digest() == hashlib.sha256((again / rel).read_bytes()).digest(), rel
    other = plan_world("tiny", 4)
    assert [p.uid for p in other] != [p.uid for p in plan_world("tiny", 3)]


def test_ego_and_exo_frames_of_one_moment_differ(world):
    out, _, W = world
    take = next(v for v in W["videos"].values() if v["dataset"] == "egoexo4d")
    base = f"egoexo4d/takes/{take['name']}/frame_aligned_videos"
    ego, exo1, exo2 = (read_frames(out / f"{base}/{f}").astype(np.int16)
                       for f in ("aria01_214-1.mp4", "cam01.mp4", "cam02.mp4"))
    seg = take["segments"][0]
    i = int((seg["start_time"] + seg["end_time"]) / 2 * FPS)
    assert np.abs(ego[i] - exo1[i]).mean() > 25
    assert np.abs(exo1[i] - exo2[i]).mean() > 15  # different cameras, different backgrounds
    # exo cameras are static (the top-left wall corner never changes beyond codec noise); ego moves
    assert np.abs(exo1[:, :12, :12] - exo1[0, :12, :12]).mean() < 3
    assert np.abs(np.diff(ego[:, :, :, :], axis=0)).mean() > 3


def test_object_fills_more_of_ego_than_exo():
    """The object is a large part of the ego frame and a small part of an exo frame."""
    from rosetta_cli.toy.cameras import Look, make_cameras

    ep = Episode("paired", 0, "good", 2.0, 16, [Segment(0, 0.0, 2.0)], seed=1)  # cut pepper (pure red body)
    rng = np.random.default_rng(0)
    cams = make_cameras(Look.sample(rng), 16, 2, rng)
    states = episode_states(ep)
    red = {c: np.mean([_red_fraction(cam.render(s, i)) for i, s in enumerate(states)]) for c, cam in cams.items()}
    assert red["aria01"] > 0.04  # measured ~0.06-0.08: the pepper body (hands and knife cover part of it)
    for exo in ("cam01", "cam02"):
        assert 0.001 < red[exo] < red["aria01"] / 5  # measured ~0.005-0.009


def _red_fraction(img: np.ndarray) -> float:
    r, g, b = (img[..., k].astype(int) for k in range(3))
    return float(((r > 180) & (g < 70) & (b < 70)).mean())


def test_bad_skill_is_jerkier_and_hesitant():
    """Same action, same seed: bad skill has larger hand jerk (jitter) than good."""
    def jerk(skill):
        ep = Episode("paired", 0, skill, 3.0, 24, [Segment(3, 0.0, 3.0)], seed=5)  # stir pot
        h = np.array([s.rhand for s in episode_states(ep)])
        return np.abs(np.diff(h, n=3, axis=0)).mean()

    assert jerk("bad") > 2 * jerk("good")


def test_verbs_have_distinct_hand_trajectories():
    """Per verb, the right hand's motion signature (spread in x and y) differs."""
    sig = {}
    for lab, (verb, obj) in enumerate(CLASSES[:6]):
        ep = Episode("paired", 0, "good", 3.0, 24, [Segment(lab, 0.0, 3.0)], seed=1)
        h = np.array([s.rhand for s in episode_states(ep)])
        sig[verb] = np.round(h.std(0) / GEOM[obj][1], 2)
    vals = list(sig.values())
    assert all(np.abs(a - b).max() > 0.05 for i, a in enumerate(vals) for b in vals[i + 1:])


def test_small_plan_sizes_and_text_noise():
    """The demo scale: ~600-900 clips; narrations imperfect (wrong object, uninformative, #unsure)."""
    plans = plan_world("small", 0)
    paired = [p for p in plans if p.dataset == "egoexo4d"]
    segs = sum(len(p.ep.segments) for p in paired)
    narr = [(p.dataset, n) for p in plans for n in p.narrations]
    clips = segs * (1 + SCALES["small"].exo_cams) + len(narr)
    assert 600 <= clips <= 900
    kinds = [n["kind"] for _, n in narr]
    assert 0.10 <= kinds.count("wrong_object") / len(kinds) <= 0.25
    assert kinds.count("uninformative") > 0 and kinds.count("unsure") > 0
    misaligned = [(ds, n) for ds, n in narr if n["kind"] == "misaligned"]
    assert 0.15 <= len(misaligned) / sum(ds == "htm-aa" for ds, _ in narr) <= 0.35
    assert all(ds == "htm-aa" for ds, _ in misaligned)
    assert not {p.uid for p in paired} & {p.uid for p in plans if p.dataset != "egoexo4d"}
    for ds, n in narr:
        text = (n.get("narration_text") or n["text"]).lower()
        obj = CLASSES[n["true_label_id"]][1]
        names = OBJECTS[obj]
        if n["kind"] == "wrong_object":
            assert not any(w in text for w in names), text
        elif n["kind"] == "correct":
            assert any(w in text for w in names), text
    assert {g.label_id for p in paired for g in p.ep.segments} == set(range(SCALES["small"].n_classes))


def test_cli_refuses_non_empty_dir_unless_overwrite(tmp_path, capsys):
    from rosetta_cli.cli.app import main

    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(SystemExit) as e:
        main(["toy", "--out", str(out), "--scale", "tiny"])
    assert e.value.code == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["toy", "--out", str(out), "--scale", "tiny", "--overwrite", "--json"])
    assert e.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["video_files"] == 13 and (out / "world.json").is_file() and (out / "keep.txt").is_file()
    with pytest.raises(SystemExit) as e:
        main(["toy", "--out", str(tmp_path / "x"), "--scale", "huge"])
    assert e.value.code == 2


def test_cli_help_has_example(capsys):
    from rosetta_cli.cli.app import main

    with pytest.raises(SystemExit) as e:
        main(["toy", "--help"])
    assert e.value.code == 0 and "rosetta toy --out" in capsys.readouterr().out
