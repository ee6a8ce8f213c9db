"""REPORT_DIR writers: results.json, results.md, a Rich table (paper Table 1 layout), plots, index.html."""

from __future__ import annotations

import json
from pathlib import Path

from rosetta_cli.errors import UsageError
from rosetta_cli.provenance import now_iso, to_jsonable
from rosetta_cli.runtime import atomic
from rosetta_cli.runtime.guard import output_action

OUTPUTS = ("results.json", "results.md", "index.html", "metrics.png", "gallery.png")


def prepare_out(out_dir, overwrite: bool) -> Path:
    """Create REPORT_DIR. An existing report is replaced only with overwrite (and only our own files)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory", hint="choose another --out")
    ours = [out / f for f in OUTPUTS if (out / f).exists()]
    output_action(out, bool(ours), what="a benchmark report", overwrite=overwrite, resumable=False)
    for f in ours:
        f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def columns(ks) -> list[tuple[str, str]]:
    """(metric key, header) in the paper's Table 1 order: retrieval, recognition, skill."""
    cols = [(f"hr@{k}/{d}", f"HR@{k} {d.replace('->', '→')}") for k in ks for d in ("ego->exo", "exo->ego")]
    return cols + [("recognition/top1", "recog top-1"), ("recognition/top5", "recog top-5"),
                   ("skill/accuracy", "skill acc"), ("skill/balanced_accuracy", "skill bal-acc")]


def headline_columns(ks) -> list[tuple[str, str]]:
    """Exactly the paper's Table 1 columns: HR@5 both ways (or the first k without 5), recognition, skill acc."""
    k = 5 if 5 in ks else ks[0]
    return [c for c in columns([k]) if c[0] != "skill/balanced_accuracy"]


def table_cells(results: dict, cols=None) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Headers and rows of (text, is_best) cells; the best value of each column is marked (ties: all)."""
    cols = cols or columns(results["config"]["ks"])
    best = {}
    for key, _ in cols:
        vals = [r["metrics"].get(key) for r in results["models"] if r["metrics"].get(key) is not None]
        best[key] = max(vals) if vals else None
    rows = []
    for r in results["models"]:
        cells = [(r["name"], False)]
        for key, _ in cols:
            v = r["metrics"].get(key)
            cells.append(("–", False) if v is None else (f"{v:.2f}", len(results["models"]) > 1 and v == best[key]))
        rows.append(cells)
    return ["method"] + [h for _, h in cols], rows


def markdown(results: dict) -> str:
    headers, rows = table_cells(results)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for cells in rows:
        lines.append("| " + " | ".join(f"**{t}**" if b else t for t, b in cells) + " |")
    notes = [f"- {n}" for n in results.get("notes", [])]
    return "\n".join(["# Cross-view benchmark", "", gallery_line(results), "", *lines, "",
                      "Values are percentages; best per column in bold.",
                      "", *(["## Notes", "", *notes, ""] if notes else [])])


def gallery_line(results: dict) -> str:
    """Which retrieval protocol produced the HR@k columns (reports written before it was recorded: "all")."""
    from rosetta_cli.bench.run import GALLERY_TEXT

    g = results.get("gallery", "all")
    return f"Retrieval protocol `--gallery {g}`: the gallery of each query is {GALLERY_TEXT.get(g, g)}."


def rich_table(results: dict):
    from rich.table import Table

    """The paper's Table 1 layout (headline columns; the full table is in results.md)."""
    headers, rows = table_cells(results, headline_columns(results["config"]["ks"]))
    t = Table(title="Cross-view benchmark (%, best in bold; all k in results.md)", title_justify="left")
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for cells in rows:
        t.add_row(*(f"[bold]{x}[/bold]" if b else x for x, b in cells))
    return t


def write_all(out: Path, results: dict, cfg, ego, exo, plan, gallery: dict, log) -> None:
    """Write every report file; results.json last, atomically (its presence marks a complete report)."""
    from rosetta_cli.bench import html, plots

    results["created"] = now_iso()
    images = {}
    if cfg.plots:
        log("plotting")
        images["metrics"] = plots.bar_chart(results, out / "metrics.png")
        images["gallery"] = plots.retrieval_gallery(gallery, ego, exo, out / "gallery.png", results["notes"])
    results["images"] = {k: v for k, v in images.items() if v}
    (out / "results.md").write_text(markdown(results))
    (out / "index.html").write_text(html.render(results))
    atomic.write_text(out / "results.json", json.dumps(to_jsonable(results), indent=2))
