"""Evaluate localizers alike: errors with 5 BSs and with 3-BS subsets, a table conditioned on the number of BSs
above the noise floor (the paper's Table IV), error CDFs and Fig. 3-style example figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from radioloc.datasets.localization import LocalizationData
from radioloc.evaluation.figures import save_figure
from radioloc.models.localizer import Localizer, localization_errors
from radioloc.models.locunet import InputEncoder, LocUNet


def error_stats(errors: np.ndarray) -> dict:
    """MAE, RMSE, median and 90th percentile (metres) and the number of queries."""
    if errors.size == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "median": float("nan"), "p90": float("nan"), "n": 0}
    return {
        "mae": float(np.mean(errors)),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "median": float(np.median(errors)),
        "p90": float(np.percentile(errors, 90)),
        "n": int(errors.size),
    }


def by_detectable(errors: np.ndarray, n_detectable: np.ndarray, max_bs: int = 5) -> dict:
    """Error statistics per number of BSs above the noise floor at the UE (0..max_bs), with the share of
    queries in each group."""
    table = {}
    for count in range(max_bs + 1):
        mask = n_detectable == count
        table[str(count)] = {**error_stats(errors[mask]), "share": float(mask.mean()) if mask.size else 0.0}
    return table


@dataclass
class SettingResult:
    """One localizer on one query setting (5 BSs, or the first 3 BSs of every set)."""

    name: str
    setting: str
    estimates: np.ndarray
    errors: np.ndarray
    n_detectable: np.ndarray
    ms_per_query: float
    fitted: dict

    def to_dict(self) -> dict:
        return {
            **error_stats(self.errors),
            "ms_per_query": self.ms_per_query,
            "by_detectable_bs": by_detectable(self.errors, self.n_detectable),
            "fitted": self.fitted,
        }


def run_setting(localizer: Localizer, test: LocalizationData, setting: str, bs_count: int) -> SettingResult:
    data = test if bs_count >= test.queries.bs_ids.shape[1] else test.with_queries(test.queries.first_bs(bs_count))
    estimates = localizer.predict(data)
    errors = localization_errors(estimates, data.queries.position)
    return SettingResult(
        localizer.name, setting, estimates, errors, data.queries.n_detectable(), float(getattr(localizer, "ms_per_query", float("nan"))), localizer.describe()
    )


def draw_error_cdf(results: list[SettingResult], out: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in results:
        errors = np.sort(r.errors)
        ax.plot(errors, np.arange(1, errors.size + 1) / errors.size, label=f"{r.name}, {r.setting} (MAE {errors.mean():.1f} m)")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, max(256.0, max((float(r.errors.max()) for r in results), default=1.0)))
    ax.set_xlabel("localization error (m)")
    ax.set_ylabel("fraction of queries")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, out)


@torch.no_grad()
def draw_locunet_example(
    model: LocUNet, encoder: InputEncoder, data: LocalizationData, query: int, out: Path, others: dict[str, np.ndarray] | None = None
) -> Path:
    """Fig. 3 of the paper for one query: the radio maps the model sees, the positive and the negative part of
    the quasi-heatmap, and the estimates and the truth on the city map."""
    q = data.queries
    inputs = encoder.encode(q.map_slot[query : query + 1], q.bs_ids[query : query + 1], q.pathloss_db[query : query + 1])
    model.eval()
    heat = model.heatmap(inputs.to(next(model.parameters()).device)).float()[0].cpu().numpy()
    estimate = model(inputs).float()[0].cpu().numpy()
    slot = int(q.map_slot[query])
    scenes = data.scenes
    ids = [int(b) for b in q.bs_ids[query] if b >= 0]
    truth = q.position[query]
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.6))
    extent = (-0.5, 255.5, 255.5, -0.5)
    for ax, b, p in zip(axes.flat[:5], ids, [v for v in q.pathloss_db[query] if np.isfinite(v)]):
        ax.imshow(scenes.radio_maps[slot, b], cmap="viridis", vmin=0, vmax=255, extent=extent)
        ax.plot(scenes.bs_positions[slot, b, 1], scenes.bs_positions[slot, b, 0], "r^", ms=7)
        ax.set_title(f"BS {b}: reported {p:.1f} dB", fontsize=9)
    for ax in axes.flat[len(ids) : 5]:
        ax.axis("off")
    for ax, part, label in ((axes.flat[5], np.maximum(heat, 0), "positive"), (axes.flat[6], np.maximum(-heat, 0), "negative")):
        ax.imshow(part, cmap="magma", extent=extent)
        ax.plot(truth[1], truth[0], "gx", ms=10, mew=2)
        ax.set_title(f"{label} quasi-heatmap", fontsize=9)
    ax = axes.flat[7]
    ax.imshow(scenes.buildings[slot], cmap="gray_r", vmin=0, vmax=2, extent=extent)
    for b in ids:
        ax.plot(scenes.bs_positions[slot, b, 1], scenes.bs_positions[slot, b, 0], "r^", ms=7)
    ax.plot(truth[1], truth[0], "gx", ms=11, mew=2.5, label="truth")
    ax.plot(estimate[1], estimate[0], "b+", ms=11, mew=2.5, label=f"LocUNet ({np.hypot(*(estimate - truth)):.1f} m)")
    markers = iter(("mo", "cs", "yD"))
    for name, positions in (others or {}).items():
        p = positions[query]
        ax.plot(p[1], p[0], next(markers), ms=6, label=f"{name} ({np.hypot(*(p - truth)):.1f} m)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set_title(f"map {scenes.map_ids[slot]}, set {int(q.bs_set[query]) if len(q.bs_set) else '-'}", fontsize=9)
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, out)
