"""Perturbed localization data for the paper's robustness studies (Sec. V-E):

- :func:`noisy_positions` (Table VI): the training labels off by Gaussian noise, as when the positions of a
  collected training set are themselves measured;
- :func:`distorted_reports` (Table VII): for each BS of a query, the pathloss the UE reports is read at the UE
  position plus Gaussian noise (rounded to a pixel, redrawn while it falls in a building or off the map), while
  the localizer knows only the true position: the paper's stand-in for BSs whose position is uncertain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radioloc.datasets import layout
from radioloc.datasets.localization import LocalizationData, Queries
from radioloc.errors import RadiolocError
from radioloc.propagation.graylevel import gray_to_db32

MAX_REDRAWS = 1000


def _check_sigma(sigma_m: float) -> None:
    if not np.isfinite(sigma_m) or sigma_m < 0:
        raise RadiolocError(f"noise sigma must be >= 0 m, got {sigma_m}")


def _replace(q: Queries, **changes) -> Queries:
    fields = dict(map_slot=q.map_slot, bs_ids=q.bs_ids, pathloss_db=q.pathloss_db, position=q.position, bs_set=q.bs_set, ue=q.ue, ranges_m=q.ranges_m)
    return Queries(**{**fields, **changes})


def noisy_positions(data: LocalizationData, sigma_m: float, seed: int = 0) -> LocalizationData:
    """``data`` with N(0, sigma^2) added to each coordinate of every query's position (clipped to the map)."""
    _check_sigma(sigma_m)
    q = data.queries
    noise = np.random.default_rng([seed, 6001]).normal(0.0, sigma_m, q.position.shape)
    size = data.scenes.buildings.shape[-1]
    return data.with_queries(_replace(q, position=np.clip(q.position + noise, 0.0, size - 1.0)))


def displaced_pixels(buildings: np.ndarray, rows: np.ndarray, cols: np.ndarray, sigma_m: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each (row, col) plus N(0, sigma^2) per coordinate, rounded, redrawn while on a building or off the map."""
    size = buildings.shape[-1]
    out_r, out_c = rows.astype(np.int64).copy(), cols.astype(np.int64).copy()
    pending = np.ones(rows.shape, dtype=bool) if sigma_m > 0 else np.zeros(rows.shape, dtype=bool)
    for _ in range(MAX_REDRAWS):
        if not pending.any():
            break
        r = np.round(rows[pending] + rng.normal(0.0, sigma_m, pending.sum())).astype(np.int64)
        c = np.round(cols[pending] + rng.normal(0.0, sigma_m, pending.sum())).astype(np.int64)
        inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
        good = inside.copy()
        good[inside] = buildings[r[inside], c[inside]] == 0
        index = np.flatnonzero(pending)[good]
        out_r[index], out_c[index] = r[good], c[good]
        pending[index] = False
    return out_r, out_c  # after MAX_REDRAWS a point stays where it was (an outdoor UE pixel)


def distorted_reports(data: LocalizationData, measurement: str, sigma_m: float, seed: int = 0) -> LocalizationData:
    """``data`` whose reports come, per BS, from displaced positions of the ``measurement`` truth (read from the
    dataset in ``data.source['root']``); positions stay the true ones."""
    _check_sigma(sigma_m)
    root = Path(data.source.get("root", ""))
    q, scenes = data.queries, data.scenes
    rng = np.random.default_rng([seed, 6002])
    pathloss = q.pathloss_db.copy()
    rows0, cols0 = np.round(q.position[:, 0]).astype(np.int64), np.round(q.position[:, 1]).astype(np.int64)
    for slot, map_id in enumerate(scenes.map_ids):
        in_map = np.flatnonzero(q.map_slot == slot)
        if in_map.size == 0:
            continue
        for bs in np.unique(q.bs_ids[in_map]):
            if bs < 0:
                continue
            path = layout.radio_map_path(root, measurement, "true", map_id, int(bs))
            if not path.is_file():
                raise RadiolocError(f"{path}: missing radio map (the dataset has no {measurement} truth for map {map_id})")
            truth = layout.read_radio_map_png(path)
            query, column = np.nonzero(q.bs_ids[in_map] == bs)
            query = in_map[query]
            r, c = displaced_pixels(scenes.buildings[slot], rows0[query].astype(np.float64), cols0[query].astype(np.float64), sigma_m, rng)
            pathloss[query, column] = gray_to_db32(truth[r, c])
    return LocalizationData(scenes, _replace(q, pathloss_db=pathloss), {**data.source, "tx_distortion_m": float(sigma_m)})
