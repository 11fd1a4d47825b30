"""Cars: 2 x 5 m obstacles parked in the streets, along them or across them, kept as their own mask.

Street direction is read off the building map itself (so this works on imported maps too): the gradient of
the distance to the nearest building points across the street, so a car "along" the street is perpendicular
to it and a car "across" the street is parallel to it. Cars are put near the kerb (1.2-4 m from buildings);
cars across the street only where the street is at least 12 m wide, so no street is closed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

CAR_LENGTH_M = 5.0
CAR_WIDTH_M = 2.0


@dataclass(frozen=True)
class CarConfig:
    count: int = 100
    across_probability: float = 0.25
    kerb_distance_m: tuple[float, float] = (1.2, 4.0)

    def to_dict(self) -> dict:
        return asdict(self)


def car_footprint(centre_row: float, centre_col: float, angle: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels whose centre lies strictly inside a 2 x 5 m rectangle; ``angle`` is the long axis (radians,
    from +row). A rectangle placed at a random sub-pixel position covers 10 pixels on average."""
    reach = int(math.ceil(CAR_LENGTH_M / 2)) + 1
    r0, c0 = int(round(centre_row)), int(round(centre_col))
    rows, cols = np.mgrid[r0 - reach : r0 + reach + 1, c0 - reach : c0 + reach + 1]
    dr = rows - centre_row
    dc = cols - centre_col
    along = dr * math.cos(angle) + dc * math.sin(angle)
    across = -dr * math.sin(angle) + dc * math.cos(angle)
    inside = (np.abs(along) < CAR_LENGTH_M / 2) & (np.abs(across) < CAR_WIDTH_M / 2)
    inside &= (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    return rows[inside], cols[inside]


def place_cars(buildings: np.ndarray, seed: int, config: CarConfig | None = None) -> np.ndarray:
    """A uint8 car mask (1 = car) with up to ``config.count`` cars that touch no building and no other car."""
    config = config or CarConfig()
    rng = np.random.default_rng(seed)
    size = buildings.shape[0]
    free = buildings == 0
    distance = ndimage.distance_transform_edt(free)
    grad_r = ndimage.sobel(distance, axis=0)
    grad_c = ndimage.sobel(distance, axis=1)
    half_width = ndimage.maximum_filter(distance, size=9)
    low, high = config.kerb_distance_m
    candidates = np.argwhere(free & (distance >= low) & (distance <= high))
    cars = np.zeros_like(buildings, dtype=np.uint8)
    blocked = ~free  # buildings plus cars grown by a 1 px margin
    if len(candidates) == 0:
        return cars
    placed = 0
    for index in rng.permutation(len(candidates))[: 40 * config.count]:
        if placed >= config.count:
            break
        r, c = candidates[index]
        across_street = math.atan2(grad_c[r, c], grad_r[r, c])
        across = rng.random() < config.across_probability and half_width[r, c] >= 6.0
        angle = across_street if across else across_street + math.pi / 2
        offset = rng.uniform(-0.5, 0.5, 2)
        rows, cols = car_footprint(r + offset[0], c + offset[1], angle, size)
        if len(rows) < 6 or blocked[rows, cols].any():
            continue
        cars[rows, cols] = 1
        grown_r = np.clip(np.concatenate([rows + dr for dr in (-1, 0, 1) for _ in (0, 1, 2)]), 0, size - 1)
        grown_c = np.clip(np.concatenate([cols + dc for _ in (0, 1, 2) for dc in (-1, 0, 1)]), 0, size - 1)
        blocked[grown_r, grown_c] = True
        placed += 1
    return cars
