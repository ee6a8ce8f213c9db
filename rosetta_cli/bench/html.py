"""index.html: one self-contained page (relative image paths) showing the whole report.

A small onload script marks every <img> with data-loaded="1"/"0" (naturalWidth > 0) and
fills #img-check, so a reader (or a headless-browser test) sees broken images at once.
"""

from __future__ import annotations

from html import escape

from rosetta_cli.bench.report import gallery_line, table_cells

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:75em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
code{background:#f4f4f4;padding:0 .2em}.muted{color:#666}"""

_CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    var good = imgs[i].complete && imgs[i].naturalWidth > 0;
    imgs[i].setAttribute("data-loaded", good ? "1" : "0");
    if (good) ok++;
  }
  var el = document.getElementById("img-check");
  el.setAttribute("data-ok", ok); el.setAttribute("data-total", imgs.length);
  el.textContent = ok + "/" + imgs.length + " images loaded";
});
</script>"""


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
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rosetta bench</title><style>{_CSS}</style></head>
<body>
<h1>Cross-view benchmark</h1>
<p class="muted">seed {results['seed']} · {escape(str(results.get('created', '')))} ·
<a href="results.json">results.json</a> · <a href="results.md">results.md</a> ·
<span id="img-check">images not checked</span></p>
<p>{escape(gallery_line(results))}</p>
{_table(results)}
<p class="muted">Percentages; best per column in bold.</p>
<h2>Stores</h2>{_stores(results)}
{fig}
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
{_CHECK}
</body></html>
"""
