"""The Bayesian grid localizer (``bayes``): a posterior over the 1 m grid from a calibrated measurement model.

- **Measurement model** (:class:`radioloc.models.likelihood.LikelihoodCalibration`): ``p(reported gray |
  radio-map gray)``, counted on the training split for the scenario at hand, the noise floor its own outcome.
- **Prior**: uniform over the outdoor pixels of the UE region: ``ue-box`` (default), the middle 164 x 164 m where
  RadioLocSeer places its UEs; ``outdoor`` for the whole map; ``map`` for every pixel, buildings included.
- **Posterior**: ``prior(x) * prod_j p(report_j | map_j(x)) ** (1 / temperature)``; BSs are treated as independent
  given the position, which they are not quite (the estimate's errors are spatially correlated), so the tempering
  exponent is chosen on validation queries for the lowest MAE.
- **ToA fusion** (``toa_sigma_m``, registry option ``:toa=SIGMA``): when the queries carry ToA ranges
  (:mod:`radioloc.datasets.ranging`), each BS's range multiplies in ``N(range; L(x), sigma^2)``, ``L`` its
  dominant-path length map; untempered, since the range noise is known and independent per BS.
- **Learned error model** (``bayes-learned``, :mod:`radioloc.models.error_model`): a small network predicts how
  unreliable each pixel of each radio map is; the pixels fall into bins of that prediction (edges at quantiles over
  the training queries; how many, 4 to 12, chosen with the tempering on validation queries) and the likelihood is
  counted per bin.
- **Estimate**: the posterior mean (default) or the spatial median (Weiszfeld), with the radii of the smallest discs
  centred on it that hold 68 % and 95 % of the posterior mass, then calibrated on held-out queries
  (:mod:`radioloc.localizers.uncertainty`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numba as nb
import numpy as np

from radioloc.datasets.checksums import sha256 as sha256_of
from radioloc.datasets.fit_cost import CHUNK, flat_maps, pixel_cost, range_cost
from radioloc.datasets.localization import LocalizationData, concat_localization, load_localization
from radioloc.datasets.protocol import ue_region
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_bytes, atomic_write_json
from radioloc.localizers.base import Localizer, localization_errors
from radioloc.localizers.uncertainty import RADIUS_BIN_M, RADIUS_BINS, RadiusCalibration, disc_radius
from radioloc.models.error_model import ErrorModel, error_model_weights, load_error_model, predict_log_scale, reliability_bins
from radioloc.models.likelihood import LikelihoodCalibration, LikelihoodConfig, calibration_path, code_maps

TEMPERATURES = (0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 1.0, 1.4)
RELIABILITY_BINS = (4, 6, 8, 12)  # numbers of bins of the error model's predicted scale tried, chosen like the tempering
TEMPERATURE_QUERIES = 2000  # validation queries per setting (5 BSs, 3 BSs) for the tempering search
MIN_TOA_SIGMA_M = 1.0  # noise-free ranges still meet path lengths computed on a 1 m grid
SLOT_PRIOR_CACHE = 256  # cities whose prior pixels are kept (a 1 km deployment has 169 windows; ~0.4 MB each)
NEGLIGIBLE_NATS = 30.0  # pixels this far below the best carry no posterior mass (e^-30 ~ 1e-13)


# -- the posterior ---------------------------------------------------------------------------------------------
@dataclass
class PriorPixels:
    """Flat pixel indices of the prior's support for each scene slot, concatenated (``offsets``: M + 1)."""

    pixels: np.ndarray
    offsets: np.ndarray


def prior_pixels(buildings: np.ndarray, prior: str, stride: int = 1) -> PriorPixels:
    mask = ue_region(buildings, prior)
    if stride > 1:
        coarse = np.zeros_like(mask)
        coarse[:, ::stride, ::stride] = mask[:, ::stride, ::stride]
        mask = coarse
    parts = [np.flatnonzero(mask[s]) for s in range(len(buildings))]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return PriorPixels(np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64), offsets)


@nb.njit(cache=True, inline="always")
def _prior_at(prior_cost, cell, bilinear, row, col):
    """The prior's cost at a pixel: its cell's, or interpolated bilinearly between the cell centres (at
    ``(i + 0.5) cell - 0.5``; constant beyond the outer ones), as torch's bilinear upsampling does."""
    if not bilinear:
        return prior_cost[row // cell, col // cell]
    top = prior_cost.shape[0] - 1.0
    u = min(max((row + 0.5) / cell - 0.5, 0.0), top)
    v = min(max((col + 0.5) / cell - 0.5, 0.0), top)
    i0, j0 = int(u), int(v)
    i1, j1 = min(i0 + 1, prior_cost.shape[0] - 1), min(j0 + 1, prior_cost.shape[1] - 1)
    fu, fv = u - i0, v - j0
    upper = (1.0 - fv) * prior_cost[i0, j0] + fv * prior_cost[i0, j1]
    lower = (1.0 - fv) * prior_cost[i1, j0] + fv * prior_cost[i1, j1]
    return (1.0 - fu) * upper + fu * lower


@nb.njit(cache=True)
def _posterior_weights(maps, slot, ids, table, pixels, lengths, ranges, inv_two_var, prior_cost, cell, bilinear, width):
    """Normalized posterior weights over ``pixels`` (a uniform prior on them); with ``inv_two_var > 0`` the ToA
    ranges' Gaussian likelihood multiplies the RSS one; with ``cell > 0`` the prior's cost ``prior_cost`` (nats
    on square cells of ``cell`` pixels, ``bilinear``: interpolated between their centres) is added."""
    n = pixels.shape[0]
    weights = np.empty(n)
    lowest = np.inf
    for i in range(n):
        weights[i] = pixel_cost(maps, slot, ids, table, pixels[i])
        if inv_two_var > 0:
            weights[i] += range_cost(lengths, slot, ids, ranges, inv_two_var, pixels[i])
        if weights[i] < lowest:
            lowest = weights[i]
    if cell > 0:
        # The prior moves a pixel's cost by at most its range, so a pixel whose evidence alone is that much more
        # than NEGLIGIBLE_NATS behind the best gets no mass with any prior: skip it (most pixels; same result).
        reach = lowest + NEGLIGIBLE_NATS + (prior_cost.max() - prior_cost.min())
        lowest = np.inf
        for i in range(n):
            if weights[i] > reach:
                weights[i] = np.inf
                continue
            weights[i] += _prior_at(prior_cost, cell, bilinear, pixels[i] // width, pixels[i] % width)
            if weights[i] < lowest:
                lowest = weights[i]
    total = 0.0
    for i in range(n):
        # pixels e^-30 below the best hold under 1e-8 of the mass together even on a whole 256 x 256 map: skip
        # their exp (most pixels; at 60 nats about 4x as many pixels were exponentiated, for nothing measurable)
        weights[i] = np.exp(lowest - weights[i]) if weights[i] - lowest < NEGLIGIBLE_NATS else 0.0
        total += weights[i]
    for i in range(n):
        weights[i] /= total
    return weights


@nb.njit(parallel=True, cache=True, nogil=True)
def _posterior_estimates(
    maps, slot, ids, tables, pixels, offsets, width, median, lengths, ranges, inv_two_var, prior_costs, cell, bilinear, centres, out_pos, out_raw
):
    """Posterior mean (or median) per query, and the 68 % / 95 % mass radii around it, or around ``centres[q]``
    where that is finite (another localizer's answer)."""
    for q in nb.prange(ids.shape[0]):
        s = slot[q]
        support = pixels[offsets[s] : offsets[s + 1]]
        weights = _posterior_weights(maps, s, ids[q], tables[q], support, lengths, ranges[q], inv_two_var, prior_costs[q], cell, bilinear, width)
        # the pixels that carry mass (often a fraction: NEGLIGIBLE_NATS), in order, with their row and column
        live = 0
        for i in range(support.shape[0]):
            if weights[i] > 0.0:
                live += 1
        mass = np.empty(live)
        rows = np.empty(live)
        cols = np.empty(live)
        j = 0
        for i in range(support.shape[0]):
            if weights[i] > 0.0:
                mass[j] = weights[i]
                rows[j] = support[i] // width
                cols[j] = support[i] - rows[j] * width
                j += 1
        row, col = 0.0, 0.0
        for i in range(live):
            row += mass[i] * rows[i]
            col += mass[i] * cols[i]
        if median:  # Weiszfeld's iteration for the spatial median, from the mean
            for _ in range(50):
                num_r, num_c, den = 0.0, 0.0, 0.0
                for i in range(live):
                    if mass[i] < 1e-12:
                        continue
                    d = max(np.hypot(rows[i] - row, cols[i] - col), 0.05)
                    num_r += mass[i] * rows[i] / d
                    num_c += mass[i] * cols[i] / d
                    den += mass[i] / d
                new_row, new_col = num_r / den, num_c / den
                moved = np.hypot(new_row - row, new_col - col)
                row, col = new_row, new_col
                if moved < 1e-3:
                    break
        hist = np.zeros(RADIUS_BINS)
        centre_row, centre_col = (centres[q, 0], centres[q, 1]) if np.isfinite(centres[q, 0]) else (row, col)
        for i in range(live):
            b = int(np.hypot(rows[i] - centre_row, cols[i] - centre_col) / RADIUS_BIN_M)
            hist[min(b, RADIUS_BINS - 1)] += mass[i]
        out_pos[q, 0], out_pos[q, 1] = row, col
        out_raw[q, 0] = disc_radius(hist, 0.68)
        out_raw[q, 1] = disc_radius(hist, 0.95)


@nb.njit(cache=True)
def _posterior_image(maps, slot, ids, table, pixels, lengths, ranges, inv_two_var, prior_cost, cell, bilinear, width, out):
    weights = _posterior_weights(maps, slot, ids, table, pixels, lengths, ranges, inv_two_var, prior_cost, cell, bilinear, width)
    for i in range(pixels.shape[0]):
        out[pixels[i]] = weights[i]


def _prior_costs(prior_cost: np.ndarray | None, cell: int, n: int) -> np.ndarray:
    """The kernel's per-query prior costs: ``prior_cost`` checked, or an inert (n, 1, 1) array (``cell`` 0)."""
    if cell <= 0 or prior_cost is None:
        return np.zeros((n, 1, 1), np.float32)
    if prior_cost.ndim != 3 or len(prior_cost) != n:
        raise RadiolocError(f"bayes: a prior cost per query needs shape ({n}, S, S), got {prior_cost.shape}")
    return np.ascontiguousarray(prior_cost, dtype=np.float32)


class BayesLocalizer(Localizer):
    """``BayesLocalizer().fit(train, val)`` calibrates on a training split; ``BayesLocalizer.load("bayes")`` (or
    ``"bayes-robust"``, or a calibration file) gives a fitted one."""

    @property
    def uses_ranges(self) -> bool:
        return self.toa_sigma_m is not None

    name = "bayes"
    calibration_per_count = 6000
    heatmap_kind = "posterior"

    def __init__(self, config: LikelihoodConfig | None = None, temperatures: tuple[float, ...] = TEMPERATURES, seed: int = 0,
                 error_model: ErrorModel | None = None, error_model_file: Path | None = None, reliability_bins: tuple[int, ...] = RELIABILITY_BINS):  # fmt: skip
        super().__init__()
        # the learned error model whose reliability bins the likelihood is counted in (None: plain bayes)
        self.error_model = error_model
        self.error_model_file = error_model_file
        self.reliability_bins = reliability_bins  # the numbers of bins tried (chosen on validation queries)
        self._scales: tuple[object, np.ndarray] | None = None
        self._codes: tuple[object, np.ndarray, np.ndarray] | None = None
        self.config = config or LikelihoodConfig()
        self.temperatures = temperatures
        self.seed = seed
        self.calibration: LikelihoodCalibration | None = None
        self.source: str | None = None
        self.temperature_mae: dict[str, float] = {}
        self._prior: tuple[object, PriorPixels] | None = None
        self._slot_priors: dict[tuple, np.ndarray] = {}  # (slot key, stride) -> prior pixels, for recurring cities
        # ToA fusion: the range noise (m) the posterior assumes; None = RSS only
        self.toa_sigma_m: float | None = None

    @classmethod
    def load(cls, spec: str | Path | None = None, estimator: str | None = None, prior: str | None = None) -> BayesLocalizer:
        path = calibration_path(spec)
        calibration = LikelihoodCalibration.load(path)
        if calibration.radius is None:
            raise RadiolocError(f"{path}: calibration without radius calibration (fit it with `radioloc train bayes`)")
        overrides = {k: v for k, v in (("estimator", estimator), ("prior", prior)) if v is not None}
        error_model, error_file = None, None
        if calibration.error_model is not None:
            error_file = path.parent / calibration.error_model["file"]
            if not error_file.is_file():
                raise RadiolocError(f"{path}: its error model {error_file} is missing (it must lie beside the calibration)")
            if sha256_of(error_file) != calibration.error_model["sha256"]:
                raise RadiolocError(f"{path}: {error_file} is not the error model this calibration was counted with (SHA-256 differs)")
            error_model = load_error_model(error_file)
        localizer = cls(LikelihoodConfig(**{**asdict(calibration.config), **overrides}), error_model=error_model, error_model_file=error_file)
        localizer.calibration = calibration
        localizer.uncertainty = RadiusCalibration.from_dict(calibration.radius, str(path))
        localizer.source = str(path)
        return localizer

    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:
        tune = val if val is not None else train
        rng = np.random.default_rng(self.seed)
        pick = np.sort(rng.choice(len(tune.queries), size=min(TEMPERATURE_QUERIES, len(tune.queries)), replace=False))
        sample = tune.subset(pick)
        settings = [sample] + ([sample.with_queries(sample.queries.first_bs(3))] if sample.queries.bs_ids.shape[1] > 3 else [])
        if self.error_model is None:
            self.calibration = LikelihoodCalibration.fit(train, self.config)
            self._choose_temperature(settings, "")
            return
        # with an error model, the number of bins is chosen with the tempering, on the same validation queries
        scales = self._log_scales(train)
        q = train.queries
        present = q.bs_ids >= 0
        rows, cols = (np.rint(q.position[:, k]).astype(np.int64) for k in (0, 1))
        at_queries = scales[q.map_slot[:, None], np.maximum(q.bs_ids, 0), rows[:, None], cols[:, None]][present].astype(np.float32)
        info = {"file": self.error_model_file.name, "sha256": sha256_of(self.error_model_file)} if self.error_model_file else {"file": "", "sha256": ""}
        fitted = {}
        for bins in self.reliability_bins:
            edges = np.quantile(at_queries, np.linspace(0, 1, bins + 1)[1:-1]).astype(np.float32)
            self.calibration = LikelihoodCalibration.fit(train, self.config, reliability_bins(scales, edges), edges, info)
            fitted[bins] = (self.calibration, self._choose_temperature(settings, f"{bins} bins, "))
        self.calibration = min(fitted.values(), key=lambda entry: entry[1])[0]

    def _choose_temperature(self, settings: list[LocalizationData], label: str) -> float:
        """Set the tempering of lowest mean MAE over ``settings`` (recorded in ``temperature_mae``); returns it."""
        for temperature in self.temperatures:
            self.calibration.temperature = temperature
            errors = [localization_errors(self._locate(s, False)[0], s.queries.position).mean() for s in settings]
            self.temperature_mae[f"{label}{temperature:g}"] = round(float(np.mean(errors)), 3)
        best = min(self.temperatures, key=lambda t: self.temperature_mae[f"{label}{t:g}"])
        self.calibration.temperature = float(best)
        return self.temperature_mae[f"{label}{best:g}"]

    def calibrate_radii(self, data: LocalizationData, seed: int = 0) -> RadiusCalibration:
        radius = super().calibrate_radii(data, seed)
        self.calibration.radius = radius.to_dict()
        return radius

    def _prior_for(self, data: LocalizationData, stride: int = 1) -> PriorPixels:
        """The prior's pixels, every ``stride``-th row and column of them (a coarser grid for spreads)."""
        if self._prior is None or self._prior[0] is not data.scenes:
            self._prior = (data.scenes, {})
        if stride not in self._prior[1]:
            keys = data.scenes.slot_keys
            if keys is None:
                self._prior[1][stride] = prior_pixels(data.scenes.buildings, self.config.prior, stride)
            else:  # a deployment's windows recur in every batch: each window's pixels are found once
                if len(self._slot_priors) > SLOT_PRIOR_CACHE:
                    self._slot_priors.clear()
                parts = []
                for s, key in enumerate(keys):
                    if (key, stride) not in self._slot_priors:
                        self._slot_priors[(key, stride)] = prior_pixels(data.scenes.buildings[s : s + 1], self.config.prior, stride).pixels
                    parts.append(self._slot_priors[(key, stride)])
                offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
                self._prior[1][stride] = PriorPixels(np.concatenate(parts), offsets)
        return self._prior[1][stride]

    def _log_scales(self, data: LocalizationData) -> np.ndarray:
        """The error model's log scales of every radio map of the scenes, computed once per scene bank."""
        if self._scales is None or self._scales[0] is not data.scenes:
            self._scales = (data.scenes, predict_log_scale(self.error_model, data.scenes))
        return self._scales[1]

    def _code_maps(self, data: LocalizationData) -> np.ndarray:
        """The maps the kernel reads: gray levels, or ``bin * 256 + gray`` with the error model's reliability
        bins (one network pass per radio map, once per scene bank)."""
        edges = self.calibration.reliability_edges
        if edges is None:
            return data.scenes.radio_maps
        if self.error_model is None:
            raise RadiolocError(f"{self.source or self.name}: calibration counted with an error model, but none is loaded")
        if self._codes is None or self._codes[0] is not data.scenes or not np.array_equal(self._codes[1], edges):
            self._codes = (data.scenes, edges.copy(), code_maps(data.scenes.radio_maps, reliability_bins(self._log_scales(data), edges)))
        return self._codes[2]

    def _ranging(self, data: LocalizationData) -> tuple[np.ndarray, np.ndarray, float]:
        """(flat path-length maps, ranges (n, k), 1 / (2 sigma^2)) of the ToA term, or inert ones without it."""
        q = data.queries
        if self.toa_sigma_m is None:
            return np.zeros((1, 1, 1), np.float32), np.full(q.bs_ids.shape, np.nan), 0.0
        if q.ranges_m is None or data.scenes.path_length_m is None:
            raise RadiolocError(
                f"{self.name}: fusing ToA needs queries with ranges and scenes with path-length maps (give --toa-sigma SIGMA; in Python, radioloc.datasets.ranging.attach_ranges)"
            )
        sigma = max(self.toa_sigma_m, MIN_TOA_SIGMA_M)
        return flat_maps(data.scenes.path_length_m), q.ranges_m.astype(np.float64), 1.0 / (2.0 * sigma**2)

    def _summaries(self, data: LocalizationData, centres: np.ndarray | None = None, stride: int = 1, check: bool = True,
                   prior_cost: np.ndarray | None = None, cell: int = 0, bilinear: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """(positions (n, 2), raw 68 % / 95 % mass radii around them, or around ``centres`` where given, the flat
        maps the kernel read); the posterior on every ``stride``-th pixel of the prior, with the per-query prior
        cost ``prior_cost`` (n, S, S) on cells of ``cell`` pixels where given (``bilinear``: interpolated)."""
        if self.calibration is None:
            raise RadiolocError("bayes: call fit first, or load a calibration")
        if check:
            self.calibration.check_scenario(data, self.source or "bayes")
        q = data.queries
        prior = self._prior_for(data, stride)
        maps = flat_maps(self._code_maps(data))
        lengths, ranges, inv_two_var = self._ranging(data)
        width = data.scenes.radio_maps.shape[-1]
        n = len(q)
        centres = np.full((n, 2), np.nan) if centres is None else np.ascontiguousarray(centres, dtype=np.float64)
        costs = _prior_costs(prior_cost, cell, n)
        positions = np.empty((n, 2))
        raw = np.empty((n, 2))
        for start in range(0, n, CHUNK):
            part = slice(start, min(start + CHUNK, n))
            tables = self.calibration.query_tables(q.pathloss_db[part])
            _posterior_estimates(maps, q.map_slot[part].astype(np.int64), q.bs_ids[part].astype(np.int64), tables, prior.pixels, prior.offsets, width,
                                 self.config.estimator == "median", lengths, ranges[part], inv_two_var, costs[part], cell, bilinear, centres[part], positions[part], raw[part])  # fmt: skip
        return positions, raw, maps

    def spread_around(self, data: LocalizationData, centres: np.ndarray, stride: int = 1) -> np.ndarray:
        """(n, 2) radii of the discs around ``centres`` (another localizer's answers, row/col m) that hold 68 % and
        95 % of this posterior's mass: how far the evidence says the truth may lie from them. The scenario is not
        checked: the spread is only raw material for the other localizer's radii, calibrated with it."""
        return self._summaries(data, centres, stride, check=False)[1]

    def posterior(self, data: LocalizationData, heatmaps: bool = False, prior_cost: np.ndarray | None = None, cell: int = 0, bilinear: bool = False):
        """(positions, raw 68 % / 95 % radii, posterior images (n, H, W) or None) of every query; ``prior_cost``
        (n, S, S) nats added to each query's negative log-posterior on square cells of ``cell`` pixels (constant on
        each, or ``bilinear`` between their centres): a learned prior (:mod:`radioloc.localizers.heatmap_prior`)
        in place of the uniform one on the prior's support."""
        positions, raw, maps = self._summaries(data, prior_cost=prior_cost, cell=cell, bilinear=bilinear)
        q, n = data.queries, len(data.queries)
        images = None
        if heatmaps:
            prior = self._prior_for(data)
            lengths, ranges, inv_two_var = self._ranging(data)
            width = data.scenes.radio_maps.shape[-1]
            costs = _prior_costs(prior_cost, cell, n)
            images = np.zeros((n, maps.shape[2]), dtype=np.float64)
            tables = self.calibration.query_tables(q.pathloss_db)
            for i in range(n):
                s = int(q.map_slot[i])
                support = prior.pixels[prior.offsets[s] : prior.offsets[s + 1]]
                _posterior_image(
                    maps, s, q.bs_ids[i].astype(np.int64), tables[i], support, lengths, ranges[i], inv_two_var, costs[i], cell, bilinear, width, images[i]
                )
            images = images.reshape(n, *data.scenes.radio_maps.shape[-2:])
        return positions, raw, images

    def _locate(self, data: LocalizationData, heatmaps: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return self.posterior(data, heatmaps)

    def save(self, path: str | Path) -> Path:
        if self.calibration is None:
            raise RadiolocError("bayes: nothing to save, call fit first")
        beside = self.error_model_file is not None and Path(path).parent.resolve() == self.error_model_file.parent.resolve()
        if self.calibration.error_model is not None and not beside:
            raise RadiolocError(f"{path}: a calibration with an error model must be saved beside that model's file ({self.error_model_file})")
        return self.calibration.save(path)

    def describe(self) -> dict:
        info = {"name": self.name, "estimator": self.config.estimator, "prior": self.config.prior, "calibration": self.source}
        if self.toa_sigma_m is not None:
            info["toa_sigma_m"] = self.toa_sigma_m
        if self.calibration is not None:
            info.update(temperature=self.calibration.temperature, scenario=self.calibration.scenario)
            if self.calibration.error_model is not None:
                info.update(reliability_bins=self.calibration.bins, error_model=self.calibration.error_model)
        if self.temperature_mae:
            info["temperature_mae_m"] = self.temperature_mae
        return info


@dataclass(frozen=True)
class BayesTrainConfig:
    estimate: str = "estimate"
    sim: str = "DPM"
    measurement: str = "DPM"
    likelihood: LikelihoodConfig = field(default_factory=LikelihoodConfig)
    seed: int = 0
    error_model: str | None = None  # a learned error model's checkpoint: the likelihood is counted per reliability bin
    reliability_bins: tuple[int, ...] = RELIABILITY_BINS


def train_bayes(roots: list[Path], out_dir: Path, config: BayesTrainConfig, quiet: bool = False) -> dict:
    """Fit the likelihood on the train splits of ``roots`` (joined), choose the tempering and calibrate the radii
    on their val splits; write ``out_dir/calibration.safetensors``, ``train_config.json`` and ``summary.json``."""
    for root in roots:
        if not Path(root).is_dir():
            raise RadiolocError(f"{root}: dataset folder not found")
    out_dir = Path(out_dir)
    started = time.perf_counter()
    train, val = (
        concat_localization([load_localization(root, split, config.estimate, config.sim, config.measurement, quiet=quiet) for root in roots])
        for split in ("train", "val")
    )
    error_model, error_file = None, None
    if config.error_model is not None:
        source = Path(config.error_model)
        error_model = load_error_model(source)
        # the calibration is only valid with this very model: it travels beside it, under its own name
        error_file = out_dir / source.name
        out_dir.mkdir(parents=True, exist_ok=True)
        if source.resolve() != error_file.resolve():
            atomic_write_bytes(error_file, source.read_bytes())
    localizer = BayesLocalizer(
        config.likelihood, seed=config.seed, error_model=error_model, error_model_file=error_file, reliability_bins=config.reliability_bins
    )
    localizer.fit(train, val)
    atomic_write_json(out_dir / "train_config.json", {**asdict(config), "data": [str(r) for r in roots]})
    path = localizer.save(out_dir / "calibration.safetensors")
    summary = {
        "calibration": str(path),
        "scenario": localizer.calibration.scenario,
        "pairs": localizer.calibration.provenance["pairs"],
        "train_queries": len(train.queries),
        "val_queries": len(val.queries),
        "temperature": localizer.calibration.temperature,
        "reliability_bins": localizer.calibration.bins,
        "error_model": localizer.calibration.error_model,
        "temperature_val_mae_m": localizer.temperature_mae,
        "radius_calibration": localizer.uncertainty.to_dict(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def shipped(name: str, options: tuple[str, ...]) -> BayesLocalizer:
    """Registry factory: ``bayes`` / ``bayes-robust`` with the shipped calibration, or unfitted with ``fit``
    (calibrated on the evaluated dataset's training split); ``toa=SIGMA`` fuses ToA ranges of that noise (m)."""
    estimator = "median" if "median" in options else "mean"
    if "fit" not in options:
        localizer = BayesLocalizer.load(name, estimator=estimator)
    elif name.startswith("bayes-learned"):  # the shipped error model, its bins and counts fitted on the evaluated dataset
        error_file = error_model_weights("error-model-robust" if name.endswith("-robust") else "error-model")
        localizer = BayesLocalizer(LikelihoodConfig(estimator=estimator), error_model=load_error_model(error_file), error_model_file=error_file)
    else:
        localizer = BayesLocalizer(LikelihoodConfig(estimator=estimator))
    localizer.name = name
    for option in options:
        if option.startswith("toa="):
            try:
                sigma = float(option.removeprefix("toa="))
            except ValueError:
                sigma = -1.0
            if not np.isfinite(sigma) or sigma < 0:
                raise RadiolocError(f"--model {name}:{option}: toa=SIGMA needs the range noise in metres (>= 0)")
            localizer.toa_sigma_m = sigma
            localizer.name = f"{name}+toa"
    return localizer


def from_calibration(path: str, options: tuple[str, ...]) -> BayesLocalizer:
    """Registry factory: a calibration file (``radioloc train bayes`` writes ``calibration.safetensors``)."""
    return BayesLocalizer.load(Path(path), estimator="median" if "median" in options else None)
