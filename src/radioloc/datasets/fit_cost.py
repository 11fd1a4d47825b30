"""How well a pixel's radio-map values fit a query's reports: the one cost kernel of every localizer.

The cost of pixel ``x`` for a query is ``sum_j table_j[map_j(x)]`` over the query's BSs, where ``map_j(x)`` is
the gray level (0..255) of BS j's radio map at ``x`` as the localizer sees it and ``table_j`` a 256-entry cost
per gray level, built from the report of BS j:

- :func:`squared_residual_tables`: ``(g - level_j)^2`` in gray units, kNN's cost (the paper's sum of squared
  residuals);
- a calibrated likelihood (:mod:`radioloc.localizers.bayes`): ``-log p(report_j | map gray g)``.

Everything that ranks pixels by fit (kNN's search over a region, LocUNet's local refinement, its best-fit
input channel, the Bayesian grid posterior) calls :func:`pixel_cost` from its own numba loop, so the cost is
written once. It lives in ``datasets`` (beside the scenes and queries it reads) because both the network's input
encoder (``models``) and the localizers need it.

Maps are passed flat, ``(M, n_bs, H * W)`` uint8; ids -1 mark absent BSs.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from radioloc.propagation.graylevel import DB_PER_GRAY, NOISE_FLOOR_DB

GRAY_LEVELS = 256
CHUNK = 2048  # queries per call: bounds the (chunk, k, 256) cost tables to 10 MB


def report_levels(pathloss_db: np.ndarray) -> np.ndarray:
    """Reported pathloss (dB, NaN = absent) as fractional gray levels, float32 (0 = the noise floor)."""
    return ((np.asarray(pathloss_db, dtype=np.float64) - NOISE_FLOOR_DB) / DB_PER_GRAY).astype(np.float32)


def squared_residual_tables(levels: np.ndarray) -> np.ndarray:
    """(n, k, 256) float32 ``(g - level)^2`` in gray units for reports given as gray levels
    (:func:`report_levels`); zeros for absent BSs (NaN)."""
    levels = np.asarray(levels, dtype=np.float32)
    gray = np.arange(GRAY_LEVELS, dtype=np.float32)
    tables = (gray[None, None, :] - levels[..., None]) ** 2
    return np.where(np.isnan(tables), np.float32(0.0), tables).astype(np.float32)


def flat_maps(radio_maps: np.ndarray) -> np.ndarray:
    """(M, n_bs, H, W) -> (M, n_bs, H * W) view."""
    m, n_bs, h, w = radio_maps.shape
    return radio_maps.reshape(m, n_bs, h * w)


@nb.njit(inline="always")
def pixel_cost(maps, slot, ids, table, x):
    """Cost of flat pixel ``x`` of map ``slot`` for one query: ids (k,), table (k, 256)."""
    cost = np.float32(0.0)
    for j in range(ids.shape[0]):
        b = ids[j]
        if b >= 0:
            cost += table[j, maps[slot, b, x]]
    return cost


@nb.njit(inline="always")
def range_cost(lengths, slot, ids, ranges, inv_two_var, x):
    """Gaussian ToA cost ``sum_j (range_j - L_j(x))^2 / (2 sigma^2)`` of flat pixel ``x``: lengths (M, n_bs,
    H * W) float32 dominant-path lengths (NaN = no path there), ranges (k,) NaN where a BS gave none. A pixel no
    path reaches cannot explain a measured range: a large finite cost (weights stay well defined)."""
    cost = 0.0
    for j in range(ids.shape[0]):
        b = ids[j]
        if b >= 0 and not np.isnan(ranges[j]):
            length = lengths[slot, b, x]
            if np.isnan(length):
                cost += 1e6
            else:
                cost += (ranges[j] - length) ** 2 * inv_two_var
    return cost


@nb.njit(parallel=True, cache=True, nogil=True)
def _nearest_pixels(maps, slot, ids, tables, pixels, starts, ends, max_k, out_idx, out_cost):
    """Per query, its ``max_k`` candidates of lowest cost, sorted by cost then pixel index; the candidates of slot
    ``s`` are ``pixels[starts[s]:ends[s]]`` (ascending). Rows are filled beforehand with -1 / +inf (padding)."""
    for q in nb.prange(ids.shape[0]):
        s = slot[q]
        candidates = pixels[starts[s] : ends[s]]
        if max_k == 1:  # the best pixel alone (the first among ties): no cost array, no partition
            best, best_cost = -1, np.float32(np.inf)
            for x in candidates:
                c = pixel_cost(maps, s, ids[q], tables[q], x)
                if c < best_cost:
                    best, best_cost = x, c
            out_idx[q, 0], out_cost[q, 0] = best, best_cost
            continue
        count = candidates.shape[0]
        take = min(max_k, count)
        if take == 0:
            continue
        cost = np.empty(count, dtype=np.float32)
        for i in range(count):
            cost[i] = pixel_cost(maps, s, ids[q], tables[q], candidates[i])
        threshold = np.partition(cost, take - 1)[take - 1]
        chosen = np.empty(take, dtype=np.int64)  # positions in ``candidates``: those below the threshold, then ties
        n_chosen = 0
        for i in range(count):
            if cost[i] < threshold:
                chosen[n_chosen] = i
                n_chosen += 1
        for i in range(count):
            if n_chosen >= take:
                break
            if cost[i] == threshold:
                chosen[n_chosen] = i
                n_chosen += 1
        chosen_cost = cost[chosen]
        order = np.argsort(chosen_cost, kind="mergesort")
        for i in range(take):
            out_idx[q, i] = candidates[chosen[order[i]]]
            out_cost[q, i] = chosen_cost[order[i]]


def _candidates(n_slots: int, n_pixels: int, map_slot: np.ndarray, support: np.ndarray | None, mask: np.ndarray | None):
    """(pixels, starts, ends): slot ``s``'s candidates are ``pixels[starts[s]:ends[s]]``, ascending. The whole map
    and a support are one list every slot shares; a mask's lists are built for the queried slots only (a
    deployment has hundreds of windows, a block of queries a few of them)."""
    if mask is None:
        pixels = np.arange(n_pixels, dtype=np.int64) if support is None else np.ascontiguousarray(support, dtype=np.int64)
        return pixels, np.zeros(n_slots, dtype=np.int64), np.full(n_slots, len(pixels), dtype=np.int64)
    if support is not None:
        raise ValueError("give a support or a mask, not both")
    if mask.shape[0] != n_slots or mask[0].size != n_pixels:
        raise ValueError(f"a mask of shape {mask.shape} for {n_slots} slots of {n_pixels} pixels")
    used = np.unique(map_slot)
    regions = np.asarray(mask, dtype=bool).reshape(n_slots, n_pixels)[used]
    _, pixels = np.nonzero(regions)  # row-major: ascending within each slot
    counts = regions.sum(axis=1)
    starts, ends = np.zeros(n_slots, dtype=np.int64), np.zeros(n_slots, dtype=np.int64)
    ends[used] = np.cumsum(counts)
    starts[used] = ends[used] - counts
    return pixels.astype(np.int64), starts, ends


def nearest_pixels(radio_maps: np.ndarray, map_slot: np.ndarray, bs_ids: np.ndarray, tables: np.ndarray, max_k: int,
                   support: np.ndarray | None = None, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per query, the ``max_k`` candidate pixels of lowest cost, sorted by cost then pixel index: (n, max_k) flat
    pixel indices (int64) and their costs (float32, the tables' units); ``max_k`` at most the map's pixels.

    Candidates: every pixel of the map; ``support`` (flat pixel indices, ascending) the same pixels for every slot;
    or ``mask`` (M, H, W) or (M, H * W) bool, a region per slot. A pixel outside them is never chosen: a query whose
    slot has fewer than ``max_k`` candidates gets all of them, then -1 and +inf (padding, not a pixel)."""
    maps = flat_maps(radio_maps)
    n_slots, _, n_pixels = maps.shape
    slot = np.ascontiguousarray(map_slot, dtype=np.int64)
    pixels, starts, ends = _candidates(n_slots, n_pixels, slot, support, mask)
    width = min(max_k, n_pixels)
    n = len(slot)
    idx = np.full((n, width), -1, dtype=np.int64)
    cost = np.full((n, width), np.inf, dtype=np.float32)
    for start in range(0, n, CHUNK):
        part = slice(start, min(start + CHUNK, n))
        _nearest_pixels(maps, slot[part], np.ascontiguousarray(bs_ids[part], dtype=np.int64), np.ascontiguousarray(tables[part]),
                        pixels, starts, ends, width, idx[part], cost[part])  # fmt: skip
    return idx, cost


@nb.njit(parallel=True, cache=True, nogil=True)
def _best_in_disc(maps, buildings, slot, ids, tables, start, radius, k, width, out):
    n = ids.shape[0]
    h = buildings.shape[1] // width
    for q in nb.prange(n):
        best_cost = np.full(k, np.inf)
        best_row = np.zeros(k)
        best_col = np.zeros(k)
        r0, c0 = start[q, 0], start[q, 1]
        lo_i, hi_i = max(0, int(np.ceil(r0 - radius))), min(h - 1, int(np.floor(r0 + radius)))
        lo_j, hi_j = max(0, int(np.ceil(c0 - radius))), min(width - 1, int(np.floor(c0 + radius)))
        for i in range(lo_i, hi_i + 1):
            for j in range(lo_j, hi_j + 1):
                x = i * width + j
                if (i - r0) ** 2 + (j - c0) ** 2 > radius * radius or buildings[slot[q], x] != 0:
                    continue
                cost = pixel_cost(maps, slot[q], ids[q], tables[q], x)
                if cost >= best_cost[k - 1]:
                    continue
                pos = k - 1  # insertion into the sorted list of the k best so far (ties: the earlier pixel)
                while pos > 0 and best_cost[pos - 1] > cost:
                    best_cost[pos] = best_cost[pos - 1]
                    best_row[pos] = best_row[pos - 1]
                    best_col[pos] = best_col[pos - 1]
                    pos -= 1
                best_cost[pos] = cost
                best_row[pos] = i
                best_col[pos] = j
        count = 0
        row = 0.0
        col = 0.0
        for m in range(k):
            if best_cost[m] < np.inf:
                count += 1
                row += best_row[m]
                col += best_col[m]
        if count == 0:
            out[q, 0], out[q, 1] = r0, c0
        else:
            out[q, 0], out[q, 1] = row / count, col / count


def best_in_disc(
    radio_maps: np.ndarray, buildings: np.ndarray, map_slot: np.ndarray, bs_ids: np.ndarray, tables: np.ndarray, start: np.ndarray, radius_m: float, k: int
) -> np.ndarray:
    """(n, 2) centroid of the ``k`` outdoor pixels within ``radius_m`` of ``start`` of lowest cost; ``start``
    where the disc holds no outdoor pixel."""
    m, _, h, w = radio_maps.shape
    out = np.empty((len(start), 2), dtype=np.float64)
    _best_in_disc(flat_maps(radio_maps), buildings.reshape(m, h * w), np.asarray(map_slot, dtype=np.int64), np.asarray(bs_ids, dtype=np.int64),
                  np.ascontiguousarray(tables), np.ascontiguousarray(start, dtype=np.float64), float(radius_m), int(k), w, out)  # fmt: skip
    return out


@nb.njit(parallel=True, cache=True, nogil=True)
def _min_cost_per_cell(maps, slot, ids, tables, factor, width, out):
    n = ids.shape[0]
    cells = out.shape[1]
    for q in nb.prange(n):
        for ci in range(cells):
            for cj in range(cells):
                best = np.inf
                for di in range(factor):
                    for dj in range(factor):
                        cost = pixel_cost(maps, slot[q], ids[q], tables[q], (ci * factor + di) * width + cj * factor + dj)
                        if cost < best:
                            best = cost
                out[q, ci, cj] = best


def min_cost_per_cell(radio_maps: np.ndarray, map_slot: np.ndarray, bs_ids: np.ndarray, tables: np.ndarray, factor: int) -> np.ndarray:
    """(n, S, S) float32: per ``factor`` x ``factor`` cell, the cost of its best-fitting pixel."""
    width = radio_maps.shape[-1]
    cells = width // factor
    out = np.empty((len(map_slot), cells, cells), dtype=np.float32)
    _min_cost_per_cell(
        flat_maps(radio_maps), np.asarray(map_slot, dtype=np.int64), np.asarray(bs_ids, dtype=np.int64), np.ascontiguousarray(tables), factor, width, out
    )
    return out


@nb.njit(parallel=True, cache=True, nogil=True)
def _relative_cost_maps(maps, slot, ids, tables, mask, out):
    for q in nb.prange(ids.shape[0]):
        s = slot[q]
        lowest = np.inf
        for x in range(maps.shape[2]):
            if mask[s, x]:
                cost = pixel_cost(maps, s, ids[q], tables[q], x)
                out[q, x] = cost
                if cost < lowest:
                    lowest = cost
            else:
                out[q, x] = np.inf
        for x in range(maps.shape[2]):
            out[q, x] -= lowest


def relative_cost_maps(radio_maps: np.ndarray, map_slot: np.ndarray, bs_ids: np.ndarray, tables: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, H, W) float32 cost of every pixel of ``mask`` (M, H, W) for each query, minus the query's lowest one
    (so the best pixel is at 0); infinity outside the mask."""
    m, _, h, w = radio_maps.shape
    out = np.empty((len(map_slot), h * w), dtype=np.float32)
    _relative_cost_maps(flat_maps(radio_maps), np.asarray(map_slot, dtype=np.int64), np.asarray(bs_ids, dtype=np.int64), np.ascontiguousarray(tables),
                        np.ascontiguousarray(mask.reshape(m, h * w)), out)  # fmt: skip
    return out.reshape(len(map_slot), h, w)
