"""The benchmark's tables as text: columns in the paper's Table 1 order, results.md, and the Rich table.

Writing REPORT_DIR is bench.output's (it draws on this module, bench.html and bench.plots).
"""

from __future__ import annotations

from rosetta_cli.bench.splits import GALLERY_TEXT

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
    g = results.get("gallery", "all")
    return f"Retrieval protocol `--gallery {g}`: the gallery of each query is {GALLERY_TEXT.get(g, g)}."


def rich_table(results: dict):
    """The paper's Table 1 layout (headline columns; the full table is in results.md)."""
    from rich.table import Table

    headers, rows = table_cells(results, headline_columns(results["config"]["ks"]))
    t = Table(title="Cross-view benchmark (%, best in bold; all k in results.md)", title_justify="left")
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for cells in rows:
        t.add_row(*(f"[bold]{x}[/bold]" if b else x for x, b in cells))
    return t
