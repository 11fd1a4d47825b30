"""3-D scenes from 2-D maps: footprints, closed prisms, car boxes, PLY files."""

import math
from collections import Counter

import numpy as np

from radioloc.city.cars import car_footprint
from radioloc.propagation.scene3d import MeshBuilder, building_footprints, building_heights, car_boxes, write_ply


def test_footprints_follow_the_pixel_outline():
    mask = np.zeros((64, 64), np.uint8)
    mask[10:20, 30:50] = 1  # rows 10..19, cols 30..49
    mask[40:50, 5:15] = 1
    mask[44:46, 9:11] = 0  # a 2 x 2 courtyard
    polygons = sorted(building_footprints(mask, tolerance=0), key=lambda p: p.bounds[1])
    assert len(polygons) == 2
    assert polygons[0].bounds == (30.0, 10.0, 50.0, 20.0) and polygons[0].area == 200
    assert polygons[1].area == 96 and len(polygons[1].interiors) == 1
    assert all(p.exterior.is_ccw for p in polygons)


def test_simplified_diagonal_wall_keeps_its_area():
    rows, cols = np.mgrid[0:64, 0:64]
    mask = (rows > cols + 5).astype(np.uint8)  # a staircase along the diagonal
    exact = building_footprints(mask, tolerance=0)[0]
    simple = building_footprints(mask, tolerance=0.75)[0]
    assert len(simple.exterior.coords) < 10 < len(exact.exterior.coords)
    assert abs(simple.area - mask.sum()) < 0.05 * mask.sum()


def _closed_mesh_volume(vertices, faces, open_at_ground=False):
    edges = Counter()
    for a, b, c in faces:
        for u, v in ((a, b), (b, c), (c, a)):
            edges[(u, v)] += 1
    # closed and consistently oriented: every directed edge once, and its reverse once (a prism standing on
    # the ground has no floor: the ground plane closes it)
    on_ground = lambda u, v: open_at_ground and vertices[u][2] == 0 and vertices[v][2] == 0  # noqa: E731
    assert all(count == 1 and (edges[(v, u)] == 1 or on_ground(u, v)) for (u, v), count in edges.items())
    p = vertices[faces]
    return float(np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6.0)


def test_prism_is_closed_with_outward_normals():
    mask = np.zeros((64, 64), np.uint8)
    mask[5:25, 5:25] = 1
    mask[10:15, 10:15] = 0  # courtyard
    mask[30:40, 30:60] = 1
    mesh = MeshBuilder()
    footprints = building_footprints(mask, tolerance=0)
    for footprint in footprints:
        mesh.prism(footprint, 0.0, 25.0)
    vertices, faces = mesh.arrays()
    # positive volume = area x height: the divergence theorem with outward normals
    volume = _closed_mesh_volume(vertices.astype(np.float64), faces, open_at_ground=True)
    assert math.isclose(volume, mask.sum() * 25.0, rel_tol=1e-6)
    raised = MeshBuilder()
    raised.prism(footprints[0], 1.0, 2.5)  # a floor is added when it does not stand on the ground
    v, f = raised.arrays()
    assert math.isclose(_closed_mesh_volume(v.astype(np.float64), f), footprints[0].area * 1.5, rel_tol=1e-6)


def test_car_boxes_recover_position_and_orientation():
    cars = np.zeros((64, 64), np.uint8)
    rows, cols = car_footprint(20.3, 30.6, math.radians(30), 64)
    cars[rows, cols] = 1
    (box,) = car_boxes(cars)
    assert math.isclose(box.area, 10.0, rel_tol=1e-9)
    centre = box.centroid
    assert abs(centre.x - 31.1) < 0.5 and abs(centre.y - 20.8) < 0.5  # pixel (i, j) spans [j, j+1] x [i, i+1]
    xs, ys = np.array(box.exterior.coords).T
    long_side = max(((xs[k + 1] - xs[k], ys[k + 1] - ys[k]) for k in range(4)), key=lambda d: math.hypot(*d))
    angle = math.degrees(math.atan2(long_side[0], long_side[1])) % 180  # from +row (y), like car_footprint
    assert min(abs(angle - 30), abs(angle - 210) % 180) < 10


def test_known_heights_are_kept_per_building():
    mask = np.zeros((32, 32), np.uint8)
    mask[2:10, 2:10] = 1
    mask[20:30, 20:30] = 1
    heights = np.zeros((32, 32), np.float32)
    heights[2:10, 2:10] = 12.0
    footprints = sorted(building_footprints(mask), key=lambda p: p.bounds[0])
    assert building_heights(mask, footprints, heights, 25.0) == [12.0, 25.0]
    assert building_heights(mask, footprints, None, 25.0) == [25.0, 25.0]


def test_ply_round_trip(tmp_path):
    mesh = MeshBuilder()
    mesh.triangle((0, 0, 0), (1, 0, 0), (1, 1, 0))
    mesh.triangle((0, 0, 0), (1, 1, 0), (0, 1, 0))
    vertices, faces = mesh.arrays()
    assert len(vertices) == 4  # shared corners are one vertex
    write_ply(tmp_path / "m.ply", vertices, faces)
    data = (tmp_path / "m.ply").read_bytes()
    header, body = data.split(b"end_header\n")
    assert b"element vertex 4" in header and b"element face 2" in header
    read_vertices = np.frombuffer(body[: 4 * 12], dtype="<f4").reshape(4, 3)
    rows = np.frombuffer(body[4 * 12 :], dtype=[("n", "u1"), ("v", "<i4", (3,))])
    np.testing.assert_array_equal(read_vertices, vertices)
    np.testing.assert_array_equal(rows["v"], faces)
    assert (rows["n"] == 3).all()
