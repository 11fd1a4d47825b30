"""Uncertainty radii: every localizer reports, per query, a raw spread at 68 % and at 95 % (the posterior's own
radii for ``bayes``, the spread of the best-fitting pixels for kNN, of the positive quasi-heatmap for LocUNet);
:class:`RadiusCalibration` turns them into radii that hold the truth that often, at each of ``LEVELS`` (the
levels below 90 % scale the 68 % spread, the others the 95 % one); 68 % and 95 % are the ones reported, the
others draw the reliability figure.

The calibration is conformal on held-out queries, with the map as the exchangeable unit (queries of one map share
its radio-map errors, and a seed of ten maps can be twice as hard as another): ``radius = raw * exp(w . x) * s``,
``x`` what the query reveals beyond the raw spread (:func:`query_features`), ``w`` fitted by least squares of
``log(error / raw)``, ``s`` the quantile at level ``a`` of what that fit leaves, each map weighing the same, so
that the radius holds a share ``a`` of the queries of a typical map. Queries differ most by how many BSs they
report, so there is one fit per number of BSs (1..5), where at least ``MIN_GROUP`` calibration queries had it;
rarer numbers are pooled with their neighbours (1 and 2 BSs together, say), never with the 5-BS queries that
dominate a survey and would make their radii far too small; and one fit for all queries. Fitted across many maps of several seeds (``radioloc train radii``); the design and its
evidence: ``docs/design/evaluation-protocol.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from radioloc.datasets.localization import LocalizationData, Queries
from radioloc.errors import RadiolocError
from radioloc.propagation.graylevel import gray_to_db32

LEVELS = (0.5, 0.68, 0.8, 0.9, 0.95, 0.99)  # the radii every estimate carries; 68 % and 95 % are reported
RAW_COLUMN = tuple(0 if level < 0.9 else 1 for level in LEVELS)  # which raw spread (68 % or 95 %) each level scales
MIN_GROUP = 200
MIN_RAW_M = 0.5  # a raw spread below half a pixel carries no information about the error
CALIBRATION_QUERIES = 2000  # per number of BSs
RADIUS_BIN_M = 0.25
RADIUS_BINS = 1500  # 375 m: beyond the map's diagonal
FEATURES = ("detectable_share", "log1p_fit_residual_db", "local_building_share")  # what query_features returns, in order
# a stored calibration beyond these is damaged (fitted scales stay within 0.1-100), and the radii of larger ones
# overflow; the feature-conditioned factor is held within 1e-4..1e4 (weights fitted on a few maps can be large)
MAX_SCALE = 1e4
MAX_WEIGHT = 1e6
MAX_LOG_FACTOR = float(np.log(1e4))
LOCAL_HALF_M = 32  # the square of the local building share: 65 x 65 m around the answer


@nb.njit(cache=True)
def disc_radius(hist, level):
    """Radius (m) within which a distance histogram (bins of RADIUS_BIN_M) first holds ``level`` of its mass,
    interpolated within the bin."""
    cumulative = 0.0
    for b in range(hist.shape[0]):
        if hist[b] > 0 and cumulative + hist[b] >= level:
            return (b + (level - cumulative) / hist[b]) * RADIUS_BIN_M
        cumulative += hist[b]
    return hist.shape[0] * RADIUS_BIN_M


@nb.njit(parallel=True, cache=True, nogil=True)
def _mass_radii(weights, rows, cols, centres, out):
    for q in nb.prange(weights.shape[0]):
        hist = np.zeros(RADIUS_BINS)
        total = 0.0
        for i in range(rows.shape[0]):
            for j in range(cols.shape[0]):
                w = weights[q, i, j]
                if w > 0:
                    b = int(np.hypot(rows[i] - centres[q, 0], cols[j] - centres[q, 1]) / RADIUS_BIN_M)
                    hist[min(b, RADIUS_BINS - 1)] += w
                    total += w
        if total <= 0:
            out[q, 0], out[q, 1] = RADIUS_BINS * RADIUS_BIN_M, RADIUS_BINS * RADIUS_BIN_M
        else:
            out[q, 0] = disc_radius(hist, 0.68 * total)
            out[q, 1] = disc_radius(hist, 0.95 * total)


def mass_radii(weights: np.ndarray, rows: np.ndarray, cols: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(B, 2) radii of the smallest discs around ``centres`` (B, 2) holding 68 % and 95 % of the non-negative
    mass of ``weights`` (B, H, W), whose cells are centred at ``rows`` x ``cols`` metres (negative values ignored)."""
    out = np.empty((len(weights), 2))
    _mass_radii(
        np.ascontiguousarray(weights, dtype=np.float32),
        np.asarray(rows, dtype=np.float64),
        np.asarray(cols, dtype=np.float64),
        np.ascontiguousarray(centres, dtype=np.float64),
        out,
    )
    return out


class CalibratedRadii:
    """Mixin of answers that carry ``radii`` (n, len(LEVELS)): the two that are reported."""

    radii: np.ndarray

    @property
    def radius_68(self) -> np.ndarray:
        return self.radii[:, LEVELS.index(0.68)]

    @property
    def radius_95(self) -> np.ndarray:
        return self.radii[:, LEVELS.index(0.95)]


@nb.njit(cache=True, nogil=True)
def _local_building_share(buildings, slots, rows, cols, half):
    """Share of building pixels in the (2 half + 1) m square around each (row, col) of its map, cut at the map's
    edge (a direct sum: a few thousand pixels a query, cheaper than an integral image of a whole map)."""
    size = buildings.shape[-1]
    out = np.empty(len(slots))
    for q in range(len(slots)):
        r0, r1 = max(rows[q] - half, 0), min(rows[q] + half + 1, size)
        c0, c1 = max(cols[q] - half, 0), min(cols[q] + half + 1, size)
        total = 0
        for r in range(r0, r1):
            for c in range(c0, c1):
                total += buildings[slots[q], r, c] != 0
        out[q] = total / ((r1 - r0) * (c1 - c0))
    return out


def query_features(data: LocalizationData, positions: np.ndarray) -> np.ndarray:
    """(n, len(FEATURES)) what a query reveals about how far its answer may be off, beyond the localizer's own
    spread: the share of its BSs above the noise floor; how badly the radio maps fit the reports at the answer
    (RMS over its BSs of map value - report, in dB, log1p): a localizer that trusts a wrong radio map is
    confident and wrong; and the share of buildings around the answer, where the estimated radio maps err most
    (shadow edges). Chosen by leave-one-seed-out on the calibration pool (``benchmarks/radii_features.py``)."""
    q, scenes = data.queries, data.scenes
    present = q.bs_ids >= 0
    n_present = np.maximum(present.sum(axis=1), 1)
    rows, cols = (np.clip(np.rint(positions[:, k]), 0, scenes.buildings.shape[-1] - 1).astype(np.int64) for k in (0, 1))
    seen = gray_to_db32(scenes.radio_maps[q.map_slot[:, None], np.maximum(q.bs_ids, 0), rows[:, None], cols[:, None]])
    residual = np.where(present, seen - np.nan_to_num(q.pathloss_db), 0.0)
    fit_residual = np.log1p(np.sqrt((residual**2).sum(axis=1) / n_present))
    return np.stack([q.n_detectable() / n_present, fit_residual, _local_building_share(scenes.buildings, q.map_slot, rows, cols, LOCAL_HALF_M)], axis=1)


def _design(raw: np.ndarray, features: np.ndarray | None) -> np.ndarray:
    """(n, 2, 2 + F): per raw column (68 %, 95 %), the regressors of the log scale: 1, log raw spread, features."""
    log_raw = np.log(np.maximum(raw, MIN_RAW_M))
    extra = np.zeros((len(raw), 0)) if features is None else np.asarray(features, np.float64)
    return np.stack([np.column_stack([np.ones(len(raw)), log_raw[:, c], extra]) for c in (0, 1)], axis=1)


def _count_groups(n_bs: np.ndarray) -> list[tuple[list[str], np.ndarray]]:
    """(numbers of BSs, query mask) of each fit: a number of BSs that ``MIN_GROUP`` queries have stands alone; each
    run of rarer neighbouring numbers is pooled (1 to 4 BSs together, say), and a pool still too small joins its
    neighbour with fewer BSs (with more, at the bottom); none is left to the fit of all queries, which the 5-BS
    queries of a survey dominate."""
    size = {c: int((n_bs == c).sum()) for c in range(1, int(n_bs.max(initial=0)) + 1) if (n_bs == c).any()}
    pools: list[list[int]] = []
    for c, count in size.items():
        after_alone = bool(pools) and size[pools[-1][0]] >= MIN_GROUP  # a number that stands alone takes no other
        if not pools or count >= MIN_GROUP or after_alone:
            pools.append([c])
        else:
            pools[-1].append(c)
    while len(pools) > 1 and (small := next((i for i, pool in enumerate(pools) if sum(size[k] for k in pool) < MIN_GROUP), None)) is not None:
        neighbour = small - 1 if small > 0 else 1
        low, high = sorted((small, neighbour))
        pools[low : high + 1] = [pools[low] + pools[high]]
    if not pools or sum(size[k] for k in pools[0]) < MIN_GROUP:
        return []  # too few queries for any group of its own: "all" serves every number
    return [([str(c) for c in pool], np.isin(n_bs, pool)) for pool in pools]


def _map_weighted_quantile(values: np.ndarray, weights: np.ndarray, level: float) -> float:
    """The smallest value whose weighted share of ``values`` at or below it reaches ``level``."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cumulative, level - 1e-12), len(values) - 1)])


@dataclass
class RadiusCalibration:
    """``radius = max(raw, MIN_RAW_M) * exp(w . x) * scale`` at each of LEVELS, per group of queries (the number of
    BSs in the query, 1..5, or ``all``): ``x`` the regressors of :func:`_design` (1, the log raw spread and
    :func:`query_features`), ``w`` one vector per raw column (68 %, 95 %) fitted by least squares of
    ``log(error / raw)`` on them, ``scale`` the conformal quantile of what the fit leaves. Version 1 (no
    ``weights``) is the plain split-conformal scale of ``error / raw``."""

    scale: dict[str, list[float]]  # group -> the scale at each of LEVELS
    count: dict[str, int] = field(default_factory=dict)
    weights: dict[str, list[list[float]]] = field(default_factory=dict)  # group -> [w for the 68 % column, w for the 95 % one]
    fitted_on: list[dict] = field(default_factory=list)  # the datasets (root, seed, maps) it was fitted on
    maps: int = 0  # the maps of its calibration queries (the exchangeable unit)
    version: int = 2

    @property
    def uses_features(self) -> bool:
        return bool(self.weights)

    @staticmethod
    def fit(raw: np.ndarray, errors: np.ndarray, n_bs: np.ndarray, features: np.ndarray | None = None, maps: np.ndarray | None = None,
            fitted_on: list[dict] | None = None) -> RadiusCalibration:  # fmt: skip
        """Fit on calibration queries. With ``features`` (:func:`query_features`), the log scale is regressed on
        them first; with ``maps`` (a map id per query), each map weighs the same in the quantiles: the map, not the
        query, is the exchangeable unit (queries of one map share its radio-map errors), so a map with many
        queries must not set the scale for the others."""
        if len(errors) == 0:
            raise RadiolocError("radius calibration: no calibration queries")
        units = np.arange(len(errors)) if maps is None else np.asarray(maps)  # without maps, each query is its own unit
        _, map_index, per_map = np.unique(units, return_inverse=True, return_counts=True)
        weight = 1.0 / per_map[map_index]
        design = _design(raw, features) if features is not None else None
        log_ratio = np.log(np.maximum(errors, MIN_RAW_M))[:, None] - np.log(np.maximum(raw, MIN_RAW_M))

        def group(mask: np.ndarray) -> tuple[list[float], list[list[float]]]:
            residual, coefficients = log_ratio[mask].copy(), []
            if design is not None:
                for column in (0, 1):
                    root = np.sqrt(weight[mask])[:, None]
                    w = np.linalg.lstsq(design[mask, column] * root, log_ratio[mask, column] * root[:, 0], rcond=None)[0]
                    residual[:, column] -= design[mask, column] @ w
                    coefficients.append([float(x) for x in w])
            scales = [float(np.exp(_map_weighted_quantile(residual[:, column], weight[mask], level))) for level, column in zip(LEVELS, RAW_COLUMN)]
            return scales, coefficients

        scale, weights, count = {}, {}, {}
        for names, mask in [(["all"], np.ones(len(errors), dtype=bool))] + _count_groups(n_bs):
            fitted, coefficients = group(mask)
            for name in names:
                scale[name], count[name] = fitted, int(mask.sum())
                if coefficients:
                    weights[name] = coefficients
        return RadiusCalibration(scale, count, weights, list(fitted_on or []), 0 if maps is None else int(len(per_map)))

    def apply(self, raw: np.ndarray, n_bs: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """(n, len(LEVELS)) calibrated radii in metres, never smaller at a higher level (two raw spreads are
        scaled independently, so their calibrated radii could cross)."""
        keys = [str(c) if str(c) in self.scale else "all" for c in range(6)]
        group = np.clip(n_bs, 0, 5)
        table = np.array([self.scale[k] for k in keys])
        radii = np.maximum(raw[:, list(RAW_COLUMN)], MIN_RAW_M) * table[group]
        if self.weights:
            if features is None:
                raise RadiolocError("radius calibration: it conditions on query features, none given")
            w = np.array([self.weights.get(k, self.weights["all"]) for k in keys])  # (6, 2, regressors)
            log_factor = np.einsum("ncr,ncr->nc", _design(raw, features), w[group])  # per query and raw column
            radii *= np.exp(np.clip(log_factor[:, list(RAW_COLUMN)], -MAX_LOG_FACTOR, MAX_LOG_FACTOR))
        return np.maximum.accumulate(radii, axis=1)

    def to_dict(self) -> dict:
        data = {"version": self.version, "levels": list(LEVELS), "scale": self.scale, "count": self.count}
        if self.version >= 2:
            data |= {"features": list(FEATURES) if self.weights else [], "weights": self.weights, "fitted_on": self.fitted_on, "maps": self.maps}
        return data

    @staticmethod
    def from_dict(data: dict, where: str = "radius calibration") -> RadiusCalibration:
        try:
            scale = {str(k): [float(x) for x in v] for k, v in data["scale"].items()}
            version = data.get("version")
            if version not in (1, 2) or "all" not in scale or list(data.get("levels", [])) != list(LEVELS):
                raise ValueError("unsupported version or levels")
            if not all(len(v) == len(LEVELS) and all(0 < x <= MAX_SCALE for x in v) for v in scale.values()):
                raise ValueError(f"scales must be {len(LEVELS)} numbers in (0, {MAX_SCALE:g}] per group")
            weights = {str(k): [[float(x) for x in column] for column in v] for k, v in (data.get("weights") or {}).items()}
            if weights and (list(data.get("features", [])) != list(FEATURES) or "all" not in weights):
                raise ValueError(f"weights need the features {', '.join(FEATURES)} and an 'all' group")
            if not all(np.shape(v) == (2, 2 + len(FEATURES)) and (np.abs(v) <= MAX_WEIGHT).all() for v in weights.values()):
                raise ValueError(f"weights must be 2 x {2 + len(FEATURES)} numbers in [-{MAX_WEIGHT:g}, {MAX_WEIGHT:g}] per group")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RadiolocError(f"{where}: malformed radius calibration ({exc})") from None
        try:
            count = {str(k): int(v) for k, v in data.get("count", {}).items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise RadiolocError(f"{where}: malformed radius calibration (count: {exc})") from None
        if any(v < 0 for v in count.values()):
            raise RadiolocError(f"{where}: malformed radius calibration (count: negative numbers of queries)")
        return RadiusCalibration(scale, count, weights, list(data.get("fitted_on") or []), int(data.get("maps") or 0), int(version))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def calibration_queries(data: LocalizationData, per_count: int = CALIBRATION_QUERIES, seed: int = 0) -> LocalizationData:
    """Random queries of ``data`` kept with their first 1, 2, ..., k BSs (``per_count`` of each): the settings a
    localizer answers (5 BSs, the paper's 3-BS subsets, fewer where BSs are lost)."""
    q = data.queries
    rng = np.random.default_rng(seed)
    parts = []
    for count in range(1, q.bs_ids.shape[1] + 1):
        pick = rng.choice(len(q), size=min(per_count, len(q)), replace=False)
        sub = q.subset(np.sort(pick))
        keep = sub.first_bs(count)
        parts.append(keep.subset(np.flatnonzero((keep.bs_ids >= 0).any(axis=1))))
    return data.with_queries(Queries.concat(parts))
