"""Bad input across the commands (issue #31): every case exits non-zero with one clear error line
that names the file, shows no traceback, and changes nothing already computed; or gives the right result.

One small synthetic world (real zarr stores, a tiny RST and an unfinished dual encoder) serves every
case; a case that damages a store damages its own copy. Ctrl-C is sent to real child processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.store import DONE, FAILED, Store
from rosetta_cli.synthetic.pretrain_world import World, make_paired, make_unpaired

UNWRITABLE = Path("/sys/rosetta-bad-input")  # a folder nobody can create, root included (Linux)


# ----------------------------------------------------------------------------- the world
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """paired / ego / exo / pairs / translated stores, a second ego store, a tiny RST, an unfinished model."""
    from rosetta_cli.cli.app import main
    from rosetta_cli.contrastive import train
    from rosetta_cli.contrastive.config import PretrainConfig

    root = tmp_path_factory.mktemp("world")
    w = World(dim=16, text_dim=8)
    make_paired(w, root / "paired.zarr", takes=6, per_take=8, seed=1, chunk_rows=16)
    make_unpaired(w, root, n_ego=64, n_exo=64, seed=2, chunk_rows=16)
    make_unpaired(w, root / "other", n_ego=64, n_exo=8, seed=3, chunk_rows=16, translate=False)
    cfg = PretrainConfig(out=str(root / "model"), paired=str(root / "paired.zarr"), steps=40, eval_every=4,
                         batch_size=16, dim=16, layers=1, device="cpu", threads=1)
    train.run(cfg, stop_after_epochs=1)  # a checkpoint at step 4 of 40: training did not finish
    with pytest.raises(SystemExit) as e:
        main(["train-rst", "--paired", str(root / "paired.zarr"), "--out", str(root / "rst"), "--steps", "2",
              "--batch-size", "8", "--device", "cpu"])
    assert e.value.code == 0
    return root


def digest(*roots: Path) -> str:
    """One hash of every file under roots (paths and bytes): 'nothing already computed changed'."""
    h = hashlib.sha256()
    for root in roots:
        for f in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def lose_chunk(store: Path, array: str = "features") -> Path:
    """Delete chunk 1 of an array (rows 16-31, all done): the file a user's `rm` or a lost disk takes."""
    f = store / array / "c" / "1"
    f = f / "0" / "0" if array == "features" else f
    f.unlink()
    return f


def put_nan(store: Path, row: int) -> None:
    s = Store.open(store, mode="r+")
    a = (row // s.chunk_rows) * s.chunk_rows
    f = s.features(slice(a, a + s.chunk_rows)).astype(np.float32)
    f[row - a, 0, 0] = np.nan
    s.write_rows(a, features=f)
    s.close()


def error_line(err: str) -> str:
    """The error: exactly one `rosetta: error:` line, the last, with no traceback and no blank line before it."""
    lines = err.rstrip("\n").split("\n")
    assert "Traceback" not in err, err
    errors = [ln for ln in lines if ln.startswith("rosetta: error:")]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0], err
    assert len(lines) == 1 or lines[-2].strip() != "", f"blank line before the error: {err!r}"
    return errors[0]


# ----------------------------------------------------------------------------- the cases
# (id, argv with {w} = the world, {t} = the case's own folder, expected exit code, words the error must hold)
# `prepare(w, t)` damages the case's own copies first.
def _lost(w, t):
    lose_chunk(copy(w / "exo.zarr", t / "exo.zarr"))


def _lost_paired(w, t):
    lose_chunk(copy(w / "paired.zarr", t / "paired.zarr"))


def _nan_exo(w, t):
    put_nan(copy(w / "exo.zarr", t / "exo.zarr"), 3)


def _nan_paired(w, t):
    put_nan(copy(w / "paired.zarr", t / "paired.zarr"), 3)


def _lost_status(w, t):
    lose_chunk(copy(w / "ego.zarr", t / "ego.zarr"), "status")


def _clips_csv(w, t, **edit):
    """A clips CSV + features .npy for `store import`, with one field of row 2 edited."""
    s = Store.open(w / "ego.zarr")
    clips = s.clips()[["clip_id", "video", "start", "end", "view", "sync_id", "narration", "label", "skill", "split"]]
    np.save(t / "f.npy", s.features().astype(np.float32))
    s.close()
    clips = clips.astype(object)
    for col, val in edit.items():
        clips.loc[2, col] = val
    clips.to_csv(t / "clips.csv", index=False)


def _index(w, t):
    from rosetta_cli.cli.app import main

    copy(w / "exo.zarr", t / "exo.zarr")
    with pytest.raises(SystemExit):
        main(["index", "--store", str(t / "exo.zarr"), "--out", str(t / "idx")])


def _stale_index(w, t):
    _index(w, t)
    with Store.open(t / "exo.zarr", mode="r+") as s:  # the store is rewritten after the index was built
        s.write_clip_column("clip_id", [f"new{i}" for i in range(s.n_rows)])
        s.finalize()


def _mixed_index(w, t):
    """Two builds in one folder: index.json of the first, embeddings.zarr of the second."""
    from rosetta_cli.cli.app import main

    _index(w, t)
    copy(w / "ego.zarr", t / "ego.zarr")
    with pytest.raises(SystemExit):
        main(["index", "--store", str(t / "ego.zarr"), "--out", str(t / "idx2")])
    shutil.rmtree(t / "idx" / "embeddings.zarr")
    shutil.copytree(t / "idx2" / "embeddings.zarr", t / "idx" / "embeddings.zarr")


MINE = ["mine", "--strategy", "visual", "--out", "{t}/out/p.zarr"]
PRETRAIN = ["pretrain", "--out", "{t}/out/m", "--steps", "2", "--batch-size", "8", "--device", "cpu"]
BENCH = ["bench", "--out", "{t}/out/rep", "--tasks", "retrieval"]
TRANSLATE = ["translate", "--rst", "{w}/rst", "--device", "cpu"]

CASES = [
    # 2. a deleted chunk of done rows is damage, not zeros
    ("lost-chunk-mine", _lost, MINE + ["--ego", "{w}/ego.zarr", "--exo", "{t}/exo.zarr"], 2, ["exo.zarr/features/c/1/0/0", "validate"]),
    ("lost-chunk-bench", _lost_paired, BENCH + ["--ego", "{t}/paired.zarr", "--exo", "{t}/paired.zarr"], 2, ["features/c/1/0/0"]),
    ("lost-chunk-pretrain", _lost_paired, PRETRAIN + ["--paired", "{t}/paired.zarr"], 2, ["features/c/1/0/0"]),
    ("lost-chunk-index", _lost, ["index", "--store", "{t}/exo.zarr", "--out", "{t}/out/idx"], 2, ["features/c/1/0/0"]),
    ("lost-status-chunk-validate", _lost_status, ["store", "validate", "{t}/ego.zarr"], 1, ["problem"]),
    ("lost-status-chunk-mine", _lost_status, MINE + ["--ego", "{t}/ego.zarr", "--exo", "{w}/exo.zarr"], 2, ["status/c/1", "pending"]),
    # 3, 6. mixed and stale indexes are refused
    ("mixed-index", _mixed_index, ["retrieve", "--index", "{t}/idx", "--text", "x"], 2, ["embeddings.zarr", "two builds"]),
    ("stale-index", _stale_index, ["retrieve", "--index", "{t}/idx", "--store", "{t}/exo.zarr", "--rows", "2"], 2,
     ["stale index", "rosetta index", "--resume"]),
    # 4. roles: the same mistake bench rejects
    ("mine-ego-as-exo", None, MINE + ["--ego", "{w}/ego.zarr", "--exo", "{w}/ego.zarr"], 2, ["ego.zarr", "--exo"]),
    ("mine-swapped", None, MINE + ["--ego", "{w}/exo.zarr", "--exo", "{w}/ego.zarr"], 2, ["exo.zarr", "swap --ego and --exo"]),
    ("mine-copy-of-ego-as-exo", lambda w, t: copy(w / "ego.zarr", t / "ego2.zarr"),
     MINE + ["--ego", "{w}/ego.zarr", "--exo", "{t}/ego2.zarr"], 2, ["ego2.zarr", "same store"]),
    ("pretrain-ego-as-exo", None, PRETRAIN + ["--ego", "{w}/ego.zarr", "--exo", "{w}/ego.zarr", "--pairs", "{w}/pairs.zarr"],
     2, ["ego.zarr", "--exo"]),
    ("bench-swapped", None, BENCH + ["--ego", "{w}/exo.zarr", "--exo", "{w}/ego.zarr"], 2, ["swap --ego and --exo"]),
    ("translate-exo-as-ego", None, TRANSLATE + ["--ego", "{w}/exo.zarr", "--out", "{t}/out/tr.zarr"], 2, ["exo.zarr", "--ego"]),
    # 5. NaN/Inf rows: refused by readers, failed alone by import
    ("nan-row-mine", _nan_exo, MINE + ["--ego", "{w}/ego.zarr", "--exo", "{t}/exo.zarr"], 2, ["exo.zarr", "row 3", "NaN"]),
    ("nan-row-index", _nan_exo, ["index", "--store", "{t}/exo.zarr", "--out", "{t}/out/idx"], 2, ["row 3", "--mark-failed"]),
    ("nan-row-bench", _nan_paired, BENCH + ["--ego", "{t}/paired.zarr", "--exo", "{t}/paired.zarr"], 2,
     ["paired.zarr", "row 3", "store validate"]),
    ("nan-row-pretrain", _nan_paired, PRETRAIN + ["--paired", "{t}/paired.zarr"], 2, ["paired.zarr", "row 3"]),
    ("nan-query", _nan_exo, ["retrieve", "--index", "{w}/idx", "--store", "{t}/exo.zarr", "--rows", "3"], 2, ["row 3", "NaN"]),
    # 7. smaller
    ("import-end-before-start", lambda w, t: _clips_csv(w, t, start=5.0, end=2.0),
     ["store", "import", "--features", "{t}/f.npy", "--clips", "{t}/clips.csv", "--out", "{t}/out/i.zarr"], 2,
     ["clips.csv", "line 4", "before start"]),
    ("import-non-numeric-start", lambda w, t: _clips_csv(w, t, start="abc"),
     ["store", "import", "--features", "{t}/f.npy", "--clips", "{t}/clips.csv", "--out", "{t}/out/i.zarr"], 2,
     ["clips.csv", "line 4", "'abc'"]),
    ("merge-same-store-twice", None, ["store", "merge", "{w}/ego.zarr", "{w}/ego.zarr", "--out", "{t}/out/m.zarr"], 2,
     ["ego.zarr", "given twice"]),
    ("embed-batch-size-0", None, ["embed", "--model", "{w}/model", "--store", "{w}/ego.zarr", "--out", "{t}/out/e.zarr",
                                  "--batch-size", "0"], 2, ["--batch-size"]),
    # errors that name the real cause and a fix that exists
    ("translated-from-another-ego", None, MINE[:1] + ["--strategy", "rst", "--out", "{t}/out/p.zarr", "--ego",
                                                       "{w}/other/ego.zarr", "--exo", "{w}/exo.zarr", "--translated",
                                                       "{w}/translated.zarr"], 2, ["translated.zarr", "rosetta translate --rst"]),
    ("rst-dir-as-model", None, BENCH + ["--ego", "{w}/paired.zarr", "--exo", "{w}/paired.zarr", "--model", "{w}/rst"], 2,
     ["rst", "rosetta train-rst", "rosetta pretrain"]),
    ("retrieve-end-before-start", None, ["retrieve", "--index", "{w}/idx", "--video", "{w}/x.mp4", "--start", "5",
                                         "--end", "2"], 2, ["--end 2 is not after --start 5"]),
    ("unknown-option", None, ["mine", "--bogus"], 2, ["--bogus", "rosetta mine --help"]),
]
OUT_CASES = {  # --out where nothing can be written
    "extract": ["extract", "--videos", str(Path(__file__).parent / "data" / "videos"), "--out", "{o}/x.zarr"],
    "translate": TRANSLATE + ["--ego", "{w}/ego.zarr", "--out", "{o}/tr.zarr"],
    "embed": ["embed", "--model", "{w}/model", "--store", "{w}/ego.zarr", "--out", "{o}/e.zarr"],
    "import": ["store", "import", "--features", "{t}/f.npy", "--clips", "{t}/clips.csv", "--out", "{o}/i.zarr"],
    "mine": MINE[:3] + ["--ego", "{w}/ego.zarr", "--exo", "{w}/exo.zarr", "--out", "{o}/p.zarr"],
    "index": ["index", "--store", "{w}/exo.zarr", "--out", "{o}/idx"],
    "bench": ["bench", "--ego", "{w}/paired.zarr", "--exo", "{w}/paired.zarr", "--out", "{o}/rep"],
    "toy": ["toy", "--scale", "tiny", "--out", "{o}/toy"],
    "init": ["--workspace", "{o}", "init"],
    "export": ["store", "export", "{w}/ego.zarr", "--out", "{o}/x"],
}
CASES += [(f"unwritable-out-{k}", (lambda w, t: _clips_csv(w, t)) if k == "import" else None, v, 2,
           [str(UNWRITABLE), "cannot write here"]) for k, v in OUT_CASES.items()]


@pytest.fixture(scope="module")
def built_index(world):
    """{w}/idx: a frozen-feature index of the exo store (for the query cases)."""
    from rosetta_cli.cli.app import main

    if not (world / "idx" / "index.json").exists():
        with pytest.raises(SystemExit):
            main(["index", "--store", str(world / "exo.zarr"), "--out", str(world / "idx")])
    return world / "idx"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, world, built_index, tmp_path, cli):
    name, prepare, argv, code, words = case
    if prepare is not None:
        prepare(world, tmp_path)
    argv = [a.format(w=world, t=tmp_path, o=UNWRITABLE) for a in argv]
    before = digest(world, *[p for p in tmp_path.iterdir() if p.name != "out"])
    r = cli(*argv)
    assert r.code == code, r
    line = error_line(r.err)
    for word in words:
        assert word in line, (word, line)
    assert digest(world, *[p for p in tmp_path.iterdir() if p.name != "out"]) == before


# ----------------------------------------------------------------------------- right results
def test_validate_mark_failed_then_readers_skip_and_count(world, tmp_path, cli):
    """After `store validate --mark-failed`, the lost and NaN rows are failed with a reason; mine skips and counts them."""
    exo = copy(world / "exo.zarr", tmp_path / "exo.zarr")
    lose_chunk(exo)
    put_nan(exo, 3)
    r = cli("store", "validate", exo, "--mark-failed")
    assert r.code == 0, r
    with Store.open(exo) as s:
        st, err = s.status(), s.errors()
    assert (st[16:32] == FAILED).all() and st[3] == FAILED and (st == DONE).sum() == 64 - 17
    assert "features: chunk 1" in err[16] and "NaN/Inf" in err[3]
    r = cli("mine", "--strategy", "visual", "--ego", world / "ego.zarr", "--exo", exo, "--out", tmp_path / "p.zarr", "--json")
    assert r.code == 0, r
    with Store.open(tmp_path / "p.zarr") as p:
        assert p.meta["skipped"]["exo_not_done"] == 17
        assert not set(p.pairs()["candidate_row"]) & ({3} | set(range(16, 32)))


def test_import_marks_nan_rows_failed_alone(world, tmp_path, cli):
    _clips_csv(world, tmp_path)
    f = np.load(tmp_path / "f.npy")
    f[5, 0, 1] = np.inf
    np.save(tmp_path / "f.npy", f)
    r = cli("store", "import", "--features", tmp_path / "f.npy", "--clips", tmp_path / "clips.csv", "--out", tmp_path / "i.zarr")
    assert r.code == 3, r
    assert "1 row(s) failed" in error_line(r.err) and "line 7" in r.err
    with Store.open(tmp_path / "i.zarr") as s:
        st = s.status()
        assert st[5] == FAILED and (np.delete(st, 5) == DONE).all()
        assert "NaN/Inf in its features" in s.errors()[5]
    r = cli("store", "validate", tmp_path / "i.zarr")
    assert r.code == 0, r


def test_validate_finds_duplicate_ids_and_bad_times(world, tmp_path, cli):
    ego = copy(world / "ego.zarr", tmp_path / "ego.zarr")
    with Store.open(ego, mode="r+") as s:
        ids = s.column("clip_id")
        ids[7] = ids[2]
        s.write_clip_column("clip_id", ids)
        end = s.column("end")
        end[4] = -1.0
        s.write_clip_column("end", end)
    r = cli("store", "validate", ego)
    assert r.code == 1
    assert "1 id(s) occur more than once, e.g. 'ego2' at rows 2, 7" in r.out  # the report: stdout
    assert "end is before start, e.g. row 4" in r.out
    assert "2 problem(s) found" in r.err  # the failure: stderr


def test_bench_warns_about_an_unfinished_model(world, tmp_path, cli):
    r = cli("bench", "--ego", world / "paired.zarr", "--exo", world / "paired.zarr", "--model", world / "model",
            "--tasks", "retrieval", "--out", tmp_path / "rep")
    assert r.code == 0, r
    assert "stopped at step 4 of 40" in r.err
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert len(res["warnings"]) == 1 and "step 4 of 40" in res["warnings"][0]


def test_index_refuses_a_second_builder_naming_the_holder(world, tmp_path, cli):
    """Two builders in one folder would mix their files: the second fails with the holder's pid."""
    out = tmp_path / "idx"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from filelock import FileLock; "
                               f"l = FileLock({str(out / '.lock')!r}); l.acquire(); print('held', flush=True); "
                               "time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = cli("index", "--store", world / "exo.zarr", "--out", out)
    finally:
        holder.kill()
        holder.wait()
    assert r.code == 2, r
    assert f"pid {holder.pid}" in error_line(r.err) and "another `rosetta index`" in r.err
    assert sorted(p.name for p in out.iterdir()) == [".lock"]
    r = cli("index", "--store", world / "exo.zarr", "--out", out)
    assert r.code == 0, r


def test_stale_index_rebuilt_by_resume(world, tmp_path, cli):
    _stale_index(world, tmp_path)
    r = cli("index", "--store", tmp_path / "exo.zarr", "--out", tmp_path / "idx", "--resume")
    assert r.code == 0, r
    r = cli("retrieve", "--index", tmp_path / "idx", "--store", tmp_path / "exo.zarr", "--rows", "2", "--json")
    assert r.code == 0, r
    hits = json.loads(r.out)["queries"][0]["hits"]
    assert all(h["clip_id"] == f"new{h['row']}" for h in hits)


# ----------------------------------------------------------------------------- Ctrl-C
def _child(argv: list, marker: Path, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run `rosetta argv` as a real child process; SIGINT it once `marker` exists; wait for it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")])}
    p = subprocess.Popen([sys.executable, "-m", "rosetta_cli", *map(str, argv)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    t0 = time.monotonic()
    while not marker.exists():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() - t0 < timeout, "the marker never appeared"
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def test_ctrl_c_pretrain_checkpoints_and_exits_130(world, tmp_path):
    m = tmp_path / "m"
    r = _child(["pretrain", "--paired", world / "paired.zarr", "--out", m, "--steps", "100000", "--eval-every", "4",
                "--batch-size", "8", "--dim", "16", "--layers", "1", "--device", "cpu", "--threads", "1"],
               m / "config.json")
    assert r.returncode == 130, r.stderr
    line = error_line(r.stderr)
    step = json.loads((m / "config.json").read_text())["step"]
    assert f"checkpoint saved at step {step}/100000" in line and "--resume" in line


def test_ctrl_c_train_rst_checkpoints_and_exits_130(world, tmp_path):
    out = tmp_path / "rst"
    r = _child(["train-rst", "--paired", world / "paired.zarr", "--out", out, "--steps", "100000", "--batch-size", "8",
                "--ckpt-every", "5", "--device", "cpu"], out / "config.json")
    assert r.returncode == 130, r.stderr
    line = error_line(r.stderr)
    step = json.loads((out / "config.json").read_text())["step"]
    assert f"train-rst interrupted at step {step}/100000; checkpoint saved" in line


def test_ctrl_c_index_exits_130_and_resumes(tmp_path):
    """An index of 6k rows embedded 16 rows a block: long enough to interrupt; --resume finishes it."""
    w = World(dim=8, text_dim=4)
    make_unpaired(w, tmp_path, n_ego=8, n_exo=6000, seed=0, chunk_rows=16, translate=False)
    out = tmp_path / "idx"
    # block 2's features are written after block 1's status: blocks 0 and 1 are done by then
    r = _child(["index", "--store", tmp_path / "exo.zarr", "--out", out, "--batch-rows", "16"],
               out / "embeddings.zarr" / "features" / "c" / "2" / "0" / "0")
    assert r.returncode == 130, r.stderr
    line = error_line(r.stderr)
    assert "index interrupted" in line and "clips embedded are kept" in line and "--resume" in line
    assert not (out / "index.json").exists()
    done = subprocess.run([sys.executable, "-m", "rosetta_cli", "index", "--store", tmp_path / "exo.zarr", "--out", out,
                           "--batch-rows", "16", "--resume", "--json"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr
    res = json.loads(done.stdout)
    assert res["rows"] == 6000 and 0 < res["embedded"] <= 6000 - 32


# ----------------------------------------------------------------------------- the toy world's next steps
@pytest.mark.slow
def test_toy_tiny_next_steps_run_as_printed(tmp_path):
    """`rosetta toy --scale tiny` prints the pipeline's commands; each runs as printed (exit 0)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def rosetta(args: list) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rosetta_cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, env=env)

    r = rosetta(["toy", "--scale", "tiny", "--out", "world"])
    assert r.returncode == 0, r.stderr
    steps = [ln.strip() for ln in r.stderr.splitlines() if ln.strip().startswith("rosetta ")]
    assert len(steps) == 8 and steps[-1].startswith("rosetta bench")
    for step in steps:
        done = rosetta(step.split()[1:])
        assert done.returncode == 0, (step, done.stderr[-2000:])
    assert (tmp_path / "report" / "results.json").exists()


def test_ctrl_c_mine_exits_130_and_resumes(tmp_path):
    """mine keeps its finished query blocks on Ctrl-C; the rerun reuses them and gives the full table."""
    w = World(dim=16, text_dim=4)
    make_unpaired(w, tmp_path, n_ego=40000, n_exo=4000, seed=0, chunk_rows=256, translate=False)
    argv = ["mine", "--ego", tmp_path / "ego.zarr", "--exo", tmp_path / "exo.zarr", "--strategy", "visual",
            "--block-rows", "256", "--out", tmp_path / "p.zarr"]
    r = _child(argv, tmp_path / "p.zarr.partial" / "block-000002.npz")
    assert r.returncode == 130, r.stderr
    line = error_line(r.stderr)
    assert "mine interrupted" in line and "query blocks are kept" in line
    done = subprocess.run([sys.executable, "-m", "rosetta_cli", *map(str, argv), "--json"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr
    res = json.loads(done.stdout)
    assert res["pairs"] == 40000 and res["resumed_blocks"] >= 3


def test_extract_fails_a_nan_encoder_row_alone():
    """extract's chunk buffer: a clip whose encoder output holds NaN is failed with the reason; the others are done."""
    from rosetta_cli.extract.loop import ChunkBuffer

    buf = ChunkBuffer(10, 13, 1, 2)
    feats = np.array([[[1.0, 2.0]], [[np.nan, 0.0]]], np.float32)
    buf.add([10, 11, 12], [True, True, False], ["", "", "decode error: x.mp4"], feats)
    assert list(buf.status) == [DONE, FAILED, FAILED]
    assert "NaN/Inf" in buf.errors[1] and buf.errors[2] == "decode error: x.mp4"
    np.testing.assert_array_equal(buf.features[0, 0], [1.0, 2.0])


def test_pretrain_ctrl_c_between_checkpoints_resumes_exactly(world, tmp_path, monkeypatch):
    """A real SIGINT at step 11 (between the checkpoints at 8 and 16): the run saves step 11 and stops;
    --resume from there ends with the same weights as an uninterrupted run."""
    import torch

    from rosetta_cli.contrastive import train
    from rosetta_cli.contrastive.config import PretrainConfig
    from rosetta_cli.errors import Interrupted
    from rosetta_cli.runtime.checkpoint import load_weights

    def cfg(out, **kw):
        return PretrainConfig(out=str(out), paired=str(world / "paired.zarr"), steps=20, eval_every=8, batch_size=16,
                              dim=16, layers=1, device="cpu", threads=1, **kw)

    train.run(cfg(tmp_path / "full"))
    step = train.Trainer.train_step

    def step_then_ctrl_c(self):
        out = step(self)
        if self.step == 11:
            os.kill(os.getpid(), signal.SIGINT)
        return out
    monkeypatch.setattr(train.Trainer, "train_step", step_then_ctrl_c)
    with pytest.raises(Interrupted, match="checkpoint saved at step 11/20"):
        train.run(cfg(tmp_path / "part"))
    monkeypatch.undo()
    assert json.loads((tmp_path / "part" / "config.json").read_text())["step"] == 11
    train.run(cfg(tmp_path / "part", resume=True))
    a, b = load_weights(tmp_path / "full"), load_weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_rst_ctrl_c_between_checkpoints_resumes_exactly(world, tmp_path, monkeypatch, cli):
    """The same for train-rst, through the CLI: exit 130 at step 11 with its checkpoint, then --resume."""
    import torch

    from rosetta_cli.rst import train
    from rosetta_cli.runtime.checkpoint import load_weights

    def argv(out, *more):
        return ["train-rst", "--paired", world / "paired.zarr", "--out", out, "--steps", "20", "--ckpt-every", "8",
                "--batch-size", "8", "--device", "cpu", *more]

    assert cli(*argv(tmp_path / "full")).code == 0
    update = train._update

    def update_then_ctrl_c(run, loss, cfg):
        update(run, loss, cfg)
        if run.step == 10:  # this step becomes step 11
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(train, "_update", update_then_ctrl_c)
    r = cli(*argv(tmp_path / "part"))
    assert r.code == 130, r
    assert "interrupted at step 11/20; checkpoint saved at this step" in error_line(r.err)
    monkeypatch.undo()
    assert cli(*argv(tmp_path / "part", "--resume")).code == 0
    for name in ("model", "ema"):
        a, b = (load_weights(tmp_path / d, name) for d in ("full", "part"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_validate_a_pairs_store(world, cli):
    r = cli("store", "validate", world / "pairs.zarr")
    assert r.code == 0, r
    assert f"{world / 'pairs.zarr'}: valid" in r.out  # the report is a result: stdout
