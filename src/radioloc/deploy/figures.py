"""A deployment at a glance: its city, its BSs, and how many BSs a phone hears at each point of the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radioloc.deploy.deployment import Deployment


def draw_deployment(deployment: Deployment, out: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    rows, cols = deployment.config.shape
    step = max(1, max(rows, cols) // 512)  # counting heard BSs on every pixel of a large area is not needed for a picture
    heard = (np.asarray(deployment.truth[:, ::step, ::step]) > 0).sum(axis=0).astype(float)
    heard[np.asarray(deployment.obstacles[::step, ::step]) > 0] = np.nan
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    extent = (-0.5, cols - 0.5, rows - 0.5, -0.5)
    axes[0].imshow(deployment.buildings, cmap="Greys", extent=extent, interpolation="nearest")
    axes[0].set_title(f"{deployment.config.name}: {len(deployment.cell_ids)} BSs on {rows} x {cols} m")
    image = axes[1].imshow(heard, cmap="viridis", extent=extent, interpolation="nearest")
    axes[1].set_title(f"BSs heard above the noise floor ({deployment.config.truth} truth)")
    fig.colorbar(image, ax=axes[1], fraction=0.046)
    for ax in axes:
        ax.scatter(deployment.bs_positions[:, 1], deployment.bs_positions[:, 0], marker="^", s=28, c="red", edgecolors="white", linewidths=0.6)
        ax.set_xlabel("col (m, east)")
        ax.set_ylabel("row (m, south)")
    for bs, (r, c) in zip(deployment.config.base_stations, deployment.bs_positions):
        axes[0].annotate(str(bs.cell_id), (c, r), fontsize=6, color="red", xytext=(2, 2), textcoords="offset points")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
