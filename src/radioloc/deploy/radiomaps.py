"""One BS's radio maps over a deployment area, from DPM, RadioUNet or the ray tracer.

A deployment needs every BS's map over the whole area (a BS on a long street is heard 500 m away, and a window
is placed wherever the reports point), but RadioUNet was trained on, and the ray tracer samples well, only the
256 m tile around a transmitter. So a map is built in two parts:

- **far:** DPM over the whole area (with cars for a ``...cars`` source): line-of-sight streets and a few
  diffracting corners, which is what still reaches beyond the tile above the noise floor;
- **near:** for ``RadioUNet`` and ``IRT2`` / ``IRT2cars``, the :data:`NEAR_TILE` x :data:`NEAR_TILE` m tile
  centred on the BS (moved inside the area at its edges) replaced by RadioUNet's estimate or by the ray-traced
  map (:class:`radioloc.propagation.raytracing.RayTracedScene` of the tile's buildings, and cars for
  ``IRT2cars``; the ray tracer's defaults: 2 M rays, 2 m cells, depth 2, diffraction, Tx 3 m above ground).

Inside the tile is where a BS's map matters most (its strongest reports) and where the two sources differ from
DPM; outside, they would have had nothing to say: RadioUNet has no input for a transmitter outside its tile,
and 2 M rays leave most 2 m cells 200 m away unvisited. The seam at the tile's edge is the near source's error
there (RadioUNet: about 2.5 dB RMSE against DPM; the ray tracer: reflections DPM lacks).
"""

from __future__ import annotations

import numpy as np

from radioloc.city.grid import MAP_SIZE
from radioloc.propagation.dpm import DominantPathModel, DominantPathSimulator
from radioloc.propagation.graylevel import db_to_gray

MAP_SOURCES = ("DPM", "RadioUNet", "IRT2")  # what the localizers see
TRUTH_SOURCES = ("DPM", "DPMcars", "IRT2", "IRT2cars")  # what simulated phones report
NEAR_TILE = MAP_SIZE
_NEAR_SOURCES = ("RadioUNet", "IRT2", "IRT2cars")


def near_tile(row: int, col: int, shape: tuple[int, int], size: int = NEAR_TILE) -> tuple[int, int]:
    """Top-left pixel of the ``size`` x ``size`` tile centred on (row, col), moved inside an area of ``shape``."""
    rows, cols = shape
    return int(min(max(row - size // 2, 0), rows - size)), int(min(max(col - size // 2, 0), cols - size))


class AreaRadioMaps:
    """Gray radio maps (uint8, 0 = at or below the noise floor or inside an obstacle) of single BSs over one area:
    ``AreaRadioMaps(buildings, cars).gray("IRT2cars", row, col)``. DPM simulators are kept per obstacle set."""

    def __init__(self, buildings: np.ndarray, cars: np.ndarray):
        self.buildings = np.asarray(buildings, dtype=np.uint8)
        self.cars = np.asarray(cars, dtype=np.uint8)
        if self.buildings.shape != self.cars.shape or min(self.buildings.shape) < NEAR_TILE:
            raise ValueError(f"an area of at least {NEAR_TILE} x {NEAR_TILE} m with cars of the same shape, got {self.buildings.shape} and {self.cars.shape}")
        self._dpm: dict[bool, DominantPathSimulator] = {}

    def gray(self, source: str, row: int, col: int) -> np.ndarray:
        if source not in MAP_SOURCES + TRUTH_SOURCES:
            raise ValueError(f"unknown radio-map source {source!r}")
        with_cars = source.endswith("cars")
        out = self._far(with_cars, row, col)
        if source in _NEAR_SOURCES:
            r0, c0 = near_tile(row, col, self.buildings.shape)
            tile = np.s_[r0 : r0 + NEAR_TILE, c0 : c0 + NEAR_TILE]
            near = self._radiounet if source == "RadioUNet" else self._ray_traced
            out[tile] = near(self.buildings[tile], self.cars[tile] if with_cars else None, row - r0, col - c0)
        return out

    def _far(self, with_cars: bool, row: int, col: int) -> np.ndarray:
        if with_cars not in self._dpm:
            obstacles = self.buildings | self.cars if with_cars else self.buildings
            self._dpm[with_cars] = DominantPathSimulator(obstacles, DominantPathModel())
        return db_to_gray(self._dpm[with_cars].simulate((row, col)).pathloss_db)

    @staticmethod
    def _radiounet(buildings: np.ndarray, cars: np.ndarray | None, row: int, col: int) -> np.ndarray:
        from radioloc.models.estimate import cached_radiounet, predict_gray

        model, runtime = cached_radiounet()
        return predict_gray(model, np.array(buildings, order="C"), None, np.array([[row, col]], dtype=np.int64), runtime)[0]

    @staticmethod
    def _ray_traced(buildings: np.ndarray, cars: np.ndarray | None, row: int, col: int) -> np.ndarray:
        from radioloc.propagation.raytracing import cached_tracer

        scene = cached_tracer().scene(buildings, cars if cars is not None and cars.any() else None)
        return db_to_gray(scene.pathloss(np.array([[row, col]]))[0])
