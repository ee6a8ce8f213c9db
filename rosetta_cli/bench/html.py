"""index.html: one self-contained page (relative image paths) showing the whole report, in reports.html's shell."""

from __future__ import annotations

from html import escape

from rosetta_cli.bench.report import gallery_line, table_cells
from rosetta_cli.reports.html import IMG_CHECK_SPAN, page

def _table(results: dict) -> str:
    headers, rows = table_cells(results)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{'<b>' + escape(t) + '</b>' if b else escape(t)}</td>" for t, b in cells)
                   + "</tr>" for cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _stores(results: dict) -> str:
    items = "".join(f"<li>{v}: <code>{escape(s['path'])}</code> ({escape(s['kind'])}, {s['rows']} rows, "
                    f"fingerprint <code>{escape(str(s['fingerprint']))}</code>)</li>"
                    for v, s in results["stores"].items())
    return f"<ul>{items}</ul>"


def render(results: dict) -> str:
    imgs = results.get("images", {})
    fig = "".join(f'<h2>{escape(title)}</h2><p><img src="{escape(imgs[key])}" alt="{escape(title)}"></p>'
                  for key, title in (("metrics", "Metrics per model"), ("gallery", "Retrieval gallery (ego → exo, top 3)"))
                  if key in imgs)
    notes = "".join(f"<li>{escape(n)}</li>" for n in results.get("notes", []))
    return page("rosetta bench", f"""<h1>Cross-view benchmark</h1>
<p class="muted">seed {results['seed']} · {escape(str(results.get('created', '')))} ·
<a href="results.json">results.json</a> · <a href="results.md">results.md</a> ·
{IMG_CHECK_SPAN}</p>
<p>{escape(gallery_line(results))}</p>
{_table(results)}
<p class="muted">Percentages; best per column in bold.</p>
<h2>Stores</h2>{_stores(results)}
{fig}
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}""")
