"""3-D scenes from 2-D maps: building footprints extruded to boxes, car boxes, a ground plane, as PLY meshes.

Geometry (see :mod:`radioloc.city.grid`): pixel ``[i, j]`` is the 1 m square centred on ``(i, j)``. In the
3-D scene a pixel spans ``x in [j, j + 1]``, ``y in [i, i + 1]`` (x east = columns, y = rows, z up), so the
256 x 256 map covers ``[0, 256] x [0, 256]`` and a radio-map cell ``(iy, ix)`` of a 1 m grid centred on
``(128, 128)`` is pixel ``[iy, ix]``.

- Buildings: each connected building region becomes one closed prism. Its outline is the exact pixel outline
  simplified by ``tolerance`` metres (so a diagonal wall is one flat face, not a staircase of 1 m steps that
  would each diffract), roof triangulated (constrained Delaunay), shared vertices so every wall-wall and
  wall-roof edge is a wedge for diffraction.
- Cars: each connected region of the car mask becomes a 2 x 5 m box (the footprint's principal axis gives its
  orientation), 1.5 m high.
- Ground: one square under the whole map.

Only geometry lives here; :mod:`radioloc.propagation.raytracing` loads it into Sionna RT.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry import Polygon, box

from radioloc.errors import RadiolocError

CAR_LENGTH_M = 5.0
CAR_WIDTH_M = 2.0


def building_footprints(mask: np.ndarray, tolerance: float = 0.75) -> list[Polygon]:
    """Polygons (scene coordinates, counter-clockwise exteriors) of the building regions of a 0/1 mask."""
    mask = np.asarray(mask) != 0
    rows = []
    for i in range(mask.shape[0]):
        line = np.concatenate([[False], mask[i], [False]])
        edges = np.flatnonzero(line[1:] != line[:-1])
        rows.extend(box(start, i, end, i + 1) for start, end in zip(edges[::2], edges[1::2]))
    if not rows:
        return []
    merged = shapely.union_all(rows)
    polygons = list(merged.geoms) if hasattr(merged, "geoms") else [merged]
    out = []
    for polygon in polygons:
        simple = polygon.simplify(tolerance, preserve_topology=True) if tolerance > 0 else polygon
        simple = shapely.normalize(simple) if simple.is_empty else simple
        for part in getattr(simple, "geoms", [simple]):
            if part.area >= 0.5:
                out.append(shapely.geometry.polygon.orient(part, sign=1.0))
    return out


def car_boxes(cars: np.ndarray) -> list[Polygon]:
    """A 2 x 5 m rectangle per connected region of a car mask, along the region's principal axis."""
    labels, count = ndimage.label(np.asarray(cars) != 0)
    boxes = []
    for k in range(1, count + 1):
        rows, cols = np.nonzero(labels == k)
        centre_y, centre_x = rows.mean() + 0.5, cols.mean() + 0.5
        if len(rows) > 1:
            cov = np.cov(np.stack([cols, rows]))
            values, vectors = np.linalg.eigh(cov)
            axis = vectors[:, np.argmax(values)]
        else:
            axis = np.array([1.0, 0.0])
        ux, uy = axis / np.linalg.norm(axis)
        half_l, half_w = CAR_LENGTH_M / 2, CAR_WIDTH_M / 2
        corners = [
            (centre_x + sx * half_l * ux - sy * half_w * uy, centre_y + sx * half_l * uy + sy * half_w * ux) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
        boxes.append(shapely.geometry.polygon.orient(Polygon(corners), sign=1.0))
    return boxes


class MeshBuilder:
    """Collects triangles with shared (deduplicated) vertices into one mesh."""

    def __init__(self):
        self._index: dict[tuple[float, float, float], int] = {}
        self.vertices: list[tuple[float, float, float]] = []
        self.faces: list[tuple[int, int, int]] = []

    def vertex(self, x: float, y: float, z: float) -> int:
        key = (round(float(x), 6), round(float(y), 6), round(float(z), 6))
        if key not in self._index:
            self._index[key] = len(self.vertices)
            self.vertices.append(key)
        return self._index[key]

    def triangle(self, a, b, c) -> None:
        self.faces.append((self.vertex(*a), self.vertex(*b), self.vertex(*c)))

    def prism(self, footprint: Polygon, bottom: float, top: float) -> None:
        """A closed prism over a counter-clockwise polygon (holes allowed); all normals point outwards."""
        for k, ring in enumerate([footprint.exterior, *footprint.interiors]):
            coords = list(ring.coords)[:-1]
            if shapely.is_ccw(ring) != (k == 0):  # exterior counter-clockwise, holes clockwise
                coords = coords[::-1]
            for (x0, y0), (x1, y1) in zip(coords, coords[1:] + coords[:1]):
                # (dx, dy) rotated clockwise is the outward normal of a counter-clockwise exterior
                self.triangle((x0, y0, bottom), (x1, y1, bottom), (x1, y1, top))
                self.triangle((x0, y0, bottom), (x1, y1, top), (x0, y0, top))
        for tri in shapely.constrained_delaunay_triangles(footprint).geoms:
            (ax, ay), (bx, by), (cx, cy) = list(tri.exterior.coords)[:3]
            if (bx - ax) * (cy - ay) - (by - ay) * (cx - ax) < 0:
                (bx, by), (cx, cy) = (cx, cy), (bx, by)
            self.triangle((ax, ay, top), (bx, by, top), (cx, cy, top))
            if bottom > 0:  # a floor for boxes that do not stand on the ground plane
                self.triangle((ax, ay, bottom), (cx, cy, bottom), (bx, by, bottom))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.vertices, np.float32).reshape(-1, 3), np.asarray(self.faces, np.int32).reshape(-1, 3)


def write_ply(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """A binary little-endian PLY mesh (what Mitsuba's ``ply`` shape reads)."""
    if len(faces) == 0:
        raise RadiolocError(f"{path}: a mesh needs at least one triangle")
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    face_rows = np.zeros(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    face_rows["n"] = 3
    face_rows["v"] = faces
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(np.ascontiguousarray(vertices, dtype="<f4").tobytes())
        f.write(face_rows.tobytes())


def building_heights(mask: np.ndarray, footprints: list[Polygon], heights: np.ndarray | None, default: float) -> list[float]:
    """Per footprint: the median of the known heights under it (pixels > 0), else ``default``."""
    if heights is None:
        return [default] * len(footprints)
    labels, _ = ndimage.label(np.asarray(mask) != 0)
    out = []
    for polygon in footprints:
        x, y = polygon.representative_point().coords[0]
        i, j = min(int(math.floor(y)), mask.shape[0] - 1), min(int(math.floor(x)), mask.shape[1] - 1)
        values = heights[labels == labels[i, j]] if labels[i, j] else np.array([])
        values = values[np.isfinite(values) & (values > 0)]
        out.append(float(np.median(values)) if len(values) else default)
    return out
