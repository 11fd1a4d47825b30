import numpy as np
import pytest
from scipy import ndimage
from shapely.geometry import box

from radioloc.city import CarConfig, generate_city, place_cars, rasterize
from radioloc.city.cars import car_footprint
from radioloc.city.generator import STYLES


def test_rasterize_uses_pixel_centres_with_x_as_col():
    mask = rasterize([box(19.5, 9.5, 29.5, 19.5)], 64)  # x (col) 19.5..29.5, y (row) 9.5..19.5
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 19, 20, 29)
    assert mask.sum() == 100


def test_deterministic_for_a_seed():
    a = generate_city(11)
    b = generate_city(11)
    c = generate_city(12)
    np.testing.assert_array_equal(a.buildings, b.buildings)
    assert not np.array_equal(a.buildings, c.buildings)


@pytest.mark.parametrize("seed", range(6))
def test_coverage_and_shapes(seed):
    city = generate_city(seed)
    assert city.buildings.shape == (256, 256)
    assert 0.13 <= city.coverage <= 0.52
    labels, count = ndimage.label(city.buildings)
    assert count >= 8  # many buildings, not one slab
    free = city.buildings == 0
    # the open space is mostly one connected street network
    open_labels, _ = ndimage.label(free)
    assert np.bincount(open_labels.ravel())[1:].max() > 0.8 * free.sum()


def test_all_styles_and_rotated_footprints():
    styles = {generate_city(seed).style for seed in range(12)}
    assert styles == set(STYLES)
    city = generate_city(3)
    # rasterized non-axis-aligned walls are staircases: many more corners than 4 per building
    _, count = ndimage.label(city.buildings)
    corners = np.abs(np.diff(np.diff(city.buildings.astype(int), axis=0), axis=1)).sum()
    assert corners > 8 * count


def test_cars_are_car_sized_in_the_street_and_deterministic():
    city = generate_city(5)
    cars = place_cars(city.buildings, seed=1, config=CarConfig(count=100))
    np.testing.assert_array_equal(cars, place_cars(city.buildings, seed=1, config=CarConfig(count=100)))
    assert not (cars & city.buildings).any()
    labels, count = ndimage.label(cars)
    assert 50 <= count <= 100
    sizes = np.bincount(labels.ravel())[1:]
    assert sizes.min() >= 6 and sizes.max() <= 14  # 2 x 5 m = 10 m^2 on a 1 m grid


def test_car_footprint_axis_aligned_is_2_by_5():
    rows, cols = car_footprint(10.0, 10.5, 0.0, 64)  # long axis along rows, centred between two columns
    assert sorted(set(rows.tolist())) == [8, 9, 10, 11, 12]
    assert sorted(set(cols.tolist())) == [10, 11]
    assert len(rows) == 10
