"""LocUNet's quasi-heatmap as a learned prior on the calibrated grid posterior: the shipped ``locunet``.

The grid posterior (:mod:`radioloc.localizers.bayes`) knows how far each radio-map value may be off, but under a
uniform prior it cannot tell apart two places that fit the reports alike. LocUNet has seen thousands of cities and
reports; its quasi-heatmap says which of those places are plausible, and the paper reduces it to one centre of
mass. Here the two multiply (a product of experts):

    p(x | reports) ~ p_bayes(x | reports) * (S^2 b(x) + floor) ** beta

- ``b``, the belief map: the positive part of the quasi-heatmap, of the sign holding the larger mass (the centre of
  mass the network was trained on does not depend on the sign), normalized to sum 1 over the network's S x S cells
  (4 m for the CPU presets). ``S^2 b`` is 1 where the network is as unsure as a uniform prior.
- ``floor`` keeps places the network ruled out possible, so that strong evidence still wins there; ``beta`` weighs
  the network's belief against the tempered likelihood. Both are chosen on validation queries for the lowest MAE,
  like the tempering, with the network and the calibration fixed: each was trained on its own.
- **Interpolation**: the prior's cost is interpolated bilinearly from the cell centres to the 1 m pixels
  (``bilinear``, fusions fitted since 2026-12-06). Constant on 4 m cells (``cells``, fusions fitted before, which
  keep it), a step between two cells moved a sharp 5-BS posterior that straddles it: on 3,000 validation queries
  of data/dpm with 5 BSs, bilinear gave 0.2-1.8 % lower MAE at every weight and floor tried, and the same within
  0.5 % with 3 BSs.
- Answer: the posterior mean. Radii: the discs around it holding 68 % / 95 % of this posterior's mass, calibrated
  split-conformally on held-out queries (:mod:`radioloc.localizers.uncertainty`).

``radioloc train calibrate --fuse NAME`` fits it and stores a ``fusion`` section in the LocUNet checkpoint: the
calibration's name and SHA-256, ``beta``, ``floor``, the radius calibration and the validation grid. The registry
answers ``locunet`` / ``locunet-robust`` with it where the checkpoint has that section; ``:paper`` keeps the
paper's answer (centre of mass and local refinement, :mod:`radioloc.localizers.locunet`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radioloc.datasets.localization import LocalizationData
from radioloc.errors import RadiolocError
from radioloc.localizers.base import Localizer, localization_errors
from radioloc.localizers.bayes import TEMPERATURE_QUERIES, BayesLocalizer
from radioloc.localizers.locunet import LocUNetLocalizer, network_maps
from radioloc.localizers.locunet import shipped as paper_locunet
from radioloc.localizers.uncertainty import RadiusCalibration
from radioloc.models.checkpoint import load_checkpoint, save_checkpoint
from radioloc.models.likelihood import LikelihoodCalibration, calibration_path, matches_calibration
from radioloc.models.locunet import KIND, load_locunet, locunet_weights
from radioloc.models.runtime import Runtime

BETAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # 0: the network adds nothing, the posterior alone
FLOORS = (0.001, 0.01, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0)  # large floors flatten the prior: the grid reaches past its best
QUERY_CHUNK = 1024  # queries whose heatmaps are held at once (16 KB each at 64 x 64 cells)
INTERPOLATIONS = ("bilinear", "cells")
PAPER_OPTIONS = ("paper", "network", "heatmap-radii")  # registry options that ask for the paper's answer


def belief_maps(heatmaps: np.ndarray) -> np.ndarray:
    """(n, S, S) float64: each quasi-heatmap's positive part of the larger-mass sign, summing to 1 (uniform where a
    heatmap holds no mass)."""
    heat = np.asarray(heatmaps, dtype=np.float64)
    belief = np.maximum(heat, 0.0)
    positive = belief.sum(axis=(1, 2))
    flip = positive - heat.sum(axis=(1, 2)) > positive  # the negative part holds more mass
    if flip.any():
        belief[flip] = np.maximum(-heat[flip], 0.0)
    total = belief.sum(axis=(1, 2))
    empty = total <= 0
    belief /= np.where(empty, 1.0, total)[:, None, None]
    belief[empty] = 1.0 / (heat.shape[1] * heat.shape[2])
    return belief


def prior_cost(heatmaps: np.ndarray, beta: float, floor: float) -> np.ndarray:
    """(n, S, S) nats the learned prior adds to each cell's negative log-posterior: -beta log(S^2 b + floor)."""
    cells = heatmaps.shape[1] * heatmaps.shape[2]
    cost = belief_maps(heatmaps)
    cost *= cells
    cost += floor
    np.log(cost, out=cost)
    cost *= -beta
    return cost.astype(np.float32)


class HeatmapPriorLocalizer(Localizer):
    """A LocUNet (centre-of-mass head) whose quasi-heatmap is the prior of a calibrated ``bayes`` posterior."""

    @property
    def uses_ranges(self) -> bool:
        return self.network.uses_ranges or self.posterior.uses_ranges

    name = "locunet"
    heatmap_kind = "posterior"
    calibration_per_count = 6000

    def __init__(
        self, network: LocUNetLocalizer, posterior: BayesLocalizer, posterior_spec: str, beta: float = 1.0, floor: float = 0.01, interpolation: str = "bilinear"
    ):
        super().__init__()
        if interpolation not in INTERPOLATIONS:
            raise RadiolocError(f"learned prior: interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
        if network.model.config.head != "com":
            raise RadiolocError(f"{network.checkpoint}: a learned prior needs a centre-of-mass LocUNet, this one has the {network.model.config.head!r} head")
        if not (np.isfinite(beta) and beta >= 0 and np.isfinite(floor) and floor > 0):
            raise RadiolocError(f"learned prior: beta must be >= 0 and floor > 0, got {beta} and {floor}")
        self.network = network
        self.posterior = posterior
        self.posterior_spec = str(posterior_spec)  # the calibration's shipped name or file, as stored
        self.beta = float(beta)
        self.floor = float(floor)
        self.interpolation = interpolation
        self.grid_mae: dict[str, float] = {}

    @classmethod
    def load(cls, spec: str | Path | None = None, runtime: Runtime | None = None) -> HeatmapPriorLocalizer:
        """The fused localizer a checkpoint's ``fusion`` section describes (one-line errors when it has none, or
        its calibration file changed since)."""
        path = locunet_weights(spec)
        stored = load_checkpoint(path, KIND).get("fusion")
        if not stored:
            raise RadiolocError(f"{path}: no learned-prior fusion (radioloc train calibrate --fuse NAME)")
        calibration = stored["calibration"]
        if not calibration_path(calibration).is_file():
            raise RadiolocError(f"{path}: its fusion calibration {calibration} is missing")
        if not matches_calibration(calibration, stored["sha256"]):
            raise RadiolocError(
                f"{path}: it was fused with another {calibration} calibration (SHA-256 differs); run radioloc train calibrate --fuse {calibration} again"
            )
        network = LocUNetLocalizer(load_locunet(path), str(path), runtime, refine=False)
        try:
            localizer = cls(network, BayesLocalizer.load(calibration), calibration, stored["beta"], stored["floor"], stored.get("interpolation", "cells"))
        except RadiolocError as exc:  # a stored weight, floor or interpolation out of range: say which file holds it
            raise RadiolocError(f"{path}: {exc}") from None
        localizer.uncertainty = RadiusCalibration.from_dict(stored["radius"], str(path))
        localizer.grid_mae = dict(stored.get("grid_mae_m") or {})
        return localizer

    def heatmaps(self, data: LocalizationData) -> np.ndarray:
        """(n, S, S) the network's quasi-heatmaps of the queries."""
        network = self.network
        parts = [heat for _, _, heat in network_maps(network.network, network.encoder_for(data), data, network.runtime)]
        size = network.model.config.input_size
        return np.concatenate(parts) if parts else np.zeros((0, size, size), dtype=np.float32)

    def _fused(self, data: LocalizationData, heatmaps: np.ndarray, beta: float, floor: float, images: bool):
        cell = int(round(self.network.model.config.cell_m))
        return self.posterior.posterior(data, images, prior_cost(heatmaps, beta, floor), cell, self.interpolation == "bilinear")

    def _locate(self, data: LocalizationData, heatmaps: bool):
        n = len(data.queries)
        positions, raw = np.empty((n, 2)), np.empty((n, 2))
        images = np.zeros((n, *data.scenes.buildings.shape[-2:])) if heatmaps else None
        for start in range(0, n, QUERY_CHUNK):
            part = data.subset(np.arange(start, min(start + QUERY_CHUNK, n)))
            pos, spread, image = self._fused(part, self.heatmaps(part), self.beta, self.floor, heatmaps)
            positions[start : start + len(pos)], raw[start : start + len(pos)] = pos, spread
            if images is not None:
                images[start : start + len(pos)] = image
        return positions, raw, images

    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:
        """Choose ``beta`` and ``floor`` of lowest mean MAE over validation queries with all their BSs and with
        their first 3 (the network and the calibration stay as they are)."""
        tune = val if val is not None else train
        pick = np.sort(np.random.default_rng(0).choice(len(tune.queries), size=min(TEMPERATURE_QUERIES, len(tune.queries)), replace=False))
        sample = tune.subset(pick)
        settings = [sample] + ([sample.first_bs(3)] if sample.queries.bs_ids.shape[1] > 3 else [])
        heat = [self.heatmaps(s) for s in settings]
        grid = {}
        for beta in BETAS:
            for floor in FLOORS:
                errors = [localization_errors(self._fused(s, h, beta, floor, False)[0], s.queries.position).mean() for s, h in zip(settings, heat)]
                grid[(beta, floor)] = float(np.mean(errors))
        self.beta, self.floor = min(grid, key=grid.get)
        self.grid_mae = {f"beta {b:g}, floor {f:g}": round(mae, 3) for (b, f), mae in grid.items()}

    def save(self, path: str | Path | None = None) -> Path:
        """Write the fusion section into a copy of the network's checkpoint (default: that checkpoint itself)."""
        if self.uncertainty is None:
            raise RadiolocError("locunet: nothing fitted to save, call fit first")
        source = load_checkpoint(self.network.checkpoint, KIND)
        extra = {k: v for k, v in source.items() if k not in ("format", "kind", "config", "state_dict")}
        extra["fusion"] = {
            "calibration": self.posterior_spec,
            "sha256": LikelihoodCalibration.load(calibration_path(self.posterior_spec)).fingerprint(),
            "beta": self.beta,
            "floor": self.floor,
            "interpolation": self.interpolation,
            "radius": self.uncertainty.to_dict(),
            "grid_mae_m": self.grid_mae,
        }
        path = Path(path or self.network.checkpoint)
        save_checkpoint(path, KIND, source["config"], source["state_dict"], **extra)
        return path

    def describe(self) -> dict:
        return {"name": self.name, "checkpoint": self.network.checkpoint, "preset": self.network.model.config.preset, "prior": "quasi-heatmap",
                "posterior": self.posterior_spec, "beta": self.beta, "floor": self.floor, "interpolation": self.interpolation}  # fmt: skip


def fuse_checkpoint(
    checkpoint: str | Path, calibration: str, train: LocalizationData, val: LocalizationData, out: str | Path, runtime: Runtime | None = None
) -> dict:
    """Fit the learned-prior fusion of a trained LocUNet with a bayes calibration on ``val`` and store it in ``out``."""
    path = locunet_weights(checkpoint)
    network = LocUNetLocalizer(load_locunet(path), str(path), runtime, refine=False)
    fused = HeatmapPriorLocalizer(network, BayesLocalizer.load(calibration), calibration).fit(train, val)
    fused.save(out)
    return {"calibration": calibration, "beta": fused.beta, "floor": fused.floor, "interpolation": fused.interpolation, "val_grid_mae_m": fused.grid_mae,
            "radius_calibration": fused.uncertainty.to_dict()}  # fmt: skip


def shipped(name: str, options: tuple[str, ...]) -> Localizer:
    """Registry factory for ``locunet``, ``locunet-robust`` and LocUNet checkpoints: the learned-prior posterior
    where the checkpoint holds a fusion, else (or with ``paper``, ``network``, ``heatmap-radii``) the paper's
    centre of mass (:func:`radioloc.localizers.locunet.shipped`); one read of the checkpoint more than either."""
    if any(option in PAPER_OPTIONS for option in options) or not load_checkpoint(locunet_weights(name), KIND).get("fusion"):
        return paper_locunet(name, options)
    return HeatmapPriorLocalizer.load(name)
