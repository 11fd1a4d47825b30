"""Procedural city maps that look like RadioMapSeer's OpenStreetMap tiles of European and American centres.

A map is built in three steps, each seeded from one ``numpy`` generator so a seed always gives the same map:

1. A street network, in one of three styles: ``grid`` (two families of nearly parallel streets at a random
   rotation, some of them bent), ``organic`` (the edges of a Voronoi diagram, as in old European centres) and
   ``radial`` (ring roads and spokes around a square). Streets are 6-30 m wide; a few open squares are cut out.
2. Blocks (what the streets leave) are split into parcels along their long axis, sometimes with alleys.
3. Each parcel gets a building: the whole parcel, an L-shape, a courtyard block, a set-back footprint, or
   nothing. Buildings are then thinned until the building coverage meets a target drawn in [15 %, 50 %].

Geometry is in metres with ``x = col`` and ``y = row`` (see :mod:`radioloc.city.grid`); the raster is the set of
pixel centres inside the buildings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import unary_union

from radioloc.city.grid import MAP_SIZE

STYLES = ("grid", "organic", "radial")


@dataclass(frozen=True)
class CityConfig:
    """Parameters of the procedural generator (defaults give RadioMapSeer-like tiles)."""

    size: int = MAP_SIZE
    styles: tuple[str, ...] = STYLES
    street_width_m: tuple[float, float] = (6.0, 14.0)
    avenue_width_m: tuple[float, float] = (18.0, 30.0)
    avenue_probability: float = 0.15
    block_spacing_m: tuple[float, float] = (45.0, 110.0)
    parcel_area_m2: tuple[float, float] = (180.0, 900.0)
    coverage: tuple[float, float] = (0.15, 0.50)
    max_squares: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CityMap:
    """A building map and the footprints it was rasterized from."""

    buildings: np.ndarray  # uint8 (size, size), 1 = building
    footprints: list[Polygon] = field(default_factory=list)
    style: str = "imported"

    @property
    def coverage(self) -> float:
        return float(np.mean(self.buildings != 0))


def rasterize(polygons, size: int = MAP_SIZE) -> np.ndarray:
    """Pixels whose centre lies inside any polygon (x = col, y = row), as a uint8 0/1 map."""
    mask = np.zeros((size, size), dtype=np.uint8)
    geoms = [p for p in polygons if p is not None and not p.is_empty]
    if not geoms:
        return mask
    union = unary_union(geoms)
    rows, cols = np.mgrid[0:size, 0:size]
    inside = shapely.contains_xy(union, cols.ravel().astype(float), rows.ravel().astype(float))
    mask[:] = inside.reshape(size, size)
    return mask


def _bent_line(rng, start, end, bend_probability=0.35):
    """A straight street, or with some probability a gently curved one (a sampled arc)."""
    if rng.random() > bend_probability:
        return LineString([start, end])
    start = np.asarray(start, float)
    end = np.asarray(end, float)
    direction = end - start
    normal = np.array([-direction[1], direction[0]]) / (np.linalg.norm(direction) + 1e-9)
    amplitude = rng.uniform(8, 30) * rng.choice([-1, 1])
    t = np.linspace(0, 1, 24)
    points = start + t[:, None] * direction + (amplitude * np.sin(np.pi * t))[:, None] * normal
    return LineString(points)


def _street_width(rng, config: CityConfig) -> float:
    if rng.random() < config.avenue_probability:
        return float(rng.uniform(*config.avenue_width_m))
    return float(rng.uniform(*config.street_width_m))


def _grid_streets(rng, config: CityConfig, extent: float):
    centre = np.array([config.size / 2, config.size / 2])
    base_angle = rng.uniform(0, math.pi)
    streets = []
    for angle in (base_angle, base_angle + math.pi / 2 + rng.uniform(-0.3, 0.3)):
        spacing = rng.uniform(*config.block_spacing_m)
        offset = -extent + rng.uniform(0, spacing)
        while offset < extent:
            line_angle = angle + rng.normal(0, 0.06)
            direction = np.array([math.cos(line_angle), math.sin(line_angle)])
            normal = np.array([-math.sin(angle), math.cos(angle)])
            mid = centre + offset * normal
            if rng.random() > 0.12:  # a few streets are missing: larger, irregular blocks
                streets.append((_bent_line(rng, mid - extent * direction, mid + extent * direction, 0.2), _street_width(rng, config)))
            offset += spacing * rng.uniform(0.7, 1.3)
    return streets


def _organic_streets(rng, config: CityConfig, extent: float):
    from scipy.spatial import Voronoi

    centre = config.size / 2
    spacing = rng.uniform(*config.block_spacing_m)
    n_points = max(8, int((2 * extent) ** 2 / spacing**2))
    points = rng.uniform(centre - extent, centre + extent, size=(n_points, 2))
    vor = Voronoi(points)
    streets = []
    for a, b in vor.ridge_vertices:
        if a < 0 or b < 0:
            continue
        p, q = vor.vertices[a], vor.vertices[b]
        if np.all(np.abs(np.stack([p, q]) - centre) > 2 * extent):
            continue
        streets.append((_bent_line(rng, p, q, 0.15), _street_width(rng, config)))
    return streets


def _radial_streets(rng, config: CityConfig, extent: float):
    centre = np.array([config.size / 2, config.size / 2]) + rng.uniform(-60, 60, 2)
    streets = []
    radius = rng.uniform(30, 50)
    while radius < 2 * extent:
        streets.append((Point(centre).buffer(radius, quad_segs=32).exterior, _street_width(rng, config)))
        radius += rng.uniform(*config.block_spacing_m)
    n_spokes = int(rng.integers(6, 12))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n_spokes))
    for angle in angles:
        direction = np.array([math.cos(angle), math.sin(angle)])
        streets.append((LineString([centre, centre + 2 * extent * direction]), _street_width(rng, config)))
    # Cross streets between spokes keep blocks from growing with the radius.
    streets += _grid_streets(rng, config, extent)[:: int(rng.integers(2, 4))]
    return streets


def _long_axis(polygon: Polygon):
    """Centre, unit direction and length of the long side of the minimum rotated rectangle."""
    rect = polygon.minimum_rotated_rectangle
    coords = np.asarray(rect.exterior.coords)[:4]
    edges = np.diff(np.vstack([coords, coords[:1]]), axis=0)
    lengths = np.linalg.norm(edges, axis=1)
    k = int(np.argmax(lengths))
    return np.asarray(rect.centroid.coords[0]), edges[k] / max(lengths[k], 1e-9), float(lengths[k])


def _split_block(rng, block: Polygon, config: CityConfig, depth: int = 0) -> list[Polygon]:
    """Recursively cut a block across its long axis until parcels reach the target size."""
    target = rng.uniform(*config.parcel_area_m2)
    if block.area <= target or depth > 10:
        return [block]
    centre, direction, length = _long_axis(block)
    cut_at = (rng.uniform(0.35, 0.65) - 0.5) * length
    normal = np.array([-direction[1], direction[0]])
    point = centre + cut_at * direction
    cutter = LineString([point - 400 * normal, point + 400 * normal])
    gap = rng.uniform(2.0, 4.0) if rng.random() < 0.15 else 0.05
    pieces = block.difference(cutter.buffer(gap / 2, cap_style="flat"))
    parts = [g for g in getattr(pieces, "geoms", [pieces]) if isinstance(g, Polygon) and g.area > 20]
    if len(parts) < 2:
        return [block]
    out = []
    for part in parts:
        out += _split_block(rng, part, config, depth + 1)
    return out


def _building_on(rng, parcel: Polygon) -> Polygon | None:
    choice = rng.random()
    if choice < 0.50:
        return parcel
    if choice < 0.65:  # L-shape: remove a rectangle at one corner, in the parcel's own frame
        centre, direction, length = _long_axis(parcel)
        angle = math.degrees(math.atan2(direction[1], direction[0]))
        minx, miny, maxx, maxy = affinity.rotate(parcel, -angle, origin=tuple(centre)).bounds
        cx = minx if rng.random() < 0.5 else maxx
        cy = miny if rng.random() < 0.5 else maxy
        cut_w = (maxx - minx) * rng.uniform(0.35, 0.6)
        cut_h = (maxy - miny) * rng.uniform(0.35, 0.6)
        notch = box(cx - cut_w, cy - cut_h, cx + cut_w, cy + cut_h)
        return parcel.difference(affinity.rotate(notch, angle, origin=tuple(centre)))
    if choice < 0.75:  # courtyard block
        inner = parcel.buffer(-rng.uniform(5.0, 9.0), join_style="mitre")
        return parcel.difference(inner) if inner.area > 30 else parcel
    if choice < 0.90:  # set back from the street
        return parcel.buffer(-rng.uniform(1.5, 4.0), join_style="mitre")
    return None  # empty lot


def generate_city(seed: int, config: CityConfig | None = None) -> CityMap:
    """A procedural 256 x 256 building map; the same seed always gives the same map."""
    config = config or CityConfig()
    rng = np.random.default_rng(seed)
    size = config.size
    extent = size * 0.9
    style = str(rng.choice(config.styles))
    maker = {"grid": _grid_streets, "organic": _organic_streets, "radial": _radial_streets}[style]
    streets = maker(rng, config, extent)
    street_area = unary_union([line.buffer(width / 2, cap_style="flat", join_style="round") for line, width in streets])
    squares = []
    for _ in range(int(rng.integers(0, config.max_squares + 1))):
        centre = rng.uniform(size * 0.2, size * 0.8, 2)
        if rng.random() < 0.5:
            squares.append(Point(centre).buffer(rng.uniform(12, 28)))
        else:
            side = rng.uniform(20, 50, 2)
            square = box(*(centre - side / 2), *(centre + side / 2))
            squares.append(affinity.rotate(square, rng.uniform(0, 90), origin=tuple(centre)))
    open_area = unary_union([street_area, *squares])
    land = box(-30, -30, size + 30, size + 30).difference(open_area)
    blocks = [g for g in getattr(land, "geoms", [land]) if isinstance(g, Polygon) and g.area > 40]

    footprints: list[Polygon] = []
    for block in blocks:
        for parcel in _split_block(rng, block, config):
            building = _building_on(rng, parcel)
            if building is None or building.is_empty:
                continue
            building = shapely.make_valid(building)
            for part in getattr(building, "geoms", [building]):
                if isinstance(part, Polygon) and part.area > 12:
                    footprints.append(part)

    # Thin out buildings (never the whole map) until the coverage target is met.
    target = rng.uniform(*config.coverage)
    buildings = rasterize(footprints, size)
    order = rng.permutation(len(footprints))
    areas = np.array([p.intersection(box(-0.5, -0.5, size - 0.5, size - 0.5)).area for p in footprints])
    estimate = buildings.mean()
    kept = np.ones(len(footprints), dtype=bool)
    for k in order:
        if estimate <= target:
            break
        kept[k] = False
        estimate -= areas[k] / size**2
    footprints = [p for p, keep in zip(footprints, kept) if keep]
    buildings = rasterize(footprints, size)
    return CityMap(buildings=buildings, footprints=footprints, style=style)


__all__ = ["CityConfig", "CityMap", "generate_city", "rasterize", "STYLES"]
