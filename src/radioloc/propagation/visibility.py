"""Cheap coarse geometry features for learned radio-map estimators, on a grid of ``fold`` x ``fold`` cells.

- :func:`obstruction_features`: for each cell, whether the straight line from the transmitter to the cell
  centre is free, and how many metres of it run through buildings (half-metre steps, nearest pixel).
- :func:`coarse_detour`: how much longer the way around the buildings is than the straight line, from a
  shortest-path search on the coarse grid.
- :func:`coarse_dominant_path_excess`: the dominant-path simulation itself on coarse cells (optionally on a
  shifted grid), as loss above free space.

The first two cost about 2.5 ms per map at 64 x 64 cells, know nothing of diffraction angles, and are off by a
few metres; the third gets the shadows' depth right and their edges wrong by up to a cell. They tell a small
network where line of sight ends and how deep the shadows are, which a CPU-sized UNet at coarse resolution
struggles to infer from the building map. Every function takes a batch and runs its maps on a thread per core.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from radioloc.propagation.geodesic import convex_corners, dominant_paths, heap_pop, heap_push, pad_with_wall

_POOL: ThreadPoolExecutor | None = None


def _each_map(work, count: int) -> None:
    """``work(k)`` for every map k of a batch, one thread per core: the numba kernels release the GIL, so a
    batch's features cost about 1 / cores of doing them one after the other."""
    global _POOL
    if count == 1 or (os.cpu_count() or 1) == 1:
        for k in range(count):
            work(k)
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=os.cpu_count(), thread_name_prefix="radioloc-features")
    for _ in _POOL.map(work, range(count)):
        pass


@nb.njit(cache=True, nogil=True)
def _obstruction(buildings, tx_row, tx_col, fold, out):
    h, w = buildings.shape
    g0 = h // fold
    g1 = w // fold
    offset = (fold - 1) / 2.0
    for gi in range(g0):
        for gj in range(g1):
            r = gi * fold + offset
            c = gj * fold + offset
            dr = r - tx_row
            dc = c - tx_col
            length = math.sqrt(dr * dr + dc * dc)
            steps = int(length / 0.5)
            blocked = 0
            for s in range(1, steps):
                t = s / steps
                i = int(math.floor(tx_row + t * dr + 0.5))
                j = int(math.floor(tx_col + t * dc + 0.5))
                if buildings[i, j] != 0:
                    blocked += 1
            out[0, gi, gj] = 1.0 if blocked == 0 else 0.0
            out[1, gi, gj] = min(blocked * 0.5 / 64.0, 1.0)


def obstruction_features(buildings: np.ndarray, tx_rows: np.ndarray, tx_cols: np.ndarray, fold: int) -> np.ndarray:
    """(B, 2, H/fold, W/fold) float32: line-of-sight indicator and metres of building on the direct line / 64
    (capped at 1), for a batch of building maps (B, H, W) and transmitter positions."""
    b, h, w = buildings.shape
    out = np.empty((b, 2, h // fold, w // fold), dtype=np.float32)
    _each_map(lambda k: _obstruction(buildings[k], float(tx_rows[k]), float(tx_cols[k]), fold, out[k]), b)
    return out


# Moves of the coarse search: 8 neighbours plus the 8 knight moves, so the grid metric is within 3 % of
# Euclidean (8 neighbours alone are off by up to 8 %).
_MOVES = np.array(
    [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1), (-1, -2), (-1, 2), (1, -2), (1, 2), (-2, -1), (-2, 1), (2, -1), (2, 1)],
    dtype=np.int64,
)


@nb.njit(cache=True, nogil=True)
def _coarse_geodesic(blocked, start_i, start_j, moves):
    """Shortest-path length (in cells) from the start cell over open cells; inf where unreachable."""
    g0, g1 = blocked.shape
    dist = np.full((g0, g1), np.inf)
    done = np.zeros((g0, g1), dtype=np.bool_)
    dist[start_i, start_j] = 0.0
    keys = np.empty(1024)
    vals = np.empty(1024, dtype=np.int64)
    keys, vals, size = heap_push(keys, vals, 0, 0.0, start_i * g1 + start_j)
    while size > 0:
        key, node, size = heap_pop(keys, vals, size)
        i = node // g1
        j = node % g1
        if done[i, j] or key > dist[i, j]:
            continue
        done[i, j] = True
        for m in range(moves.shape[0]):
            di = moves[m, 0]
            dj = moves[m, 1]
            ni = i + di
            nj = j + dj
            if ni < 0 or nj < 0 or ni >= g0 or nj >= g1 or blocked[ni, nj]:
                continue
            if abs(di) + abs(dj) == 3:  # a knight move must not cut through the cells it passes
                if blocked[i + (di // 2 if abs(di) == 2 else 0), j + (dj // 2 if abs(dj) == 2 else 0)]:
                    continue
                if blocked[i + (di if abs(di) == 1 else di // 2), j + (dj if abs(dj) == 1 else dj // 2)]:
                    continue
            elif abs(di) + abs(dj) == 2 and (blocked[i + di, j] and blocked[i, j + dj]):
                continue
            candidate = key + math.sqrt(di * di + dj * dj)
            if candidate < dist[ni, nj]:
                dist[ni, nj] = candidate
                keys, vals, size = heap_push(keys, vals, size, candidate, ni * g1 + nj)
    return dist


def coarse_detour(buildings: np.ndarray, tx_rows: np.ndarray, tx_cols: np.ndarray, fold: int) -> np.ndarray:
    """(B, 1, H/fold, W/fold) float32: how much longer the way around the buildings is than the straight line,
    on a coarse grid (a cell is blocked when at least 3/4 of it is building), in metres / 32, capped at 2.

    A rough stand-in for the dominant path's detour (4 m cells, grid metric within 3 %), about 1 ms per map."""
    b, h, w = buildings.shape
    g0, g1 = h // fold, w // fold
    occupancy = buildings.reshape(b, g0, fold, g1, fold).mean(axis=(2, 4))
    centres_r = (np.arange(g0) * fold + (fold - 1) / 2.0)[:, None]
    centres_c = (np.arange(g1) * fold + (fold - 1) / 2.0)[None, :]
    out = np.empty((b, 1, g0, g1), dtype=np.float32)

    def one_map(k: int) -> None:
        blocked = occupancy[k] >= 0.75
        si, sj = int(tx_rows[k]) // fold, int(tx_cols[k]) // fold
        blocked[si, sj] = False
        cells = _coarse_geodesic(blocked, si, sj, _MOVES) * fold
        straight = np.hypot(centres_r - tx_rows[k], centres_c - tx_cols[k])
        start_offset = math.hypot(si * fold + (fold - 1) / 2.0 - tx_rows[k], sj * fold + (fold - 1) / 2.0 - tx_cols[k])
        detour = np.where(np.isfinite(cells), cells + start_offset - straight, 64.0)
        out[k, 0] = np.clip(detour / 32.0, 0.0, 2.0)

    _each_map(one_map, b)
    return out


def cell_fraction(mask: np.ndarray, fold: int) -> np.ndarray:
    """(B, H/fold, W/fold) float32: the share of each fold x fold cell of a 0/1 mask (B, H, W) that is set.
    A sum of fold^2 strided views: 4x faster than a reshape and mean, and this runs for every map of a batch."""
    total = np.zeros((mask.shape[0], mask.shape[1] // fold, mask.shape[2] // fold), dtype=np.float32)
    for i in range(fold):
        for j in range(fold):
            total += mask[:, i::fold, j::fold]
    return total / np.float32(fold * fold)


def coarse_dominant_path_excess(
    buildings: np.ndarray,
    tx_rows: np.ndarray,
    tx_cols: np.ndarray,
    fold: int,
    diffraction_db_per_90deg: float = 30.0,
    blocked_fraction: float = 0.5,
    offset: int = 0,
) -> np.ndarray:
    """(B, 1, G, G) float32: the dominant-path loss above free space, in units of 30 dB (capped at 2),
    simulated on a grid of ``fold`` x ``fold`` cells (a cell is blocked when at least ``blocked_fraction`` of
    it is building). ``offset`` shifts the grid by that many pixels down and right (cell ``(a, b)`` then covers
    pixels from ``a * fold - offset``; what lies outside the map counts as building, the map edge being a wall);
    G = ceil((H + offset) / fold). :func:`cells_to_pixels` puts the cells back on the pixel grid.

    The exact shortest-path search of :mod:`radioloc.propagation.geodesic` on coarse cells: it gets the shadows'
    shape right and their edges wrong by up to a cell. About 2 ms per map on 4 m cells, 7 ms on 2 m cells (one
    core). Measured against the 1 m truth on 100 radio maps (outdoor pixels, gray grid): 2 m cells blocked from
    3/4 give 3.9 dB RMSE, from 1/2 5.4 dB (that closes narrow gaps), fully blocked only 4.8 dB; the mean of
    the grid and the grid shifted by one pixel 3.4 dB (their cell-edge errors fall in different places)."""
    b, h, w = buildings.shape
    g0, g1 = -(-(h + offset) // fold), -(-(w + offset) // fold)
    padded_map = np.ones((b, g0 * fold, g1 * fold), dtype=np.uint8)
    padded_map[:, offset : offset + h, offset : offset + w] = buildings != 0
    occupancy = cell_fraction(padded_map, fold)
    rows, cols = np.mgrid[0:g0, 0:g1]
    per_rad = diffraction_db_per_90deg / (math.pi / 2)
    out = np.empty((b, 1, g0, g1), dtype=np.float32)

    def one_map(k: int) -> None:
        blocked = (occupancy[k] >= blocked_fraction - 1e-9).astype(np.uint8)
        si, sj = (int(tx_rows[k]) + offset) // fold, (int(tx_cols[k]) + offset) // fold
        blocked[si, sj] = 0
        padded = pad_with_wall(blocked)
        length, deflection, _ = dominant_paths(padded, convex_corners(padded), si, sj, per_rad)
        straight = np.maximum(np.hypot(rows - si, cols - sj), 1.0)
        excess = 20.0 * np.log10(np.maximum(length, 1.0) / straight) + deflection
        excess = np.where(np.isfinite(excess), excess, 60.0)
        out[k, 0] = np.clip(excess / 30.0, 0.0, 2.0)

    _each_map(one_map, b)
    return out


def cells_to_pixels(cells: np.ndarray, fold: int, offset: int, size: int) -> np.ndarray:
    """(B, C, G, G) cell values of a grid shifted by ``offset`` -> (B, C, size, size), each pixel its cell's."""
    pixels = np.repeat(np.repeat(cells, fold, axis=2), fold, axis=3)
    return np.ascontiguousarray(pixels[:, :, offset : offset + size, offset : offset + size])
