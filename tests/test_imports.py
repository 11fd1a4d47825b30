import json

import numpy as np
import pytest
from PIL import Image

from radioloc.city import load_building_png, load_geojson_footprints
from radioloc.errors import RadiolocError


def test_png_round_trip(tmp_path):
    mask = np.zeros((256, 256), np.uint8)
    mask[10:20, 30:50] = 200
    Image.fromarray(mask, mode="L").save(tmp_path / "a.png")
    loaded = load_building_png(tmp_path / "a.png")
    np.testing.assert_array_equal(loaded, (mask != 0).astype(np.uint8))


def test_png_wrong_size_mode_and_corrupt(tmp_path):
    Image.fromarray(np.zeros((100, 256), np.uint8), mode="L").save(tmp_path / "small.png")
    with pytest.raises(RadiolocError, match=r"small.png: building map must be 256 x 256 pixels, got 256 x 100"):
        load_building_png(tmp_path / "small.png")
    Image.fromarray(np.zeros((256, 256, 3), np.uint8), mode="RGB").save(tmp_path / "rgb.png")
    with pytest.raises(RadiolocError, match=r"rgb.png: .*got mode RGB"):
        load_building_png(tmp_path / "rgb.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(RadiolocError, match=r"bad.png: not a readable PNG"):
        load_building_png(tmp_path / "bad.png")
    with pytest.raises(RadiolocError, match="file not found"):
        load_building_png(tmp_path / "none.png")


def _feature(coords, height=None):
    props = {} if height is None else {"height": height}
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [coords]}}


def test_geojson_footprint_lands_on_the_expected_pixels(tmp_path):
    # A 10 x 5 m building with its north-west corner 20 m east and 30 m south of the tile origin.
    x0, y_top = 500_000.0, 5_300_000.0
    square = [(x0 + 19.5, y_top - 29.5), (x0 + 29.5, y_top - 29.5), (x0 + 29.5, y_top - 34.5), (x0 + 19.5, y_top - 34.5), (x0 + 19.5, y_top - 29.5)]
    path = tmp_path / "city.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [_feature(square, height=18)]}))
    city, heights = load_geojson_footprints(path, origin=(x0, y_top))
    rows, cols = np.nonzero(city.buildings)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (30, 34, 20, 29)
    assert np.all(heights[city.buildings != 0] == 18) and np.isnan(heights[city.buildings == 0]).all()


def test_geojson_errors(tmp_path):
    bowtie = [(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)]
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [_feature([(0, 0), (5, 0), (5, 5), (0, 0)]), _feature(bowtie)]}))
    with pytest.raises(RadiolocError, match=r"bad.geojson: feature 1: invalid polygon \(Self-intersection"):
        load_geojson_footprints(path)
    path.write_text("{not json")
    with pytest.raises(RadiolocError, match="not valid JSON"):
        load_geojson_footprints(path)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}]}))
    with pytest.raises(RadiolocError, match="expected a Polygon or MultiPolygon footprint, got Point"):
        load_geojson_footprints(path)
