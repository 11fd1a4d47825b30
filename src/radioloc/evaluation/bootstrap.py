"""Bootstrap intervals over city maps: how far a figure would move with other maps of the same generator.

Errors come in whole shadow wedges and whole ambiguous neighbourhoods, so the pixels (or the queries) of one map
are far from independent: the map is the unit that varies, and it is what is resampled."""

from __future__ import annotations

import numpy as np


def ratio_of_sums_interval(numerators: np.ndarray, denominators: np.ndarray, draws: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """``level`` percentile interval of ``sum(numerators) / sum(denominators)`` when the maps (one entry each)
    are resampled with replacement: e.g. an MSE (squared errors / pixels) or a paired MAE ratio (one method's
    summed errors / another's on the same queries)."""
    numerators, denominators = np.asarray(numerators, np.float64), np.asarray(denominators, np.float64)
    if numerators.shape != denominators.shape or numerators.ndim != 1 or numerators.size == 0:
        raise ValueError(f"ratio_of_sums_interval: two equal non-empty 1-D arrays needed, got {numerators.shape} and {denominators.shape}")
    picks = np.random.default_rng(seed).integers(0, numerators.size, size=(draws, numerators.size))
    ratios = numerators[picks].sum(axis=1) / denominators[picks].sum(axis=1)
    low, high = np.percentile(ratios, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def per_map_sums(values: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over each map id that occurs in ``maps`` (in order of id)."""
    _, index = np.unique(np.asarray(maps), return_inverse=True)
    return np.bincount(index.ravel(), weights=np.asarray(values, np.float64).ravel())
