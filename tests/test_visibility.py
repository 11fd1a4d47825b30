"""Coarse geometric features of the CPU RadioUNet: direct-line obstruction and detour."""

import math

import numpy as np

from radioloc.propagation.visibility import coarse_detour, obstruction_features


def test_open_map_is_all_line_of_sight_without_detour():
    empty = np.zeros((1, 256, 256), np.uint8)
    los = obstruction_features(empty, np.array([10]), np.array([20]), 4)
    assert los.shape == (1, 2, 64, 64)
    assert (los[0, 0] == 1).all() and (los[0, 1] == 0).all()
    detour = coarse_detour(empty, np.array([10]), np.array([20]), 4)[0, 0] * 32
    rows, cols = np.mgrid[0:64, 0:64] * 4 + 1.5
    straight = np.hypot(rows - 10, cols - 20)
    assert (detour <= 0.03 * straight + 4.0).all()  # grid metric within 3 % plus twice the start-cell offset


def test_a_wall_casts_a_shadow_and_a_detour():
    walled = np.zeros((1, 256, 256), np.uint8)
    walled[0, 100:108, 0:100] = 1  # a wall from the west edge to col 100, 8 m thick
    tx_row, tx_col = np.array([50]), np.array([60])
    los = obstruction_features(walled, tx_row, tx_col, 4)[0]
    detour = coarse_detour(walled, tx_row, tx_col, 4)[0, 0] * 32
    behind = (150 // 4, 60 // 4)  # straight south of the Tx, behind the wall
    assert los[0][behind] == 0 and los[1][behind] > 0
    assert abs(los[1][behind] * 64 - 8.0) <= 0.5  # 8 m of wall on the direct line, sampled every 0.5 m
    # the way around the east end of the wall (col 99.5)
    centre = (behind[0] * 4 + 1.5, behind[1] * 4 + 1.5)
    around = math.dist((50, 60), (99.5, 99.5)) + 9.0 + math.dist((108.5, 99.5), centre)
    assert abs((detour[behind] + math.dist((50, 60), centre)) - around) < 0.05 * around
    in_front = (80 // 4, 60 // 4)
    assert los[0][in_front] == 1 and detour[in_front] < 3


def test_coarse_dominant_path_excess():
    from radioloc.propagation.visibility import coarse_dominant_path_excess

    empty = np.zeros((1, 256, 256), np.uint8)
    assert coarse_dominant_path_excess(empty, np.array([10]), np.array([20]), 4).max() < 1e-6
    walled = np.zeros((1, 256, 256), np.uint8)
    walled[0, 100:108, 0:100] = 1
    excess = coarse_dominant_path_excess(walled, np.array([50]), np.array([60]), 4)[0, 0] * 30
    assert excess[80 // 4, 60 // 4] < 1e-4  # in front of the wall
    behind = excess[150 // 4, 60 // 4]
    assert 10 < behind < 60  # around the wall's end: a bend of several tens of degrees at 30 dB per 90
    assert excess[150 // 4, 200 // 4] < behind  # the shadow fades away from the wall


def test_coarse_cells_block_from_the_chosen_building_fraction():
    from radioloc.propagation.visibility import coarse_dominant_path_excess

    wall = np.zeros((1, 256, 256), np.uint8)
    wall[0, 101, 0:200] = 1  # 1 m thick: each 2 m cell it crosses is half building
    tx, behind = (np.array([50]), np.array([60])), (150 // 2, 60 // 2)
    half = coarse_dominant_path_excess(wall, *tx, 2, blocked_fraction=0.5)[0, 0] * 30
    three_quarters = coarse_dominant_path_excess(wall, *tx, 2, blocked_fraction=0.75)[0, 0] * 30
    assert half[behind] > 10  # a wall: the way around its east end bends
    assert three_quarters[behind] < 1e-4  # too thin to block a 2 m cell


def test_open_cells_keep_a_diagonal_one_metre_passage():
    """A passage at 45 degrees through a thick wall, two pixels wide in each row (1.4 m across): every other
    2 m cell along it is 3/4 building, so cells blocked from 3/4 cut it and leave the far side unreachable; open
    cells (blocked only when wholly building) keep it, and the far side along its line is in line of sight."""
    from radioloc.propagation.visibility import coarse_dominant_path_excess

    wall = np.zeros((1, 256, 256), np.uint8)
    wall[0, 100:140, :] = 1
    for k in range(40):  # the passage: pixels (100 + k, 60 + k) and (100 + k, 61 + k), face to face
        wall[0, 100 + k, 60 + k : 62 + k] = 0
    tx, far = (np.array([80]), np.array([40])), (160 // 2, 120 // 2)  # both on the passage's line
    closed = coarse_dominant_path_excess(wall, *tx, 2, blocked_fraction=0.75)[0, 0] * 30
    kept = coarse_dominant_path_excess(wall, *tx, 2, blocked_fraction=1.0)[0, 0] * 30
    assert closed[far] == 60.0  # unreachable: the wall spans the map
    assert kept[far] < 1e-4
    from radioloc.propagation.dpm import DominantPathSimulator

    assert DominantPathSimulator(wall[0]).simulate((80, 40)).line_of_sight[160, 120]  # as in the 1 m truth


def test_batched_features_equal_one_map_at_a_time():
    from radioloc.propagation.visibility import coarse_dominant_path_excess

    rng = np.random.default_rng(3)
    maps = np.zeros((4, 256, 256), np.uint8)
    for k in range(4):
        for _ in range(12):
            r, c = rng.integers(0, 230, size=2)
            maps[k, r : r + 20, c : c + 20] = 1
    rows, cols = np.array([5, 250, 128, 3]), np.array([5, 3, 250, 128])
    maps[np.arange(4), rows, cols] = 0
    for feature in (obstruction_features, coarse_detour, coarse_dominant_path_excess):
        batch = feature(maps, rows, cols, 4)
        single = np.concatenate([feature(maps[k : k + 1], rows[k : k + 1], cols[k : k + 1], 4) for k in range(4)])
        np.testing.assert_array_equal(batch, single)
