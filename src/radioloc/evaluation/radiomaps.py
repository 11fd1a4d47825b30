"""Evaluate a radio-map estimator against simulated truth: RMSE / MAE in dB, example and histogram figures."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from rich.progress import Progress

from radioloc.datasets.radiomaps import error_summary, load_radio_maps, pathloss_difference_db
from radioloc.evaluation.figures import save_figure
from radioloc.models.estimate import predict_gray
from radioloc.models.radiounet import RadioUNet
from radioloc.models.runtime import Runtime
from radioloc.propagation.graylevel import MAX_PATHLOSS_DB, NOISE_FLOOR_DB, gray_to_db


def evaluate_radiounet(model: RadioUNet, data_dir: str | Path, split: str = "test", sim: str = "DPM", figures: Path | None = None, quiet: bool = False) -> dict:
    runtime = Runtime.pick()
    model = runtime.prepare(model.eval())
    data = load_radio_maps(data_dir, split, sim, quiet=quiet)
    diffs, above, per_map = [], [], []
    seconds = 0.0
    examples = []
    with Progress(disable=quiet) as progress:
        task = progress.add_task(f"evaluating on {split}", total=len(data.maps))
        for slot, map_id in enumerate(data.maps):
            cars = data.cars[slot] if model.config.use_cars else None
            started = time.perf_counter()
            estimates = predict_gray(model, data.buildings[slot], cars, data.tx[slot], runtime)
            seconds += time.perf_counter() - started
            outdoor = data.buildings[slot] == 0
            squared, pixels = 0.0, 0
            for tx in range(len(estimates)):
                d, a = pathloss_difference_db(estimates[tx], data.truth[slot, tx], outdoor)
                diffs.append(d)
                above.append(a)
                squared += float(np.sum(d.astype(np.float64) ** 2))
                pixels += d.size
            per_map.append({"map": int(map_id), "squared_error_db2": squared, "pixels": pixels})
            if len(examples) < 3:
                examples.append((map_id, 0, data.buildings[slot], data.truth[slot, 0], estimates[0]))
            progress.advance(task)
    diff_all, above_all = np.concatenate(diffs), np.concatenate(above)
    result = {
        "split": split,
        "simulation": sim,
        "preset": model.config.preset,
        "maps": len(data.maps),
        "radio_maps": len(data),
        **error_summary(diff_all, above_all),
        "ms_per_map": round(1000 * seconds / len(data), 2),
        "large_errors": large_error_shares(diff_all),
        # Per city map, so a caller can tell how much of a difference between datasets is which maps were drawn.
        "per_map": per_map,
    }
    result["rmse_db"] = result["outdoor"]["rmse_db"]
    result["mae_db"] = result["outdoor"]["mae_db"]
    if figures is not None:
        draw_examples(examples, figures / f"radiounet_{split}_examples.png")
        draw_difference_histogram(
            diff_all, result, figures / f"radiounet_{split}_histogram.png", f"RadioUNet ({model.config.preset}) minus {sim} truth, {split} maps"
        )
    return result


def large_error_shares(diff_db: np.ndarray, thresholds_db: tuple[float, ...] = (5.0, 10.0)) -> dict:
    """Share of the pixels, and of the squared error, beyond each |error| threshold. The RMSE of a radio-map
    estimator is dominated by few pixels: whole shadow wedges behind a narrow gap that the estimate opens or
    closes wrongly."""
    squared = diff_db.astype(np.float64) ** 2
    total = max(float(squared.sum()), 1e-300)
    shares = {}
    for threshold in thresholds_db:
        beyond = np.abs(diff_db) > threshold
        shares[f"over_{threshold:g}_db"] = {
            "pixel_share": float(beyond.mean()) if beyond.size else 0.0,
            "squared_error_share": float(squared[beyond].sum() / total),
        }
    return shares


def draw_examples(examples, out: Path) -> Path:
    fig, axes = plt.subplots(len(examples), 3, figsize=(13, 4.2 * len(examples)), squeeze=False)
    for row, (map_id, tx, buildings, truth, estimate) in zip(axes, examples):
        truth_db = np.where(buildings, np.nan, gray_to_db(truth))
        est_db = np.where(buildings, np.nan, gray_to_db(estimate))
        for ax, image, title in ((row[0], truth_db, "truth"), (row[1], est_db, "RadioUNet estimate")):
            shown = ax.imshow(image, cmap="viridis", vmin=NOISE_FLOOR_DB, vmax=MAX_PATHLOSS_DB)
            ax.set_title(f"map {map_id}, tx {tx}: {title}")
            fig.colorbar(shown, ax=ax, fraction=0.046, label="dB")
        shown = row[2].imshow(est_db - truth_db, cmap="RdBu_r", vmin=-10, vmax=10)
        row[2].set_title("estimate - truth")
        fig.colorbar(shown, ax=row[2], fraction=0.046, label="dB")
    return save_figure(fig, out)


def draw_difference_histogram(diff_db: np.ndarray, stats: dict, out: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(np.clip(diff_db, -20, 20), bins=161, range=(-20, 20), density=True, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("estimate - truth [dB] (clipped to +-20)")
    ax.set_ylabel("density")
    outdoor = stats["outdoor"]
    ax.set_title(f"{title}\nRMSE {outdoor['rmse_db']:.2f} dB, MAE {outdoor['mae_db']:.2f} dB over {outdoor['pixels']:,} outdoor pixels", fontsize=9)
    return save_figure(fig, out)
