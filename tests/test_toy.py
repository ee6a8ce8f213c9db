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
    assert summary["ego4d_videos"] == sc.ego_videos
    assert summary["htm_videos"] == sc.htm_videos
    assert summary["video_files"] == sc.paired_takes * (1 + sc.exo_cams) + sc.ego_videos + sc.htm_videos == 13
    assert summary["paired_train"] >= 1
    assert summary["paired_val"] >= 1
    assert len(W["videos"]) == summary["video_files"]
    assert summary["seconds"] > 0  # the render time is recorded (its speed is measured in docs/benchmarks.md, not here)


def test_every_mp4_decodes_with_expected_frames_and_size(world):
    out, _, W = world
    for rel, v in W["videos"].items():
        path = out / rel
        assert path.is_file(), rel
        with av.open(str(path)) as c:
            st = c.streams.video[0]
            assert st.codec_context.name == "h264"
            assert st.codec_context.pix_fmt == "yuv420p"
            assert float(st.average_rate) == FPS
            n = sum(1 for _ in c.decode(video=0))
        assert n == v["n_frames"] == round(v["duration_sec"] * FPS)
        f = read_frames(path)
        assert f.shape == (v["n_frames"], SIZE, SIZE, 3)
        assert f.dtype == np.uint8


def test_takes_json_fields(world):
    out, _, W = world
    takes = _load(out / "egoexo4d/takes.json")
    assert isinstance(takes, list)
    assert len(takes) == 3
    for t in takes:
        assert set(t) == {"take_uid", "take_name", "root_dir", "best_exo", "task_start_sec", "task_end_sec",
                          "scenario_name", "frame_aligned_videos"}
        assert t["root_dir"] == f"takes/{t['take_name']}"
        assert t["best_exo"] == "cam01"
        assert t["scenario_name"] == "Cooking"
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
            assert t["task_start_sec"] <= s["start_time"]
            assert s["end_time"] <= t["task_end_sec"]
            assert label_at(v["segments"], (s["start_time"] + s["end_time"]) / 2) == s["label_id"]
            seen_takes.setdefault(s["take_uid"], set()).add(split)
    assert set(seen_takes) == set(takes)
    assert all(len(v) == 1 for v in seen_takes.values())  # no take in both


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
        assert v["view"] == "ego"
        assert (out / f"ego4d/v2/full_scale/{uid}.mp4").is_file()
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
        assert v["view"] == "exo"
        assert text
        assert ts == str(int(ts))
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
                "egoexo4d/annotations/proficiency_demonstrator_val.json", "ego4d/narration.json", "htm-aa/htm_aa_v1.csv",
                "egoexo4d/annotations/atomic_descriptions_train.json", "egoexo4d/annotations/atomic_descriptions_val.json"]:
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
    assert 900 <= clips <= 1100  # the kitchen world: 1,080 (was 600-900 before kitchens)
    kinds = [n["kind"] for _, n in narr]
    assert 0.10 <= kinds.count("wrong_object") / len(kinds) <= 0.25
    assert kinds.count("uninformative") > 0
    assert kinds.count("unsure") > 0
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
    assert e.value.code == 2
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["toy", "--out", str(out), "--scale", "tiny", "--overwrite", "--json"])
    assert e.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["video_files"] == 13
    assert (out / "world.json").is_file()
    assert (out / "keep.txt").is_file()
    with pytest.raises(SystemExit) as e:
        main(["toy", "--out", str(tmp_path / "x"), "--scale", "huge"])
    assert e.value.code == 2


def test_cli_help_has_example(capsys):
    from rosetta_cli.cli.app import main

    with pytest.raises(SystemExit) as e:
        main(["toy", "--help"])
    assert e.value.code == 0
    assert "rosetta toy --out" in capsys.readouterr().out


# ---------------------------------------------------------------- kitchens (the paper's data regime)

@pytest.mark.parametrize("scale", ["tiny", "small", "medium"])
def test_kitchen_split_follows_the_paper_regime(scale):
    """The paper's data regime: paired takes span the Ego-Exo4D kitchens and the benchmark holds out
    takes of them; unpaired Ego4D and HTM videos come from two more, disjoint sets of kitchens; the
    paired set is moderate (its clips at least a third of the unpaired clips)."""
    sc, plans = SCALES[scale], plan_world(scale, 0)
    train = [p for p in plans if p.dataset == "egoexo4d" and p.split == "train"]
    bench = [p for p in plans if p.dataset == "egoexo4d" and p.split == "val"]
    k = {ds: {p.kitchen.id for p in plans if p.dataset == ds} for ds in ("ego4d", "htm-aa")}
    k_train, k_bench = {p.kitchen.id for p in train}, {p.kitchen.id for p in bench}
    assert k_train == set(range(sc.egoexo_kitchens))          # paired takes span every Ego-Exo4D kitchen
    assert k_bench <= k_train                                  # held-out takes, not held-out kitchens
    assert k["ego4d"].isdisjoint(k["htm-aa"])                  # two sources that share no setting
    assert (k["ego4d"] | k["htm-aa"]).isdisjoint(k_train | k_bench)  # nor any with the benchmark
    assert len(train) == sc.paired_train_takes and len(bench) == sc.bench_takes
    paired_clips = sum(len(p.ep.segments) * len(p.files) for p in train)
    unpaired_clips = sum(len(p.narrations) for p in plans if p.dataset != "egoexo4d")
    assert 3 * paired_clips >= unpaired_clips
    if scale == "tiny":
        return
    assert len(k["ego4d"]) > 1 and len(k["htm-aa"]) > 1
    # every class has paired training segments (the benchmark's exo classifiers train on them)
    assert {g.label_id for p in train for g in p.ep.segments} == set(range(sc.n_classes))
    assert {g.label_id for p in bench for g in p.ep.segments} == set(range(sc.n_classes))


def test_held_out_kitchens_protocol_films_the_benchmark_where_no_paired_take_is():
    from rosetta_cli.toy.plan import get_scale

    sc, plans = get_scale("small", 2), plan_world("small", 0, bench_new_kitchens=2)
    train = {p.kitchen.id for p in plans if p.dataset == "egoexo4d" and p.split == "train"}
    bench = {p.kitchen.id for p in plans if p.dataset == "egoexo4d" and p.split == "val"}
    assert bench == {sc.egoexo_kitchens - 2, sc.egoexo_kitchens - 1}
    assert train == set(range(sc.egoexo_kitchens - 2))
    with pytest.raises(ValueError):
        get_scale("small", SCALES["small"].egoexo_kitchens)  # no kitchen left for paired takes


def test_claims_scale_meets_p3_and_the_rst_validation_size():
    """medium (what `rosetta claims` uses): >= 500 benchmark ego queries and >= 1,000 exo gallery clips;
    a quarter of its paired takes hold >= 100 RST validation queries."""
    sc = SCALES["medium"]
    assert sc.bench_takes * sc.segments_per_video >= 500
    assert sc.bench_takes * sc.segments_per_video * sc.exo_cams >= 1000
    assert round(0.25 * sc.paired_train_takes) * sc.segments_per_video >= 100


def test_small_scale_sizes():
    """The demo scale as documented: 30 paired training takes, 24 benchmark takes, 80 + 80 unpaired videos."""
    sc, plans = SCALES["small"], plan_world("small", 0)
    assert (sc.n_kitchens, sc.egoexo_kitchens, sc.paired_train_takes, sc.bench_takes) == (18, 6, 30, 24)
    assert (sc.ego_videos, sc.htm_videos, sc.segments_per_video, sc.exo_cams) == (80, 80, 3, 2)
    clips = sum(len(p.ep.segments) * len(p.files) for p in plans if p.dataset == "egoexo4d")
    clips += sum(len(p.narrations) for p in plans)
    assert clips == 54 * 3 * 3 + 160 * 3 == 966


def test_kitchens_deterministic_and_distinct():
    from rosetta_cli.toy.plan import plan_kitchens

    a, b = plan_kitchens("small", 0), plan_kitchens("small", 0)
    assert a == b
    assert [k.id for k in a] == list(range(18))
    assert a != plan_kitchens("small", 1)
    assert all(p.kitchen == a[p.kitchen.id] for p in plan_world("small", 0))  # the kitchens the videos are filmed in
    assert [k.to_json() for k in a] == json.loads(json.dumps([k.to_json() for k in a]))  # JSON-only
    # settings differ: walls, floors, tables and lighting are not shared between kitchens
    assert len({k.exo[0].wall for k in a}) == 18
    assert len({k.table for k in a}) == 18
    assert len({k.gain for k in a}) == 18
    for k in a:
        assert 2 <= len(k.distractors) <= 4
        assert len(k.exo) == SCALES["small"].exo_cams
        assert not {d.kind for d in k.distractors} & set(OBJECTS)  # never a keystep object


def _render(kitchen, n_frames=16, seed=0, label=0):
    """ego and cam01 frames [T, H, W, 3] of one action in `kitchen` (same actor, camera noise and motion)."""
    from rosetta_cli.toy.cameras import Look, make_cameras

    ep = Episode("paired", 0, "good", n_frames / FPS, n_frames, [Segment(label, 0.0, n_frames / FPS)], seed=1)
    rng = np.random.default_rng(seed)
    cams = make_cameras(Look.sample(rng), n_frames, 1, rng, kitchen=kitchen)
    states = episode_states(ep)
    return {c: np.stack([cam.render(s, i) for i, s in enumerate(states)]).astype(np.float64) for c, cam in cams.items()}


def test_lighting_gain_applies_to_both_views():
    import dataclasses

    from rosetta_cli.toy.plan import plan_kitchens

    k = plan_kitchens("small", 0)[0]
    neutral = _render(dataclasses.replace(k, gain=(1.0, 1.0, 1.0)))
    dim = _render(dataclasses.replace(k, gain=(0.8, 0.8, 0.6)))
    for cam in ("aria01", "cam01"):
        ratio = dim[cam].mean((0, 1, 2)) / neutral[cam].mean((0, 1, 2))
        np.testing.assert_allclose(ratio, [0.8, 0.8, 0.6], atol=0.01)  # rounding to uint8 only


def test_distractors_are_visible_in_ego_and_exo():
    import dataclasses

    from rosetta_cli.toy.plan import plan_kitchens

    changed = []
    for k in plan_kitchens("small", 0):
        bare = _render(dataclasses.replace(k, distractors=()))
        full = _render(k)
        changed.append([(np.abs(full[c] - bare[c]).max(-1) > 30).mean() for c in ("aria01", "cam01")])
    changed = np.array(changed)  # [kitchen, (ego, exo)] share of pixels a distractor changes
    # measured (seed 0): ego 0.004-0.057 (mean 0.027), exo 0.003-0.019 (mean 0.013)
    assert (changed > 0.002).all(), changed
    assert (changed.mean(0) > 0.01).all(), changed.mean(0)


def test_both_views_of_a_take_share_the_kitchen_table(world):
    """The ego background is the kitchen's table texture, the exo table slab its colour; another kitchen differs."""
    from rosetta_cli.toy.cameras import table_texture
    from rosetta_cli.toy.plan import plan_kitchens

    kitchens = plan_kitchens("tiny", 3)
    out, _, W = world
    for rel, v in W["videos"].items():
        if v["dataset"] == "egoexo4d" and v["view"] == "ego":
            frame = read_frames(out / rel)[0].astype(float)
            k = kitchens[v["kitchen"]]
            own = np.abs(frame[:20, :20].mean((0, 1)) - np.array(k.table) * np.array(k.gain)).mean()
            assert own < 40, (rel, own)  # top-left corner: table top (+ texture, codec noise)
    t0, t1 = table_texture(kitchens[0]).astype(float), table_texture(kitchens[1]).astype(float)
    assert np.abs(t0.mean((0, 1)) - t1.mean((0, 1))).max() > 10


def test_world_json_records_kitchens(world):
    out, summary, W = world
    sc = SCALES["tiny"]
    roles = {k["id"]: k["role"] for k in W["kitchens"]}
    assert W["version"] == 3 and W["bench_new_kitchens"] == 0
    assert roles == {0: "paired+benchmark", 1: "ego4d", 2: "htm"}
    for v in W["videos"].values():
        assert isinstance(v["kitchen"], int)
        assert roles[v["kitchen"]] == {"egoexo4d": "paired+benchmark", "ego4d": "ego4d", "htm-aa": "htm"}[v["dataset"]]
    assert summary["paired_train_kitchens"] == [0]
    assert summary["benchmark_kitchens"] == [0]
    assert summary["benchmark_protocol"] == "held-out takes"
    assert (summary["ego4d_kitchens"], summary["htm_kitchens"]) == ([1], [2])
    assert summary["kitchens"] == sc.n_kitchens == 3
    assert summary["clips"]["paired_train"] == 2 * 2 * 3
    assert summary["clips"]["benchmark"] == 1 * 2 * 3
    for k in W["kitchens"]:
        assert k["spec"]["id"] == k["id"]
        assert len(k["spec"]["exo"]) == sc.exo_cams


# ---------------------------------------------------------------- atomic descriptions (Ego-Exo4D format)

def test_atomic_descriptions_real_format(world):
    out, summary, W = world
    takes = {t["take_uid"]: t for t in _load(out / "egoexo4d/takes.json")}
    truth = {(d["uid"], d["annotation_uid"], d["timestamp_sec"]): d for d in W["atomic_descriptions"]}
    seen, n_accepted = set(), 0
    for split in ("train", "val"):
        data = _load(out / f"egoexo4d/annotations/atomic_descriptions_{split}.json")
        assert set(data) == {"annotations"}
        for uid, anns in data["annotations"].items():
            t = takes[uid]
            v = W["videos"][f"egoexo4d/{t['root_dir']}/frame_aligned_videos/aria01_214-1.mp4"]
            assert v["split"] == split
            assert isinstance(anns, list)
            assert anns
            assert anns[0]["rejected"] is False
            assert anns[0]["reject_reason"] is None
            for a in anns:
                assert set(a) == {"annotation_uid", "annotator_id", "rejected", "reject_reason", "descriptions"}
                assert isinstance(a["annotation_uid"], str)
                assert isinstance(a["annotator_id"], str)
                assert (a["reject_reason"] is None) == (a["rejected"] is False)
                for d in a["descriptions"]:
                    assert set(d) == {"text", "timestamp", "subject", "ego_visible", "unsure", "best_exo"}
                    assert d["subject"] == "C"
                    assert d["text"].startswith("C ")
                    assert isinstance(d["ego_visible"], bool)
                    assert isinstance(d["unsure"], bool)
                    assert d["best_exo"]["cam_id"] in {"cam01", "cam02"}
                    assert set(d["best_exo"]) == {"cam_id"}
                    assert 0 <= d["timestamp"] < v["duration_sec"]
                    tr = truth[(uid, a["annotation_uid"], d["timestamp"])]
                    assert tr["text"] == d["text"]
                    assert tr["rejected"] == a["rejected"]
                    assert label_at(v["segments"], d["timestamp"]) == tr["true_label_id"]  # idle ones: None
                    assert d["unsure"] == (tr["kind"] == "unsure")
                    n_accepted += not a["rejected"]
            seen.add(uid)
    assert seen == set(takes)
    assert n_accepted == summary["atomic_descriptions"]
    # every keystep segment has at least one accepted description inside it
    for uid in takes:
        v = next(v for v in W["videos"].values() if v["uid"] == uid)
        for g in v["segments"]:
            assert any(d["uid"] == uid and not d["rejected"] and g["start_time"] <= d["timestamp_sec"] < g["end_time"]
                       for d in W["atomic_descriptions"])


def test_atomic_description_noise_small():
    """Same kinds of imperfection as the Ego4D narrations; a rejected pass names wrong objects."""
    plans = [p for p in plan_world("small", 0) if p.dataset == "egoexo4d"]
    accepted = [d for p in plans for a in p.descriptions if not a["rejected"] for d in a["descriptions"] if d["kind"] != "idle"]
    kinds = [d["kind"] for d in accepted]
    assert 0.08 <= kinds.count("wrong_object") / len(kinds) <= 0.28
    assert kinds.count("uninformative") > 0
    assert kinds.count("unsure") > 0
    assert kinds.count("correct") > len(kinds) / 2
    rejected = [d for p in plans for a in p.descriptions if a["rejected"] for d in a["descriptions"]]
    assert rejected
    for d in accepted + rejected:
        names = OBJECTS[CLASSES[d["true_label_id"]][1]]
        if d["kind"] in ("wrong_object", "rejected"):
            assert not any(w in d["text"] for w in names), d
        elif d["kind"] == "correct":
            assert any(w in d["text"] for w in names), d


def test_importer_gives_paired_clips_their_description(world):
    """`rosetta extract`'s Ego-Exo4D importer reads the toy's atomic descriptions: each keystep
    group's narration is an accepted description of that take timed inside the segment."""
    from rosetta_cli.datasets import load_manifest

    out, _, W = world
    m = load_manifest(out / "egoexo4d")
    assert any(s.endswith("atomic_descriptions_train.json") for s in m.sources)
    by_text = {}
    for d in W["atomic_descriptions"]:
        if not d["rejected"]:
            by_text.setdefault((d["uid"], d["text"].removeprefix("C ")), []).append(d["timestamp_sec"])
    assert (m.clips.narration != "").all()  # the toy describes every keystep segment
    for sync, g in m.clips.groupby("sync_id"):
        assert g.narration.nunique() == 1  # ego and exo rows of one moment share it
        r = g.iloc[0]
        uid = sync.split("/")[0]
        times = by_text[(uid, r.narration)]
        assert any(r.start <= t <= r.end for t in times), (sync, r.narration)
