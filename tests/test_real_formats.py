"""Issue #27: files in the shapes the real downloads ship, each fixture citing the document it follows.

Every fixture is written to tmp_path as a real JSON / CSV / .npy / .pt file and read through the
same code a user runs (load_manifest, `rosetta store import`, the LaViLa checkpoint reader).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.store import DONE, Store

VIDEO_UID = "0a1b2c3d-0000-4000-8000-000000000001"


def write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def import_clips(rows, video: str) -> pd.DataFrame:
    """A `store import` clips table: rows = [(start, end)] of one video."""
    n = len(rows)
    return pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "video": [video] * n,
                         "start": [r[0] for r in rows], "end": [r[1] for r in rows], "view": ["ego"] * n,
                         "sync_id": [""] * n, "narration": [""] * n, "label": [""] * n, "skill": [""] * n,
                         "split": [""] * n})


# ---------------------------------------------------------------- items 1 and 2: Ego4D feature windows
def _omnivore_video(tmp_path: Path) -> tuple[Path, int]:
    """A 600.1 s video's Omnivore features, laid out as Ego4D's feature docs describe them: 32-frame
    windows at stride 16 of the 30 fps canonical video, the last one backed up to the final 32 frames.
    18003 frames: regular windows start at frames 0, 16, ..., 1123*16 = 17968; the last starts at
    18003 - 32 = 17971 (599.033 s), not at 1124*16 = 17984 (599.467 s) as even spacing would put it.
    Window i holds the value i, so a pooled row is the mean of the window indices it took."""
    n = 1123 + 2
    d = tmp_path / "omnivore_video"
    d.mkdir()
    np.save(d / f"{VIDEO_UID}.npy", np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1))
    # Ego4D metadata (ego4d.json, Ego4D docs "Ego4D metadata"): {"videos": [{"video_uid", "duration_sec", ...}]}
    write(tmp_path / "ego4d.json", {"videos": [{"video_uid": VIDEO_UID, "duration_sec": 600.1,
                                                 "video_metadata": {"fps": 30.0, "num_frames": 18003}}]})
    return d, n


def test_omnivore_preset_pools_the_windows_of_stride_16_and_the_backed_up_last_one(tmp_path, cli):
    feats, n = _omnivore_video(tmp_path)
    clips = [(100.0, 101.0),     # windows i with i*16/30 < 101 and i*16/30 + 32/30 > 100: i = 186..189
             (599.1, 599.2),     # windows 1122 [598.4, 599.467), 1123 [598.933, 600.0), the backed-up last [599.033, 600.1)
             (600.0, 600.1)]     # the last window alone (window 1123 ends at 600.0)
    import_clips(clips, f"/data/v2/full_scale/{VIDEO_UID}.mp4").to_csv(tmp_path / "c.csv", index=False)
    r = cli("store", "import", "--features", feats, "--clips", tmp_path / "c.csv", "--out", tmp_path / "o.zarr",
            "--preset", "ego4d-omnivore", "--durations", tmp_path / "ego4d.json", "--json")
    assert r.code == 0, r
    with Store.open(tmp_path / "o.zarr") as s:
        got = s.features()[:, 0, 0].astype(np.float64)
        assert (s.status() == DONE).all()
        assert s.meta["import"]["timing"]["stride_sec"] == pytest.approx(16 / 30)
    np.testing.assert_allclose(got, [(186 + 189) / 2, (1122 + 1123 + 1124) / 3, 1124])


def test_without_durations_windows_are_evenly_spaced(tmp_path, cli):
    """Without ego4d.json the last window is taken at 1124*16/30 = 599.467 s: [599.1, 599.2] takes windows 1122 and 1123."""
    feats, _ = _omnivore_video(tmp_path)
    import_clips([(599.1, 599.2)], f"{VIDEO_UID}.mp4").to_csv(tmp_path / "c.csv", index=False)
    r = cli("store", "import", "--features", feats, "--clips", tmp_path / "c.csv", "--out", tmp_path / "o.zarr",
            "--preset", "ego4d-omnivore")
    assert r.code == 0, r
    with Store.open(tmp_path / "o.zarr") as s:
        assert float(s.features()[0, 0, 0]) == 1122.5


def test_durations_that_do_not_fit_the_windows_fail_the_row(tmp_path, cli):
    feats, _ = _omnivore_video(tmp_path)
    write(tmp_path / "ego4d.json", {"videos": [{"video_uid": VIDEO_UID, "duration_sec": 300.0}]})
    import_clips([(1.0, 2.0)], f"{VIDEO_UID}.mp4").to_csv(tmp_path / "c.csv", index=False)
    r = cli("store", "import", "--features", feats, "--clips", tmp_path / "c.csv", "--out", tmp_path / "o.zarr",
            "--preset", "ego4d-omnivore", "--durations", tmp_path / "ego4d.json")
    assert r.code == 2
    assert "1125 windows" in r.err and "300 s" in r.err and "ego4d.json" in r.err


# ---------------------------------------------------------------- Ego-Exo4D in the documented shapes
def _take(uid: str, name: str, cams: dict, capture_uid: str = "cap-1") -> dict:
    """A takes.json entry with the fields of the Ego-Exo4D docs ("Metadata: takes.json"): take_uid,
    take_name, root_dir, capture_uid, best_exo, task_start_sec/task_end_sec, and frame_aligned_videos
    {cam_id: {stream_id: {cam_id, stream_id, relative_path, ...}}} (Aria stream "rgb", GoPros "0")."""
    fav = {cam: {stream: {"cam_id": cam, "stream_id": stream, "relative_path": f"frame_aligned_videos/{file}",
                          "is_collage": False}} for cam, (stream, file) in cams.items()}
    return {"take_uid": uid, "take_name": name, "root_dir": f"takes/{name}", "capture_uid": capture_uid,
            "best_exo": "cam01", "task_start_sec": 0.0, "task_end_sec": 30.0, "frame_aligned_videos": fav}


def _egoexo(tmp_path: Path) -> Path:
    root = tmp_path / "egoexo"
    cams = {"aria01": ("rgb", "aria01_214-1.mp4"), "cam01": ("0", "cam01.mp4"), "cam02": ("0", "cam02.mp4")}
    write(root / "takes.json", [_take("uid-a", "cmu_cooking_1", cams)])
    return root


def _segment(name: str, start, end, label_id=0, step="Get knife", uid="uid-a") -> dict:
    """keystep_segment_{train,val}.json's segments entry (Ego-Exo4D keystep benchmark files)."""
    return {"ego_segment_name": name, "take_uid": uid, "take_name": "cmu_cooking_1", "start_time": start,
            "end_time": end, "step_unique_id": f"s{label_id}", "label_id": label_id, "step_name": step}


def test_one_bad_keystep_segment_fails_alone(tmp_path):
    from rosetta_cli.datasets import load_manifest
    from rosetta_cli.errors import AnnotationError

    root = _egoexo(tmp_path)
    write(root / "annotations" / "keystep_segment_train.json", {"segments": [
        _segment("a0", 2.0, 5.0), _segment("a1", 7.0, 7.0), _segment("a2", None, 9.0), _segment("a3", 10.0, 12.0)]})
    m = load_manifest(root)
    assert sorted(set(m.clips["sync_id"])) == ["uid-a/a0", "uid-a/a3"]  # 2 good segments x 3 cameras
    assert len(m.clips) == 6
    assert m.skipped_by_reason() == {"keystep_segment_train.json: 'start_time' is missing": 1,
                                     "keystep_segment_train.json: end_time <= start_time": 1}
    assert [r["entry"] for r in m.skipped] == ["segments[1]", "segments[2]"]
    assert "segments[1]: field 'end_time' must be greater than start_time (7.0), got 7.0" in m.skipped[0]["error"]
    with pytest.raises(AnnotationError, match=r"segments\[1\].*end_time.*\(and 1 more bad record"):
        load_manifest(root, strict=True)


# atomic_descriptions_{train,val}.json as the Ego-Exo4D docs' own sample writes it ("Atomic
# descriptions" annotation page): flags as strings "1"/"0" next to booleans and numbers.
ATOMIC = {"annotations": {"uid-a": [{
    "annotation_uid": "ann-1", "annotator_id": "p1", "rejected": False, "reject_reason": None,
    "descriptions": [
        {"text": "C picks up the knife", "timestamp": 3.0, "subject": "C", "ego_visible": "1", "unsure": "0",
         "best_exo": {"cam_id": "cam01"}},
        {"text": "C rinses the board", "timestamp": 11.0, "subject": "C", "ego_visible": "0", "unsure": "false",
         "best_exo": {"cam_id": "cam01"}},
        {"text": "C looks around", "timestamp": 11.2, "subject": "C", "ego_visible": 1, "unsure": 0},
        {"text": None, "timestamp": 4.0, "subject": "C", "ego_visible": "1", "unsure": "0"},
        {"text": "C holds the board", "timestamp": None, "subject": "C", "ego_visible": "1", "unsure": "0"},
    ]}]}}


def test_string_flags_in_atomic_descriptions_load(tmp_path):
    from rosetta_cli.datasets import load_manifest

    root = _egoexo(tmp_path)
    write(root / "annotations" / "atomic_descriptions_train.json", ATOMIC)
    write(root / "annotations" / "keystep_segment_train.json", {"segments": [
        _segment("a0", 2.0, 5.0), _segment("a1", 10.0, 12.0)]})
    m = load_manifest(root)  # keystep mode: the descriptions file is read too
    narr = dict(zip(m.clips["sync_id"], m.clips["narration"]))
    assert narr["uid-a/a0"] == "picks up the knife"
    # [10, 12]: "rinses" (ego_visible "0") and "looks around" (ego_visible 1): the visible one wins
    assert narr["uid-a/a1"] == "looks around"
    assert sorted(r["reason"] for r in m.skipped) == ["'text' is missing", "'timestamp' is missing"]


@pytest.mark.parametrize("value, visible", [(True, True), (False, False), ("1", True), ("0", False),
                                            ("true", True), ("False", False), (1, True), (0, False)])
def test_flag_spellings(value, visible):
    from rosetta_cli.datasets.egoexo4d import as_flag

    assert as_flag(value) is visible
    assert as_flag("yes") is None and as_flag(2) is None and as_flag(None) is None


def test_is_ego_gopro_is_an_ego_row(tmp_path):
    """captures.json as the official downloader reads it (facebookresearch/Ego4d,
    ego4d/internal/download/manifest_gen.py: captures[].cameras[] {cam_id, is_ego} by capture_uid)."""
    from rosetta_cli.datasets import load_manifest

    root = _egoexo(tmp_path)
    write(root / "captures.json", [{"capture_uid": "cap-1", "capture_name": "cmu_cooking", "cameras": [
        {"cam_id": "aria01", "is_ego": True, "device_type": "aria"},
        {"cam_id": "cam01", "is_ego": False, "device_type": "gopro"},
        {"cam_id": "cam02", "is_ego": True, "device_type": "gopro"}]}])
    m = load_manifest(root, segments="take")
    views = dict(zip(m.clips["clip_id"], m.clips["view"]))
    assert views == {"uid-a/aria01": "ego", "uid-a/cam02": "ego", "uid-a/cam01": "exo"}
    assert m.stats["ego_gopros"] == 1
    assert str((root / "captures.json").absolute()) in m.sources
    # a count of exo cameras never counts an egocentric GoPro
    assert list(load_manifest(root, segments="take", exo_cams="1").clips["clip_id"]) == [
        "uid-a/aria01", "uid-a/cam02", "uid-a/cam01"]


def test_is_ego_inside_the_take_and_without_any_flag(tmp_path):
    from rosetta_cli.datasets import load_manifest

    root = _egoexo(tmp_path)
    take = json.loads((root / "takes.json").read_text())[0]
    take["capture"] = {"capture_uid": "cap-1", "cameras": [{"cam_id": "cam01", "is_ego": "1"}]}
    write(root / "takes.json", [take])
    views = dict(zip(*[load_manifest(root, segments="take").clips[c] for c in ("clip_id", "view")]))
    assert views == {"uid-a/aria01": "ego", "uid-a/cam01": "ego", "uid-a/cam02": "exo"}
    del take["capture"]
    write(root / "takes.json", [take])
    views = dict(zip(*[load_manifest(root, segments="take").clips[c] for c in ("clip_id", "view")]))
    assert views == {"uid-a/aria01": "ego", "uid-a/cam01": "exo", "uid-a/cam02": "exo"}  # no flag: the name rule


def test_null_relative_path_drops_that_camera_alone(tmp_path):
    from rosetta_cli.datasets import load_manifest

    root = _egoexo(tmp_path)
    takes = json.loads((root / "takes.json").read_text())
    takes[0]["frame_aligned_videos"]["cam02"]["0"]["relative_path"] = None
    write(root / "takes.json", takes)
    m = load_manifest(root, segments="take")
    assert list(m.clips["clip_id"]) == ["uid-a/aria01", "uid-a/cam01"]
    assert m.skipped_by_reason() == {"takes.json: 'relative_path' is missing": 1}


def test_extract_lists_skipped_records_and_exits_3(tmp_path, cli):
    from rosetta_cli.store import Store

    root = _egoexo(tmp_path)
    write(root / "annotations" / "keystep_segment_train.json", {"segments": [
        _segment("a0", 2.0, 5.0), _segment("a1", 7.0, 6.0)]})
    out = tmp_path / "p.zarr"
    args = ["extract", "--videos", root, "--out", out, "--text-encoder", "none", "--frames", "1", "--workers", "0"]
    r = cli(*args, "--json")
    assert r.code == 3
    res = json.loads(r.out)
    assert res["skipped_records"] == 1
    assert res["skipped_by_reason"] == {"keystep_segment_train.json: end_time <= start_time": 1}
    assert res["skipped_examples"][0]["entry"] == "segments[1]"
    assert "annotation record(s) were skipped" in r.err
    with Store.open(out) as s:
        assert len(s) == 3  # the good segment's 3 cameras
        assert s.meta["annotation_skipped"] == {"records": 1, "by_reason": res["skipped_by_reason"]}
    r = cli(*args, "--overwrite")
    assert "Skipped annotation records (1)" in r.out and "end_time <= start_time" in r.out  # the summary table
    r = cli(*args, "--overwrite", "--strict")
    assert r.code == 2 and "segments[1]: field 'end_time' must be greater" in r.err


# ---------------------------------------------------------------- item 5: LaViLa checkpoints with numpy scalars
def _lavila_layout_checkpoint(path: Path, old_numpy_name: bool = False) -> Path:
    """A checkpoint laid out as LaViLa's main.py saves it (facebookresearch/LaViLa, main.py's
    save_on_master call): {"epoch", "state_dict" (module.-prefixed), "optimizer", "scaler", "best_acc1",
    "args"}, with best_acc1 from np.mean(...), a numpy.float64. The model is a tiny random one in the
    official key layout (tests/test_lavila.py's reference)."""
    import argparse
    import zipfile

    import torch

    from tests.test_lavila import FRAMES, EMBED, RefLavila, randomise

    model = randomise(RefLavila())
    args = argparse.Namespace(model="CLIP_OPENAI_TIMESFORMER_BASE", project_embed_dim=EMBED, clip_length=FRAMES,
                              lr=3e-5, norm_embed=True)
    torch.save({"epoch": 5, "state_dict": {"module." + k: v for k, v in model.state_dict().items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 3e-5, "params": [0, 1]}]},
                "scaler": {"scale": 65536.0, "growth_factor": 2.0}, "best_acc1": np.mean([0.25, 0.5]),
                "args": args}, path)
    if old_numpy_name:  # as numpy 1 writes it: numpy.core.multiarray.scalar (the released LaViLa files)
        with zipfile.ZipFile(path) as z:
            items = [(i, z.read(i.filename)) for i in z.infolist()]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            for info, data in items:
                if info.filename.endswith("data.pkl"):
                    assert b"cnumpy._core.multiarray\nscalar\n" in data  # protocol 2: a GLOBAL opcode
                    data = data.replace(b"cnumpy._core.multiarray\nscalar\n", b"cnumpy.core.multiarray\nscalar\n")
                z.writestr(info, data)
    return path


@pytest.mark.parametrize("old_numpy_name", [False, True])
def test_lavila_checkpoint_with_numpy_scalars_loads(tmp_path, old_numpy_name):
    from rosetta_cli.encoders.lavila import read_checkpoint

    path = _lavila_layout_checkpoint(tmp_path / "clip_openai_timesformer_base.ep_0005.pth", old_numpy_name)
    sd, args = read_checkpoint(path, f"lavila:{path}")
    assert "visual.temporal_embed" in sd and not any(k.startswith("module.") for k in sd)
    assert args["clip_length"] == 4 and args["model"] == "CLIP_OPENAI_TIMESFORMER_BASE"


def test_lavila_checkpoint_still_refuses_other_numpy_objects(tmp_path):
    """Allowing the float64 scalar does not allow arrays (numpy's array reconstructor stays refused)."""
    import torch

    from rosetta_cli.encoders.lavila import read_checkpoint
    from rosetta_cli.errors import CheckpointError

    path = tmp_path / "arr.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": np.arange(3)}, path)
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        read_checkpoint(path, f"lavila:{path}")


# ---------------------------------------------------------------- item 7: the released sentencified HTM ASR
# sentencified_htm_1200k.json as TAN releases it ("Temporal Alignment Networks", the Sentencified HTM
# download on the TAN project page; read by TAN's and HowToCaption's loaders as json.load -> {vid: ...}):
# {vid: {"start": [seconds], "end": [seconds], "text": [sentence]}}, the three lists of one length.
SENTENCIFIED = {
    "yt_a": {"start": [0.5, 3.0, 8.0], "end": [2.25, 6.5, 7.0], "text": ["so we cut the pepper", "then rinse it", "x"]},
    "yt_b": {"start": [1.0, 4.0], "end": [3.5, 5.0], "text": ["pour the milk", "  "]},
    "yt_c": {"start": [1.0], "end": [2.0, 3.0], "text": ["lists differ"]},
}


def test_sentencified_htm_json_loads(tmp_path):
    from rosetta_cli.datasets import load_manifest

    write(tmp_path / "htm" / "sentencified_htm_1200k.json", SENTENCIFIED)
    (tmp_path / "htm" / "videos").mkdir()
    m = load_manifest(tmp_path / "htm", "htm-aa", source="asr")
    assert list(m.clips["clip_id"]) == ["yt_a@0.5-2.25", "yt_a@3-6.5", "yt_b@1-3.5"]
    assert list(m.clips["narration"]) == ["so we cut the pepper", "then rinse it", "pour the milk"]
    assert m.stats["empty_dropped"] == 1
    assert m.skipped_by_reason() == {"sentencified_htm_1200k.json: end <= start (or start < 0)": 1,
                                     "sentencified_htm_1200k.json: start/end/text lengths differ": 1}
    assert m.sources == [str((tmp_path / "htm" / "sentencified_htm_1200k.json").absolute())]
    same = load_manifest(tmp_path / "htm", "htm-aa", source="asr",
                         asr_dir=tmp_path / "htm" / "sentencified_htm_1200k.json")
    assert list(same.clips["clip_id"]) == list(m.clips["clip_id"])


def test_sentencified_csv_bad_row_fails_alone(tmp_path):
    """The per-video CSV layout of TAN's data loaders (start,end,text; file name {vid}.csv)."""
    from rosetta_cli.datasets import load_manifest

    asr = tmp_path / "sentencified"
    asr.mkdir()
    (asr / "yt_c.csv").write_text("start,end,text\n0.5,2.25,hello there\n5,4,backwards\n6,7,fine\n")
    m = load_manifest(tmp_path, "htm-aa", source="asr")
    assert list(m.clips["clip_id"]) == ["yt_c@0.5-2.25", "yt_c@6-7"]
    assert m.skipped[0]["entry"] == "row 1 (line 3)"


# ---------------------------------------------------------------- item 8: which label space a store holds
# keystep_train.json of the annotations part (Ego-Exo4D docs, "Keystep" annotations:
# {"annotations": {take_uid: {take_uid, take_name, segments: [{start_time, end_time, step_id,
# step_unique_id, step_name, ...}]}}}) and the keystep benchmark's label_mapping.csv (label_id, step_unique_id, step_name).
KEYSTEP_FULL = {"annotations": {"uid-a": {"take_uid": "uid-a", "take_name": "cmu_cooking_1", "segments": [
    {"start_time": 2.0, "end_time": 5.0, "step_id": 1, "step_unique_id": "101", "step_name": "Get knife",
     "step_description": "get a knife", "is_essential": True},
    {"start_time": 6.0, "end_time": 9.0, "step_id": 7, "step_unique_id": "999", "step_name": "Check phone",
     "step_description": "look at the phone", "is_essential": False}]}}, "taxonomy": {}, "vocabulary": {}}


def test_label_space_is_chosen_and_recorded(tmp_path, cli):
    from rosetta_cli.datasets import load_manifest
    from rosetta_cli.errors import InputNotFound

    root = _egoexo(tmp_path)
    write(root / "annotations" / "keystep_train.json", KEYSTEP_FULL)
    m = load_manifest(root)  # no label_mapping.csv: raw step names
    assert (m.options["label_space_resolved"], m.labels) == ("steps", ["Check phone", "Get knife"])
    with pytest.raises(InputNotFound, match="label_mapping.csv"):
        load_manifest(root, label_space="benchmark")
    (root / "annotations" / "label_mapping.csv").write_text("label_id,step_unique_id,step_name\n0,101,Get a knife\n")
    m = load_manifest(root)
    assert (m.options["label_space_resolved"], m.labels) == ("benchmark", ["Get a knife"])
    assert list(m.clips[m.clips.view == "ego"].label) == ["Get a knife", ""]  # "Check phone" is no class: not appended
    out = tmp_path / "p.zarr"
    r = cli("extract", "--videos", root, "--out", out, "--text-encoder", "none", "--frames", "1", "--workers", "0",
            "--label-space", "steps")
    assert r.code == 3  # no videos on disk: rows fail, the store is still written
    with Store.open(out) as s:
        assert s.meta["dataset_options"]["label_space_resolved"] == "steps"
        assert s.meta["labels"] == ["Check phone", "Get knife"]


# ---------------------------------------------------------------- item 9: two layouts that were never matched
def test_lavila_chunked_ego4d_videos_are_found(tmp_path):
    """LaViLa's Ego4D preprocessing (facebookresearch/LaViLa, datasets/README.md and its
    crop_and_resize_ego4d script): each video cut into 5-minute chunks, `<video_uid>.mp4/0.mp4`,
    `<video_uid>.mp4/300.mp4`, ..., next to Ego4D's narration.json (Ego4D docs, "Narrations")."""
    from rosetta_cli.datasets import load_manifest

    uid = VIDEO_UID
    narr = [{"timestamp_sec": t, "timestamp_frame": int(t * 30), "narration_text": f"#C C step {k}",
             "annotation_uid": f"a{k}"} for k, t in enumerate([10.0, 299.8, 310.0])]
    write(tmp_path / "ego4d" / "v2" / "annotations" / "narration.json",
          {uid: {"narration_pass_1": {"narrations": narr, "summaries": []}}})
    chunks = tmp_path / "ego4d" / "video_288px" / f"{uid}.mp4"
    for start in (0, 300, 600):
        touch_video = chunks / f"{start}.mp4"
        touch_video.parent.mkdir(parents=True, exist_ok=True)
        touch_video.write_bytes(b"\0")
    m = load_manifest(tmp_path / "ego4d", "ego4d")
    rows = {r.clip_id: r for r in m.clips.itertuples()}
    # one video: beta = mean gap (310 - 10) / 2 = 150 = alpha, so every window is 1 s wide
    a, b, c = (rows[f"{uid}/p1/{k}"] for k in range(3))
    assert (Path(a.video).name, a.start, a.end) == ("0.mp4", 9.5, 10.5)
    assert (Path(b.video).name, b.start, b.end) == ("0.mp4", pytest.approx(299.3), 300.0)  # cut at the chunk's end
    assert (Path(c.video).name, c.start, c.end) == ("300.mp4", pytest.approx(9.5), pytest.approx(10.5))
    assert m.stats["clips_cut_at_chunk_end"] == 1
    assert m.stats["videos_missing"] == 0


def test_egoexo4d_per_camera_feature_files_are_imported(tmp_path, cli):
    """Ego-Exo4D's features/omnivore_video part (Ego-Exo4D docs, "Features"; the downloader's part of
    that name): one file per take and camera stream, `<take_uid>_<cam_id>_<stream_id>.pt`, windows of
    32 frames at stride 16 of the 30 fps video. Window i holds 100*camera + i."""
    import torch

    feats = tmp_path / "omnivore_video"
    feats.mkdir()
    for k, (cam, stream) in enumerate([("aria01", "rgb"), ("cam01", "0")]):
        torch.save(torch.tensor(100.0 * k + np.arange(20, dtype=np.float32))[:, None].repeat(1, 4),
                   feats / f"uid-a_{cam}_{stream}.pt")
    take = "/data/egoexo/takes/cmu_cooking_1/frame_aligned_videos"
    clips = pd.DataFrame({"clip_id": ["uid-a/a0/aria01", "uid-a/a0/cam01"], "video": [f"{take}/aria01_214-1.mp4",
                          f"{take}/cam01.mp4"], "start": [2.0, 2.0], "end": [3.0, 3.0], "view": ["ego", "exo"],
                          "sync_id": ["uid-a/a0"] * 2, "narration": [""] * 2, "label": [""] * 2, "skill": [""] * 2,
                          "split": ["train"] * 2})
    clips.to_csv(tmp_path / "c.csv", index=False)
    r = cli("store", "import", "--features", feats, "--clips", tmp_path / "c.csv", "--out", tmp_path / "p.zarr",
            "--fps", 30, "--window", 32, "--stride", 16)
    assert r.code == 0, r
    with Store.open(tmp_path / "p.zarr") as s:
        got = s.features()[:, 0, 0].astype(np.float64)
    # [2, 3]: windows i with i*16/30 < 3 and i*16/30 + 32/30 > 2: i = 2..5, mean 3.5
    np.testing.assert_allclose(got, [3.5, 103.5])
