"""The dominant-path model: free-space values, noise floor, ToA, errors."""

import math

import numpy as np
import pytest

from radioloc.errors import RadiolocError
from radioloc.propagation import NOISE_FLOOR_DB, DominantPathModel, DominantPathSimulator, free_space_loss_db
from radioloc.propagation.dpm import SPEED_OF_LIGHT
from radioloc.propagation.geodesic import pad_with_wall, segment_clear


def test_free_space_loss_analytic():
    # 20 log10(4 pi d f / c) at 1 m and 5.9 GHz, and +20 dB per decade
    assert free_space_loss_db(1.0) == pytest.approx(20 * math.log10(4 * math.pi * 5.9e9 / 299_792_458.0))
    assert free_space_loss_db(1.0) == pytest.approx(47.865, abs=1e-3)
    assert free_space_loss_db(100.0) - free_space_loss_db(10.0) == pytest.approx(20.0)


def _scene():
    ob = np.zeros((64, 64), np.uint8)
    ob[20:30, 20:44] = 1
    ob[40:50, 10:20] = 1
    return ob


def test_line_of_sight_pixels_equal_free_space_exactly():
    ob = _scene()
    tx = (10, 12)
    radio_map = DominantPathSimulator(ob).simulate(tx)
    padded = pad_with_wall(ob)
    n_checked = 0
    for r, c in np.argwhere(ob == 0):
        if segment_clear(padded, 2 * tx[0], 2 * tx[1], 2 * int(r), 2 * int(c)):
            d = max(math.dist(tx, (r, c)), 1.0)
            assert radio_map.line_of_sight[r, c]
            assert radio_map.pathloss_db[r, c] == np.float32(-free_space_loss_db(d))
            n_checked += 1
        else:
            assert not radio_map.line_of_sight[r, c]
            assert radio_map.pathloss_db[r, c] < -free_space_loss_db(math.dist(tx, (r, c)))
    assert n_checked > 1000


def test_toa_is_length_over_c_and_indoor_is_nan():
    ob = _scene()
    radio_map = DominantPathSimulator(ob).simulate((10, 12))
    outdoor = ob == 0
    np.testing.assert_allclose(radio_map.toa_ns[outdoor], radio_map.length_m[outdoor] / SPEED_OF_LIGHT * 1e9, rtol=1e-6)
    assert np.isnan(radio_map.pathloss_db[~outdoor]).all()
    assert np.isnan(radio_map.toa_ns[~outdoor]).all()


def test_diffraction_grows_with_angle_and_can_fall_below_noise_floor():
    ob = _scene()
    weak = DominantPathSimulator(ob, DominantPathModel(diffraction_db_per_90deg=5)).simulate((10, 12))
    strong = DominantPathSimulator(ob, DominantPathModel(diffraction_db_per_90deg=60)).simulate((10, 12))
    hidden = ~weak.line_of_sight & (ob == 0)
    assert (strong.pathloss_db[hidden] <= weak.pathloss_db[hidden]).all()
    assert np.mean(strong.pathloss_db[hidden] < weak.pathloss_db[hidden]) > 0.95
    assert (strong.pathloss_db[hidden] < NOISE_FLOOR_DB).any()
    np.testing.assert_array_equal(strong.length_m, weak.length_m)


def test_bad_transmitters():
    ob = _scene()
    simulator = DominantPathSimulator(ob)
    with pytest.raises(RadiolocError, match="inside an obstacle"):
        simulator.simulate((25, 30))
    with pytest.raises(RadiolocError, match="outside"):
        simulator.simulate((64, 3))
