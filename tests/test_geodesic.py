"""Exact geometry of the dominant-path search: visibility rules, corner paths, brute-force agreement."""

import math

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from radioloc.propagation.geodesic import convex_corners, dominant_paths, pad_with_wall, segment_clear


def clear(obstacle, p, q):
    """Segment test in map coordinates (row, col); corners are half-integers."""
    return segment_clear(pad_with_wall(obstacle), int(round(2 * p[0])), int(round(2 * p[1])), int(round(2 * q[0])), int(round(2 * q[1])))


def paths(obstacle, tx, per_rad=0.0):
    padded = pad_with_wall(obstacle)
    return dominant_paths(padded, convex_corners(padded), tx[0], tx[1], per_rad)


def block(size=20, rows=(8, 11), cols=(8, 11)):
    obstacle = np.zeros((size, size), np.uint8)
    obstacle[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = 1
    return obstacle


def test_segment_rules():
    ob = block()  # building covers rows 8..11, cols 8..11, i.e. [7.5, 11.5] x [7.5, 11.5]
    assert clear(ob, (2, 2), (17, 2))  # open street
    assert not clear(ob, (9, 2), (9, 17))  # straight through the building
    assert clear(ob, (5, 5), (7.5, 7.5))  # to a corner
    assert clear(ob, (3, 3), (17, 17)) is False  # the diagonal crosses the building
    assert clear(ob, (7.5, 7.5), (7.5, 11.5))  # along one building edge: grazing
    two = np.zeros((20, 20), np.uint8)
    two[5, 5:10] = 1
    two[6, 5:10] = 1
    assert not clear(two, (5.5, 4.5), (5.5, 10.5))  # between two building rows
    pinch = np.zeros((20, 20), np.uint8)
    pinch[5, 5] = 1
    pinch[6, 6] = 1
    assert not clear(pinch, (2, 2), (9, 9))  # squeezes through a diagonal pinch
    assert clear(pinch, (2, 8), (8, 2)) is False  # crosses pixel interiors
    assert clear(pinch, (4.5, 5.5), (4.5, 10))  # grazes the top edge of one pixel


def test_map_edge_is_a_wall():
    ob = np.zeros((10, 10), np.uint8)
    ob[0:4, 5] = 1  # a wall touching the top edge
    assert not clear(ob, (-0.5, 4.5), (-0.5, 5.5))  # no path around it outside the map
    length, _, _ = paths(ob, (0, 2))
    assert length[0, 8] > math.hypot(0 - 0, 8 - 2) + 1  # must go around the bottom end of the wall


def test_convex_corners_of_a_rectangle():
    corners = convex_corners(pad_with_wall(block()))
    assert corners.sum() == 4
    assert {tuple(x) for x in np.argwhere(corners)} == {(8, 8), (8, 12), (12, 8), (12, 12)}


def test_line_of_sight_length_is_euclidean_and_one_corner_adds_up():
    ob = block()
    tx = (2, 3)
    length, loss, bends = paths(ob, tx, per_rad=1.0)
    assert length[17, 3] == pytest.approx(15.0, abs=1e-12)
    assert bends[17, 3] == 0 and loss[17, 3] == 0
    # (14, 12) is hidden behind the building; the path bends once at the corner (11.5, 7.5).
    assert not clear(ob, tx, (14, 12))
    corner = (11.5, 7.5)
    expected = math.dist(tx, corner) + math.dist(corner, (14, 12))
    assert length[14, 12] == pytest.approx(expected, abs=1e-12)
    assert bends[14, 12] == 1
    u = np.subtract(corner, tx)
    v = np.subtract((14, 12), corner)
    angle = math.atan2(abs(u[0] * v[1] - u[1] * v[0]), u @ v)
    assert loss[14, 12] == pytest.approx(angle, abs=1e-12)
    assert np.isinf(length[9, 9])  # inside the building


def _brute_force(obstacle, tx):
    """Shortest paths through a full visibility graph of the transmitter and all convex corners."""
    corners = convex_corners(pad_with_wall(obstacle))
    verts = [tx] + [(a - 0.5, b - 0.5) for a, b in np.argwhere(corners)]
    n = len(verts)
    graph = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            if clear(obstacle, verts[i], verts[j]):
                graph[i, j] = graph[j, i] = math.dist(verts[i], verts[j])
    reach = dijkstra(graph, directed=False, indices=0)
    out = np.full(obstacle.shape, np.inf)
    for r, c in np.argwhere(obstacle == 0):
        best = np.inf
        for k, v in enumerate(verts):
            cand = reach[k] + math.dist(v, (r, c))
            if cand < best and clear(obstacle, v, (r, c)):
                best = cand
        out[r, c] = best
    return out


def _random_scene(rng, size=36):
    ob = np.zeros((size, size), np.uint8)
    for _ in range(7):
        r, c = rng.integers(0, size - 3, 2)
        ob[r : r + rng.integers(2, 9), c : c + rng.integers(2, 9)] = 1
    for k in range(8):  # a staircase, as rasterized diagonal walls look
        ob[4 + k, 18 + k : 21 + k] = 1
    return ob


@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_visibility_graph(seed):
    rng = np.random.default_rng(seed)
    ob = _random_scene(rng)
    free = np.argwhere(ob == 0)
    tx = tuple(int(v) for v in free[rng.integers(len(free))])
    length, _, _ = paths(ob, tx)
    reference = _brute_force(ob, tx)
    assert np.array_equal(np.isfinite(length), np.isfinite(reference))
    finite = np.isfinite(reference)
    error = np.abs(length[finite] - reference[finite])
    assert error.max() < 0.01  # metres; exact except on ties between two nearly equal routes
    assert np.mean(error < 1e-9) > 0.97


def test_equivariant_under_rotation_and_transpose():
    rng = np.random.default_rng(7)
    ob = _random_scene(rng, 40)
    tx = (30, 6)
    assert ob[tx] == 0
    length, loss, bends = paths(ob, tx, per_rad=0.3)
    for k in (1, 2, 3):
        rotated = np.rot90(ob, k).copy()
        # np.rot90 (counter-clockwise) sends (r, c) to (W - 1 - c, r) for k = 1.
        r, c = tx
        for _ in range(k):
            r, c = ob.shape[1] - 1 - c, r
        l2, d2, b2 = paths(rotated, (r, c), per_rad=0.3)
        np.testing.assert_allclose(np.rot90(length, k), l2, rtol=0, atol=1e-9)
        np.testing.assert_allclose(np.rot90(loss, k), d2, rtol=0, atol=1e-9)
    lt, dt, _ = paths(ob.T.copy(), (tx[1], tx[0]), per_rad=0.3)
    np.testing.assert_allclose(length.T, lt, rtol=0, atol=1e-9)
    np.testing.assert_allclose(loss.T, dt, rtol=0, atol=1e-9)
