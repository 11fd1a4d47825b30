"""Evaluate localizers alike: errors with 5 BSs and with 3-BS subsets, a table conditioned on the number of BSs
above the noise floor (the paper's Table IV), the coverage of the uncertainty radii, error CDFs, reliability and
Fig. 3-style example figures."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from radioloc.datasets.localization import LocalizationData
from radioloc.evaluation.figures import save_figure
from radioloc.localizers.base import LocalizationEstimate, Localizer, localization_errors
from radioloc.localizers.uncertainty import LEVELS


def error_stats(errors: np.ndarray) -> dict:
    """MAE, RMSE, median and 90th percentile (metres) and the number of queries."""
    if errors.size == 0:
        return {"mae": None, "rmse": None, "median": None, "p90": None, "n": 0}
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
    estimate: LocalizationEstimate
    errors: np.ndarray
    n_detectable: np.ndarray
    ms_per_query: float
    fitted: dict

    @property
    def estimates(self) -> np.ndarray:
        return self.estimate.positions

    def coverage(self) -> dict[float, float]:
        return {level: float(np.mean(self.errors <= self.estimate.radii[:, i])) for i, level in enumerate(LEVELS)} if self.errors.size else {}

    def to_dict(self) -> dict:
        coverage = self.coverage()
        return {
            **error_stats(self.errors),
            "coverage_68": coverage.get(0.68),
            "coverage_95": coverage.get(0.95),
            "coverage": {f"{level:g}": value for level, value in coverage.items()},
            "median_radius_68_m": float(np.median(self.estimate.radius_68)) if self.errors.size else None,
            "median_radius_95_m": float(np.median(self.estimate.radius_95)) if self.errors.size else None,
            "ms_per_query": self.ms_per_query,
            # queries a solver could not answer (ToA methods; answered with a fallback and counted in the errors)
            "failure_rate": float(self.estimate.failed.mean()) if self.estimate.failed is not None and self.errors.size else None,
            "by_detectable_bs": by_detectable(self.errors, self.n_detectable),
            "fitted": self.fitted,
        }


def run_setting(localizer: Localizer, test: LocalizationData, setting: str, bs_count: int) -> SettingResult:
    data = test.first_bs(bs_count)
    estimate = localizer.locate(data)
    errors = localization_errors(estimate.positions, data.queries.position)
    return SettingResult(localizer.name, setting, estimate, errors, data.queries.n_detectable(), float(localizer.ms_per_query), localizer.describe())


def time_queries(localizer: Localizer, data: LocalizationData, batch: int, repeats: int) -> float:
    """Seconds per query for batches of ``batch`` queries, from arrays of reports to positions and radii (input
    assembly included), after one warm-up batch (per-scene caches, compilation)."""
    localizer.locate(data.subset(np.arange(batch) % len(data.queries)))
    index = np.arange(batch * repeats) % len(data.queries)
    started = time.perf_counter()
    for r in range(repeats):
        localizer.locate(data.subset(index[r * batch : (r + 1) * batch]))
    return (time.perf_counter() - started) / (batch * repeats)


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


def draw_reliability(results: list[SettingResult], out: Path, title: str) -> Path:
    """Nominal coverage of each radius level against the share of queries whose truth it held."""
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0.4, 1.0], [0.4, 1.0], color="0.6", lw=1, ls="--", label="perfectly calibrated")
    for r in results:
        coverage = r.coverage()
        ax.plot(
            list(coverage), list(coverage.values()), marker="o", ms=4, label=f"{r.name}, {r.setting} (68 %: {coverage[0.68]:.2f}, 95 %: {coverage[0.95]:.2f})"
        )
    ax.set_xlabel("nominal coverage of the reported radius")
    ax.set_ylabel("measured coverage (truth within the radius)")
    ax.set_xlim(0.4, 1.0)
    ax.set_ylim(0.4, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, out)


@dataclass
class ExampleAnswer:
    """One localizer's answer to the example query: its position, radii and, if it has one, its heatmap
    (``quasi``: LocUNet's quasi-heatmap, shown as its positive and negative parts; ``posterior``)."""

    label: str
    position: np.ndarray
    radius_68: float
    radius_95: float
    heatmap: np.ndarray | None = None
    kind: str | None = None


def _circles(ax, answer: ExampleAnswer, color: str) -> None:
    for radius, style in ((answer.radius_68, "-"), (answer.radius_95, ":")):
        ax.add_patch(plt.Circle((answer.position[1], answer.position[0]), radius, fill=False, color=color, ls=style, lw=1.2))


def draw_example(data: LocalizationData, query: int, answers: list[ExampleAnswer], out: Path) -> Path:
    """Fig. 3 of the paper for one query: the radio maps the localizers see; LocUNet's positive and negative
    quasi-heatmap; the Bayesian posterior with its 68 % (solid) and 95 % (dotted) circles; every estimate and its
    circles with the truth on the city map."""
    q = data.queries
    slot = int(q.map_slot[query])
    scenes = data.scenes
    ids = [int(b) for b in q.bs_ids[query] if b >= 0]
    reports = [float(v) for b, v in zip(q.bs_ids[query], q.pathloss_db[query]) if b >= 0]
    truth = q.position[query]
    heat_panels = sum(2 if a.kind == "quasi" else 1 for a in answers if a.heatmap is not None)
    columns = max(5, heat_panels + 1)
    fig, axes = plt.subplots(2, columns, figsize=(2.9 * columns, 6.4))
    extent = (-0.5, 255.5, 255.5, -0.5)
    for ax, b, p in zip(axes[0], ids, reports):
        ax.imshow(scenes.radio_maps[slot, b], cmap="viridis", vmin=0, vmax=255, extent=extent)
        ax.plot(scenes.bs_positions[slot, b, 1], scenes.bs_positions[slot, b, 0], "r^", ms=7)
        ax.set_title(f"BS {b}: reported {p:.1f} dB", fontsize=9)
    for ax in axes[0][len(ids) :]:
        ax.axis("off")
    colors = iter(("tab:blue", "tab:orange", "tab:purple", "tab:cyan", "tab:olive", "tab:brown"))
    color_of = {a.label: next(colors, "k") for a in answers}
    panel = iter(axes[1][:-1])
    for answer in answers:
        if answer.heatmap is None:
            continue
        if answer.kind == "quasi":
            parts = ((np.maximum(answer.heatmap, 0), "positive"), (np.maximum(-answer.heatmap, 0), "negative"))
        else:
            parts = ((answer.heatmap, "posterior"),)
        for image, name in parts:
            ax = next(panel)
            ax.imshow(image, cmap="magma", extent=extent)
            ax.plot(truth[1], truth[0], "gx", ms=10, mew=2)
            if answer.kind != "quasi":
                _circles(ax, answer, "w")
                ax.plot(answer.position[1], answer.position[0], "w+", ms=10, mew=2)
            ax.set_title(f"{answer.label}: {name}" + (" quasi-heatmap" if answer.kind == "quasi" else ""), fontsize=9)
    for ax in panel:
        ax.axis("off")
    ax = axes[1][-1]
    ax.imshow(scenes.buildings[slot], cmap="gray_r", vmin=0, vmax=2, extent=extent)
    for b in ids:
        ax.plot(scenes.bs_positions[slot, b, 1], scenes.bs_positions[slot, b, 0], "r^", ms=7)
    ax.plot(truth[1], truth[0], "gx", ms=11, mew=2.5, label="truth")
    for answer in answers:
        color = color_of[answer.label]
        error = float(np.hypot(*(answer.position - truth)))
        ax.plot(
            answer.position[1], answer.position[0], "+", color=color, ms=11, mew=2.5, label=f"{answer.label} ({error:.1f} m, 68 % r {answer.radius_68:.1f} m)"
        )
        _circles(ax, answer, color)
    ax.set_xlim(-0.5, 255.5)
    ax.set_ylim(255.5, -0.5)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set_title(f"map {scenes.map_ids[slot]}, set {int(q.bs_set[query]) if len(q.bs_set) else '-'}: circles 68 % (solid), 95 % (dotted)", fontsize=9)
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, out)
