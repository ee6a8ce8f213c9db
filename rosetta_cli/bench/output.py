"""REPORT_DIR: results.json, results.md, index.html and the plots, written after a benchmark run."""

from __future__ import annotations

import json
from pathlib import Path

from rosetta_cli.bench import html, plots
from rosetta_cli.bench.report import markdown
from rosetta_cli.provenance import now_iso, to_jsonable
from rosetta_cli.reports.output import prepare_out as prepare_report
from rosetta_cli.runtime import atomic

OUTPUTS = ("results.json", "results.md", "index.html", "metrics.png", "gallery.png")


def prepare_out(out_dir, overwrite: bool) -> Path:
    """Create REPORT_DIR. An existing report is replaced only with overwrite (and only our own files)."""
    return prepare_report(out_dir, OUTPUTS, "a benchmark report", overwrite)


def write_all(out: Path, results: dict, cfg, ego, exo, plan, gallery: dict, log) -> None:
    """Write every report file; results.json last, atomically (its presence marks a complete report)."""
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
