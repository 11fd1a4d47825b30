"""kNN fingerprinting on radio maps, as the LocUNet paper's baselines (notes, section 5).

For a query, every candidate pixel gets the cost ``sum_j (map_j(pixel) - p_j)^2`` over the query's BSs (the
radio maps the localizer sees, in dB, the noise floor where not detectable; the reported pathloss, the noise
floor for a BS that is not detectable). The estimate is the centroid of the k cheapest pixels.

The candidates are a region (``region``, registry option ``:region=``, one of
:data:`radioloc.datasets.protocol.UE_REGIONS`). The paper searched the whole grid, building pixels included.
radioloc's default, ``ue-box``, searches the outdoor pixels of the middle 164 x 164 m where the protocol places
every UE: the support of the Bayesian localizer's default prior and where LocUNet's training UEs lie, so every
method has the same prior knowledge and a comparison measures the fit, not the search area. ``:region=map``
reproduces the paper; ``outdoor`` is every outdoor pixel of the map.

- :class:`KNNLocalizer`: one k, by grid search on the training split.
- :class:`ConditionalKNNLocalizer` ("kNN Cond."): one k per number of BSs above the noise floor at the UE.
- :class:`AdaptiveKNNLocalizer`: a k per query, every pixel whose RMS residual per BS is within ``delta_db``
  of the best pixel's (at most ``max_k``), with ``delta_db`` by grid search. The paper's reference [60] is not
  in our copy of the paper; this is our reading of "adaptive kNN": the neighbourhood grows where many pixels fit
  about equally well and shrinks to the few best ones where the fit is sharp.

The grid searches extend themselves, so that a fitted value is never an artefact of where a grid happened to
end: while the best value is the grid's last, the grid grows upward along its 1 - 1.5 - 2 geometric pattern and
the search runs again, until the best value lies inside the grid or takes every pixel of the region. Adaptive
kNN's cap ``max_k`` grows too while it, not ``delta_db``, sets the k of a training query at the best delta.
``describe()`` gives the final grid and where the optimum lies (:func:`optimum`).

The search is the shared cost kernel (:mod:`radioloc.datasets.fit_cost`) with squared-residual tables and the
region as a mask, parallel over queries: each query's cost map, then a partial selection of the ``max_k``
cheapest pixels, sorted by cost (ties broken by pixel index), so every k of a grid search is a prefix of one
list. The lists are made a block of queries at a time: a k near a region's ~20,000 pixels would otherwise hold
gigabytes of them. The raw uncertainty spread of an estimate is the spread of its best-fitting pixels
(:func:`spread_radii`), calibrated like every localizer's.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from radioloc.datasets.fit_cost import nearest_pixels as nearest_cost_pixels
from radioloc.datasets.fit_cost import report_levels, squared_residual_tables
from radioloc.datasets.localization import LocalizationData
from radioloc.datasets.protocol import check_region, ue_region
from radioloc.errors import RadiolocError
from radioloc.localizers.base import Localizer, localization_errors
from radioloc.propagation.graylevel import DB_PER_GRAY

K_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
DELTA_GRID_DB = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
FIT_QUERIES = 6000  # training queries used by the grid searches
SPREAD_K = 32  # the raw uncertainty spread is measured on at least this many best-fitting pixels
DEFAULT_REGION = "ue-box"  # the Bayesian localizer's default prior (LikelihoodConfig.prior)
BLOCK_ENTRIES = 1 << 21  # pixel-list entries (queries x max_k) held at once: ~150 MB with their prefix centroids
MAX_K_GROWTH = 4  # adaptive kNN's cap grows by this factor per round: few rounds, each recomputes every cost


# -- the region and the sorted pixel lists -----------------------------------------------------------------------
def _region(data: LocalizationData, region: str) -> tuple[np.ndarray | None, np.ndarray]:
    """The region's mask (M, H, W) (None for the whole map: no mask to build) and (n,) the number of its pixels
    in each query's map; a one-line error where a query's map has none."""
    buildings = data.scenes.buildings
    mask = None if region == "map" else ue_region(buildings, region)
    sizes = np.full(len(buildings), buildings[0].size) if mask is None else mask.reshape(len(mask), -1).sum(axis=1)
    per_query = sizes[data.queries.map_slot]
    if (per_query == 0).any():
        raise RadiolocError(f"kNN: map slot {int(data.queries.map_slot[per_query == 0][0])} has no pixel in region {region!r}")
    return mask, per_query


def _per_block(data: LocalizationData, max_k: int, region: str, compute: Callable) -> tuple[np.ndarray, ...]:
    """``compute(part, idx, cost)`` on the sorted lists of the ``max_k`` best region pixels of the queries of
    ``part`` (a slice), a block of at most ``BLOCK_ENTRIES`` list entries at a time; the blocks' arrays
    concatenated. ``max_k`` is cut to the largest region of the queries' maps: beyond, every entry is padding."""
    mask, sizes = _region(data, region)
    max_k = int(min(max_k, sizes.max(initial=1)))
    q = data.queries
    step = max(1, BLOCK_ENTRIES // max_k)
    results = []
    for start in range(0, max(len(q), 1), step):
        part = slice(start, start + step)
        tables = squared_residual_tables(report_levels(q.pathloss_db[part]))
        idx, cost = nearest_cost_pixels(data.scenes.radio_maps, q.map_slot[part], q.bs_ids[part], tables, max_k, mask=mask)
        results.append(compute(part, idx, cost * np.float32(DB_PER_GRAY**2)))
    return tuple(np.concatenate(arrays) for arrays in zip(*results))


def nearest_pixels(data: LocalizationData, max_k: int, region: str = DEFAULT_REGION) -> tuple[np.ndarray, np.ndarray]:
    """(n, max_k) pixel indices (row * W + col) of the region sorted by cost, and their costs in dB^2; -1 and
    +inf past the end of a smaller region (``max_k`` at most the largest region of the queries' maps)."""
    return _per_block(data, max_k, region, lambda part, idx, cost: (idx, cost))


def prefix_centroids(idx: np.ndarray, width: int = 256) -> np.ndarray:
    """(n, K, 2) centroid of the first 1..K pixels of each sorted list. Padding (-1) adds nothing: a prefix
    longer than a map's region is the centroid of the whole region."""
    valid = idx >= 0
    rows = np.cumsum(np.where(valid, idx // width, 0), axis=1, dtype=np.float64)
    cols = np.cumsum(np.where(valid, idx % width, 0), axis=1, dtype=np.float64)
    counts = np.cumsum(valid, axis=1, dtype=np.float64)
    return np.stack([rows / counts, cols / counts], axis=-1)


def spread_radii(idx: np.ndarray, ks: np.ndarray, centres: np.ndarray, width: int = 256) -> np.ndarray:
    """(n, 2) raw 68 / 95 % radii: those percentiles of the distances from each estimate to its
    ``max(k, SPREAD_K)`` best-fitting pixels (the pixels kNN averaged and their nearest rivals)."""
    count = np.minimum(np.maximum(ks, SPREAD_K), idx.shape[1])
    distance = np.hypot(idx // width - centres[:, :1], idx % width - centres[:, 1:])
    keep = (np.arange(idx.shape[1])[None, :] < count[:, None]) & (idx >= 0)
    return np.nanpercentile(np.where(keep, distance, np.nan), [68.0, 95.0], axis=1).T


def _distances(estimates: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(n, G) metres from estimates (n, G, 2) to the truth (n, 2)."""
    return np.hypot(estimates[..., 0] - truth[:, None, 0], estimates[..., 1] - truth[:, None, 1])


# -- self-extending grid searches --------------------------------------------------------------------------------
def optimum(grid: tuple, mae: np.ndarray, floor: float, saturated: bool) -> tuple[float, str]:
    """The grid's value of lowest MAE and where it lies: ``interior``; ``minimum``, the smallest value there is
    (``floor``: k 1, delta 0; a bound, not an edge); ``region-size``, the grid's last value and ``saturated`` (it
    takes every pixel of the region: nothing lies beyond); else ``grid-edge`` (a value past it might be better)."""
    i = int(np.argmin(mae))
    if i == len(grid) - 1 and saturated:
        return grid[i], "region-size"
    if i == 0 and grid[0] == floor:
        return grid[i], "minimum"
    return grid[i], "grid-edge" if i in (0, len(grid) - 1) else "interior"


def _beyond_top(grid: tuple, value: float, where: str) -> bool:
    """Whether the optimum is the grid's last value and a larger one might be better: the search goes on."""
    return where == "grid-edge" and value == grid[-1]


def _grown(top: float, cap: float, integer: bool) -> tuple:
    """One round of a grid's extension: the values of the 1 - 1.5 - 2 geometric pattern (..., 2, 3, 4, 6, 8, ...)
    above ``top`` up to twice it, the last cut to ``cap``."""
    values = [top]
    while values[-1] < min(2 * top, cap):
        power = 2.0 ** math.floor(math.log2(values[-1]))
        step = 1.5 * power if values[-1] < 1.5 * power else 2.0 * power
        values.append(min(math.ceil(step) if integer else step, cap))
    return tuple(values[1:])


def _grid_errors(data: LocalizationData, grid: tuple[int, ...], region: str) -> np.ndarray:
    """(n, len(grid)) error in metres of each k of the grid (a k beyond a map's region: the whole region)."""
    truth = data.queries.position

    def block(part, idx, cost):
        return (_distances(prefix_centroids(idx)[:, np.minimum(grid, idx.shape[1]) - 1], truth[part]),)

    return _per_block(data, max(grid), region, block)[0]


def _search_ks(data: LocalizationData, grid: tuple[int, ...], region: str, groups: list) -> tuple[tuple[int, ...], np.ndarray, int]:
    """The k grid (values past the region's size cut to it), extended while some group of queries (an index into
    them) finds its best k at the grid's last value; its per-query errors (n, len(grid)); the region's size, the
    most region pixels of a map (the largest k that differs from a smaller one)."""
    limit = int(_region(data, region)[1].max())
    grid = tuple(sorted({min(int(k), limit) for k in grid}))
    while True:
        errors = _grid_errors(data, grid, region)
        if not any(_beyond_top(grid, *optimum(grid, errors[g].mean(axis=0), 1, grid[-1] >= limit)) for g in groups):
            return grid, errors, limit
        grid += _grown(grid[-1], limit, integer=True)


def _fit_subset(train: LocalizationData, seed: int) -> LocalizationData:
    n = len(train.queries)
    pick = np.sort(np.random.default_rng(seed).choice(n, size=min(n, FIT_QUERIES), replace=False))
    return train.subset(pick)


def _locate_with_ks(data: LocalizationData, ks: np.ndarray, region: str) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of the ks[q] best region pixels of each query, and their raw radii."""

    def block(part, idx, cost):
        k = ks[part]
        centroids = prefix_centroids(idx)[np.arange(len(k)), np.minimum(k, idx.shape[1]) - 1]
        return centroids, spread_radii(idx, k, centroids)

    return _per_block(data, max(int(ks.max(initial=1)), SPREAD_K), region, block)


def _search_report(name: str, grid: tuple, *wheres: str | None) -> dict:
    """describe()'s account of a grid search: the final grid, and whether an optimum sits at a grid edge."""
    return {"grid": list(grid), f"{name}_at_grid_edge": None if None in wheres else "grid-edge" in wheres}


# -- the localizers ----------------------------------------------------------------------------------------------
class KNNLocalizer(Localizer):
    name = "knn"

    def __init__(self, k: int | None = None, grid: tuple[int, ...] = K_GRID, seed: int = 0, region: str = DEFAULT_REGION):
        super().__init__()
        self.k = k
        self.grid = tuple(grid)
        self.seed = seed
        self.region = check_region(region, "kNN region")
        self.grid_mae: dict[int, float] = {}
        self.k_optimum: str | None = None  # where the fitted k lies in its grid (see optimum)
        self.region_pixels: int | None = None

    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:
        subset = _fit_subset(train, self.seed)
        self.grid, errors, self.region_pixels = _search_ks(subset, self.grid, self.region, [slice(None)])
        mae = errors.mean(axis=0)
        self.grid_mae = {k: float(e) for k, e in zip(self.grid, mae)}
        self.k, self.k_optimum = optimum(self.grid, mae, 1, self.grid[-1] >= self.region_pixels)

    def _locate(self, data: LocalizationData, heatmaps: bool):
        if self.k is None:
            raise RadiolocError("kNN: call fit first (or give k)")
        return (*_locate_with_ks(data, np.full(len(data.queries), self.k), self.region), None)

    def describe(self) -> dict:
        return {"name": self.name, "region": self.region, "region_pixels": self.region_pixels, "k": self.k, "k_optimum": self.k_optimum,
                **_search_report("k", self.grid, self.k_optimum), "grid_mae_m": self.grid_mae}  # fmt: skip


class ConditionalKNNLocalizer(Localizer):
    """kNN Cond.: a k for each number of BSs above the noise floor at the UE (0..5)."""

    name = "knn-cond"

    def __init__(self, grid: tuple[int, ...] = K_GRID, seed: int = 0, region: str = DEFAULT_REGION):
        super().__init__()
        self.grid = tuple(grid)
        self.seed = seed
        self.region = check_region(region, "kNN Cond. region")
        self.k_by_count: dict[int, int] = {}
        self.optimum_by_count: dict[int, str] = {}
        self.k_default: int | None = None
        self.k_optimum: str | None = None
        self.region_pixels: int | None = None

    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:
        subset = _fit_subset(train, self.seed)
        counts = subset.queries.n_detectable()
        groups = {int(c): counts == c for c in np.unique(counts)}
        self.grid, errors, self.region_pixels = _search_ks(subset, self.grid, self.region, [slice(None), *groups.values()])
        saturated = self.grid[-1] >= self.region_pixels
        self.k_default, self.k_optimum = optimum(self.grid, errors.mean(axis=0), 1, saturated)
        fitted = {c: optimum(self.grid, errors[g].mean(axis=0), 1, saturated) for c, g in groups.items()}
        self.k_by_count = {c: k for c, (k, _) in fitted.items()}
        self.optimum_by_count = {c: where for c, (_, where) in fitted.items()}

    def _locate(self, data: LocalizationData, heatmaps: bool):
        if self.k_default is None:
            raise RadiolocError("kNN Cond.: call fit first")
        ks = np.array([self.k_by_count.get(int(c), self.k_default) for c in data.queries.n_detectable()], dtype=np.int64)
        return (*_locate_with_ks(data, ks, self.region), None)

    def describe(self) -> dict:
        return {"name": self.name, "region": self.region, "region_pixels": self.region_pixels, "k_by_detectable_bs": self.k_by_count,
                "k_optimum_by_detectable_bs": self.optimum_by_count, "k_default": self.k_default, "k_optimum": self.k_optimum,
                **_search_report("k", self.grid, self.k_optimum, *self.optimum_by_count.values())}  # fmt: skip


class AdaptiveKNNLocalizer(Localizer):
    """A k per query: the pixels whose RMS residual per BS is within ``delta_db`` of the best one's."""

    name = "adaptive-knn"

    def __init__(self, delta_db: float | None = None, max_k: int = 512, grid: tuple[float, ...] = DELTA_GRID_DB, seed: int = 0,
                 region: str = DEFAULT_REGION):  # fmt: skip
        super().__init__()
        self.delta_db = delta_db
        self.max_k = max_k
        self.grid = tuple(grid)
        self.seed = seed
        self.region = check_region(region, "adaptive kNN region")
        self.grid_mae: dict[float, float] = {}
        self.delta_optimum: str | None = None
        self.region_pixels: int | None = None
        self.mean_k = float("nan")

    @staticmethod
    def _ks(cost: np.ndarray, n_present: np.ndarray, delta_db: float) -> np.ndarray:
        rms = np.sqrt(cost / n_present[:, None])  # padding (+inf) is never within delta
        return np.maximum((rms <= rms[:, :1] + delta_db + 1e-6).sum(axis=1), 1)

    def _estimates(self, idx: np.ndarray, cost: np.ndarray, n_present: np.ndarray, deltas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Estimates (b, len(deltas), 2) and their ks (b, len(deltas)) from a block's sorted pixel lists."""
        ks = np.stack([self._ks(cost, n_present, d) for d in deltas], axis=1)
        return prefix_centroids(idx)[np.arange(len(idx))[:, None], ks - 1], ks

    def _grid_errors(self, data: LocalizationData, grid: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Errors in metres and ks, both (n, len(grid)), of each delta of the grid with the current ``max_k``."""
        truth, n_present = data.queries.position, (data.queries.bs_ids >= 0).sum(axis=1)

        def block(part, idx, cost):
            estimates, ks = self._estimates(idx, cost, n_present[part], grid)
            return _distances(estimates, truth[part]), ks

        return _per_block(data, self.max_k, self.region, block)

    def _fit(self, train: LocalizationData, val: LocalizationData | None) -> None:
        subset = _fit_subset(train, self.seed)
        sizes = _region(subset, self.region)[1]
        limit = int(sizes.max())
        self.max_k = min(self.max_k, limit)
        grid = self.grid
        while True:
            errors, ks = self._grid_errors(subset, grid)
            mae = errors.mean(axis=0)
            # the last delta saturates when it takes every pixel of each query's region: no larger delta differs
            delta, where = optimum(grid, mae, 0.0, bool((ks[:, -1] >= sizes).all()))
            if self.max_k < limit and (ks[:, grid.index(delta)] >= self.max_k).any():
                self.max_k = min(MAX_K_GROWTH * self.max_k, limit)  # the cap, not delta, set some k: lift it and search again
            elif _beyond_top(grid, delta, where):
                grid += _grown(grid[-1], math.inf, integer=False)
            else:
                break
        self.grid, self.delta_db, self.delta_optimum, self.region_pixels = grid, delta, where, limit
        self.grid_mae = {d: float(e) for d, e in zip(grid, mae)}

    def _locate(self, data: LocalizationData, heatmaps: bool):
        if self.delta_db is None:
            raise RadiolocError("adaptive kNN: call fit first (or give delta_db)")
        n_present = (data.queries.bs_ids >= 0).sum(axis=1)

        def block(part, idx, cost):
            estimates, ks = self._estimates(idx, cost, n_present[part], (self.delta_db,))
            return estimates[:, 0], ks[:, 0], spread_radii(idx, ks[:, 0], estimates[:, 0])

        positions, ks, radii = _per_block(data, self.max_k, self.region, block)
        self.mean_k = float(ks.mean()) if len(ks) else float("nan")
        return positions, radii, None

    def describe(self) -> dict:
        return {"name": self.name, "region": self.region, "region_pixels": self.region_pixels, "delta_db": self.delta_db, "delta_optimum": self.delta_optimum,
                **_search_report("delta", self.grid, self.delta_optimum), "max_k": self.max_k, "mean_k": self.mean_k, "grid_mae_m": self.grid_mae}  # fmt: skip


__all__ = ["KNNLocalizer", "ConditionalKNNLocalizer", "AdaptiveKNNLocalizer", "localization_errors", "nearest_pixels", "prefix_centroids"]

BASELINES = {"knn": KNNLocalizer, "knn-cond": ConditionalKNNLocalizer, "adaptive-knn": AdaptiveKNNLocalizer}


def make(name: str, options: tuple[str, ...] = ()) -> Localizer:
    """Registry factory: an unfitted baseline by name; ``region=REGION`` the pixels searched (default ue-box)."""
    if name not in BASELINES:
        raise RadiolocError(f"unknown baseline {name!r} (choose from {', '.join(BASELINES)})")
    region = DEFAULT_REGION
    for option in options:
        key, _, value = option.partition("=")
        if key != "region":
            raise RadiolocError(f"--model {name}:{option}: unknown option (options: region=REGION)")
        region = check_region(value, f"--model {name}:{option}: the region")
    return BASELINES[name](region=region)
