"""Dominant Path Model (DPM) radio maps, in the spirit of WinProp's DPM (Wahl, Woelfle et al.).

The model, per receiver pixel ``r`` and transmitter ``t`` (both 1.5 m above ground, buildings 25 m high,
so propagation is treated in 2-D):

1. The *dominant path* is the shortest obstacle-free path from ``t`` to ``r`` that bends only at convex
   building (or car) corners (:mod:`radioloc.propagation.geodesic`). Its length is ``L`` metres and it bends
   by the deflection angles ``theta_1 .. theta_k`` (radians, 0 = straight on).
2. Its pathloss in dB (a negative number, as in RadioMapSeer: received minus transmitted power) is::

       PL = -( 20 log10(4 pi f / c)  +  10 n log10(max(L, 1 m))  +  D * sum_i theta_i )

   with ``f = 5.9 GHz`` (so the first term, the free-space loss at 1 m, is 47.86 dB), ``c = 299 792 458 m/s``,
   path-loss exponent ``n = 2`` (free space: line-of-sight pixels get exactly the free-space loss) and
   ``D = 30 dB per 90 degrees`` of deflection (``19.1 dB/rad``). A loss linear in the angle makes a curved
   wall (many small bends) cost the same as one sharp corner with the same total turn. 30 dB for a 90 degree
   turn is the order of a knife-edge loss deep in the shadow at 5.9 GHz (Fresnel parameter about 20), and
   leaves about 19 % of the outdoor pixels below the noise floor for a BS in the middle of a dense map.
3. Pixels inside obstacles carry no value (NaN). Pathloss below the noise floor ``-127.17 dB`` (RadioMapSeer's
   gray-level threshold, see :mod:`radioloc.propagation.graylevel`) is "not detectable".
4. Time of arrival of the dominant path: ``ToA = L / c`` (ns), as RadioToASeer stores it; the line-of-sight
   flag is true where the path has no bend.

Obstacles are the buildings, plus the cars when asked (``DPMcars``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from radioloc.errors import RadiolocError
from radioloc.propagation.geodesic import convex_corners, dominant_paths, pad_with_wall
from radioloc.propagation.graylevel import NOISE_FLOOR_DB

SPEED_OF_LIGHT = 299_792_458.0


def free_space_loss_db(distance_m, frequency_hz: float = 5.9e9):
    """Free-space path loss in dB (positive): ``20 log10(4 pi d f / c)``."""
    return 20.0 * np.log10(4.0 * np.pi * np.asarray(distance_m, dtype=np.float64) * frequency_hz / SPEED_OF_LIGHT)


@dataclass(frozen=True)
class DominantPathModel:
    """Parameters of the dominant-path pathloss model (module docstring has the formula)."""

    frequency_hz: float = 5.9e9
    exponent: float = 2.0
    diffraction_db_per_90deg: float = 30.0
    noise_floor_db: float = NOISE_FLOOR_DB

    @property
    def diffraction_db_per_rad(self) -> float:
        return self.diffraction_db_per_90deg / (math.pi / 2)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RadioMap:
    """One transmitter's simulated maps on the 256 x 256 grid."""

    pathloss_db: np.ndarray  # float32, NaN inside obstacles; may be below the noise floor
    length_m: np.ndarray  # float32 dominant-path length, NaN inside obstacles or where unreachable
    toa_ns: np.ndarray  # float32 dominant-path delay
    line_of_sight: np.ndarray  # bool


class DominantPathSimulator:
    """Simulates DPM radio maps for many transmitters on one obstacle map (per-map work is shared).

    >>> sim = DominantPathSimulator(buildings)          # doctest: +SKIP
    >>> radio_map = sim.simulate((128, 40))              # doctest: +SKIP
    """

    def __init__(self, obstacles: np.ndarray, model: DominantPathModel | None = None):
        obstacles = np.asarray(obstacles)
        if obstacles.ndim != 2:
            raise RadiolocError(f"obstacle map must be 2-D, got shape {obstacles.shape}")
        self.obstacles = np.ascontiguousarray(obstacles != 0, dtype=np.uint8)
        self.model = model or DominantPathModel()
        self._padded = pad_with_wall(self.obstacles)
        self._corners = convex_corners(self._padded)

    def simulate(self, tx: tuple[int, int]) -> RadioMap:
        row, col = int(tx[0]), int(tx[1])
        h, w = self.obstacles.shape
        if not (0 <= row < h and 0 <= col < w):
            raise RadiolocError(f"transmitter ({row}, {col}) is outside the {h} x {w} map")
        if self.obstacles[row, col]:
            raise RadiolocError(f"transmitter ({row}, {col}) is inside an obstacle")
        length, deflection, bends = dominant_paths(self._padded, self._corners, row, col, self.model.diffraction_db_per_rad)
        reachable = np.isfinite(length)
        safe_length = np.where(reachable, np.maximum(length, 1.0), 1.0)
        m = self.model
        loss = (
            20.0 * math.log10(4.0 * math.pi * m.frequency_hz / SPEED_OF_LIGHT)
            + 10.0 * m.exponent * np.log10(safe_length)
            + np.where(reachable, deflection, 0.0)
        )
        pathloss = np.where(reachable, -loss, np.nan).astype(np.float32)
        length_m = np.where(reachable, length, np.nan).astype(np.float32)
        return RadioMap(
            pathloss_db=pathloss,
            length_m=length_m,
            toa_ns=(length_m / SPEED_OF_LIGHT * 1e9).astype(np.float32),
            line_of_sight=reachable & (bends == 0),
        )
