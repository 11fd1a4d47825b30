"""The one interface of every localizer, learned or classical (scikit-learn style), and its one estimate type.

``fit(train, val=None)`` learns from a training split (k for kNN, the likelihood for ``bayes``, the refinement of a
trained LocUNet) and calibrates the uncertainty radii; ``locate(data)`` answers every query of ``data`` with a
:class:`LocalizationEstimate`: positions, and the radii of the discs around them that hold the truth 68 % and
95 % of the time; ``predict(data)`` returns the positions alone.

Validation happens here, once, for every localizer: a query naming a BS its scene lacks, a map slot out of range,
no BS, NaN pathloss, an empty training split: each a one-line :class:`RadiolocError`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from radioloc.datasets.localization import LocalizationData, dataset_provenance, validate_queries
from radioloc.errors import RadiolocError
from radioloc.localizers.uncertainty import CALIBRATION_QUERIES, LEVELS, CalibratedRadii, RadiusCalibration, calibration_queries, query_features


@dataclass
class LocalizationEstimate(CalibratedRadii):
    """Positions (n, 2) row, col in metres; ``radii`` (n, len(LEVELS)) in metres, the discs around each position
    that hold the truth with each probability of :data:`LEVELS` (``radius_68``, ``radius_95``); ``heatmaps``
    (n, H, W) the posterior or quasi-heatmap behind each position, when asked for (figures)."""

    positions: np.ndarray
    radii: np.ndarray
    heatmaps: np.ndarray | None = None
    failed: np.ndarray | None = None  # (n,) bool, queries a solver could not answer (ToA methods: a fallback position)

    def coverage(self, truth: np.ndarray) -> dict[float, float]:
        """Per level, the share of queries whose true position lies within that radius."""
        errors = localization_errors(self.positions, truth)
        return {level: float(np.mean(errors <= self.radii[:, i])) for i, level in enumerate(LEVELS)} if errors.size else {}


def localization_errors(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Euclidean distance in metres per query."""
    return np.hypot(estimate[:, 0] - truth[:, 0], estimate[:, 1] - truth[:, 1])


def check_data(data: LocalizationData, what: str = "queries") -> None:
    """One-line errors for queries a localizer cannot answer (see the module docstring)."""
    scenes, q = data.scenes, data.queries
    n = len(q)
    if q.bs_ids.ndim != 2 or q.bs_ids.shape != q.pathloss_db.shape or len(q.bs_ids) != n or q.position.shape != (n, 2):
        raise RadiolocError(f"{what}: inconsistent query arrays (bs_ids {q.bs_ids.shape}, pathloss {q.pathloss_db.shape}, {n} map slots)")
    if n == 0:
        return
    if scenes.radio_maps.ndim != 4 or len(scenes.radio_maps) != len(scenes.map_ids) or scenes.radio_maps.shape[1] != scenes.n_bs:
        raise RadiolocError(f"{what}: the scenes hold no radio maps for their {scenes.n_bs} BSs")
    bad = (q.map_slot < 0) | (q.map_slot >= len(scenes.map_ids))
    if bad.any():
        raise RadiolocError(f"{what} {int(np.argmax(bad))}: map slot {int(q.map_slot[bad][0])} has no radio maps (scenes hold {len(scenes.map_ids)} maps)")
    validate_queries(q.bs_ids, q.pathloss_db, scenes.n_bs, what)


class Localizer(ABC):
    name: str = "localizer"
    heatmap_kind: str | None = None  # what locate(heatmaps=True) returns: "posterior", "quasi" (LocUNet) or nothing
    # queries per number of BSs for the radius calibration: queries of one map and BS set are correlated, so the
    # quantiles need many (kNN's full-map search is slow: it keeps the default when fitted inside evaluate)
    calibration_per_count: int = CALIBRATION_QUERIES

    def __init__(self):
        self.uncertainty: RadiusCalibration | None = None
        self.ms_per_query = float("nan")

    # -- what each localizer implements -------------------------------------------------------------------------
    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:  # noqa: B027 (a no-op by default, not abstract)
        """Learn from the training split (nothing by default: a pre-trained or parameter-free localizer)."""

    @abstractmethod
    def _locate(self, data: LocalizationData, heatmaps: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(positions (n, 2), raw radii (n, 2) for 68 % / 95 % before calibration, heatmaps or None)."""

    def describe(self) -> dict:
        """What was fitted (k, preset, calibration, ...), for reports."""
        return {"name": self.name}

    @property
    def uses_ranges(self) -> bool:
        """Whether the ToA ranges of the queries change its answers (none by default: RSS only)."""
        return False

    # -- shared by all ------------------------------------------------------------------------------------------
    def fit(self, train: LocalizationData, val: LocalizationData | None = None) -> Localizer:
        """Learn from ``train`` and calibrate the radii on ``val`` (on other queries of ``train`` without one)."""
        if len(train.queries) == 0:
            raise RadiolocError(f"{self.name}: fit needs training queries, the training split has none")
        check_data(train, f"{self.name} training query")
        if val is not None:
            if len(val.queries) == 0:
                raise RadiolocError(f"{self.name}: the validation split has no queries")
            check_data(val, f"{self.name} validation query")
        self._fit(train, val)
        self.calibrate_radii(val if val is not None else train)
        return self

    def calibrate_radii(self, data: LocalizationData, seed: int = 0) -> RadiusCalibration:
        """Fit the radii on queries of ``data`` with 1 to 5 of their BSs: conditioned on what each query reveals
        (:func:`query_features`), each map of ``data`` weighing the same (:class:`RadiusCalibration`)."""
        calibration = calibration_queries(data, per_count=self.calibration_per_count, seed=seed)
        q = calibration.queries
        positions, raw, _ = self._locate(calibration, False)
        self.uncertainty = RadiusCalibration.fit(raw, localization_errors(positions, q.position), (q.bs_ids >= 0).sum(axis=1),
                                                 query_features(calibration, positions), q.map_slot, dataset_provenance(data))  # fmt: skip
        return self.uncertainty

    def _run(self, data: LocalizationData, heatmaps: bool):
        check_data(data)
        start = time.perf_counter()
        result = self._locate(data, heatmaps)
        self.ms_per_query = 1000.0 * (time.perf_counter() - start) / max(len(data.queries), 1)
        return result

    def locate(self, data: LocalizationData, heatmaps: bool = False) -> LocalizationEstimate:
        """Positions with their calibrated 68 % / 95 % radii (and the heatmaps, when asked)."""
        if self.uncertainty is None:
            described = self.describe()
            source = described.get("checkpoint") or described.get("calibration")
            raise RadiolocError(
                f"{source}: not calibrated (no uncertainty radii); run `radioloc train {'radii' if str(source).endswith('.safetensors') else 'calibrate'} "
                f"--model {source} ...` on maps it was not trained on"
                if source
                else f"{self.name}: no radius calibration (fit it first)"
            )
        positions, raw, maps = self._run(data, heatmaps)
        features = query_features(data, positions) if self.uncertainty.uses_features else None
        return LocalizationEstimate(positions, self.uncertainty.apply(raw, (data.queries.bs_ids >= 0).sum(axis=1), features), maps)

    def raw_estimates(self, data: LocalizationData) -> tuple[np.ndarray, np.ndarray]:
        """(positions (n, 2), raw 68 % / 95 % spreads (n, 2)) before the radius calibration: what a calibration
        on other data (a deployment's survey) is fitted on."""
        positions, raw, _ = self._run(data, False)
        return positions, raw

    def predict(self, data: LocalizationData) -> np.ndarray:
        """(n, 2) float64 estimated row, col in metres, one per query of ``data`` (no radii needed)."""
        return self._run(data, False)[0]
