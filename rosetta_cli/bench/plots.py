"""Report figures: grouped metric bars and a retrieval gallery of video frames (video.frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rosetta_cli.bench.report import columns
from rosetta_cli.runtime.plotting import pyplot
from rosetta_cli.video.frames import middle_frame, resolve_video


def bar_chart(results: dict, path: Path) -> str:
    """Grouped bars: one group per metric, one bar per model. Returns the file name."""
    plt = pyplot()
    cols = [(k, h) for k, h in columns(results["config"]["ks"])
            if any(r["metrics"].get(k) is not None for r in results["models"])]
    models = results["models"]
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * len(cols) + 2), 4.0), dpi=100)
    x = np.arange(len(cols))
    for i, r in enumerate(models):
        vals = [r["metrics"].get(k) for k, _ in cols]
        ax.bar(x + (i - (len(models) - 1) / 2) * width, [np.nan if v is None else v for v in vals], width,
               label=r["name"])
    ax.set_xticks(x, [h for _, h in cols], rotation=30, ha="right")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title("Cross-view benchmark")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


class FrameSource:
    """Decoded middle frames of a view's clips, cached; counts clips whose video is missing."""

    def __init__(self, view):
        self.view, self.cache, self.missing = view, {}, []

    def get(self, pos: int) -> np.ndarray | None:
        if pos not in self.cache:
            c = self.view.clips.iloc[pos]
            path = resolve_video(c["video"], self.view.store)
            self.cache[pos] = middle_frame(path, float(c["start"]), float(c["end"])) if path else None
            if self.cache[pos] is None:
                self.missing.append(c["video"] or f"clip {c['clip_id']} has no video path")
        return self.cache[pos]


def retrieval_gallery(gallery: dict, ego, exo, path: Path, notes: list[str]) -> str | None:
    """Per sampled ego query and model: the query frame and its top-3 exo frames, with hit/miss marks.

    gallery: {model name: {ego position: [exo positions]}}. Skipped (note, None) without decodable videos.
    """
    queries = sorted({q for g in gallery.values() for q in g})
    if not queries:
        notes.append("retrieval gallery: skipped (no labelled retrieval queries or plots disabled)")
        return None
    fe, fx = FrameSource(ego), FrameSource(exo)
    grid = [(q, name, g[q]) for q in queries for name, g in gallery.items() if q in g]
    frames = [[fe.get(q)] + [fx.get(j) for j in top] for q, _, top in grid]
    if all(f is None for row in frames for f in row):
        ex = (fe.missing + fx.missing)[:1]
        notes.append(f"retrieval gallery: skipped (source videos unavailable, e.g. {ex[0] if ex else '?'})")
        return None
    _draw_gallery(grid, frames, ego, exo, path)
    if fe.missing or fx.missing:
        notes.append(f"retrieval gallery: {len(fe.missing) + len(fx.missing)} clip frame(s) unavailable, shown blank")
    return path.name


def _draw_gallery(grid, frames, ego, exo, path: Path) -> None:
    plt = pyplot()
    ncol = 1 + max(len(top) for _, _, top in grid)
    fig, axes = plt.subplots(len(grid), ncol, figsize=(2.1 * ncol, 1.9 * len(grid)), dpi=100, squeeze=False)
    for r, ((q, name, top), row) in enumerate(zip(grid, frames)):
        qlabel = ego.clips["label"].iloc[q]
        _panel(axes[r][0], row[0], f"{name}\nquery: {_short(qlabel)}", "black")
        for c in range(1, ncol):
            if c - 1 >= len(top):
                axes[r][c].axis("off")
                continue
            lab = exo.clips["label"].iloc[top[c - 1]]
            hit = lab == qlabel and lab != ""
            _panel(axes[r][c], row[c], f"{'✓ hit' if hit else '✗ miss'} #{c}\n{_short(lab)}", "green" if hit else "red")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _panel(ax, img, title: str, color: str) -> None:
    if img is None:
        ax.imshow(np.full((30, 40, 3), 200, dtype=np.uint8))
        ax.text(20, 15, "no video", ha="center", va="center", fontsize=8)
    else:
        ax.imshow(img)
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_edgecolor(color)
        s.set_linewidth(3)
    ax.set_title(title, fontsize=7, color=color)


def _short(s: str, n: int = 24) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"
