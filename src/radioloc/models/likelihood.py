"""The calibrated measurement model: ``p(reported gray | radio-map gray)``, what a UE reports given the value the
localizer's radio map holds at the UE (:class:`LikelihoodCalibration`).

It is counted on a training split for one scenario (the radio maps seen, the truth reported): nominal (DPM truth
against RadioUNet estimates), robustness (IRT2cars reports), true or noisy maps. The noise floor (gray 0) is its
own outcome on both sides. Counts are smoothed lightly (Gaussian, ``smooth_map_gray`` x ``smooth_report_gray``)
and mixed with ``fallback_counts`` pseudo-counts of a ``fallback_sigma_db`` Gaussian around the map value (for
map values the training split rarely saw) and a uniform floor (no single report can rule a pixel out).

**Reliability bins** (optional): with a learned error model (:mod:`radioloc.models.error_model`), every pixel of
every radio map also falls into one of ``len(reliability_edges) + 1`` bins of its predicted error scale, and the
table is counted once per bin: ``p(reported gray | radio-map gray, bin)``. The kernel then reads *code maps*,
``bin * 256 + gray`` (:func:`code_maps`), and each query's cost table has ``256 * bins`` entries.

It is stored as a small safetensors file: the (256 x bins) x 256 log-likelihood table and the counts it came from,
the reliability edges, with the scenario, the tempering, the radius calibration, the error model (file name and
SHA-256) and the provenance in the metadata. The Bayesian grid localizer
(:mod:`radioloc.localizers.bayes`) and LocUNet's posterior head both read it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.special import ndtr

from radioloc.datasets.checksums import sha256
from radioloc.datasets.fit_cost import GRAY_LEVELS, report_levels
from radioloc.datasets.localization import LocalizationData, dataset_provenance
from radioloc.datasets.protocol import UE_REGIONS
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_bytes
from radioloc.propagation.graylevel import DB_PER_GRAY

FORMAT = "radioloc-likelihood-1"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_CALIBRATIONS = {
    "bayes": WEIGHTS_DIR / "bayes_nominal.safetensors",  # nominal: DPM truth reported, RadioUNet estimates seen
    "bayes-robust": WEIGHTS_DIR / "bayes_robust.safetensors",  # robustness: IRT2cars truth reported
    "bayes-learned": WEIGHTS_DIR / "bayes_learned_nominal.safetensors",  # nominal, counted per bin of the learned error model
    "bayes-learned-robust": WEIGHTS_DIR / "bayes_learned_robust.safetensors",  # robustness, the same error model's bins
}
PRIORS = UE_REGIONS
ESTIMATORS = ("mean", "median")


@dataclass(frozen=True)
class LikelihoodConfig:
    smooth_map_gray: float = 0.5
    smooth_report_gray: float = 0.5
    fallback_counts: float = 10.0
    fallback_sigma_db: float = 2.0
    uniform_counts: float = 1.0
    prior: str = "ue-box"
    estimator: str = "mean"

    def __post_init__(self):
        if self.prior not in PRIORS:
            raise RadiolocError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        if self.estimator not in ESTIMATORS:
            raise RadiolocError(f"--estimator must be one of {', '.join(ESTIMATORS)}, got {self.estimator!r}")
        values = (self.smooth_map_gray, self.smooth_report_gray, self.fallback_counts, self.fallback_sigma_db, self.uniform_counts)
        if not all(np.isfinite(v) and v >= 0 for v in values) or self.fallback_sigma_db <= 0 or self.uniform_counts <= 0:
            raise RadiolocError("likelihood smoothing: counts and widths must be finite and >= 0 (sigma and uniform counts > 0)")


def scenario_of(data: LocalizationData) -> dict:
    """What a calibration depends on: the radio maps seen (``sim``, ``estimate``) and the truth reported."""
    source = data.source
    return {"sim": source.get("sim", "DPM"), "estimate": source.get("estimate", "estimate"), "measurement": source.get("measurement_sim")}


def code_maps(radio_maps: np.ndarray, bins: np.ndarray | None) -> np.ndarray:
    """What the kernel indexes the cost tables with: the gray levels themselves, or ``bin * 256 + gray`` (uint16)
    when the pixels have reliability bins (same shape as the maps)."""
    if bins is None:
        return radio_maps
    return (bins.astype(np.uint16) * GRAY_LEVELS + radio_maps).astype(np.uint16)


def pair_counts(data: LocalizationData, bins: np.ndarray | None = None, n_bins: int = 1) -> np.ndarray:
    """(256 * n_bins, 256) counts of (radio-map code at the UE, reported gray) over every present BS of every
    query; codes are gray levels, or ``bin * 256 + gray`` with reliability ``bins`` (shaped like the maps)."""
    q = data.queries
    present = q.bs_ids >= 0
    rows = np.rint(q.position[:, 0]).astype(np.int64)
    cols = np.rint(q.position[:, 1]).astype(np.int64)
    slot = np.broadcast_to(q.map_slot[:, None], q.bs_ids.shape)[present]
    at = (slot, q.bs_ids[present], np.broadcast_to(rows[:, None], q.bs_ids.shape)[present], np.broadcast_to(cols[:, None], q.bs_ids.shape)[present])
    seen = data.scenes.radio_maps[at].astype(np.int64)
    if bins is not None:
        seen = seen + bins[at].astype(np.int64) * GRAY_LEVELS
    reported = np.clip(np.rint(report_levels(q.pathloss_db[present])), 0, GRAY_LEVELS - 1).astype(np.int64)
    counts = np.bincount(seen * GRAY_LEVELS + reported, minlength=n_bins * GRAY_LEVELS**2)
    return counts.reshape(n_bins * GRAY_LEVELS, GRAY_LEVELS).astype(np.float64)


def _fallback(sigma_db: float) -> np.ndarray:
    """(256, 256) rows p(report | map g): a Gaussian around g in dB, the mass below gray 0.5 on the floor (0)."""
    sigma = sigma_db / DB_PER_GRAY
    g = np.arange(GRAY_LEVELS, dtype=np.float64)[:, None]
    edges = np.concatenate([[-np.inf], np.arange(GRAY_LEVELS - 1) + 0.5, [np.inf]])
    cdf = ndtr((edges[None, :] - g) / sigma)
    return np.diff(cdf, axis=1)


def log_likelihood_table(counts: np.ndarray, config: LikelihoodConfig) -> np.ndarray:
    """(256 * bins, 256) float32 ``log p(report r | map g[, bin])`` from counts (see the module docstring), each
    bin's 256 rows smoothed on their own."""
    if counts.shape[0] > GRAY_LEVELS:
        return np.concatenate([log_likelihood_table(part, config) for part in np.split(counts, counts.shape[0] // GRAY_LEVELS)])
    smooth = np.empty_like(counts)
    smooth[1:, 1:] = ndimage.gaussian_filter(counts[1:, 1:], (config.smooth_map_gray, config.smooth_report_gray), mode="nearest")
    smooth[0, 1:] = ndimage.gaussian_filter1d(counts[0, 1:], config.smooth_report_gray, mode="nearest") if config.smooth_report_gray else counts[0, 1:]
    smooth[1:, 0] = ndimage.gaussian_filter1d(counts[1:, 0], config.smooth_map_gray, mode="nearest") if config.smooth_map_gray else counts[1:, 0]
    smooth[0, 0] = counts[0, 0]
    mixed = smooth + config.fallback_counts * _fallback(config.fallback_sigma_db) + config.uniform_counts / GRAY_LEVELS
    return np.log(mixed / mixed.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class LikelihoodCalibration:
    log_likelihood: np.ndarray  # (256 * bins map code, 256 reported gray) float32
    counts: np.ndarray  # (256 * bins, 256) the training counts it came from
    scenario: dict
    config: LikelihoodConfig = field(default_factory=LikelihoodConfig)
    temperature: float = 1.0
    radius: dict | None = None  # RadiusCalibration.to_dict() of the localizer fitted with it
    provenance: dict = field(default_factory=dict)
    reliability_edges: np.ndarray | None = None  # (bins - 1,) float32 cuts of the error model's log scale
    error_model: dict | None = None  # {"file": name beside the calibration, "sha256": ...} of that error model
    _by_report: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def bins(self) -> int:
        return 1 if self.reliability_edges is None else len(self.reliability_edges) + 1

    @staticmethod
    def fit(data: LocalizationData, config: LikelihoodConfig, bins: np.ndarray | None = None, edges: np.ndarray | None = None,
            error_model: dict | None = None) -> LikelihoodCalibration:  # fmt: skip
        """Count the table on ``data``; with reliability ``bins`` of its radio maps (cut at ``edges`` from the
        ``error_model``'s scales), one table per bin."""
        n_bins = 1 if edges is None else len(edges) + 1
        counts = pair_counts(data, bins, n_bins)
        provenance = {
            "data": data.source,
            "datasets": dataset_provenance(data),  # with their seeds: calibrations refuse these maps
            "queries": len(data.queries),
            "pairs": int(counts.sum()),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return LikelihoodCalibration(log_likelihood_table(counts, config), counts.astype(np.float32), scenario_of(data), config, provenance=provenance,
                                     reliability_edges=None if edges is None else np.asarray(edges, dtype=np.float32), error_model=error_model)  # fmt: skip

    def check_scenario(self, data: LocalizationData, where: str) -> None:
        """The radio maps the data shows must be those the calibration was fitted on, and so must the truth its
        UEs report where the data says (user reports do not)."""
        seen = scenario_of(data)
        own = self.scenario
        if (seen["sim"], seen["estimate"]) != (own["sim"], own["estimate"]) or (
            seen["measurement"] is not None and own.get("measurement") is not None and seen["measurement"] != own["measurement"]
        ):
            raise RadiolocError(
                f"{where}: calibration for another scenario (fitted on {own['sim']}/{own['estimate']} maps with {own.get('measurement')} reports, "
                f"the data has {seen['sim']}/{seen['estimate']} maps with {seen['measurement']} reports); fit one with `radioloc train bayes`"
            )

    def query_tables(self, pathloss_db: np.ndarray) -> np.ndarray:
        """The kernel's cost tables for these reports (:func:`likelihood_tables`)."""
        # the transposed table is kept: copying it costs more than a single query (1 ms with 8 reliability bins)
        if self._by_report is None or self._by_report[0] is not self.log_likelihood:
            self._by_report = (self.log_likelihood, np.ascontiguousarray(np.asarray(self.log_likelihood, dtype=np.float32).T))
        return likelihood_tables(self.log_likelihood, self.temperature, pathloss_db, self._by_report[1])

    def fingerprint(self) -> str:
        """SHA-256 of what the posterior computes with (tables, tempering, reliability edges, error model, prior):
        a LocUNet fused with or calibrated on this posterior stays valid when only its radii are refitted."""
        digest = hashlib.sha256()
        for array in (self.log_likelihood, self.reliability_edges):
            digest.update(b"-" if array is None else np.ascontiguousarray(array, dtype=np.float32).tobytes())
        digest.update(json.dumps([repr(float(self.temperature)), asdict(self.config), self.error_model], sort_keys=True).encode())
        return digest.hexdigest()

    # -- storage ------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save

        metadata = {
            "format": FORMAT,
            "scenario": json.dumps(self.scenario),
            "config": json.dumps(asdict(self.config)),
            "temperature": repr(float(self.temperature)),
            "radius_calibration": json.dumps(self.radius),
            "provenance": json.dumps(self.provenance),
            "error_model": json.dumps(self.error_model),
        }
        tensors = {"log_likelihood": self.log_likelihood, "counts": self.counts}
        if self.reliability_edges is not None:
            tensors["reliability_edges"] = np.asarray(self.reliability_edges, dtype=np.float32)
        path = Path(path)
        atomic_write_bytes(path, save(tensors, metadata=metadata))
        return path

    @staticmethod
    def load(path: str | Path) -> LikelihoodCalibration:
        from safetensors import SafetensorError
        from safetensors.numpy import load

        path = Path(path)
        if not path.is_file():
            raise RadiolocError(f"{path}: calibration file not found")
        raw = path.read_bytes()
        try:
            tensors = load(raw)
            header_size = int.from_bytes(raw[:8], "little")
            metadata = json.loads(raw[8 : 8 + header_size]).get("__metadata__") or {}
        except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError) as exc:
            raise RadiolocError(f"{path}: not a readable calibration file ({str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__})") from None
        if metadata.get("format") != FORMAT:
            raise RadiolocError(f"{path}: not a radioloc likelihood calibration (no '{FORMAT}' header)")
        try:
            table = tensors["log_likelihood"]
            counts = tensors["counts"]
            edges = tensors.get("reliability_edges")
            n_bins = 1 if edges is None else len(edges) + 1
            if table.shape != (GRAY_LEVELS * n_bins, GRAY_LEVELS) or counts.shape != table.shape or not np.isfinite(table).all():
                raise ValueError(f"log_likelihood and counts must be finite {GRAY_LEVELS * n_bins} x {GRAY_LEVELS} tables ({n_bins} reliability bins)")
            if not (np.isfinite(counts).all() and (counts >= 0).all()):
                raise ValueError("counts must be finite and non-negative")
            if edges is not None and (edges.ndim != 1 or not np.isfinite(edges).all() or (np.diff(edges) < 0).any()):
                raise ValueError("reliability_edges must be finite and sorted")
            error_model = json.loads(metadata.get("error_model", "null"))
            if (edges is None) != (error_model is None) or (error_model is not None and not {"file", "sha256"} <= set(error_model)):
                raise ValueError("reliability edges and the error model (file, sha256) come together")
            if np.abs(np.exp(table.astype(np.float64)).sum(axis=1) - 1.0).max() > 1e-3:
                raise ValueError("log_likelihood rows are not distributions")
            radius = json.loads(metadata["radius_calibration"])
            temperature = float(metadata["temperature"])
            if not (np.isfinite(temperature) and temperature > 0):
                raise ValueError(f"temperature must be positive, got {temperature}")
            scenario, config = json.loads(metadata["scenario"]), json.loads(metadata["config"])
            provenance = json.loads(metadata.get("provenance", "{}"))
            for key, value in (("scenario", scenario), ("config", config), ("provenance", provenance), ("radius_calibration", radius or {})):
                if not isinstance(value, dict):
                    raise ValueError(f"{key} must be a JSON object")
            if not (
                isinstance(scenario.get("sim"), str)
                and isinstance(scenario.get("estimate"), str)
                and isinstance(scenario.get("measurement"), (str, type(None)))
            ):
                raise ValueError("scenario must name its sim and estimate (and measurement, or null)")
            calibration = LikelihoodCalibration(
                table.astype(np.float32), counts.astype(np.float32), scenario, LikelihoodConfig(**config),
                temperature, radius, provenance, None if edges is None else edges.astype(np.float32), error_model,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, RadiolocError) as exc:  # RadiolocError: the config's own checks
            raise RadiolocError(f"{path}: malformed calibration ({exc})") from None
        return calibration


def likelihood_tables(log_likelihood: np.ndarray, temperature: float, pathloss_db: np.ndarray, by_report: np.ndarray | None = None) -> np.ndarray:
    """(n, k, 256) float32 tempered ``-log p(report_j | map gray g) / temperature``: the cost tables of the kernel
    (:mod:`radioloc.datasets.fit_cost`); fractional reports interpolate between neighbouring gray levels; absent
    BSs (NaN) give zeros. ``by_report``: the table transposed (report, map code) when the caller keeps it."""
    levels = report_levels(pathloss_db)
    absent = np.isnan(levels)
    levels = np.clip(np.where(absent, 0.0, levels), 0.0, GRAY_LEVELS - 1.0)
    low = np.floor(levels).astype(np.int64)
    high = np.minimum(low + 1, GRAY_LEVELS - 1)
    frac = (levels - low)[..., None].astype(np.float32)
    if by_report is None:
        by_report = np.ascontiguousarray(np.asarray(log_likelihood, dtype=np.float32).T)  # (report, map)
    # in place, the same float32 operations as -((1 - frac) * lower + frac * upper) / temperature: with the error
    # model's bins a table is thousands of entries per BS, and temporaries would cost more than the arithmetic
    tables = by_report[low]
    tables *= 1.0 - frac
    upper = by_report[high]
    upper *= frac
    tables += upper
    np.divide(tables, np.float32(-temperature), out=tables)
    tables[absent] = 0.0
    return tables


def calibration_path(spec: str | Path | None) -> Path:
    """The calibration file of a shipped scenario's name (``bayes``, ``bayes-robust``; None = ``bayes``) or a path."""
    if spec is None:
        return SHIPPED_CALIBRATIONS["bayes"]
    return SHIPPED_CALIBRATIONS.get(str(spec), Path(spec))


def matches_calibration(spec: str | Path, stored: str | None) -> bool:
    """Whether ``stored`` (a LocUNet's record of the posterior it was fitted with) names calibration ``spec`` as
    it is now: its :meth:`LikelihoodCalibration.fingerprint`, or, as written before fingerprints, the file's SHA-256."""
    path = calibration_path(spec)
    return stored in (LikelihoodCalibration.load(path).fingerprint(), sha256(path))
