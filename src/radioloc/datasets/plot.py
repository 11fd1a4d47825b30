"""Draw one map of a dataset: buildings, cars, base stations, users and the radio maps of one BS set."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from radioloc.datasets import layout  # noqa: E402
from radioloc.errors import RadiolocError  # noqa: E402
from radioloc.io import atomic_write_bytes  # noqa: E402
from radioloc.propagation.graylevel import NOISE_FLOOR_DB, gray_to_db  # noqa: E402


def show_map(root: str | Path, map_id: int, out: str | Path, bs_set: int = 0, sim: str = "DPM", kind: str = "true") -> Path:
    root = Path(root)
    positions = layout.read_positions(root)
    n_maps, n_sets = positions.bs_sets.shape[:2]
    if not 0 <= map_id < n_maps:
        raise RadiolocError(f"--map must be between 0 and {n_maps - 1}, got {map_id}")
    if not 0 <= bs_set < n_sets:
        raise RadiolocError(f"--set must be between 0 and {n_sets - 1}, got {bs_set}")
    buildings = layout.read_gray_png(layout.building_path(root, map_id)) != 0
    cars_file = layout.cars_path(root, map_id)
    cars = layout.read_gray_png(cars_file) != 0 if cars_file.exists() else np.zeros_like(buildings)
    txs = positions.bs_sets[map_id, bs_set]
    bs = positions.bs[map_id, bs_set]
    ues = positions.ue[map_id]

    fig, axes = plt.subplots(2, 3, figsize=(15, 10))
    city = np.zeros((*buildings.shape, 3))
    city[buildings] = (0.25, 0.35, 0.75)
    city[cars] = (0.85, 0.2, 0.2)
    city[~buildings & ~cars] = (0.97, 0.97, 0.97)
    ax = axes[0, 0]
    ax.imshow(city)
    if positions.candidates is not None:
        cand = positions.candidates[map_id]
        ax.scatter(cand[:, 1], cand[:, 0], s=8, c="k", marker="x", label="BS candidates")
    ax.scatter(ues[:, 1], ues[:, 0], s=6, c="tab:green", label="UEs")
    ax.scatter(bs[:, 1], bs[:, 0], s=60, c="red", marker="D", edgecolors="k", label=f"BS set {bs_set}")
    ax.set_title(f"map {map_id}: buildings (blue), cars (red)")
    ax.legend(loc="lower right", fontsize=7)
    for k, (ax, tx) in enumerate(zip(axes.ravel()[1:], txs)):
        gray = layout.read_radio_map_png(layout.radio_map_path(root, sim, kind, map_id, int(tx)))
        pathloss = np.where(gray > 0, gray_to_db(gray), np.nan)
        pathloss[buildings] = np.nan
        image = ax.imshow(pathloss, cmap="viridis", vmin=NOISE_FLOOR_DB, vmax=-47.84)
        ax.scatter([bs[k, 1]], [bs[k, 0]], s=60, c="red", marker="D", edgecolors="k")
        label = "truth" if kind == "true" else "RadioUNet estimate"
        ax.set_title(f"{sim} {label}, BS {k + 1} (tx {tx}); white = building or below noise floor", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046, label="pathloss [dB]")
    for ax in axes.ravel():
        ax.set_xlabel("col [m]")
        ax.set_ylabel("row [m]")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    out = Path(out)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def draw_city_tiles(city, tiles: list[dict], out: str | Path) -> Path:
    """A whole imported city (building heights, north up) with the kept 256 x 256 m tiles outlined and numbered."""
    fig, ax = plt.subplots(figsize=(10, 10 * city.buildings.shape[0] / max(city.buildings.shape[1], 1)))
    h, w = city.buildings.shape
    extent = (city.x_left, city.x_left + w, city.y_top - h, city.y_top)
    image = ax.imshow(np.where(city.buildings == 1, np.nan_to_num(city.heights, nan=1.0), np.nan), cmap="magma", extent=extent)
    fig.colorbar(image, ax=ax, fraction=0.03, label="building height [m] (1 = unknown)")
    for k, tile in enumerate(tiles):
        x, y = tile["origin"]
        size = tile["buildings"].shape[0]
        ax.add_patch(plt.Rectangle((x, y - size), size, size, fill=False, edgecolor="tab:cyan", linewidth=1.5))
        ax.text(x + size / 2, y - size / 2, str(k), color="tab:cyan", ha="center", va="center", fontsize=12)
    ax.set_title(f"{city.source}: {len(tiles)} tiles of 256 x 256 m")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=70, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(out), buffer.getvalue())
    return Path(out)
