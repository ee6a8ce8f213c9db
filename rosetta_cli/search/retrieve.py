"""`rosetta retrieve`: queries (a video window, stored rows, or text) against an index from `rosetta index`.

    s = Searcher.open("idx/")                        # index, clip table, model: loaded once
    hits = s.search(s.query_video("a.mp4", 2, 6))   # later queries pay only decode + encode + search

A video query is decoded with the frame count and decoder, and encoded with the frozen encoder,
recorded in the index's stores (never guessed), then mapped through the index's dual encoder.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rosetta_cli.errors import CheckpointError, DimensionMismatch, StoreError, UsageError
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.search import index as search_index
from rosetta_cli.search.html import prepare_out, write_page
from rosetta_cli.store import DONE, Store
from rosetta_cli.video.frames import resolve_video
from rosetta_cli.contrastive.api import load_dual_encoder
from rosetta_cli.video import read_clip
from rosetta_cli.video.reader import open_video
from rosetta_cli.video.sampling import clip_window

VIEWS = ("exo", "ego")
OVERFETCH = 4  # a --view filter searches OVERFETCH x topk first, then widens until topk hits of that view


@dataclass
class Query:
    """One query: exactly one of video (with optional start/end), store + row, or text."""

    video: str | None = None
    start: float | None = None
    end: float | None = None
    store: str | None = None
    row: int | None = None
    text: str | None = None
    label: str | None = None     # the query's label when known (marks hits/misses)

    @property
    def kind(self) -> str:
        return "video" if self.video else "store" if self.store else "text"

    def describe(self) -> str:
        if self.video:
            return f"{self.video} [{_fmt_t(self.start)}–{_fmt_t(self.end)}]"
        if self.store:
            return f"{self.store} row {self.row}"
        return repr(self.text)

    def check(self) -> None:
        given = sum(x is not None and x != "" for x in (self.video, self.store, self.text))
        if given != 1:
            raise UsageError("a query needs exactly one of --video, --store with --rows, or --text")
        if self.store and self.row is None:
            raise UsageError("--store needs --rows", hint="e.g. --rows 0,5")
        if self.start is not None and not (math.isfinite(self.start) and self.start >= 0):
            raise UsageError(f"--start {self.start:g}: must be a time in seconds >= 0")
        if self.end is not None and self.start is not None and not self.end > self.start:
            raise UsageError(f"--end {self.end:g} is not after --start {self.start:g}",
                             hint="give the query window as --start S --end E with E > S (seconds)")


def _fmt_t(t) -> str:
    return "end" if t is None or (isinstance(t, float) and math.isnan(t)) else f"{float(t):.2f}"


@dataclass
class RetrieveConfig:
    index: str = ""
    queries: list = field(default_factory=list)  # [Query]
    topk: int = 10
    view: str | None = None      # keep only hits of this view
    out: str | None = None       # write DIR/index.html with frames
    exclude_self: bool = True    # a stored-row query does not return its own clip
    device: str = "auto"         # query encoders and model: auto (cuda when available) | cpu | cuda
    overwrite: bool = False

    def check(self) -> None:
        if not self.index:
            raise UsageError("no --index INDEX_DIR given")
        if not self.queries:
            raise UsageError("no query given", hint="pass --video FILE, --store STORE --rows 0,5, --text TEXT or --queries FILE")
        for q in self.queries:
            q.check()
        if self.topk < 1:
            raise UsageError("--topk must be >= 1")
        if self.view not in (None, *VIEWS):
            raise UsageError(f"--view {self.view!r}: choose exo or ego")


@dataclass
class RetrieveResult:
    index: str
    queries: list                # [{"query": {...}, "label", "seconds", "hits": [{rank, score, clip_id, ...}]}]
    html: str | None = None
    load_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class Searcher:
    """A complete index and everything a query needs, loaded once (encoders on first use)."""

    def __init__(self, path: Path, meta: dict, index, clips, sources, model, device: str):
        self.path, self.meta, self.index, self.clips, self.sources = path, meta, index, clips, sources
        self.model, self.device = model, device
        self._venc = self._tenc = None
        self.store0 = meta["stores"][0]

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, path, device: str = "cpu") -> "Searcher":
        import faiss

        path = Path(path)
        meta = read_meta(path)
        index = faiss.read_index(str(path / search_index.FAISS))
        if index.ntotal != meta["ntotal"] or index.d != meta["dim"]:
            raise UsageError(f"{path / search_index.FAISS}: holds {index.ntotal} x {index.d}-d vectors but index.json says "
                             f"{meta['ntotal']} x {meta['dim']}-d", hint="rebuild it: rosetta index ... --overwrite")
        _set_params(index, meta["index"])
        emb = Store.open(path / search_index.EMB, kind="embeddings")
        try:
            check_embeddings(path, meta, emb)
            clips = emb.clips()
        finally:
            emb.close()
        sources = np.load(path / search_index.SOURCES, allow_pickle=False)
        if len(sources) != meta["ntotal"]:
            raise UsageError(f"{path / search_index.SOURCES}: {len(sources)} rows but index.json says {meta['ntotal']} clips "
                             "(written by another build)", hint="rebuild it: rosetta index ... --overwrite")
        check_stores(path, meta)
        model = _load_model(meta, device)
        return cls(path, meta, index, clips, sources, model, device)

    @property
    def views(self) -> np.ndarray:
        """[N] lower-case view of every indexed clip (computed once: 0.2 s at 1M clips)."""
        if getattr(self, "_views", None) is None:
            self._views = self.clips["view"].str.lower().to_numpy()
        return self._views

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    # ------------------------------------------------------------ encoders, from provenance
    def visual_encoder(self):
        if self._venc is None:
            from rosetta_cli.encoders import get_visual_encoder

            rec = self.store0.get("encoder") or {}
            if not rec.get("name"):
                raise UsageError(f"{self.path}: its stores record no frozen encoder, so a video cannot be encoded",
                                 hint="query with --store/--rows instead")
            enc = get_visual_encoder(rec["name"], device=self.device, precision=self.store0.get("precision") or "fp32")
            if search_index.encoder_id(enc.info()) != search_index.encoder_id(rec):
                raise UsageError(f"{self.path}: was built with encoder {search_index.encoder_id(rec)} but the installed one is "
                                 f"{search_index.encoder_id(enc.info())}", hint="query with the encoder the index was made with, or rebuild the index")
            self._venc = enc
        return self._venc

    def text_encoder(self):
        if self._tenc is None:
            from rosetta_cli.encoders import get_text_encoder

            if self.model is None:
                raise UsageError(f"{self.path}: is a frozen-feature index, which has no text side",
                                 hint="build the index with --model MODEL_DIR for text queries")
            if not self.meta["model"].get("has_text"):
                raise UsageError(f"{self.meta['model']['path']}: was trained without narration embeddings, so it has no text head",
                                 hint="query with --video or --store")
            rec = self.store0.get("text_encoder") or {}
            if not rec.get("name"):
                raise UsageError(f"{self.path}: its stores record no text encoder", hint="query with --video or --store")
            self._tenc = get_text_encoder(rec["name"], device=self.device)
        return self._tenc

    # ------------------------------------------------------------ query → vector [1, d]
    def to_space(self, feats: np.ndarray) -> np.ndarray:
        """Frozen features [n, T, D] → [n, d] unit vectors in the index's space."""
        want = (self.store0.get("encoder") or {}).get("dim") or (self.meta["model"] or {}).get("input_dim")
        if want and feats.shape[-1] != int(want) and self.model is None:
            raise DimensionMismatch(f"query features are {feats.shape[-1]}-d, index {self.path} holds {want}-d")
        return search_index.encode_features(feats, self.model)

    def frames(self, video: str, start=None, end=None) -> np.ndarray:
        """uint8 [T, H, W, 3]: the T frames the index's stores sampled, with their decoder."""

        t = int(self.store0.get("frames") or 0)
        decoder = self.store0.get("decoder") or "decord"
        if t < 1:
            raise UsageError(f"{self.path}: its stores record no frame sampling (--frames), so a video cannot be encoded",
                             hint="query with --store/--rows instead")
        v = open_video(video, decoder)
        s, e = clip_window(start, end, v.duration, video)
        starts, rate = getattr(v, "starts", None), getattr(v, "rate", None)
        if starts is not None:    # decord: the frames' own timestamps
            n = int(((np.asarray(starts) >= s - 1e-6) & (np.asarray(starts) < e)).sum())
        else:                     # pyav: the stream's frame rate
            n = int(math.floor((e - s) * float(rate) + 1e-6)) if rate else t
        if n < t:
            raise UsageError(f"{video}: the query window {s:.2f}–{e:.2f} s holds {n} frames, fewer than the {t} "
                             f"frames the index's clips sample", hint="give a longer --start/--end window")
        return read_clip(video, start if start is not None else 0.0, end, t, decoder)

    def query_video(self, video: str, start=None, end=None) -> np.ndarray:
        frames = self.frames(video, start, end)
        venc = self.visual_encoder()
        from rosetta_cli.encoders.base import resize_crop

        feats = venc.encode_clips(resize_crop(frames, venc.preprocess)[None])  # [1, T', D]
        return self.to_space(feats)

    def query_rows(self, store_path: str, rows: list[int]) -> tuple[np.ndarray, Store]:
        s = Store.open(store_path, kind=("features", "translations"))
        rec = self.store0.get("encoder")
        if search_index.encoder_id(s.meta.get("encoder")) != search_index.encoder_id(rec):
            raise UsageError(f"{store_path}: made with encoder {search_index.encoder_id(s.meta.get('encoder'))}, but {self.path} "
                             f"was built with {search_index.encoder_id(rec)}", hint="query with a store of the index's encoder")
        bad = [r for r in rows if not 0 <= r < s.n_rows]
        if bad:
            raise UsageError(f"--rows {bad[0]}: {store_path} has rows 0..{s.n_rows - 1}")
        notdone = [r for r in rows if s.status(slice(r, r + 1))[0] != DONE]  # per row: a full read costs ms at 1M rows
        if notdone:
            raise StoreError(f"{store_path}: row {notdone[0]} is not done (no features)", hint="choose done rows")
        order = np.argsort(rows)
        feats = search_index._read_rows(s, np.asarray(rows, np.int64)[order])
        vec = np.empty((len(rows), self.dim), np.float32)
        vec[order] = self.to_space(feats)
        return vec, s

    def query_text(self, text: str) -> np.ndarray:
        e = self.text_encoder().encode([text])
        return self.model.encode_text(e)

    # ------------------------------------------------------------ search
    def search(self, q: np.ndarray, topk: int = 10, view: str | None = None, exclude: set | None = None) -> list[list[dict]]:
        """q [n, d] → per query the topk hits (dicts), optionally of one view, without the `exclude` index ids."""
        q = np.ascontiguousarray(q, np.float32)
        if not np.isfinite(q).all():  # faiss would return no hits at all, with exit 0
            raise UsageError("the query's vector holds NaN/Inf (its features or its encoder output are not finite)",
                             hint="query another clip, or check the query video and the encoder")
        if q.shape[1] != self.dim:
            raise DimensionMismatch(f"query vectors are {q.shape[1]}-d but {self.path} holds {self.dim}-d")
        import faiss

        views = self.views
        out = []
        # One query at a time: faiss's OpenMP threads cost more to wake than they save (8 ms vs 66 ms for one
        # query over 60k x 256 on the shared 2-core machine), so search single-threaded and restore after.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            for i in range(len(q)):
                out.append(self._search_one(q[i:i + 1], topk, view, exclude, views))
        finally:
            faiss.omp_set_num_threads(threads)
        return out

    def _search_one(self, q: np.ndarray, topk: int, view, exclude, views) -> list[dict]:
        k = topk * (OVERFETCH if view or exclude else 1) + len(exclude or ())
        while True:
            k = min(k, self.index.ntotal)
            D, Ix = self.index.search(q, k)
            keep = [(float(d), int(j)) for d, j in zip(D[0], Ix[0]) if j >= 0
                    and (view is None or views[j] in (view, "")) and j not in (exclude or ())]
            if len(keep) >= topk or k >= self.index.ntotal:
                break
            k *= 4
        return [self.hit(r + 1, s, j) for r, (s, j) in enumerate(keep[:topk])]

    def hit(self, rank: int, score: float, j: int) -> dict:
        c = self.clips.iloc[j]
        st, row = (int(x) for x in self.sources[j])
        return {"rank": rank, "score": round(score, 4), "clip_id": str(c["clip_id"]), "video": str(c["video"]),
                "start": _num(c["start"]), "end": _num(c["end"]), "view": str(c["view"]), "label": str(c["label"]),
                "narration": str(c["narration"]), "store": self.meta["stores"][st]["path"], "row": row, "id": j}

    def self_ids(self, store: Store, rows: list[int]) -> list[set]:
        """Index ids of (store, row) pairs, for exclude_self (sources is sorted by store, then row)."""
        pos = next((i for i, e in enumerate(self.meta["stores"]) if e["id"] == store.id), None)
        if pos is None:
            return [set() for _ in rows]
        key = self.sources[:, 0] * (1 << 40) + self.sources[:, 1]
        want = pos * (1 << 40) + np.asarray(rows, np.int64)
        at = np.minimum(np.searchsorted(key, want), len(key) - 1)
        return [{int(j)} if key[j] == w else set() for j, w in zip(at, want)]


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def read_meta(path: Path) -> dict:
    """index.json of a complete index; a partial or foreign one is refused."""
    f = path / search_index.META
    if not path.is_dir():
        raise UsageError(f"{path}: no such index directory", hint="build one with `rosetta index --store STORE --out DIR`")
    if not f.is_file():
        hint = ("its build did not finish (or is still running): rerun `rosetta index ... --resume`"
                if (path / search_index.EMB).exists() else "build one with `rosetta index --store STORE --out DIR`")
        raise UsageError(f"{path}: not a complete search index (no {search_index.META})", hint=hint)
    try:
        meta = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise UsageError(f"{f}: damaged ({e})", hint="rebuild: rosetta index ... --overwrite") from None
    if meta.get("format") != search_index.FORMAT or meta.get("status") != "complete":
        raise UsageError(f"{path}: not a complete rosetta search index", hint="rebuild: rosetta index ... --overwrite")
    if meta.get("format_version", 0) > search_index.FORMAT_VERSION:
        raise UsageError(f"{path}: index format v{meta['format_version']} is newer than this rosetta", hint="upgrade rosetta")
    return meta


def check_embeddings(path: Path, meta: dict, emb: Store) -> None:
    """embeddings.zarr must be the one index.json was built from (two builds in one folder mix them)."""
    rec = meta.get("embeddings") or {}
    if rec and (rec.get("id"), rec.get("fingerprint")) != (emb.id, emb.fingerprint):
        raise UsageError(f"{path / search_index.EMB}: is not the embeddings index.json was built from (id {emb.id}, "
                         f"index.json records {rec.get('id')}): two builds wrote this folder",
                         hint="rebuild it: rosetta index ... --overwrite")


def check_stores(path: Path, meta: dict) -> None:
    """Each source store still present must be the one indexed: a rewritten store makes the recorded rows
    and clip ids wrong. (A store that is gone is not needed: the index holds its clip table.)"""
    for rec in meta["stores"]:
        if not Path(rec["path"]).exists():
            continue
        try:
            with Store.open(rec["path"]) as s:
                now = (s.id, s.fingerprint)
        except StoreError:
            now = (None, None)
        if now != (rec["id"], rec["fingerprint"]):
            raise UsageError(f"{path}: stale index: {rec['path']} changed since it was built (fingerprint {now[1]}, "
                             f"indexed {rec['fingerprint']}), so its rows and clip ids would be wrong",
                             hint=f"rebuild with `rosetta index --store {rec['path']} ... --out {path} --resume`")


def _set_params(index, plan: dict) -> None:
    import faiss

    if plan.get("kind") == "ivf" and plan.get("nprobe"):
        faiss.extract_index_ivf(index).nprobe = int(plan["nprobe"])
    elif plan.get("kind") == "hnsw" and plan.get("nprobe"):
        index.hnsw.efSearch = int(plan["nprobe"])


def _load_model(meta: dict, device: str):
    rec = meta.get("model")
    if not rec:
        return None
    from rosetta_cli.runtime.dist import resolve_device

    # load_dual_encoder takes a torch device: "auto" must be resolved first (the encoders resolve their own)
    enc = load_dual_encoder(rec["path"], device=resolve_device(device))
    if enc.fingerprint() != rec["fingerprint"]:
        raise CheckpointError(f"{rec['path']}: weights changed since the index was built (fingerprint "
                              f"{enc.fingerprint()} vs {rec['fingerprint']})", hint="rebuild the index: rosetta index ... --overwrite")
    if enc.dim != int(meta["dim"]):
        raise DimensionMismatch(f"{rec['path']}: outputs {enc.dim}-d but the index holds {meta['dim']}-d",
                                hint="rebuild the index with this model")
    return enc


# ------------------------------------------------------------ queries files
def read_queries(path) -> list[Query]:
    """--queries FILE: JSONL (one object per line) or CSV with a header; keys video,start,end | store,row | text."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--queries {p}: no such file")
    text = p.read_text()
    rows: list[dict] = []
    if p.suffix.lower() in (".jsonl", ".json") or text.lstrip().startswith("{"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UsageError(f"{p}:{n}: not a JSON object ({e.msg})", hint="one JSON object per line") from None
    else:
        rows = [{k: v for k, v in r.items() if v not in (None, "")} for r in csv.DictReader(text.splitlines())]
    out = []
    for n, r in enumerate(rows, 1):
        try:
            q = Query(label=r.get("label"), video=r.get("video"), start=_opt_float(r.get("start")), end=_opt_float(r.get("end")),
                      store=r.get("store"), row=int(r["row"]) if r.get("row") not in (None, "") else None, text=r.get("text"))
            q.check()
        except (UsageError, ValueError, TypeError) as e:
            raise UsageError(f"{p}: query {n}: {e}", hint="keys: video,start,end | store,row | text") from None
        out.append(q)
    return out


def _opt_float(x):
    return None if x in (None, "") else float(x)


# ------------------------------------------------------------ the stage
def run(cfg: RetrieveConfig, progress: Progress = SILENT, searcher: Searcher | None = None) -> RetrieveResult:
    """Answer every query of cfg (the loaded searcher may be passed in to skip start-up)."""
    cfg.check()
    t0 = time.perf_counter()
    s = searcher or Searcher.open(cfg.index, device=cfg.device)
    kinds = {q.kind for q in cfg.queries}
    if "video" in kinds:   # encoders load once, before the first query (its time is the query's own)
        s.visual_encoder()
    if "text" in kinds:
        s.text_encoder()
    load = time.perf_counter() - t0
    if cfg.out:
        prepare_out(Path(cfg.out), cfg.overwrite)
    progress.start("retrieve", len(cfg.queries), unit="queries")
    answers = []
    for q in cfg.queries:
        t = time.perf_counter()
        vec, label, exclude, where = _encode(s, q, cfg)
        hits = s.search(vec, cfg.topk, cfg.view, exclude)[0]
        if label:
            for h in hits:
                h["match"] = h["label"] == label if h["label"] else None
        answers.append({"query": {k: v for k, v in asdict(q).items() if v is not None}, "kind": q.kind,
                        "label": label, "seconds": round(time.perf_counter() - t, 4), "frames_from": where,
                        "hits": hits})
        progress.advance(1)
    html = None
    if cfg.out:
        html = str(write_page(Path(cfg.out), s, answers))
    return RetrieveResult(str(cfg.index), answers, html, round(load, 3))


def _encode(s: Searcher, q: Query, cfg: RetrieveConfig):
    """(vector [1, d], the query's label or None, index ids to exclude, where its frames are)."""
    if q.kind == "video":
        return s.query_video(q.video, q.start, q.end), q.label, None, {"video": q.video, "start": q.start, "end": q.end}
    if q.kind == "text":
        return s.query_text(q.text), q.label, None, None
    vec, st = s.query_rows(q.store, [q.row])
    c = st.clips(slice(q.row, q.row + 1)).iloc[0]
    video = resolve_video(str(c["video"]), st)
    where = {"video": str(video), "start": _num(c["start"]), "end": _num(c["end"])} if video else None
    excl = s.self_ids(st, [q.row])[0] if cfg.exclude_self else None
    st.close()
    return vec, q.label or str(c["label"]) or None, excl, where
