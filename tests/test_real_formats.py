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
