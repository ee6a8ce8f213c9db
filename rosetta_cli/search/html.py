"""`rosetta retrieve --out DIR`: DIR/index.html with the query's frames and each hit's middle frame.

Images are PNG files beside the page (relative paths, so a moved folder still works); the same
onload check as the bench report marks each <img> data-loaded="1"/"0" and fills #img-check.
A hit whose video cannot be decoded gets a text cell instead of a broken image.
"""

from __future__ import annotations

import shutil
from html import escape
from pathlib import Path

import numpy as np

from rosetta_cli.bench.html import _CHECK
from rosetta_cli.runtime import atomic
from rosetta_cli.runtime.guard import output_action

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:90em}
.q{margin:1.5em 0;border-top:2px solid #ccc}.row{display:flex;flex-wrap:wrap;gap:.6em}
figure{margin:0;width:170px;font-size:.8em}img{max-width:100%;border:3px solid #eee}
.hit img{border-color:#2a2}.miss img{border-color:#c22}.muted{color:#666}"""
PAGE = "index.html"


def prepare_out(out: Path, overwrite: bool) -> None:
    holds = (out / PAGE).exists()
    if output_action(out, holds, what="a retrieval page", overwrite=overwrite, resumable=False).value == "replace":
        shutil.rmtree(out / "frames", ignore_errors=True)
        (out / PAGE).unlink(missing_ok=True)
    (out / "frames").mkdir(parents=True, exist_ok=True)


def _png(img: np.ndarray, path: Path) -> str:
    from PIL import Image

    atomic.write_with(path, lambda p: Image.fromarray(img).save(p, format="PNG"))
    return f"frames/{path.name}"


def _figure(src: str | None, caption: str, cls: str = "") -> str:
    body = f'<img src="{escape(src)}" alt="">' if src else '<div class="muted">(video not decodable)</div>'
    return f'<figure class="{cls}">{body}<figcaption>{caption}</figcaption></figure>'


def _t(x) -> str:
    return "end" if x is None else f"{x:.2f}"


def _query_frames(searcher, where: dict | None, qi: int, out: Path) -> list[str]:
    if not where:
        return []
    try:
        frames = searcher.frames(where["video"], where.get("start"), where.get("end"))
    except Exception:  # a query frame that cannot be shown must not hide the hits
        return []
    return [_png(_small(f), out / "frames" / f"q{qi}-{i}.png") for i, f in enumerate(frames)]


def _small(img: np.ndarray, side: int = 200) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(img)
    im.thumbnail((side, side))
    return np.asarray(im)


def write_page(out: Path, searcher, answers: list[dict]) -> Path:
    """Write DIR/index.html (+ DIR/frames/*.png) for the answers of `run`. Returns the page path."""
    from rosetta_cli.bench.plots import middle_frame, resolve_video

    parts = []
    for qi, a in enumerate(answers):
        qf = "".join(_figure(src, f"query frame {i + 1}") for i, src in enumerate(_query_frames(searcher, a["frames_from"], qi, out)))
        figs = []
        for h in a["hits"]:
            path = resolve_video(h["video"], _StoreRef(h["store"]))
            img = middle_frame(path, h["start"] or 0.0, h["end"] if h["end"] is not None else float("nan")) if path else None
            src = _png(img, out / "frames" / f"q{qi}-hit{h['rank']}.png") if img is not None else None
            mark = {True: ("hit", "✓ "), False: ("miss", "✗ ")}.get(h.get("match"), ("", ""))
            cap = (f"{mark[1]}#{h['rank']} · {h['score']:.3f}<br>{escape(h['clip_id'])} ({escape(h['view'])})<br>"
                   f"{escape(Path(h['video']).name)} {_t(h['start'])}–{_t(h['end'])} s<br>"
                   f"{escape(h['label'] or h['narration'] or '')}")
            figs.append(_figure(src, cap, mark[0]))
        label = f" · label <b>{escape(a['label'])}</b>" if a.get("label") else ""
        parts.append(f'<div class="q"><h2>Query {qi + 1}: {escape(a["kind"])}</h2>'
                     f'<p><code>{escape(_describe(a["query"]))}</code>{label} · {a["seconds"] * 1000:.0f} ms</p>'
                     f'<div class="row">{qf}</div><h3>Top {len(a["hits"])}</h3><div class="row">{"".join(figs)}</div></div>')
    meta = searcher.meta
    model = meta["model"]["name"] if meta.get("model") else "frozen features"
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rosetta retrieve</title><style>{_CSS}</style></head>
<body><h1>Cross-view retrieval</h1>
<p class="muted">index <code>{escape(str(searcher.path))}</code> · {meta['ntotal']} clips · {escape(model)} ·
{escape(meta['index'].get('kind', ''))} · <span id="img-check">images not checked</span></p>
{''.join(parts)}
{_CHECK}
</body></html>"""
    atomic.write_text(out / PAGE, html)
    return out / PAGE


def _describe(q: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in q.items())


class _StoreRef:
    """What resolve_video needs of a store: its path and meta (video_root)."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.meta = {}
