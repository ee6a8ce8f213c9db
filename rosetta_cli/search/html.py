"""`rosetta retrieve --out DIR`: DIR/index.html with the query's frames and each hit's middle frame.

Images are PNG files beside the page; the page is reports.html's shell (one stylesheet, and the image
check that marks each <img> data-loaded="1"/"0" and fills #img-check). A hit whose video cannot be
decoded gets a text cell instead of a broken image.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from rosetta_cli.reports.html import IMG_CHECK_SPAN, page
from rosetta_cli.reports.output import prepare_out as prepare_report
from rosetta_cli.runtime import atomic
from rosetta_cli.video.frames import middle_frame, resolve_video, thumbnail

PAGE = "index.html"


def prepare_out(out: Path, overwrite: bool) -> None:
    """DIR for the page: an earlier page (index.html, frames/) is replaced only with --overwrite."""
    prepare_report(out, (PAGE, "frames"), "a retrieval page", overwrite)
    (out / "frames").mkdir()


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
    return [_png(thumbnail(f), out / "frames" / f"q{qi}-{i}.png") for i, f in enumerate(frames)]


def write_page(out: Path, searcher, answers: list[dict]) -> Path:
    """Write DIR/index.html (+ DIR/frames/*.png) for the answers of `run`. Returns the page path."""
    parts = []
    for qi, a in enumerate(answers):
        qf = "".join(_figure(src, f"query frame {i + 1}") for i, src in enumerate(_query_frames(searcher, a["frames_from"], qi, out)))
        figs = []
        for h in a["hits"]:
            path = resolve_video(h["video"], _StoreRef(h["store"]))
            img = middle_frame(path, h["start"] or 0.0, h["end"]) if path else None
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
    body = f"""<h1>Cross-view retrieval</h1>
<p class="muted">index <code>{escape(str(searcher.path))}</code> · {meta['ntotal']} clips · {escape(model)} ·
{escape(meta['index'].get('kind', ''))} · {IMG_CHECK_SPAN}</p>
{''.join(parts)}"""
    atomic.write_text(out / PAGE, page("rosetta retrieve", body))
    return out / PAGE


def _describe(q: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in q.items())


class _StoreRef:
    """What resolve_video needs of a store: its path and meta (video_root)."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.meta = {}
