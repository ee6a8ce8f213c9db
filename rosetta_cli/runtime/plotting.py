"""The one place that picks matplotlib's backend.

Every figure rosetta draws is written to a file (never shown), so the non-interactive Agg backend is
forced before pyplot loads: on a machine with a display, or under a notebook, pyplot would otherwise
pick an interactive backend and open windows from a CLI run.
"""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot with the Agg backend (imported on first use: matplotlib costs ~0.3 s)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes; closes it (pyplot keeps every open figure alive otherwise)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    return buf.getvalue()
