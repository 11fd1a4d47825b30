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

The search itself is one numba kernel, parallel over queries: each query's cost map, then a partial selection
of the ``max_k`` cheapest pixels, sorted by cost (ties broken by pixel index), so every k of a grid search is a
prefix of one list.
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np

from radioloc.datasets.localization import LocalizationData
from radioloc.errors import RadiolocError
from radioloc.models.localizer import Localizer, localization_errors
from radioloc.propagation.graylevel import DB_PER_GRAY, NOISE_FLOOR_DB

K_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
DELTA_GRID_DB = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
FIT_QUERIES = 6000  # training queries used by the grid searches


@nb.njit(parallel=True, cache=True)
def _nearest_pixels(maps, slot, ids, levels, max_k, out_idx, out_cost):
    """For each query: the ``max_k`` pixels of lowest cost, by cost then index. maps (M, n_bs, P) uint8 gray,
    levels (n, k) float32 reported gray level (NaN = absent)."""
    n, k = ids.shape
    n_pixels = maps.shape[2]
    for q in nb.prange(n):
        cost = np.zeros(n_pixels, dtype=np.float32)
        for j in range(k):
            b = ids[q, j]
            if b < 0:
                continue
            level = levels[q, j]
            radio_map = maps[slot[q], b]
            for x in range(n_pixels):
                d = np.float32(radio_map[x]) - level
                cost[x] += d * d
        threshold = np.partition(cost, max_k - 1)[max_k - 1]
        chosen = np.empty(max_k, dtype=np.int64)
        count = 0
        for x in range(n_pixels):
            if cost[x] < threshold:
                chosen[count] = x
                count += 1
        for x in range(n_pixels):
            if count >= max_k:
                break
            if cost[x] == threshold:
                chosen[count] = x
                count += 1
        chosen_cost = cost[chosen]
        order = np.argsort(chosen_cost, kind="mergesort")
        for i in range(max_k):
            out_idx[q, i] = chosen[order[i]]
            out_cost[q, i] = chosen_cost[order[i]]


def nearest_pixels(data: LocalizationData, max_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, max_k) pixel indices (row * W + col) sorted by cost, and their costs in dB^2."""
    scenes, queries = data.scenes, data.queries
    m, n_bs, h, w = scenes.radio_maps.shape
    max_k = min(max_k, h * w)
    levels = ((queries.pathloss_db - NOISE_FLOOR_DB) / DB_PER_GRAY).astype(np.float32)
    idx = np.empty((len(queries), max_k), dtype=np.int64)
    cost = np.empty((len(queries), max_k), dtype=np.float32)
    _nearest_pixels(scenes.radio_maps.reshape(m, n_bs, h * w), queries.map_slot, queries.bs_ids, levels, max_k, idx, cost)
    return idx, cost * np.float32(DB_PER_GRAY**2)


def prefix_centroids(idx: np.ndarray, width: int = 256) -> np.ndarray:
    """(n, K, 2) centroid of the first 1..K pixels of each sorted list."""
    rows = np.cumsum(idx // width, axis=1, dtype=np.float64)
    cols = np.cumsum(idx % width, axis=1, dtype=np.float64)
    counts = np.arange(1, idx.shape[1] + 1, dtype=np.float64)
    return np.stack([rows / counts, cols / counts], axis=-1)


def _fit_subset(train: LocalizationData, seed: int) -> LocalizationData:
    n = len(train.queries)
    if n == 0:
        raise RadiolocError("kNN: the training split has no queries")
    pick = np.sort(np.random.default_rng(seed).choice(n, size=min(n, FIT_QUERIES), replace=False))
    return train.subset(pick)


def _grid_errors(data: LocalizationData, grid: tuple[int, ...]) -> np.ndarray:
    """(n, len(grid)) error in metres of each k of the grid."""
    idx, _ = nearest_pixels(data, max(grid))
    centroids = prefix_centroids(idx)[:, np.asarray(grid) - 1]
    truth = data.queries.position[:, None, :]
    return np.hypot(centroids[..., 0] - truth[..., 0], centroids[..., 1] - truth[..., 1])


class _TimedPredict:
    ms_per_query: float = float("nan")

    def _timed(self, data: LocalizationData, fn) -> np.ndarray:
        start = time.perf_counter()
        result = fn(data)
        self.ms_per_query = 1000.0 * (time.perf_counter() - start) / max(len(data.queries), 1)
        return result


class KNNLocalizer(_TimedPredict, Localizer):
    name = "knn"

    def __init__(self, k: int | None = None, grid: tuple[int, ...] = K_GRID, seed: int = 0):
        self.k = k
        self.grid = grid
        self.seed = seed
        self.grid_mae: dict[int, float] = {}

    def fit(self, train: LocalizationData, val: LocalizationData | None = None) -> "KNNLocalizer":
        errors = _grid_errors(_fit_subset(train, self.seed), self.grid)
        self.grid_mae = {k: float(e) for k, e in zip(self.grid, errors.mean(axis=0))}
        self.k = min(self.grid_mae, key=self.grid_mae.get)
        return self

    def predict(self, data: LocalizationData) -> np.ndarray:
        if self.k is None:
            raise RadiolocError("kNN: call fit first (or give k)")
        return self._timed(data, lambda d: prefix_centroids(nearest_pixels(d, self.k)[0])[:, -1])

    def describe(self) -> dict:
        return {"name": self.name, "k": self.k, "grid_mae_m": self.grid_mae}


class ConditionalKNNLocalizer(_TimedPredict, Localizer):
    """kNN Cond.: a k for each number of BSs above the noise floor at the UE (0..5)."""

    name = "knn-cond"

    def __init__(self, grid: tuple[int, ...] = K_GRID, seed: int = 0):
        self.grid = grid
        self.seed = seed
        self.k_by_count: dict[int, int] = {}
        self.k_default: int | None = None

    def fit(self, train: LocalizationData, val: LocalizationData | None = None) -> "ConditionalKNNLocalizer":
        subset = _fit_subset(train, self.seed)
        errors = _grid_errors(subset, self.grid)
        self.k_default = self.grid[int(np.argmin(errors.mean(axis=0)))]
        counts = subset.queries.n_detectable()
        self.k_by_count = {int(c): self.grid[int(np.argmin(errors[counts == c].mean(axis=0)))] for c in np.unique(counts)}
        return self

    def predict(self, data: LocalizationData) -> np.ndarray:
        if self.k_default is None:
            raise RadiolocError("kNN Cond.: call fit first")

        def run(d: LocalizationData) -> np.ndarray:
            ks = np.array([self.k_by_count.get(int(c), self.k_default) for c in d.queries.n_detectable()])
            centroids = prefix_centroids(nearest_pixels(d, int(ks.max()))[0])
            return centroids[np.arange(len(ks)), ks - 1]

        return self._timed(data, run)

    def describe(self) -> dict:
        return {"name": self.name, "k_by_detectable_bs": self.k_by_count, "k_default": self.k_default}


class AdaptiveKNNLocalizer(_TimedPredict, Localizer):
    """A k per query: the pixels whose RMS residual per BS is within ``delta_db`` of the best one's."""

    name = "adaptive-knn"

    def __init__(self, delta_db: float | None = None, max_k: int = 512, grid: tuple[float, ...] = DELTA_GRID_DB, seed: int = 0):
        self.delta_db = delta_db
        self.max_k = max_k
        self.grid = grid
        self.seed = seed
        self.grid_mae: dict[float, float] = {}
        self.mean_k = float("nan")

    def _ks(self, cost: np.ndarray, n_present: np.ndarray, delta_db: float) -> np.ndarray:
        rms = np.sqrt(cost / n_present[:, None])
        return np.maximum((rms <= rms[:, :1] + delta_db + 1e-6).sum(axis=1), 1)

    def _locate(self, data: LocalizationData, deltas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        idx, cost = nearest_pixels(data, self.max_k)
        centroids = prefix_centroids(idx)
        n_present = (data.queries.bs_ids >= 0).sum(axis=1)
        ks = np.stack([self._ks(cost, n_present, d) for d in deltas], axis=1)  # (n, len(deltas))
        return centroids[np.arange(len(idx))[:, None], ks - 1], ks

    def fit(self, train: LocalizationData, val: LocalizationData | None = None) -> "AdaptiveKNNLocalizer":
        subset = _fit_subset(train, self.seed)
        estimates, _ = self._locate(subset, self.grid)
        truth = subset.queries.position[:, None, :]
        mae = np.hypot(estimates[..., 0] - truth[..., 0], estimates[..., 1] - truth[..., 1]).mean(axis=0)
        self.grid_mae = {d: float(e) for d, e in zip(self.grid, mae)}
        self.delta_db = min(self.grid_mae, key=self.grid_mae.get)
        return self

    def predict(self, data: LocalizationData) -> np.ndarray:
        if self.delta_db is None:
            raise RadiolocError("adaptive kNN: call fit first (or give delta_db)")

        def run(d: LocalizationData) -> np.ndarray:
            estimates, ks = self._locate(d, (self.delta_db,))
            self.mean_k = float(ks.mean())
            return estimates[:, 0]

        return self._timed(data, run)

    def describe(self) -> dict:
        return {"name": self.name, "delta_db": self.delta_db, "max_k": self.max_k, "mean_k": self.mean_k, "grid_mae_m": self.grid_mae}


BASELINES = {"knn": KNNLocalizer, "knn-cond": ConditionalKNNLocalizer, "adaptive-knn": AdaptiveKNNLocalizer}


def make_baseline(name: str) -> Localizer:
    if name not in BASELINES:
        raise RadiolocError(f"unknown baseline {name!r} (choose from {', '.join(BASELINES)})")
    return BASELINES[name]()


__all__ = ["KNNLocalizer", "ConditionalKNNLocalizer", "AdaptiveKNNLocalizer", "make_baseline", "localization_errors"]
