"""LocUNet behind the common interface: batched inference, the local fingerprint refinement and the radii.

``LocUNetLocalizer.load(spec)`` loads trained weights (a checkpoint or a shipped model's name); ``fit(train, val)``
does not train (``radioloc train locunet`` does, in :mod:`radioloc.training.locunet`): it chooses the local
refinement on the validation queries and calibrates the uncertainty radii, and :meth:`save` writes both into the
checkpoint beside the weights.

- **Refinement**: the centroid of the ``k`` outdoor 1 m pixels within ``radius`` of the centre of mass whose
  radio-map values best fit the reports (the kernel of :mod:`radioloc.datasets.fit_cost`). The CPU presets reason
  on 2-4 m cells and find the right neighbourhood more often than kNN does, but place the UE within it less
  sharply than the best-fitting pixels.
- **Raw spread**: the radii of the smallest discs around the estimate holding 68 % and 95 % of the positive part
  of the quasi-heatmap (the paper's belief map; its centre of mass is invariant to the sign, so the part with the
  larger mass is taken), or of the posterior for the ``posterior`` head (a learned prior on the calibrated
  likelihood, :class:`radioloc.models.locunet.LocUNetConfig`).
- **Posterior spread** (``spread``): the same radii of a calibrated ``bayes`` posterior's mass around the answer,
  on every second pixel. The quasi-heatmap's spread barely follows the error (its median 68 % disc is 25 m
  where the median error is 2 m, on every seed alike), so its calibrated radii are wide and lose coverage on maps
  whose estimates err more; the posterior's widens with the evidence. A checkpoint calibrated with one
  (``radioloc train calibrate --spread``) names it and its SHA-256; the registry's ``:heatmap-radii`` keeps the
  quasi-heatmap's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from radioloc.datasets.fit_cost import best_in_disc, report_levels, squared_residual_tables
from radioloc.datasets.localization import LocalizationData, SceneBank
from radioloc.errors import RadiolocError
from radioloc.localizers.base import Localizer, localization_errors
from radioloc.localizers.bayes import BayesLocalizer
from radioloc.localizers.uncertainty import RadiusCalibration, mass_radii
from radioloc.models.checkpoint import load_checkpoint, save_checkpoint
from radioloc.models.likelihood import LikelihoodCalibration, calibration_path, matches_calibration
from radioloc.models.locunet import KIND, InputEncoder, LocUNet, center_of_mass, count_parameters, load_locunet, locunet_weights
from radioloc.models.runtime import Runtime

SPREAD_STRIDE = 2  # the spread's posterior on every 2nd row and column: 4x fewer pixels, coverage alike
REFINE_RADII_M = (0.0, 4.0, 8.0, 12.0, 16.0, 24.0)
REFINE_KS = (1, 2, 4, 8, 16, 32)
TUNE_QUERIES = 6000


def refine_positions(
    scenes: SceneBank, map_slot: np.ndarray, bs_ids: np.ndarray, pathloss_db: np.ndarray, positions: np.ndarray, radius_m: float, k: int
) -> np.ndarray:
    """The centroid of the ``k`` outdoor pixels within ``radius_m`` of each position of lowest squared residual
    over the query's BSs (ties: the earlier pixel); the position itself where the disc holds no outdoor pixel.
    ``k`` or ``radius_m`` 0: unchanged. Ids -1 / NaN pathloss = absent BS."""
    if k <= 0 or radius_m <= 0:
        return positions
    tables = squared_residual_tables(report_levels(pathloss_db))
    return best_in_disc(scenes.radio_maps, scenes.buildings, map_slot, bs_ids, tables, positions, radius_m, k)


@torch.no_grad()
def network_maps(model: LocUNet, encoder: InputEncoder, data: LocalizationData, runtime: Runtime, batch: int = 64):
    """Yield ``(start, stop, heat)`` per batch of queries: the ``com`` head's quasi-heatmaps (B, S, S), or the
    ``posterior`` head's posteriors (B, h, h) on its window, float32 numpy."""
    model.eval()
    for start, stop, inputs, log_likelihood in encoder.batches(data, runtime.dtype, batch):
        with runtime.autocast():
            heat = model.heatmap(inputs) if log_likelihood is None else model.posterior(inputs, log_likelihood)
        yield start, stop, heat.float().cpu().numpy()


def network_outputs(model: LocUNet, encoder: InputEncoder, data: LocalizationData, runtime: Runtime, batch: int = 64, heatmaps: bool = False):
    """Positions (n, 2) on the map, raw 68 / 95 % radii (n, 2), and the heatmaps when asked: for the ``com`` head
    the centre of mass of the quasi-heatmap (n, S, S), the radii from its belief map; for the ``posterior`` head
    the posterior mean and the posterior's own radii (n, 256, 256)."""
    n = len(data.queries)
    posterior = model.config.head == "posterior"
    size = 256 if posterior else model.config.input_size
    lo, hi = model.config.posterior_window if posterior else (0, size)
    coords = np.arange(float(lo), float(hi)) if posterior else (np.arange(size) + 0.5) * model.config.cell_m - 0.5
    rows, cols = (model.pixel_rows, model.pixel_cols) if posterior else (model.rows, model.cols)
    positions = np.empty((n, 2))
    raw = np.empty((n, 2))
    maps = np.zeros((n, size, size), dtype=np.float32) if heatmaps else None  # the posterior: zero outside its window
    for start, stop, heat in network_maps(model, encoder, data, runtime, batch):
        centre = center_of_mass(torch.from_numpy(heat), rows.cpu(), cols.cpu()).numpy()
        # The centre of mass of a heatmap with negative values can leave the map when its sum nears zero (seen: one
        # query in 20,000 thousands of metres off); the UE is on the map, so the nearest point of the map is closer.
        centre = np.clip(centre, 0.0, data.scenes.buildings.shape[-1] - 1.0)
        belief = heat
        if not posterior:  # the part of the quasi-heatmap with the larger mass is the belief map (sign-invariant)
            flip = np.maximum(-heat, 0.0).sum(axis=(1, 2)) > np.maximum(heat, 0.0).sum(axis=(1, 2))
            belief = np.where(flip[:, None, None], -heat, heat)
        positions[start:stop] = centre
        raw[start:stop] = mass_radii(belief, coords, coords, centre)
        if maps is not None:
            maps[start:stop, lo:hi, lo:hi] = heat
    return positions, raw, maps


class LocUNetLocalizer(Localizer):
    """A trained LocUNet; ``refine=False`` answers with the network's centre of mass alone."""

    @property
    def uses_ranges(self) -> bool:
        return bool(self.model.config.toa_channels)

    name = "locunet"
    calibration_per_count = 6000
    heatmap_kind = "quasi"

    def __init__(self, model: LocUNet, checkpoint: str | None = None, runtime: Runtime | None = None, refine: bool = True, spread: str | None = None):
        super().__init__()
        # a bayes calibration (shipped name or file) whose posterior mass around each answer is the raw spread
        self.spread = spread
        self._spread_posterior = None if spread is None else BayesLocalizer.load(spread)
        self.runtime = runtime or Runtime.pick()
        self.model = self.runtime.prepare(model)
        self._network: LocUNet | None = None
        self.heatmap_kind = "posterior" if model.config.head == "posterior" else "quasi"
        self.checkpoint = checkpoint
        self.refine = refine
        self.refine_table: dict[str, float] = {}
        self._encoder: tuple[object, InputEncoder] | None = None

    @classmethod
    def load(
        cls, spec: str | Path | None = None, runtime: Runtime | None = None, refine: bool = True, posterior_spread: bool | None = False
    ) -> LocUNetLocalizer:
        """Weights with their refinement and radii; ``posterior_spread``: the radii calibrated on the posterior's
        spread the checkpoint names (a one-line error when it has none, or that calibration file changed); None:
        those where the checkpoint has them, else the quasi-heatmap's."""
        path = locunet_weights(spec)
        model = load_locunet(path)
        stored = load_checkpoint(path, KIND).get("uncertainty") or {}
        key = "refined" if refine and model.config.refine_k else "network"
        spread = None
        if posterior_spread is None:
            posterior_spread = bool(stored.get("posterior"))
        if posterior_spread:
            stored = stored.get("posterior") or {}
            if key not in stored:
                raise RadiolocError(f"{path}: no radii calibrated on a posterior's spread (radioloc train calibrate --spread)")
            spread = stored["calibration"]
            if not matches_calibration(spread, stored.get("sha256")):
                raise RadiolocError(
                    f"{path}: its radii were calibrated on the spread of another {spread} calibration (SHA-256 differs); run radioloc train calibrate --spread {spread} again"
                )
        localizer = cls(model, str(path), runtime, refine, spread)
        if key in stored:
            localizer.uncertainty = RadiusCalibration.from_dict(stored[key], str(path))
        return localizer

    @property
    def network(self) -> LocUNet:
        """The model as it runs (:meth:`Runtime.for_inference`); ``model`` keeps the fp32 weights that are saved."""
        if self._network is None:
            self._network = self.runtime.for_inference(self.model)
        self._network.config = self.model.config
        return self._network

    def encoder_for(self, data: LocalizationData) -> InputEncoder:
        """Radio maps cached at the model's cell size, reused while the scenes stay the same."""
        if self._encoder is None or self._encoder[0] is not data.scenes:
            table = self.model.log_likelihood.cpu().numpy() if self.model.config.head == "posterior" else None
            self._encoder = (data.scenes, InputEncoder(self.model.config, data.scenes, self.runtime.device, table))
        return self._encoder[1]

    def _locate(self, data: LocalizationData, heatmaps: bool):
        positions, raw, maps = network_outputs(self.network, self.encoder_for(data), data, self.runtime, heatmaps=heatmaps)
        if self.refine:
            q = data.queries
            positions = refine_positions(
                data.scenes, q.map_slot, q.bs_ids, q.pathloss_db, positions, self.model.config.refine_radius_m, self.model.config.refine_k
            )
        if self._spread_posterior is not None:
            raw = self._spread_posterior.spread_around(data, positions, SPREAD_STRIDE)
        return positions, raw, maps

    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:
        """Choose the refinement (radius 0 = none) of lowest MAE on validation queries, like kNN's k."""
        tune = val if val is not None else train
        pick = np.sort(np.random.default_rng(1).choice(len(tune.queries), size=min(TUNE_QUERIES, len(tune.queries)), replace=False))
        sample = tune.subset(pick)
        q = sample.queries
        centre, _, _ = network_outputs(self.network, self.encoder_for(sample), sample, self.runtime)
        table = {}
        for radius in REFINE_RADII_M:
            for k in REFINE_KS if radius > 0 else (0,):
                refined = refine_positions(sample.scenes, q.map_slot, q.bs_ids, q.pathloss_db, centre, radius, k)
                table[(radius, k)] = float(localization_errors(refined, q.position).mean())
        radius, k = min(table, key=table.get)
        self.model.config = replace(self.model.config, refine_radius_m=radius, refine_k=k)
        self.refine_table = {f"{r:g} m, k={kk}": round(mae, 3) for (r, kk), mae in table.items()}

    def save(self, path: str | Path | None = None) -> Path:
        """Write the weights with the refinement and the radius calibrations of both answers (refined and the
        network alone) into a checkpoint (default: the one loaded)."""
        if self.uncertainty is None:
            raise RadiolocError("locunet: nothing calibrated to save, call fit first")
        path = Path(path or self.checkpoint)
        source = load_checkpoint(self.checkpoint, KIND) if self.checkpoint and Path(self.checkpoint).is_file() else {}
        extra = {k: v for k, v in source.items() if k not in ("format", "kind", "config", "state_dict", "uncertainty", "refine_grid_mae_m")}
        uncertainty = dict(source.get("uncertainty") or {})
        key = "refined" if self.refine and self.model.config.refine_k else "network"
        if self.spread is None:
            uncertainty[key] = self.uncertainty.to_dict()
        else:
            section = dict(uncertainty.get("posterior") or {})
            if section.get("calibration") != self.spread:  # radii of another spread's calibration do not carry over
                section = {}
            section.update(
                {"calibration": self.spread, "sha256": LikelihoodCalibration.load(calibration_path(self.spread)).fingerprint(), key: self.uncertainty.to_dict()}
            )
            uncertainty["posterior"] = section
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_checkpoint(
            path,
            KIND,
            self.model.config.to_dict(),
            state,
            **extra,
            uncertainty=uncertainty,
            refine_grid_mae_m=self.refine_table or source.get("refine_grid_mae_m"),
        )
        self.checkpoint = str(path)
        return path

    def describe(self) -> dict:
        config = self.model.config
        refine = {"radius_m": config.refine_radius_m, "k": config.refine_k} if self.refine and config.refine_k else None
        return {"name": self.name, "checkpoint": self.checkpoint, "preset": config.preset, "parameters": count_parameters(self.model), "refinement": refine,
                "spread": self.spread or "quasi-heatmap"}  # fmt: skip


def shipped(name: str, options: tuple[str, ...]) -> LocUNetLocalizer:
    """Registry factory: a shipped model by name (``locunet``, ``locunet-robust``); its radii from the posterior's
    spread where it was calibrated so, unless ``heatmap-radii``."""
    return LocUNetLocalizer.load(name, refine="network" not in options, posterior_spread=False if "heatmap-radii" in options else None)


def fit_checkpoint(checkpoint: str | Path, train: LocalizationData, val: LocalizationData, out: str | Path | None = None, runtime: Runtime | None = None,
                   spread: str | None = None) -> dict:  # fmt: skip
    """Fit a trained checkpoint as a localizer: the refinement chosen and the radii calibrated on ``val`` for the
    refined answers and for the network alone, all saved into ``out`` (default: the checkpoint itself); with
    ``spread`` (a bayes calibration), both also calibrated on that posterior's spread."""
    refined = LocUNetLocalizer.load(checkpoint, runtime).fit(train, val)
    path = refined.save(out)
    radii = {"refined": refined.uncertainty.to_dict()}
    for refine, spread_of in [(False, None)] + ([(True, spread), (False, spread)] if spread else []):
        localizer = LocUNetLocalizer(load_locunet(path), str(path), runtime, refine, spread_of)
        localizer.calibrate_radii(val)
        localizer.save(path)
        radii[("refined" if refine else "network") + (f"@{spread_of}" if spread_of else "")] = localizer.uncertainty.to_dict()
    config = refined.model.config
    return {
        "checkpoint": str(path),
        "refinement": {"radius_m": config.refine_radius_m, "k": config.refine_k, "val_grid_mae_m": refined.refine_table},
        "radius_calibration": radii,
    }
