"""Shared figure helpers: every figure is written atomically as a PNG."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from radioloc.io import atomic_write_bytes  # noqa: E402


def save_figure(fig, out: str | Path, dpi: int = 90) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    out = Path(out)
    atomic_write_bytes(out, buffer.getvalue())
    return out
