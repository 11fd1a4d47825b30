"""Import user building maps: PNG masks and GeoJSON footprints in a metric coordinate system.

PNG: a 256 x 256 image, 8-bit gray (``L``) or 1-bit (``1``); nonzero pixels are buildings.

GeoJSON: a FeatureCollection (or a single Feature / geometry) of Polygon or MultiPolygon footprints with
coordinates in metres (a projected CRS such as UTM, not longitude/latitude). The 256 x 256 m tile starts at
``origin = (x_min, y_max)``, its north-west corner: ``col = x - x_min`` and ``row = y_max - y`` (north up).
Without an origin the tile is centred on the footprints' bounding box. An optional numeric ``height`` (or
``building:levels``, 3 m each) property per feature is kept as a height map. Whole cities in GeoJSON, metric or
longitude/latitude, are cut into tiles by :mod:`radioloc.city.real`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import shapely
from PIL import Image, UnidentifiedImageError
from shapely.geometry import Polygon, shape

from radioloc.city.generator import CityMap, rasterize
from radioloc.city.grid import MAP_SIZE
from radioloc.errors import RadiolocError
from radioloc.io import read_json
from radioloc.limits import MAX_CITY_EXTENT_M

METRES_PER_LEVEL = 3.0


def load_building_png(path: str | Path, size: int = MAP_SIZE) -> np.ndarray:
    """Read a building mask PNG as uint8 0/1 (nonzero = building)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode, (width, height) = image.mode, image.size
            data = np.asarray(image)
    except FileNotFoundError:
        raise RadiolocError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise RadiolocError(f"{path}: not a readable PNG image ({exc})") from None
    if (width, height) != (size, size):
        raise RadiolocError(f"{path}: building map must be {size} x {size} pixels, got {width} x {height}")
    if mode not in ("L", "1"):
        raise RadiolocError(f"{path}: building map must be 8-bit gray (mode L) or 1-bit (mode 1), got mode {mode}")
    values = np.unique(data)
    if len(values) > 2 or (len(values) == 2 and values[0] != 0):  # a gray image (a radio map, a photo) is no mask
        raise RadiolocError(f"{path}: a building map holds two values, 0 (street) and one other (building), got {len(values)} values")
    return (data != 0).astype(np.uint8)


def _numbers_only(value: object) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_numbers_only(item) for item in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _polygons_of(geometry, where: str) -> list[Polygon]:
    if isinstance(geometry, dict) and not _numbers_only(geometry.get("coordinates", [])):  # before shapely, which warns on NaN
        raise RadiolocError(f"{where}: coordinates must be finite numbers")
    try:
        geom = shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise RadiolocError(f"{where}: malformed geometry ({exc})") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise RadiolocError(f"{where}: expected a Polygon or MultiPolygon footprint, got {geom.geom_type}")
    if geom.is_empty:
        raise RadiolocError(f"{where}: empty polygon")
    if not geom.is_valid:
        raise RadiolocError(f"{where}: invalid polygon ({shapely.is_valid_reason(geom)})")
    return list(getattr(geom, "geoms", [geom]))


def check_metric_extent(path: str | Path, footprints: list[tuple[Polygon, float]]) -> None:
    """Refuse footprints that are not in metres of one city: longitude/latitude (RFC 7946's default, which would
    be read as a sub-metre city of one pixel), or an extent of more than ``MAX_CITY_EXTENT_M``."""
    minx, miny, maxx, maxy = np.array([p.bounds for p, _ in footprints]).T
    low_x, low_y, high_x, high_y = minx.min(), miny.min(), maxx.max(), maxy.max()
    if not np.isfinite([low_x, low_y, high_x, high_y]).all():
        raise RadiolocError(f"{path}: coordinates must be finite numbers")
    if -180 <= low_x <= high_x <= 180 and -90 <= low_y <= high_y <= 90 and max(high_x - low_x, high_y - low_y) < 1.0:
        raise RadiolocError(f"{path}: the footprints span {high_x - low_x:.5f} x {high_y - low_y:.5f} units: longitude/latitude, not metres; "
                            "use `radioloc city tiles FILE --coordinates lonlat` (projects them), or give metres")  # fmt: skip
    if max(high_x - low_x, high_y - low_y) > MAX_CITY_EXTENT_M:
        raise RadiolocError(f"{path}: the footprints span {(high_x - low_x) / 1000:,.0f} x {(high_y - low_y) / 1000:,.0f} km, more than radioloc rasterizes "
                            f"({MAX_CITY_EXTENT_M / 1000:g} km at most: cut an extract)")  # fmt: skip


def read_geojson_footprints(path: str | Path) -> list[tuple[Polygon, float]]:
    """(footprint, height in metres or NaN) of every Polygon / MultiPolygon part of a GeoJSON file, in the file's
    coordinates. Heights from a numeric ``height`` property, else ``building:levels`` x 3 m."""
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise RadiolocError(f"{path}: FeatureCollection without a 'features' list")
    elif isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    elif isinstance(data, dict) and "coordinates" in data:
        features = [{"type": "Feature", "geometry": data, "properties": {}}]
    else:
        raise RadiolocError(f"{path}: not a GeoJSON FeatureCollection, Feature or geometry")

    footprints: list[tuple[Polygon, float]] = []
    for index, feature in enumerate(features):
        where = f"{path}: feature {index}"
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise RadiolocError(f"{where}: missing 'geometry'")
        properties = feature.get("properties") or {}
        height, levels = properties.get("height"), properties.get("building:levels")
        try:
            height = float(height) if height is not None else float(levels) * METRES_PER_LEVEL if levels is not None else float("nan")
        except (TypeError, ValueError):
            raise RadiolocError(f"{where}: 'height' / 'building:levels' must be a number, got {height if height is not None else levels!r}") from None
        for polygon in _polygons_of(feature["geometry"], where):
            footprints.append((polygon, height))
    if not footprints:
        raise RadiolocError(f"{path}: no building footprints")
    return footprints


def load_geojson_footprints(path: str | Path, origin: tuple[float, float] | None = None, size: int = MAP_SIZE) -> tuple[CityMap, np.ndarray]:
    """Rasterize GeoJSON footprints onto a ``size`` x ``size`` m tile; returns the map and a height map (NaN = unknown)."""
    footprints = read_geojson_footprints(path)
    check_metric_extent(path, footprints)
    if origin is None:
        minx, miny, maxx, maxy = shapely.union_all([p for p, _ in footprints]).bounds
        origin = ((minx + maxx) / 2 - size / 2, (miny + maxy) / 2 + size / 2)
    x0, y_top = origin
    # To grid coordinates (x = col, y = row): col = x - x0, row = y_top - y.
    tile = [(shapely.transform(p, lambda xy: np.column_stack([xy[:, 0] - x0, y_top - xy[:, 1]])), h) for p, h in footprints]
    buildings = rasterize([p for p, _ in tile], size)
    heights = np.full((size, size), np.nan, dtype=np.float32)
    for polygon, height in tile:
        if np.isfinite(height):
            heights[rasterize([polygon], size) != 0] = height
    if not buildings.any():
        raise RadiolocError(f"{path}: no footprint falls inside the {size} x {size} m tile at origin {origin}")
    return CityMap(buildings=buildings, footprints=[p for p, _ in tile], style="geojson"), heights
