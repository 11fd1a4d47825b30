"""Where a deployment's grid lies on the Earth: latitude / longitude <-> grid ``(row, col)`` metres, with pyproj.

The local metric frame is an azimuthal equidistant projection (WGS 84) centred on the grid's centre, ``x`` east
and ``y`` north in metres: distances from the centre are exact and, across a few km, every distance is within
millimetres of the geodesic one. Grid positions follow :mod:`radioloc.city.grid` (north up), so the centre of a
``rows x cols`` grid is the point ``((rows - 1) / 2, (cols - 1) / 2)`` and::

    x = col - (cols - 1) / 2        y = (rows - 1) / 2 - row
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from radioloc.errors import RadiolocError
from radioloc.limits import MAX_LATITUDE


@dataclass(frozen=True)
class Georeference:
    """The grid centre's latitude / longitude (degrees, WGS 84) and the grid's size in pixels (1 m each)."""

    lat: float
    lng: float
    rows: int
    cols: int

    def __post_init__(self):
        if not (np.isfinite(self.lat) and -MAX_LATITUDE <= self.lat <= MAX_LATITUDE):
            raise RadiolocError(f"origin latitude must be within -{MAX_LATITUDE:g}..{MAX_LATITUDE:g} degrees, got {self.lat}")
        if not (np.isfinite(self.lng) and -180.0 <= self.lng <= 180.0):
            raise RadiolocError(f"origin longitude must be within -180..180 degrees, got {self.lng}")

    @cached_property
    def _transformers(self):
        from pyproj import CRS, Transformer

        local = CRS.from_proj4(f"+proj=aeqd +lat_0={self.lat!r} +lon_0={self.lng!r} +datum=WGS84 +units=m +no_defs")
        wgs84 = CRS.from_epsg(4326)
        return Transformer.from_crs(wgs84, local, always_xy=True), Transformer.from_crs(local, wgs84, always_xy=True)

    def to_latlng(self, row, col) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lng) degrees of grid positions (metres)."""
        x = np.asarray(col, dtype=np.float64) - (self.cols - 1) / 2.0
        y = (self.rows - 1) / 2.0 - np.asarray(row, dtype=np.float64)
        lng, lat = self._transformers[1].transform(x, y)
        return np.asarray(lat), np.asarray(lng)

    def to_grid(self, lat, lng) -> tuple[np.ndarray, np.ndarray]:
        """Grid (row, col) metres of latitude / longitude points (may lie outside the grid)."""
        x, y = self._transformers[0].transform(np.asarray(lng, dtype=np.float64), np.asarray(lat, dtype=np.float64))
        return (self.rows - 1) / 2.0 - np.asarray(y), np.asarray(x) + (self.cols - 1) / 2.0

    def to_dict(self) -> dict:
        return {"lat": self.lat, "lng": self.lng, "rows": self.rows, "cols": self.cols, "projection": "aeqd/WGS84 at the grid centre"}

    @staticmethod
    def from_dict(data: dict) -> Georeference:
        return Georeference(float(data["lat"]), float(data["lng"]), int(data["rows"]), int(data["cols"]))
