"""One run's numbers with their 95% bootstrap intervals and its world's preconditions (what `rosetta demo` prints)."""

from __future__ import annotations

import json
from pathlib import Path

from rosetta_cli.claims import collect, preconditions
from rosetta_cli.demo import paths
from rosetta_cli.eval.intervals import combo_boot, percentile_interval, value
from rosetta_cli.mining.config import default_text_weight
from rosetta_cli.extract.config import ExtractConfig
from rosetta_cli.extract.pipeline import run as extract
from rosetta_cli.runtime.progress import SILENT


def intervals(report_dir: Path, n_boot: int = 2000) -> list[dict]:
    """[{name, metric: {value, interval}}] for every model of a bench report (bootstrap over its queries)."""
    res = collect.read_results(report_dir)
    rows = []
    for r in res["models"]:
        row = {"name": r["name"]}
        for metric in collect.METRICS:
            m = collect.measure(res, r["name"], metric)
            row[metric] = {"value": round(value(m), 2),
                           "interval": [round(x, 2) for x in percentile_interval(combo_boot([(1.0, m)], n_boot))],
                           "queries": int(sum(len(c) for c in m))}
        rows.append(row)
    return rows


def world_checks(run_dir: Path) -> dict:
    """P1-P3 of a demo or claims seed folder (cached in its preconditions.json once measured)."""
    p, f = paths(run_dir), run_dir / "preconditions.json"
    newest = max((p[k] / "zarr.json").stat().st_mtime for k in ("paired", "exo"))
    if f.exists() and f.stat().st_mtime >= newest:
        return json.loads(f.read_text())
    rec = preconditions.measure(p["world"], p["paired"], p["exo"], default_text_weight("rst"))
    f.write_text(json.dumps(rec, indent=2) + "\n")
    return rec


def num(x, spec: str) -> str:
    """format(x, spec), or "n/a" for a figure a world could not measure (None)."""
    return "n/a" if x is None else format(x, spec)


def check_lines(rec: dict) -> list[str]:
    """The three checks as plain lines, each ending in met / NOT met."""
    x, e, p2, p3 = rec["p1"]["exo"], rec["p1"]["ego"], rec["p2"], rec["p3"]
    ok = lambda b: "met" if b else "NOT met"  # noqa: E731
    return [f"P1 the exo view carries the action: a paired exo clip's nearest exo neighbour from another kitchen shares "
            f"its keystep {num(x['rate'], '.1%')} of the time, {num(x['ratio'], '.1f')}x chance ({num(x['chance'], '.1%')}; "
            f"need >= {x['min_ratio']:.0f}x; ego {num(e['ratio'], '.1f')}x) — {ok(rec['p1']['met'])}",
            f"P2 a perfect translator would help: mining the {p2['queries']} benchmark ego clips with the true exo "
            f"feature gives label precision {num(p2['perfect_translator']['precision'], '.3f')}, text alone "
            f"{num(p2['text']['precision'], '.3f')} — {ok(p2['met'])}",
            f"P3 the benchmark can tell: {p3['ego_queries']} ego queries, {p3['exo_gallery']} exo gallery clips "
            f"(need {p3['min_queries']} and {p3['min_gallery']}) — {ok(p3['met'])}"]


def check_world(world_dir: Path, workers: int = 2, progress=None) -> dict:
    """Extract a rendered world's paired and HTM stores (into WORLD/check/) and measure P1-P3 on them.

    What `rosetta toy --check` runs: the frozen default encoders, as `rosetta demo` and `rosetta
    claims` extract. The stores resume if the check is rerun."""

    world_dir, progress = Path(world_dir), progress or SILENT
    stores = {name: world_dir / "check" / f"{name}.zarr" for name in ("egoexo4d", "htm-aa")}
    for name, store in stores.items():
        extract(ExtractConfig(videos=str(world_dir / name), out=str(store), workers=workers), progress)
    return preconditions.measure(world_dir, stores["egoexo4d"], stores["htm-aa"], default_text_weight("rst"))
