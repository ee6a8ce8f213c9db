"""Store I/O benchmark: zarr and HDF5 against a raw numpy.memmap of the same bytes, in one run.

Measures write throughput, full sequential read, shuffled chunk-batch reads (as training
streams them) and random single-row batches, each as the median of --repeats runs.

HDF5 is measured twice: as stores write it (each write_rows flushes the data, then the status:
what makes a kill -9 lose only the chunk in flight, issue #17) and with those flushes disabled,
so the difference is their cost. --write-chunks 1 writes one chunk per call, as `rosetta
extract` does (the most flushes); the default writes 8.

    python benchmarks/store_io.py                      # 200k x T=4 x D=1280 fp16 (~2 GB per format)
    python benchmarks/store_io.py --rows 20000 --quick
    python benchmarks/store_io.py --rows 20000 --quick --write-chunks 1 --only hdf5

--http reads one zarr store (the default codec) from its folder and over a loopback
`python -m http.server` (issue #29: stores by URL), in one run: sequential and shuffled-chunk
reads, random row batches (a local pread per row, against the URL's chunk cache, cached and
uncached: a fresh handle per batch), and pretrain's reader (stream.feature_reader over a
chunk-shuffled order).

    python benchmarks/store_io.py --http --rows 20000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rosetta_cli.store import DONE, Store


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def make_block(rng, n, T, D):
    # Feature-like values: post-ReLU-ish, many small magnitudes (compresses like real EfficientNet features).
    return np.maximum(rng.standard_normal((n, T, D), dtype=np.float32) * 0.5, 0).astype(np.float16)


class MemmapStore:
    """The baseline: one raw .npy memmap, read with the same access patterns."""

    def __init__(self, path, n, T, D, chunk):
        self.mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, T, D))
        self.chunk_rows = chunk

    def write_rows(self, start, features, **_):
        self.mm[start:start + len(features)] = features

    def flush(self):
        self.mm.flush()

    def features(self, sel):
        return np.array(self.mm[sel])


def without_flushes(store: Store) -> Store:
    """The HDF5 store as it wrote before issue #17: nothing reaches the file until close."""
    store.b.flush = lambda: None
    return store


def timing_flushes(store: Store) -> Store:
    """Count the seconds spent in the backend's flushes (reported as `flush share of write`)."""
    flush, store.flush_s = store.b.flush, 0.0

    def timed_flush():
        t = time.perf_counter()
        flush()
        store.flush_s += time.perf_counter() - t

    store.b.flush = timed_flush
    return store


def run_one(name, store, n, T, D, chunk, args, rng) -> dict:
    block = make_block(rng, chunk * args.write_chunks, T, D)

    def write():
        for a in range(0, n, len(block)):
            store.write_rows(a, features=block[: min(len(block), n - a)], status=DONE)
        getattr(store, "flush", lambda: None)()

    res = {"format": name}
    write_s = timed(write, 1)
    res["write MB/s"] = n * T * D * 2 / 1e6 / write_s
    res["flush share of write"] = getattr(store, "flush_s", 0.0) / write_s
    res["seq read MB/s"] = n * T * D * 2 / 1e6 / timed(lambda: [store.features(slice(a, a + chunk * 8)) for a in range(0, n, chunk * 8)], args.repeats)
    chunks = np.arange(-(-n // chunk))
    nshuf = min(len(chunks), args.shuffled_chunks)

    def shuffled():
        for c in rng.permutation(chunks)[:nshuf]:
            store.features(slice(c * chunk, (c + 1) * chunk))

    res["shuffled chunk MB/s"] = nshuf * chunk * T * D * 2 / 1e6 / timed(shuffled, args.repeats)

    def random_rows():
        for _ in range(args.random_batches):
            store.features(np.sort(rng.choice(n, args.batch, replace=False)))

    res["random rows/s"] = args.random_batches * args.batch / timed(random_rows, args.repeats)
    return res


def run_http(args) -> None:
    """Local reads against reads over a loopback HTTP server of the same store, in one run."""
    import socket
    import subprocess
    import sys

    n, T, D, c = args.rows, args.frames, args.dim, args.chunk
    root = Path(args.dir or tempfile.mkdtemp(prefix="rosetta-store-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "view": ["ego"] * n})
    rng = np.random.default_rng(0)
    with Store.create(root / "n.zarr", kind="features", clips=clips, frames=T, dim=D, chunk_rows=c, overwrite=True) as st:
        block = make_block(rng, c * 8, T, D)
        for a in range(0, n, len(block)):
            st.write_rows(a, features=block[: min(len(block), n - a)], status=DONE)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        rows = [_http_row(name, where, n, T, D, c, args)
                for name, where in (("local zarr (baseline)", str(root / "n.zarr")),
                                    ("http://127.0.0.1 (loopback)", f"http://127.0.0.1:{port}/n.zarr"))]
    finally:
        server.kill()
        server.wait()
    df = pd.DataFrame(rows).set_index("where")
    base = df.iloc[0]
    for col in list(df.columns):
        df[f"{col} (x local)"] = df[col] / base[col]
    print(f"\n{n} rows x T={T} x D={D} fp16, chunk {c} rows, batch {args.batch}, median of {args.repeats}\n")
    try:
        print(df.round(3).T.to_markdown())
    except ImportError:
        print(df.round(3).T.to_string())
    shutil.rmtree(root, ignore_errors=True)


def _http_row(name: str, where: str, n, T, D, c, args) -> dict:
    from rosetta_cli.store.stream import batches, chunk_shuffled_order, feature_reader

    rng = np.random.default_rng(0)
    mb = T * D * 2 / 1e6
    res = {"where": name}
    with Store.open(where) as st:
        res["seq read MB/s"] = n * mb / timed(lambda: [st.features(slice(a, a + c * 8)) for a in range(0, n, c * 8)], args.repeats)
        chunks = np.arange(-(-n // c))
        nshuf = min(len(chunks), args.shuffled_chunks)
        res["shuffled chunk MB/s"] = nshuf * c * mb / timed(
            lambda: [st.features(slice(ci * c, (ci + 1) * c)) for ci in rng.permutation(chunks)[:nshuf]], args.repeats)
        draws = [np.sort(rng.choice(n, args.batch, replace=False)) for _ in range(args.random_batches)]

        def uncached():  # a fresh handle per batch: every chunk a batch touches is fetched again
            for idx in draws:
                with Store.open(where) as fresh:
                    fresh.features(idx)

        def cached():  # one handle: the URL's chunk cache (local: pread per row, nothing cached)
            for idx in draws:
                st.features(idx)

        res["random rows/s, uncached"] = len(draws) * args.batch / timed(uncached, args.repeats)
        res["random rows/s, cached"] = len(draws) * args.batch / timed(cached, args.repeats)
        order = chunk_shuffled_order(np.arange(n), c, np.random.default_rng(1))
        steps = list(batches(order, args.batch))[: args.pretrain_steps]

        def pretrain():  # a fresh handle: the cache starts cold, as a training run does
            with Store.open(where) as fresh:
                reader = feature_reader(fresh)
                for b in steps:
                    reader.get(np.sort(b))

        res["pretrain reader rows/s"] = len(steps) * args.batch / timed(pretrain, args.repeats)
    print(res, flush=True)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--shuffled-chunks", type=int, default=64)
    p.add_argument("--random-batches", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dir", default=None, help="scratch folder (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--write-chunks", type=int, default=8, help="chunks per write_rows call (1 = as extract writes)")
    p.add_argument("--only", default=None, help="run only formats whose name contains this (the memmap baseline always runs)")
    p.add_argument("--http", action="store_true", help="local zarr reads against reads over a loopback HTTP server")
    p.add_argument("--pretrain-steps", type=int, default=40, help="--http: batches read in pretrain's order")
    args = p.parse_args()
    if args.quick:
        args.repeats, args.shuffled_chunks = 1, 16
    if args.http:
        return run_http(args)
    n, T, D, c = args.rows, args.frames, args.dim, args.chunk
    root = Path(args.dir or tempfile.mkdtemp(prefix="rosetta-store-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "view": ["ego"] * n})
    rows = []
    for name, make in (("memmap (baseline)", lambda: MemmapStore(root / "raw.npy", n, T, D, c)),
                       ("zarr (default, no codec)", lambda: Store.create(root / "n.zarr", kind="features", clips=clips, frames=T, dim=D, chunk_rows=c, overwrite=True)),
                       ("zarr (blosc-lz4)", lambda: Store.create(root / "s.zarr", kind="features", clips=clips, frames=T, dim=D, chunk_rows=c, codec="lz4", overwrite=True)),
                       ("hdf5", lambda: timing_flushes(
                           Store.create(root / "s.h5", kind="features", clips=clips, frames=T, dim=D, chunk_rows=c, overwrite=True))),
                       ("hdf5 (flushes disabled)", lambda: without_flushes(
                           Store.create(root / "nf.h5", kind="features", clips=clips, frames=T, dim=D, chunk_rows=c, overwrite=True)))):
        if args.only and name != "memmap (baseline)" and args.only not in name:
            continue
        store = make()
        rows.append(run_one(name, store, n, T, D, c, args, np.random.default_rng(0)))
        getattr(store, "close", lambda: None)()
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows).set_index("format")
    base = df.loc["memmap (baseline)"]
    for col in [c for c in df.columns if c != "flush share of write"]:
        df[f"{col} (x memmap)"] = df[col] / base[col]
    print(f"\n{n} rows x T={T} x D={D} fp16, chunk {c} rows, {args.write_chunks} chunk(s) per write, "
          f"median of {args.repeats}\n")
    try:
        print(df.round(2).T.to_markdown())
    except ImportError:  # pandas needs the optional `tabulate` for markdown
        print(df.round(2).T.to_string())
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
