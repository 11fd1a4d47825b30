"""Uncertainty radii: every localizer reports, per query, a raw spread at 68 % and at 95 % (the posterior's own
radii for ``bayes``, the spread of the best-fitting pixels for kNN, of the positive quasi-heatmap for LocUNet);
:class:`RadiusCalibration` turns them into radii that hold the truth that often, at each of ``LEVELS`` (the
levels below 90 % scale the 68 % spread, the others the 95 % one); 68 % and 95 % are the ones reported, the
others draw the reliability figure.

The calibration is split-conformal: on held-out queries, the scale ``s`` at level ``a`` is the
``ceil((n + 1) a) / n`` empirical quantile of ``error / raw``, so that ``radius = s * raw`` covers a share ``a``
of exchangeable queries. Queries differ most by how many BSs they report, so there is one pair of scales per
number of BSs (1..5), where at least ``MIN_GROUP`` calibration queries had it, and one for all queries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from radioloc.datasets.localization import LocalizationData, Queries
from radioloc.errors import RadiolocError

LEVELS = (0.5, 0.68, 0.8, 0.9, 0.95, 0.99)  # the radii every estimate carries; 68 % and 95 % are reported
RAW_COLUMN = tuple(0 if level < 0.9 else 1 for level in LEVELS)  # which raw spread (68 % or 95 %) each level scales
MIN_GROUP = 200
MIN_RAW_M = 0.5  # a raw spread below half a pixel carries no information about the error
CALIBRATION_QUERIES = 2000  # per number of BSs
RADIUS_BIN_M = 0.25
RADIUS_BINS = 1500  # 375 m: beyond the map's diagonal


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
    _mass_radii(np.ascontiguousarray(weights, dtype=np.float32), np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64), np.ascontiguousarray(centres, dtype=np.float64), out)
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


@dataclass
class RadiusCalibration:
    scale: dict[str, list[float]]  # "all" or the number of BSs -> the scale at each of LEVELS
    count: dict[str, int] = field(default_factory=dict)
    version: int = 1

    @staticmethod
    def fit(raw: np.ndarray, errors: np.ndarray, n_bs: np.ndarray) -> "RadiusCalibration":
        if len(errors) == 0:
            raise RadiolocError("radius calibration: no calibration queries")
        ratio = errors[:, None] / np.maximum(raw[:, list(RAW_COLUMN)], MIN_RAW_M)

        def scales(r: np.ndarray) -> list[float]:
            n = len(r)
            ranks = [min(n, int(np.ceil((n + 1) * level))) - 1 for level in LEVELS]
            return [float(np.sort(r[:, i])[rank]) for i, rank in enumerate(ranks)]

        scale = {"all": scales(ratio)}
        count = {"all": int(len(errors))}
        for c in np.unique(n_bs):
            mask = n_bs == c
            if mask.sum() >= MIN_GROUP:
                scale[str(int(c))] = scales(ratio[mask])
                count[str(int(c))] = int(mask.sum())
        return RadiusCalibration(scale, count)

    def apply(self, raw: np.ndarray, n_bs: np.ndarray) -> np.ndarray:
        """(n, len(LEVELS)) calibrated radii in metres, never smaller at a higher level (two raw spreads are
        scaled independently, so their calibrated radii could cross)."""
        table = np.array([self.scale.get(str(c), self.scale["all"]) for c in range(6)])
        return np.maximum.accumulate(np.maximum(raw[:, list(RAW_COLUMN)], MIN_RAW_M) * table[np.clip(n_bs, 0, 5)], axis=1)

    def to_dict(self) -> dict:
        return {"version": self.version, "levels": list(LEVELS), "scale": self.scale, "count": self.count}

    @staticmethod
    def from_dict(data: dict, where: str = "radius calibration") -> "RadiusCalibration":
        try:
            scale = {str(k): [float(x) for x in v] for k, v in data["scale"].items()}
            if data.get("version") != 1 or "all" not in scale or list(data.get("levels", [])) != list(LEVELS):
                raise ValueError("unsupported version or levels")
            if not all(len(v) == len(LEVELS) and np.isfinite(v).all() and v[0] > 0 for v in scale.values()):
                raise ValueError(f"scales must be {len(LEVELS)} finite positive numbers per group")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RadiolocError(f"{where}: malformed radius calibration ({exc})") from None
        return RadiusCalibration(scale, {str(k): int(v) for k, v in data.get("count", {}).items()})

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
