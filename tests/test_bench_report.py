"""Report outputs: frame decoding, the retrieval gallery from real (tiny) videos, tables, and index.html in Chromium."""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.bench import BenchConfig, run_bench
from rosetta_cli.video.frames import middle_frame
from rosetta_cli.bench.report import markdown, rich_table
from rosetta_cli.store import DONE, Store

FPS = 10


def write_video(path: Path, seconds: float = 3.0) -> None:
    """64x48 mpeg4 video whose frame i is uniformly grey at level 8*i (so time is readable from pixels)."""
    import av

    with av.open(str(path), "w") as c:
        st = c.add_stream("mpeg4", rate=FPS)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * FPS)):
            img = np.full((48, 64, 3), 8 * i, dtype=np.uint8)
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)


def test_middle_frame_decodes_the_middle(tmp_path):
    write_video(tmp_path / "v.mp4")
    f = middle_frame(tmp_path / "v.mp4", 1.0, 2.0, max_side=32)   # middle 1.5 s → frame 15 → level 120
    assert f.shape == (24, 32, 3)
    assert f.dtype == np.uint8
    assert abs(float(f.mean()) - 120) < 10
    assert middle_frame(tmp_path / "missing.mp4", 0, 1) is None


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Stores whose clips point at real videos (relative to the store folder; one video missing)."""
    d = tmp_path_factory.mktemp("gal")
    (d / "vids").mkdir()
    for v in ("a", "b", "c"):
        write_video(d / "vids" / f"{v}.mp4")
    rng = np.random.default_rng(0)
    paths = []
    for view, n, split in (("ego", 12, "test"), ("exo", 24, ["test"] * 12 + ["train"] * 12)):
        vids = [f"vids/{'abcx'[i % 4]}.mp4" for i in range(n)]   # x.mp4 does not exist
        clips = pd.DataFrame({"clip_id": [f"{view}{i}" for i in range(n)], "video": vids, "start": 0.5, "end": 1.5,
                              "view": view, "label": [f"step {i % 3}" for i in range(n)], "split": split,
                              "skill": ["good", "bad"] * (n // 2)})
        s = Store.create(d / f"{view}.zarr", kind="features", clips=clips, frames=2, dim=8)
        s.write_rows(0, features=rng.normal(size=(n, 2, 8)), status=DONE)
        s.finalize()
        paths.append(d / f"{view}.zarr")
    res = run_bench(*paths, d / "rep", BenchConfig(gallery_queries=3))
    return d / "rep", res


def test_gallery_and_report_files(report):
    rep, res = report
    assert res["images"] == {"metrics": "metrics.png", "gallery": "gallery.png"}
    assert (rep / "gallery.png").stat().st_size > 5000
    assert any("shown blank" in n for n in res["notes"])       # the x.mp4 clips
    html = (rep / "index.html").read_text()
    assert 'src="gallery.png"' in html
    assert 'src="metrics.png"' in html
    assert "/" not in re.findall(r'src="([^"]+)"', html)[0]


def test_gallery_skipped_without_videos(tmp_path):
    from rosetta_cli.synthetic.bench_stores import make_stores

    ego, exo = make_stores(tmp_path, n_ego=10, n_exo_train=10, n_classes=3, dim=8)
    res = run_bench(ego, exo, tmp_path / "rep", BenchConfig(tasks=("retrieval",)))
    assert "gallery" not in res["images"]
    assert any("source videos unavailable" in n for n in res["notes"])
    assert "gallery.png" not in (tmp_path / "rep" / "index.html").read_text()


def test_tables_mark_best_per_column():
    res = {"config": {"ks": [5]}, "notes": [], "models": [
        {"name": "a", "metrics": {"hr@5/ego->exo": 10.0, "hr@5/exo->ego": 30.0, "recognition/top1": None}},
        {"name": "b", "metrics": {"hr@5/ego->exo": 20.0, "hr@5/exo->ego": 30.0, "recognition/top1": 5.0}}]}
    md = markdown(res)
    assert "| a | 10.00 | **30.00** | – |" in md
    assert "| b | **20.00** | **30.00** | **5.00** |" in md
    from rich.console import Console

    con = Console(record=True, width=120)
    con.print(rich_table(res))
    text = con.export_text(styles=True)
    assert "HR@5 ego→exo" in text
    assert "recog top-1" in text
    assert "\x1b[1m20.00" in text
    assert "\x1b[1m10.00" not in text  # best in bold




def test_index_html_images_load_in_chromium(report, tmp_path, page_images):
    rep, _ = report
    copy = tmp_path / "rep"
    shutil.copytree(rep, copy)   # a moved report still works: image paths are relative
    assert page_images(copy / "index.html") == ("2", "2")
    (copy / "gallery.png").unlink()   # the check itself must notice a broken image
    assert page_images(copy / "index.html") == ("1", "2")
