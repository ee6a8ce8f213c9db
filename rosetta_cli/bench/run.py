"""`run(cfg)`: the cross-view benchmark (docs/method.md stage 5) over an ego and an exo store.

Rows of the report: "frozen features" (the stores' own mean-pooled features) and one row
per dual encoder (both stores embedded through it), plus "<name> (fine-tuned)" rows with
--finetune. Metric values are percentages; a task that could not run has None values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from rosetta_cli.bench import classify, data, output, splits
from rosetta_cli.bench.splits import GALLERIES
from rosetta_cli.eval import metrics
from rosetta_cli.errors import UsageError
from rosetta_cli.runtime.progress import SILENT, Progress

TASKS = ("retrieval", "recognition", "skill")
FROZEN = "frozen features"


@dataclass
class BenchConfig:
    ego: str = ""                # ego store (features or embeddings) with labels
    exo: str = ""                # exo store
    out: str = ""                # REPORT_DIR
    models: tuple = ()           # (display name or None, MODEL_DIR) pairs
    overwrite: bool = False      # replace a report in `out` (reports are not resumed: they take seconds)
    tasks_explicit: bool = False  # the user named the tasks: one whose labels are missing is an error, not skipped
    tasks: tuple[str, ...] = TASKS
    ks: tuple[int, ...] = (1, 5, 10)
    seed: int = 0
    finetune: bool = False
    finetune_epochs: int = 10
    skill_positive: tuple[str, ...] | None = None  # skill values counted as "skilled"; None = documented default
    unmatched: str = "miss"      # retrieval queries whose label is absent from the gallery: miss | exclude
    gallery: str = "all"         # retrieval gallery protocol, one of GALLERIES
    probe_c: float = 1.0         # inverse L2 strength of the logistic-regression probe
    probe_max_iter: int = 300
    gallery_queries: int = 4     # ego queries shown in the retrieval gallery plot
    plots: bool = True
    block_rows: int | None = None  # store rows read per block (None: the store's chunk size)


def metric_keys(ks) -> list[str]:
    keys = [f"hr@{k}/{d}" for k in ks for d in ("ego->exo", "exo->ego")]
    return keys + ["recognition/top1", "recognition/top5", "skill/accuracy", "skill/balanced_accuracy"]


def default_loader(path):
    """The contrastive stage's loader (imported lazily: it pulls in torch)."""
    try:
        from rosetta_cli.contrastive.api import load_dual_encoder
    except ImportError as e:
        raise UsageError(f"--model needs rosetta_cli.contrastive.api.load_dual_encoder, which is unavailable ({e})",
                         hint="install a rosetta with `rosetta pretrain`, or drop --model") from None
    return load_dual_encoder(path)


@dataclass
class BenchResult:
    out: Path
    results: dict                # what results.json holds

    def to_dict(self) -> dict:
        return self.results


def run_bench(ego_path, exo_path, out_dir, cfg: BenchConfig | None = None, **kw) -> dict:
    """Shorthand for library users: run(cfg with these stores and REPORT_DIR).results."""
    cfg = dataclasses.replace(cfg or BenchConfig(), ego=str(ego_path), exo=str(exo_path), out=str(out_dir),
                              **{k: kw.pop(k) for k in ("models", "overwrite", "tasks_explicit") if k in kw})
    return run(cfg, **kw).results


def run(cfg: BenchConfig, progress: Progress = SILENT, *, encoders: list[tuple[str, object]] = (),
        loader: Callable | None = None) -> BenchResult:
    """Benchmark the frozen features and each model; write REPORT_DIR (cfg.out).

    encoders: (name, already-loaded encoder) pairs, e.g. test fakes with the same interface;
    loader: how cfg.models are loaded (default: load_dual_encoder).
    """
    _check_cfg(cfg)
    out = output.prepare_out(cfg.out, cfg.overwrite)
    ego, exo = data.open_view(cfg.ego, "ego", "--ego"), data.open_view(cfg.exo, "exo", "--exo")
    vocab = data.assign_labels(ego, exo, need_labels=bool({"retrieval", "recognition"} & set(cfg.tasks)))
    tasks, notes = _usable_tasks(cfg, ego, exo, cfg.tasks_explicit)
    skipped = {v.view: v.dropped["not_done"] for v in (ego, exo) if v.dropped.get("not_done")}
    if skipped:  # failed or pending rows are left out, and said so
        notes.append("skipped rows (not done): " + ", ".join(f"{k} {n}" for k, n in skipped.items()))
    loader = loader or default_loader
    loaded = [(name or getattr(enc, "name", None) or Path(p).name, enc)
              for name, p in cfg.models for enc in [loader(p)]] + list(encoders)
    data.check_dims(ego, exo, loaded)
    warnings = [w for name, enc in loaded for w in [unfinished(name, enc)] if w]
    for w in warnings:
        progress.note(f"warning: {w}")
    plan = splits.make_plan(ego, exo, cfg.seed)
    rows, gallery = [], {}
    progress.start("bench", 1 + len(loaded), unit="models")
    log = progress.note
    for name, enc in [(FROZEN, None)] + loaded:
        log(f"embedding {ego.store.path.name} and {exo.store.path.name} with {name}")
        e_ego, e_exo = data.embed(ego, enc, cfg.block_rows), data.embed(exo, enc, cfg.block_rows)
        hits: dict = {}
        m, counts = evaluate(e_ego, e_exo, ego, exo, plan, cfg, tasks, len(vocab), hits=hits)
        rows.append({"name": name, "kind": "frozen" if enc is None else "model", **_model_info(enc), "metrics": m,
                     "hits": hits})
        gallery[name] = top_retrieved(e_ego, e_exo, plan, ego, cfg, n_top=3, exo=exo)
        if cfg.finetune and enc is not None:
            rows.append(_finetune_row(name, enc, ego, exo, plan, cfg, tasks, len(vocab), notes, log))
        progress.advance(1, info=name)
    results = {"models": rows, "seed": cfg.seed, "stores": {"ego": _store_info(ego), "exo": _store_info(exo)},
               "counts": counts, "labels": len(vocab), "notes": plan.notes + notes, "warnings": warnings,
               "gallery": cfg.gallery,
               "config": _jsonable_cfg(cfg, tasks)}
    output.write_all(out, results, cfg, ego, exo, plan, gallery, log)
    return BenchResult(out, results)


def unfinished(name: str, enc) -> str | None:
    """A warning for a model whose training stopped early (interrupted, or a --stop-after run): its scores
    are not the method's. Recorded in results.json ("warnings") and shown before the table."""
    meta = getattr(enc, "meta", None) or {}
    step, total = meta.get("step"), meta.get("total_steps")
    if isinstance(step, int) and isinstance(total, int) and step < total:
        return (f"model {name!r} stopped at step {step} of {total}: its training did not finish "
                f"(finish it with `rosetta pretrain ... --out {getattr(enc, 'path', 'MODEL_DIR')} --resume`)")
    return None


def _check_cfg(cfg: BenchConfig) -> None:
    bad = [t for t in cfg.tasks if t not in TASKS]
    if bad or not cfg.tasks:
        raise UsageError(f"--tasks: unknown {bad}" if bad else "--tasks: empty", hint=f"choose from {','.join(TASKS)}")
    if not cfg.ks or any(k < 1 for k in cfg.ks):
        raise UsageError(f"--k {cfg.ks}: need positive integers, e.g. 1,5,10")
    if cfg.unmatched not in metrics.UNMATCHED_POLICIES:
        raise UsageError(f"unmatched={cfg.unmatched!r}: choose miss or exclude")
    if cfg.gallery not in GALLERIES:
        raise UsageError(f"--gallery {cfg.gallery}: unknown protocol", hint=f"choose from {', '.join(GALLERIES)}")


def _usable_tasks(cfg: BenchConfig, ego, exo, explicit: bool) -> tuple[list[str], list[str]]:
    tasks, notes = list(cfg.tasks), []
    if "skill" in tasks:
        if not ((ego.clips["skill"] != "").any() and (exo.clips["skill"] != "").any()):
            if explicit:
                raise UsageError(f"--tasks skill: {ego.store.path} or {exo.store.path} has no skill labels",
                                 hint="use stores with proficiency annotations, or drop skill from --tasks")
            tasks.remove("skill")
            notes.append("skill: skipped (no skill labels in one of the stores)")
        else:
            neg, pos = data.assign_skills(ego, exo, cfg.skill_positive)
            notes.append(f"skill: skilled = {pos}, unskilled = {neg}")
    return tasks, notes


def evaluate(e_ego: np.ndarray, e_exo: np.ndarray, ego, exo, plan, cfg: BenchConfig, tasks, n_classes: int,
             scorer: Callable | None = None, hits: dict | None = None) -> tuple[dict, dict]:
    """Metrics for one embedding pair. e_ego [n_ego, d], e_exo [n_exo, d] aligned with View.rows.

    scorer(train_pos, y, test_pos, n_classes) → scores; default: linear probe on the embeddings.
    hits: if given, filled with each query's outcome per headline metric ("hr@5/ego->exo",
    "recognition/top1", ...) as a string of 0/1 in query order (the same queries for every model),
    so `rosetta claims` can bootstrap intervals over queries.
    """
    hits = {} if hits is None else hits
    m = dict.fromkeys(metric_keys(cfg.ks))
    counts: dict = {"ego_rows": len(ego.rows), "exo_rows": len(exo.rows),
                    "dropped": {"ego": ego.dropped, "exo": exo.dropped}}
    scorer = scorer or (lambda tr, y, te, c: classify.linear_probe(
        e_exo[tr], y, e_ego[te], c, seed=cfg.seed, c=cfg.probe_c, max_iter=cfg.probe_max_iter))
    if "retrieval" in tasks:
        counts["retrieval"] = _retrieval(e_ego, e_exo, ego, exo, plan, cfg, m, hits)
    if "recognition" in tasks:
        counts["recognition"] = _recognition(ego, exo, plan, scorer, n_classes, m, hits)
    if "skill" in tasks:
        counts["skill"] = _skill(ego, exo, plan, scorer, m)
    return m, counts


def bits(x: np.ndarray) -> str:
    """bool [n] → "0110...": per-query outcomes, compact in results.json."""
    return "".join("1" if v else "0" for v in np.asarray(x, bool))


def _recognition(ego, exo, plan, scorer, n_classes: int, m: dict, hits: dict) -> dict:
    """Top-1/top-5 on labelled ego test rows of a classifier trained on labelled exo train rows."""
    tr, te = plan.train_exo[exo.label[plan.train_exo] >= 0], plan.test_ego[ego.label[plan.test_ego] >= 0]
    counts = {"train_exo": len(tr), "test_ego": len(te)}
    if len(tr) and len(te):  # otherwise the metrics stay None
        s, y = scorer(tr, exo.label[tr], te, n_classes), ego.label[te]
        m["recognition/top1"], m["recognition/top5"] = (_num(metrics.topk_accuracy(s, y, k)) for k in (1, 5))
        for k in (1, 5):
            hits[f"recognition/top{k}"] = bits(metrics.topk_hits(s, y, k))
        counts.update(train_classes=len(np.unique(exo.label[tr])), test_unseen_class=int((~np.isin(y, exo.label[tr])).sum()))
    return counts


def _skill(ego, exo, plan, scorer, m: dict) -> dict:
    """Binary skill accuracy / balanced accuracy, exo train → ego test."""
    tr, te = plan.train_exo[exo.skill[plan.train_exo] >= 0], plan.test_ego[ego.skill[plan.test_ego] >= 0]
    counts = {"train_exo": len(tr), "test_ego": len(te)}
    if len(tr) and len(te):
        pred = np.argmax(scorer(tr, exo.skill[tr], te, 2), axis=1)  # argmax ties → lower index, as documented
        y = ego.skill[te]
        m["skill/accuracy"], m["skill/balanced_accuracy"] = _num(metrics.accuracy(y, pred)), _num(metrics.balanced_accuracy(y, pred))
        counts.update(train_skilled=int(exo.skill[tr].sum()), test_skilled=int(y.sum()))
    return counts


def _retrieval(e_ego, e_exo, ego, exo, plan, cfg, m: dict, hits: dict) -> dict:
    qe = plan.ret_ego[ego.label[plan.ret_ego] >= 0]  # unlabelled clips are gallery-only
    qx = plan.ret_exo[exo.label[plan.ret_exo] >= 0]
    counts = {"ego": len(plan.ret_ego), "exo": len(plan.ret_exo), "protocol": cfg.gallery}
    te, tx = _takes(ego, exo, cfg)
    for d, (q, ql, qg, g, gl, gg) in {
            "ego->exo": (e_ego[qe], ego.label[qe], te[qe], e_exo[plan.ret_exo], exo.label[plan.ret_exo], tx[plan.ret_exo]),
            "exo->ego": (e_exo[qx], exo.label[qx], tx[qx], e_ego[plan.ret_ego], ego.label[plan.ret_ego], te[plan.ret_ego]),
    }.items():
        groups = dict(query_groups=qg, gallery_groups=gg) if cfg.gallery == "other-takes" else {}
        r = metrics.hit_rate_at_k(q, ql, g, gl, cfg.ks, unmatched=cfg.unmatched, **groups)
        for k, v in r["hr"].items():
            m[f"hr@{k}/{d}"] = _num(v) if len(q) else None
            hits[f"hr@{k}/{d}"] = bits(r["hits"][k])
        counts[d] = {"queries": r["queries"], "no_positive": r["no_positive"], "gallery": len(g),
                     "k_clipped": [k for k in cfg.ks if k > r["gallery_min"]]}
        if groups:
            counts[d]["gallery_min"] = r["gallery_min"]  # the smallest gallery left to a query
    return counts


def _takes(ego, exo, cfg: BenchConfig) -> tuple[np.ndarray, np.ndarray]:
    """Take codes [n_ego], [n_exo] (View positions) under other-takes; all -1 (nothing excluded) otherwise."""
    if cfg.gallery == "other-takes":
        te, tx = data.take_codes(ego, exo)
        return te, tx
    return np.full(len(ego.rows), -1, np.int64), np.full(len(exo.rows), -1, np.int64)


def top_retrieved(e_ego, e_exo, plan, ego, cfg: BenchConfig, n_top: int = 3, exo=None) -> dict:
    """For the gallery plot: {ego position: [exo positions of the top n_top]} for a seeded query sample.

    Under --gallery other-takes (needs `exo`), the query's own take is left out as in the metrics."""
    qe = plan.ret_ego[ego.label[plan.ret_ego] >= 0]
    if not cfg.plots or len(qe) == 0 or len(plan.ret_exo) == 0:
        return {}
    pick = np.sort(np.random.default_rng(cfg.seed).permutation(qe)[: cfg.gallery_queries])
    s = metrics.l2_normalize(e_ego[pick]) @ metrics.l2_normalize(e_exo[plan.ret_exo]).T
    if cfg.gallery == "other-takes" and exo is not None:
        te, tx = _takes(ego, exo, cfg)
        s = np.where(metrics.own_group_mask(te[pick], tx[plan.ret_exo]), -np.inf, s)
    order = np.argsort(-s, axis=1, kind="stable")[:, :n_top]  # same tie rule as the metrics
    return {int(q): [int(plan.ret_exo[j]) for j, v in zip(o, row[o]) if np.isfinite(v)]
            for q, o, row in zip(pick, order, s)}


def _finetune_row(name, enc, ego, exo, plan, cfg, tasks, n_classes, notes, log) -> dict:
    row = {"name": f"{name} (fine-tuned)", "kind": "finetuned", "base": name,
           "metrics": dict.fromkeys(metric_keys(cfg.ks))}
    module = getattr(enc, "module", None)
    if module is None:
        notes.append(f"finetune: model {name!r} exposes no torch `.module`; fine-tuning skipped")
        return row
    log(f"fine-tuning {name}")
    tr_all = data.read_features(exo, plan.train_exo, cfg.block_rows)
    te_all = data.read_features(ego, plan.test_ego, cfg.block_rows)

    def scorer(tr, y, te, c):  # positions → rows of the pre-read arrays
        a, b = np.searchsorted(plan.train_exo, tr), np.searchsorted(plan.test_ego, te)
        return classify.finetune_probe(module, tr_all[a], y, te_all[b], c, seed=cfg.seed, epochs=cfg.finetune_epochs)

    ft_tasks = [t for t in tasks if t != "retrieval"]
    row["metrics"], _ = evaluate(None, None, ego, exo, plan, cfg, ft_tasks, n_classes, scorer=scorer)
    return row


def _model_info(enc) -> dict:
    """Provenance of a model row: its directory and weights fingerprint where the encoder exposes them."""
    if enc is None:
        return {}
    fp = getattr(enc, "fingerprint", None)
    return {"path": str(getattr(enc, "path", "") or "") or None, "fingerprint": fp() if callable(fp) else fp}


def _store_info(v) -> dict:
    s = v.store
    return {"id": s.id, "path": str(s.path), "fingerprint": s.fingerprint, "kind": s.kind,
            "encoder": s.meta.get("encoder"), "rows": s.n_rows}


def _jsonable_cfg(cfg: BenchConfig, tasks) -> dict:
    d = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("ego", "exo", "out", "models", "overwrite")}
    d["tasks_run"] = list(tasks)
    return d


def _num(x: float):
    return None if x is None or not np.isfinite(x) else round(float(x), 4)
