"""The one interface every localizer shares, learned or classical (scikit-learn style).

``fit(train, val=None)`` learns from a training split (weights for LocUNet, k for kNN) and returns the
localizer; ``predict(data)`` returns one position per query, ``(n, 2)`` row, col in metres on the map.
Experiments call nothing else, so LocUNet and the baselines are evaluated alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from radioloc.datasets.localization import LocalizationData


class Localizer(ABC):
    name: str = "localizer"

    @abstractmethod
    def fit(self, train: LocalizationData, val: LocalizationData | None = None) -> "Localizer":
        """Learn from a training split; returns self."""

    @abstractmethod
    def predict(self, data: LocalizationData) -> np.ndarray:
        """(n, 2) float64 estimated row, col in metres, one per query of ``data``."""

    def describe(self) -> dict:
        """What was fitted (k, preset, ...), for reports."""
        return {"name": self.name}


def localization_errors(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Euclidean distance in metres per query."""
    return np.hypot(estimate[:, 0] - truth[:, 0], estimate[:, 1] - truth[:, 1])
