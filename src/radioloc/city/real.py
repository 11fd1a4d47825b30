"""Real city geometry as radioloc maps: Sionna RT's bundled 3-D city scenes and OpenStreetMap extracts, cut into
256 x 256 m tiles (1 m pixels) with building heights kept.

- :func:`scene_height_map`: a Sionna RT scene (``munich``, ``etoile``, ``florence``, ``san_francisco`` or a
  Mitsuba XML file): every non-ground triangle is projected on a 1 m grid; a pixel's height is the highest
  triangle above its centre (roofs), a building wherever that is at least 2 m above the ground.
- :func:`osm_height_map`: building ways and multipolygon relations of an ``.osm.pbf`` / ``.osm`` file (pyosmium),
  projected to metres around the extract's centre (equirectangular: under 1 cm of error across a few km),
  heights from ``height`` or ``building:levels`` x 3 m (NaN where unknown).
- :func:`geojson_height_map`: footprints of a GeoJSON file, longitude / latitude (RFC 7946) or metric, with
  ``height`` or ``building:levels`` properties.
- :func:`cut_tiles`: tiles of a height map (north up: row = y_top - y, col = x - x_left), keeping those whose
  building coverage is in a range (so there are streets to put base stations and users in).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numba as nb
import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import Polygon

from radioloc.city.generator import rasterize
from radioloc.city.grid import MAP_SIZE
from radioloc.city.imports import METRES_PER_LEVEL, read_geojson_footprints
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_json, atomic_write_npz, atomic_write_png, read_state
from radioloc.limits import MAX_CITY_EXTENT_M

BUNDLED_SCENES = ("munich", "etoile", "florence", "san_francisco")
MIN_BUILDING_HEIGHT_M = 2.0
EARTH_RADIUS_M = 6_371_008.8


@dataclass
class HeightMap:
    """Building heights on a 1 m grid: ``buildings`` (H, W) 0/1, ``heights`` (H, W) metres (NaN = unknown),
    ``x_left``, ``y_top``: the scene coordinates of the grid's north-west corner."""

    buildings: np.ndarray
    heights: np.ndarray
    x_left: float
    y_top: float
    source: str


@nb.njit(cache=True)
def _rasterize_triangles(xy, z, faces, x_left, y_top, out):
    """Max height of the triangles above each pixel centre (pixel [i, j] centred on x_left + j + 0.5,
    y_top - i - 0.5)."""
    h, w = out.shape
    for t in range(faces.shape[0]):
        a, b, c = faces[t, 0], faces[t, 1], faces[t, 2]
        ax, ay = xy[a, 0], xy[a, 1]
        bx, by = xy[b, 0], xy[b, 1]
        cx, cy = xy[c, 0], xy[c, 1]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-9:
            continue  # a wall seen from above
        top = max(z[a], max(z[b], z[c]))
        j0 = max(int(math.floor(min(ax, min(bx, cx)) - x_left)), 0)
        j1 = min(int(math.ceil(max(ax, max(bx, cx)) - x_left)), w - 1)
        i0 = max(int(math.floor(y_top - max(ay, max(by, cy)))), 0)
        i1 = min(int(math.ceil(y_top - min(ay, min(by, cy)))), h - 1)
        for i in range(i0, i1 + 1):
            py = y_top - i - 0.5
            for j in range(j0, j1 + 1):
                px = x_left + j + 0.5
                w0 = (bx - px) * (cy - py) - (by - py) * (cx - px)
                w1 = (cx - px) * (ay - py) - (cy - py) * (ax - px)
                w2 = (ax - px) * (by - py) - (ay - py) * (bx - px)
                if (w0 >= 0 and w1 >= 0 and w2 >= 0) or (w0 <= 0 and w1 <= 0 and w2 <= 0):
                    if top > out[i, j]:
                        out[i, j] = top


def scene_height_map(scene: str) -> HeightMap:
    """The height map of a Sionna RT scene: a bundled one by name, or a Mitsuba XML file."""
    from radioloc.sionna_runtime import sionna_rt

    rt = sionna_rt()
    if scene in BUNDLED_SCENES:
        filename = getattr(rt.scene, scene)
    elif Path(scene).is_file():
        filename = str(scene)
    else:
        raise RadiolocError(f"{scene}: neither a bundled Sionna scene ({', '.join(BUNDLED_SCENES)}) nor a scene file")
    try:
        loaded = rt.load_scene(filename, merge_shapes=False)
    except Exception as exc:  # Mitsuba raises several types for a bad file
        raise RadiolocError(f"{scene}: the scene does not load ({str(exc).splitlines()[0]})") from None
    meshes = []
    for obj in loaded.objects.values():
        vertices = np.array(obj.mi_mesh.vertex_positions_buffer(), dtype=np.float64).reshape(-1, 3)
        faces = np.array(obj.mi_mesh.faces_buffer(), dtype=np.int64).reshape(-1, 3)
        if len(faces):
            meshes.append((obj.name, vertices, faces))
    if not meshes:
        raise RadiolocError(f"{scene}: the scene has no meshes")
    lo = np.min([v[:, :2].min(axis=0) for _, v, _ in meshes], axis=0)
    hi = np.max([v[:, :2].max(axis=0) for _, v, _ in meshes], axis=0)
    x_left, y_top = math.floor(lo[0]), math.ceil(hi[1])
    shape = (int(y_top - math.floor(lo[1])), int(math.ceil(hi[0]) - x_left))

    def is_ground(name: str, vertices: np.ndarray) -> bool:  # a named ground/terrain mesh, or one spanning the scene
        extent = np.prod(vertices[:, :2].max(axis=0) - vertices[:, :2].min(axis=0))
        return name.lower() in ("ground", "plane", "terrain") or extent >= 0.5 * np.prod(hi - lo)

    terrain = np.zeros(shape, dtype=np.float64)
    roofs = np.zeros(shape, dtype=np.float64)
    base = min(float(v[:, 2].min()) for _, v, _ in meshes)
    for name, vertices, faces in meshes:
        target = terrain if is_ground(name, vertices) else roofs
        _rasterize_triangles(vertices[:, :2].copy(), vertices[:, 2] - base, faces, float(x_left), float(y_top), target)
    above = roofs - terrain  # the 2-D map flattens the terrain (San Francisco's hills): heights above it
    buildings = (above >= MIN_BUILDING_HEIGHT_M).astype(np.uint8)
    heights = np.where(buildings == 1, above, np.nan).astype(np.float32)
    return HeightMap(buildings, heights, float(x_left), float(y_top), f"sionna:{scene}")


def parse_height(tags: dict) -> float:
    """Metres from OSM ``height`` ("12", "12 m", "12.5m") or ``building:levels``; NaN when neither parses."""
    match = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(m|meters|metres)?\s*$", str(tags.get("height", "")))
    if match:
        return float(match.group(1))
    match = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*$", str(tags.get("building:levels", "")))
    if match:
        return float(match.group(1)) * METRES_PER_LEVEL
    return float("nan")


def osm_buildings(path: str | Path) -> list[tuple[Polygon, float]]:
    """(footprint in lon/lat, height) of every building area in an OSM file."""
    import osmium

    path = Path(path)
    if not path.is_file():
        raise RadiolocError(f"{path}: file not found")
    factory = osmium.geom.WKBFactory()
    found = []
    try:
        for area in osmium.FileProcessor(str(path)).with_areas().with_filter(osmium.filter.KeyFilter("building")):
            if not area.is_area():
                continue
            try:
                geometry = shapely.from_wkb(factory.create_multipolygon(area))
            except Exception:  # broken rings in the extract: skip that building, keep the rest
                continue
            height = parse_height(dict(area.tags))
            for polygon in getattr(geometry, "geoms", [geometry]):
                found.append((polygon, height))
    except RuntimeError as exc:
        raise RadiolocError(f"{path}: not a readable OSM file ({str(exc).splitlines()[0]})") from None
    return found


def _paint(image: np.ndarray, polygon: Polygon, value: float) -> None:
    """Set the pixels whose centre lies inside ``polygon`` (x = col, y = row), testing only its bounding box:
    an extract has thousands of buildings on a grid of millions of pixels."""
    minx, miny, maxx, maxy = polygon.bounds
    j0, j1 = max(math.ceil(minx), 0), min(math.floor(maxx), image.shape[1] - 1)
    i0, i1 = max(math.ceil(miny), 0), min(math.floor(maxy), image.shape[0] - 1)
    if j1 < j0 or i1 < i0:
        return
    rows, cols = np.mgrid[i0 : i1 + 1, j0 : j1 + 1]
    inside = shapely.contains_xy(polygon, cols.ravel().astype(float), rows.ravel().astype(float)).reshape(rows.shape)
    image[i0 : i1 + 1, j0 : j1 + 1][inside] = value


def osm_height_map(path: str | Path) -> HeightMap:
    """The height map of the buildings of an OSM extract, in metres east / north of its centre."""
    found = osm_buildings(path)
    if not found:
        raise RadiolocError(f"{path}: no building areas in this OSM file")
    return footprint_height_map(found, lonlat=True, source=f"osm:{Path(path).name}")


def geojson_height_map(path: str | Path, coordinates: str = "lonlat") -> HeightMap:
    """The height map of the footprints of a GeoJSON file: ``coordinates`` ``lonlat`` (RFC 7946: WGS 84
    longitude, latitude; projected like OSM extracts) or ``metres`` (a projected CRS, x east, y north)."""
    if coordinates not in ("lonlat", "metres"):
        raise RadiolocError(f"coordinates must be 'lonlat' or 'metres', got {coordinates!r}")
    footprints = read_geojson_footprints(path)
    if coordinates == "lonlat":
        minx, miny, maxx, maxy = shapely.union_all([p for p, _ in footprints]).bounds
        if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
            raise RadiolocError(
                f"{path}: coordinates outside longitude / latitude ranges (x {minx:.0f}..{maxx:.0f}, y {miny:.0f}..{maxy:.0f}); for a projected CRS in metres use --coordinates metres"
            )
    return footprint_height_map(footprints, lonlat=coordinates == "lonlat", source=f"geojson:{Path(path).name}")


def footprint_height_map(footprints: list[tuple[Polygon, float]], lonlat: bool, source: str) -> HeightMap:
    """Rasterize (footprint, height) pairs on a 1 m grid covering them all; longitude / latitude footprints are
    first projected to metres east / north of their centre (equirectangular: under 1 cm of error across a few km)."""
    if lonlat:
        lon0, lat0 = shapely.union_all([p for p, _ in footprints]).centroid.coords[0]
        scale_x = math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
        scale_y = math.radians(1) * EARTH_RADIUS_M
        footprints = [(shapely.transform(p, lambda ll: np.column_stack([(ll[:, 0] - lon0) * scale_x, (ll[:, 1] - lat0) * scale_y])), h) for p, h in footprints]
    minx, miny, maxx, maxy = shapely.union_all([p for p, _ in footprints]).bounds
    if not (math.isfinite(minx + miny + maxx + maxy) and max(maxx - minx, maxy - miny) <= MAX_CITY_EXTENT_M):
        raise RadiolocError(f"{source}: the footprints span {(maxx - minx) / 1000:,.0f} x {(maxy - miny) / 1000:,.0f} km, more than radioloc rasterizes "
                            f"({MAX_CITY_EXTENT_M / 1000:g} km at most: cut an extract; or longitude / latitude given as metres?)")  # fmt: skip
    x_left, y_top = math.floor(minx), math.ceil(maxy)
    width, height = int(math.ceil(maxx) - x_left), int(y_top - math.floor(miny))
    size = max(width, height)
    # to grid coordinates (x = col, y = row) of a square grid, then rasterize as GeoJSON footprints are
    # pixel [i, j] is centred on (x_left + j + 0.5, y_top - i - 0.5), as for Sionna scenes
    grid = [(shapely.transform(p, lambda xy: np.column_stack([xy[:, 0] - x_left - 0.5, y_top - xy[:, 1] - 0.5])), h) for p, h in footprints]
    buildings = rasterize([p for p, _ in grid], size)
    heights = np.full((size, size), np.nan, dtype=np.float32)
    for polygon, h in grid:
        if np.isfinite(h):
            _paint(heights, polygon, h)
    return HeightMap(buildings, heights, float(x_left), float(y_top), source)


def cut_tiles(city: HeightMap, size: int = MAP_SIZE, min_coverage: float = 0.1, max_coverage: float = 0.6) -> list[dict]:
    """Non-overlapping ``size`` x ``size`` tiles of a height map whose building coverage lies in the range:
    dicts with ``buildings``, ``heights``, ``origin`` (x, y of the tile's north-west corner), ``coverage``."""
    h, w = city.buildings.shape
    tiles = []
    for i in range(0, h - size + 1, size):
        for j in range(0, w - size + 1, size):
            buildings = city.buildings[i : i + size, j : j + size]
            coverage = float(buildings.mean())
            if min_coverage <= coverage <= max_coverage:
                tiles.append(
                    {
                        "buildings": buildings.copy(),
                        "heights": city.heights[i : i + size, j : j + size].copy(),
                        "origin": (city.x_left + j, city.y_top - i),
                        "coverage": coverage,
                    }
                )
    return tiles


class TileEntry(BaseModel):
    """One tile of a ``tiles.json`` index: its PNG (beside the index), the x, y of its north-west corner in the
    source's metres, its building coverage and the city it was cut from."""

    model_config = ConfigDict(extra="allow", strict=True)
    file: str = Field(pattern=r"^[^/\\]+_[0-9]+\.png$")
    origin_xy: list[float] = Field(min_length=2, max_length=2)
    coverage: float = Field(ge=0.0, le=1.0)
    source: str | None = None  # None in an index written before it held several cities


class TilesIndex(BaseModel):
    """``tiles.json``: every tile in its folder, of every city cut into it."""

    model_config = ConfigDict(extra="allow", strict=True)
    tiles: list[TileEntry]


def write_tiles(out: Path, name: str, city: HeightMap, tiles: list[dict]) -> list[dict]:
    """Write ``tiles`` of ``city`` as ``{name}_{k}.png`` with ``.heights.npz`` into ``out`` and index them in
    ``out/tiles.json``: the tiles of other cities already there stay indexed, and this city's tiles from an earlier
    cut that this one does not rewrite (fewer tiles) are removed, so index and folder always agree."""
    index_path = out / "tiles.json"
    kept: list[dict] = []
    stale: list[str] = []
    if index_path.exists():
        previous = read_state(TilesIndex, index_path, "tile index", "delete it (the tiles stay) or choose a new --out")
        legacy_source = (previous.model_extra or {}).get("source")
        for entry in previous.tiles:
            if entry.file.rsplit("_", 1)[0] == name:
                stale.append(entry.file)
            else:
                kept.append(entry.model_dump() | {"source": entry.source or legacy_source})
    written = []
    for k, tile in enumerate(tiles):
        atomic_write_npz(out / f"{name}_{k}.heights.npz", heights=tile["heights"])
        atomic_write_png(out / f"{name}_{k}.png", tile["buildings"] * 255)
        written.append({"file": f"{name}_{k}.png", "origin_xy": list(tile["origin"]), "coverage": round(tile["coverage"], 3), "source": city.source})
    atomic_write_json(index_path, {"tiles": kept + written})
    for file in set(stale) - {entry["file"] for entry in written}:
        (out / file).unlink(missing_ok=True)
        (out / file).with_suffix(".heights.npz").unlink(missing_ok=True)
    return written
