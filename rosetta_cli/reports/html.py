"""One HTML shell: every report page (bench, retrieve, claims) has the same stylesheet and image check.

Pages are self-contained folders (relative image paths, so a moved folder still works). The onload
script marks every <img> with data-loaded="1"/"0" (naturalWidth > 0) and fills #img-check, so a reader,
or a headless-browser test, sees broken images at once.
"""

from __future__ import annotations

from html import escape

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:90em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
code{background:#f4f4f4;padding:0 .2em}.muted{color:#666}
pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}
.ok{color:#070;font-weight:bold}.no{color:#a00;font-weight:bold}
.q{margin:1.5em 0;border-top:2px solid #ccc}.row{display:flex;flex-wrap:wrap;gap:.6em}
figure{margin:0}.row figure{width:170px;font-size:.8em}.row img{border:3px solid #eee}
.hit img{border-color:#2a2}.miss img{border-color:#c22}"""

IMG_CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    var good = imgs[i].complete && imgs[i].naturalWidth > 0;
    imgs[i].setAttribute("data-loaded", good ? "1" : "0");
    if (good) ok++;
  }
  var el = document.getElementById("img-check");
  if (!el) return;
  el.setAttribute("data-ok", ok); el.setAttribute("data-total", imgs.length);
  el.textContent = ok + "/" + imgs.length + " images loaded";
});
</script>"""

# where the image check writes its count; a page puts it in its header line
IMG_CHECK_SPAN = '<span id="img-check">images not checked</span>'


def page(title: str, body: str) -> str:
    """A whole HTML document: `title` (plain text, escaped here) and `body` (HTML, already escaped)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{CSS}</style></head>
<body>
{body}
{IMG_CHECK}
</body></html>
"""
