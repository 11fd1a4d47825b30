"""kNN fingerprinting on radio maps, as the LocUNet paper's baselines (notes, section 5).

For a query, every pixel of the map gets the cost ``sum_j (map_j(pixel) - p_j)^2`` over the query's BSs (the
radio maps the localizer sees, in dB, the noise floor where not detectable; the reported pathloss, the noise
floor for a BS that is not detectable). The estimate is the centroid of the k cheapest pixels. Building pixels
are not excluded, as in the paper.

- :class:`KNNLocalizer`: one k, by grid search on the training split.
- :class:`ConditionalKNNLocalizer` ("kNN Cond."): one k per number of BSs above the noise floor at the UE.
- :class:`AdaptiveKNNLocalizer`: a k per query, every pixel whose RMS residual per BS is within ``delta_db``
  of the best pixel's (at most ``max_k``), with ``delta_db`` by grid search. The paper's reference [60] is not
  in our copy of the paper; this is our reading of "adaptive kNN": the neighbourhood grows where many pixels fit
  about equally well and shrinks to the few best ones where the fit is sharp.

The search is the shared cost kernel (:mod:`radioloc.datasets.fit_cost`) with squared-residual tables, parallel
over queries: each query's cost map, then a partial selection of the ``max_k`` cheapest pixels, sorted by cost
(ties broken by pixel index), so every k of a grid search is a prefix of one list. The raw uncertainty spread of
an estimate is the spread of its best-fitting pixels (:func:`spread_radii`), calibrated like every localizer's.
"""

from __future__ import annotations

import numpy as np

from radioloc.datasets.fit_cost import nearest_pixels as nearest_cost_pixels
from radioloc.datasets.fit_cost import report_levels, squared_residual_tables
from radioloc.datasets.localization import LocalizationData
from radioloc.errors import RadiolocError
from radioloc.localizers.base import Localizer, localization_errors
from radioloc.propagation.graylevel import DB_PER_GRAY

K_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
DELTA_GRID_DB = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
FIT_QUERIES = 6000  # training queries used by the grid searches
SPREAD_K = 32  # the raw uncertainty spread is measured on at least this many best-fitting pixels


def nearest_pixels(data: LocalizationData, max_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, max_k) pixel indices (row * W + col) sorted by cost, and their costs in dB^2."""
    q = data.queries
    tables = squared_residual_tables(report_levels(q.pathloss_db))
    idx, cost = nearest_cost_pixels(data.scenes.radio_maps, q.map_slot, q.bs_ids, tables, max_k)
    return idx, cost * np.float32(DB_PER_GRAY**2)


def prefix_centroids(idx: np.ndarray, width: int = 256) -> np.ndarray:
    """(n, K, 2) centroid of the first 1..K pixels of each sorted list."""
    rows = np.cumsum(idx // width, axis=1, dtype=np.float64)
    cols = np.cumsum(idx % width, axis=1, dtype=np.float64)
    counts = np.arange(1, idx.shape[1] + 1, dtype=np.float64)
    return np.stack([rows / counts, cols / counts], axis=-1)


def spread_radii(idx: np.ndarray, ks: np.ndarray, centres: np.ndarray, width: int = 256) -> np.ndarray:
    """(n, 2) raw 68 / 95 % radii: those percentiles of the distances from each estimate to its
    ``max(k, SPREAD_K)`` best-fitting pixels (the pixels kNN averaged and their nearest rivals)."""
    count = np.minimum(np.maximum(ks, SPREAD_K), idx.shape[1])
    distance = np.hypot(idx // width - centres[:, :1], idx % width - centres[:, 1:])
    distance = np.where(np.arange(idx.shape[1])[None, :] < count[:, None], distance, np.nan)
    return np.nanpercentile(distance, [68.0, 95.0], axis=1).T


def _fit_subset(train: LocalizationData, seed: int) -> LocalizationData:
    n = len(train.queries)
    pick = np.sort(np.random.default_rng(seed).choice(n, size=min(n, FIT_QUERIES), replace=False))
    return train.subset(pick)


def _grid_errors(data: LocalizationData, grid: tuple[int, ...]) -> np.ndarray:
    """(n, len(grid)) error in metres of each k of the grid."""
    idx, _ = nearest_pixels(data, max(grid))
    centroids = prefix_centroids(idx)[:, np.asarray(grid) - 1]
    truth = data.queries.position[:, None, :]
    return np.hypot(centroids[..., 0] - truth[..., 0], centroids[..., 1] - truth[..., 1])


def _locate_with_ks(data: LocalizationData, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of the ks[q] best pixels of each query, and their raw radii."""
    idx, _ = nearest_pixels(data, max(int(ks.max(initial=1)), SPREAD_K))
    centroids = prefix_centroids(idx)[np.arange(len(ks)), ks - 1]
    return centroids, spread_radii(idx, ks, centroids)


class KNNLocalizer(Localizer):
    name = "knn"

    def __init__(self, k: int | None = None, grid: tuple[int, ...] = K_GRID, seed: int = 0):
        super().__init__()
        self.k = k
        self.grid = grid
        self.seed = seed
        self.grid_mae: dict[int, float] = {}

    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:
        errors = _grid_errors(_fit_subset(train, self.seed), self.grid)
        self.grid_mae = {k: float(e) for k, e in zip(self.grid, errors.mean(axis=0))}
        self.k = min(self.grid_mae, key=self.grid_mae.get)

    def _locate(self, data: LocalizationData, heatmaps: bool):
        if self.k is None:
            raise RadiolocError("kNN: call fit first (or give k)")
        return (*_locate_with_ks(data, np.full(len(data.queries), self.k)), None)

    def describe(self) -> dict:
        return {"name": self.name, "k": self.k, "grid_mae_m": self.grid_mae}


class ConditionalKNNLocalizer(Localizer):
    """kNN Cond.: a k for each number of BSs above the noise floor at the UE (0..5)."""

    name = "knn-cond"

    def __init__(self, grid: tuple[int, ...] = K_GRID, seed: int = 0):
        super().__init__()
        self.grid = grid
        self.seed = seed
        self.k_by_count: dict[int, int] = {}
        self.k_default: int | None = None

    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:
        subset = _fit_subset(train, self.seed)
        errors = _grid_errors(subset, self.grid)
        self.k_default = self.grid[int(np.argmin(errors.mean(axis=0)))]
        counts = subset.queries.n_detectable()
        self.k_by_count = {int(c): self.grid[int(np.argmin(errors[counts == c].mean(axis=0)))] for c in np.unique(counts)}

    def _locate(self, data: LocalizationData, heatmaps: bool):
        if self.k_default is None:
            raise RadiolocError("kNN Cond.: call fit first")
        ks = np.array([self.k_by_count.get(int(c), self.k_default) for c in data.queries.n_detectable()], dtype=np.int64)
        return (*_locate_with_ks(data, ks), None)

    def describe(self) -> dict:
        return {"name": self.name, "k_by_detectable_bs": self.k_by_count, "k_default": self.k_default}


class AdaptiveKNNLocalizer(Localizer):
    """A k per query: the pixels whose RMS residual per BS is within ``delta_db`` of the best one's."""

    name = "adaptive-knn"

    def __init__(self, delta_db: float | None = None, max_k: int = 512, grid: tuple[float, ...] = DELTA_GRID_DB, seed: int = 0):
        super().__init__()
        self.delta_db = delta_db
        self.max_k = max_k
        self.grid = grid
        self.seed = seed
        self.grid_mae: dict[float, float] = {}
        self.mean_k = float("nan")

    def _ks(self, cost: np.ndarray, n_present: np.ndarray, delta_db: float) -> np.ndarray:
        rms = np.sqrt(cost / n_present[:, None])
        return np.maximum((rms <= rms[:, :1] + delta_db + 1e-6).sum(axis=1), 1)

    def _adaptive(self, data: LocalizationData, deltas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Estimates (n, len(deltas), 2), their ks (n, len(deltas)) and the sorted pixel lists."""
        idx, cost = nearest_pixels(data, self.max_k)
        centroids = prefix_centroids(idx)
        n_present = (data.queries.bs_ids >= 0).sum(axis=1)
        ks = np.stack([self._ks(cost, n_present, d) for d in deltas], axis=1)
        return centroids[np.arange(len(idx))[:, None], ks - 1], ks, idx

    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:
        subset = _fit_subset(train, self.seed)
        estimates, _, _ = self._adaptive(subset, self.grid)
        truth = subset.queries.position[:, None, :]
        mae = np.hypot(estimates[..., 0] - truth[..., 0], estimates[..., 1] - truth[..., 1]).mean(axis=0)
        self.grid_mae = {d: float(e) for d, e in zip(self.grid, mae)}
        self.delta_db = min(self.grid_mae, key=self.grid_mae.get)

    def _locate(self, data: LocalizationData, heatmaps: bool):
        if self.delta_db is None:
            raise RadiolocError("adaptive kNN: call fit first (or give delta_db)")
        estimates, ks, idx = self._adaptive(data, (self.delta_db,))
        self.mean_k = float(ks.mean()) if len(ks) else float("nan")
        return estimates[:, 0], spread_radii(idx, ks[:, 0], estimates[:, 0]), None

    def describe(self) -> dict:
        return {"name": self.name, "delta_db": self.delta_db, "max_k": self.max_k, "mean_k": self.mean_k, "grid_mae_m": self.grid_mae}


__all__ = ["KNNLocalizer", "ConditionalKNNLocalizer", "AdaptiveKNNLocalizer", "localization_errors", "nearest_pixels", "prefix_centroids"]

BASELINES = {"knn": KNNLocalizer, "knn-cond": ConditionalKNNLocalizer, "adaptive-knn": AdaptiveKNNLocalizer}


def make(name: str, options: tuple[str, ...] = ()) -> Localizer:
    """Registry factory: an unfitted baseline by name."""
    if name not in BASELINES:
        raise RadiolocError(f"unknown baseline {name!r} (choose from {', '.join(BASELINES)})")
    return BASELINES[name]()
