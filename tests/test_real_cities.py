"""Real city geometry: triangle rasterization, OSM buildings with heights, Sionna's bundled scenes, tiling."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from radioloc.city.real import EARTH_RADIUS_M, HeightMap, _rasterize_triangles, cut_tiles, geojson_height_map, osm_height_map, parse_height, scene_height_map
from radioloc.errors import RadiolocError


def test_a_roof_covers_exactly_the_pixels_under_it():
    # a 10 x 4 m roof at 12 m, from x = 3 to 13 and y = 20 down to 16, as two triangles
    xy = np.array([[3, 20], [13, 20], [13, 16], [3, 16]], dtype=np.float64)
    z = np.full(4, 12.0)
    faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64)
    out = np.zeros((30, 30))
    _rasterize_triangles(xy, z, faces, 0.0, 30.0, out)  # grid's north-west corner at (0, 30)
    expected = np.zeros((30, 30))
    expected[10:14, 3:13] = 12.0  # rows 30 - 20 .. 30 - 16, cols 3 .. 12
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "tags, metres", [({"height": "12"}, 12.0), ({"height": "7.5 m"}, 7.5), ({"building:levels": "4"}, 12.0), ({"height": "tall"}, math.nan), ({}, math.nan)]
)
def test_osm_heights(tags, metres):
    got = parse_height(tags)
    assert (math.isnan(got) and math.isnan(metres)) or got == metres


def _osm_file(path, buildings):
    """A minimal OSM XML file with one closed way per (lon, lat, width_m, depth_m, tags) building."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    ways, node = [], 1
    for lon, lat, width, depth, tags in buildings:
        dlon = width / (math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat)))
        dlat = depth / (math.radians(1) * EARTH_RADIUS_M)
        ids = []
        for x, y in ((lon, lat), (lon + dlon, lat), (lon + dlon, lat + dlat), (lon, lat + dlat)):
            lines.append(f'<node id="{node}" version="1" lat="{y:.9f}" lon="{x:.9f}"/>')
            ids.append(node)
            node += 1
        ways.append((ids + ids[:1], tags))
    for k, (ids, tags) in enumerate(ways, start=1):
        lines.append(f'<way id="{k}" version="1">' + "".join(f'<nd ref="{i}"/>' for i in ids))
        lines += [f'<tag k="{key}" v="{value}"/>' for key, value in tags.items()] + ["</way>"]
    lines.append("</osm>")
    path.write_text("\n".join(lines))


def test_osm_buildings_keep_size_and_height(tmp_path):
    path = tmp_path / "city.osm"
    _osm_file(path, [(11.5750, 48.1370, 40.0, 20.0, {"building": "yes", "height": "18"}),
                     (11.5760, 48.1372, 10.0, 30.0, {"building": "house", "building:levels": "3"}),
                     (11.5755, 48.1360, 50.0, 50.0, {"landuse": "grass"})])  # fmt: skip
    city = osm_height_map(path)
    heights = np.unique(city.heights[np.isfinite(city.heights)])
    np.testing.assert_array_equal(heights, [9.0, 18.0])
    assert abs(int(city.buildings.sum()) - (40 * 20 + 10 * 30)) < 0.05 * 1100  # the grass is no building
    assert abs((city.heights == 18.0).sum() - 800) < 40


def test_bad_osm_file_is_one_line(tmp_path):
    with pytest.raises(RadiolocError, match="file not found"):
        osm_height_map(tmp_path / "missing.osm.pbf")
    (tmp_path / "broken.osm").write_text("<osm><node id=")
    with pytest.raises(RadiolocError, match="broken.osm"):
        osm_height_map(tmp_path / "broken.osm")


def _rectangle(x, y, w, d):
    return [[[x, y], [x + w, y], [x + w, y + d], [x, y + d], [x, y]]]


def test_geojson_city_in_metres_and_in_lonlat(tmp_path):
    metric = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"height": 18}, "geometry": {"type": "Polygon", "coordinates": _rectangle(1000, 5000, 40, 20)}},
        {"type": "Feature", "properties": {"building:levels": 3}, "geometry": {"type": "Polygon", "coordinates": _rectangle(1100, 5100, 10, 30)}},
    ]}  # fmt: skip
    (tmp_path / "metric.geojson").write_text(json.dumps(metric))
    city = geojson_height_map(tmp_path / "metric.geojson", coordinates="metres")
    assert (city.x_left, city.y_top) == (1000.0, 5130.0)  # the grid's north-west corner
    assert city.buildings.shape == (130, 130) and int(city.buildings.sum()) == 40 * 20 + 10 * 30
    assert int((city.heights == 18).sum()) == 800 and int((city.heights == 9).sum()) == 300
    assert city.buildings[129, 0] == 1 and city.buildings[0, 100] == 1  # south-west building, north-east one
    # the same footprints in longitude / latitude near Munich: the same areas, within rasterization error
    lon0, lat0 = 11.575, 48.137
    per_lon, per_lat = math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat0)), math.radians(1) * EARTH_RADIUS_M
    for feature in metric["features"]:
        feature["geometry"]["coordinates"] = [[[lon0 + x / per_lon, lat0 + y / per_lat] for x, y in ring] for ring in feature["geometry"]["coordinates"]]
    (tmp_path / "lonlat.geojson").write_text(json.dumps(metric))
    city = geojson_height_map(tmp_path / "lonlat.geojson")
    assert abs(int(city.buildings.sum()) - 1100) < 0.05 * 1100 and abs(int((city.heights == 18).sum()) - 800) < 40
    with pytest.raises(RadiolocError, match="metric.geojson: coordinates outside longitude / latitude ranges"):
        geojson_height_map(tmp_path / "metric.geojson")
    with pytest.raises(RadiolocError, match="coordinates must be 'lonlat' or 'metres'"):
        geojson_height_map(tmp_path / "metric.geojson", coordinates="utm")


def test_tiles_keep_the_coverage_range_and_their_origin():
    buildings = np.zeros((512, 768), np.uint8)
    buildings[0:256, 0:256] = 1  # full: dropped
    buildings[0:100, 256:512] = 1  # 39 %: kept
    buildings[256:300, 0:256] = 1  # 17 %: kept; the rest is empty: dropped
    city = HeightMap(buildings, np.where(buildings == 1, 20.0, np.nan).astype(np.float32), x_left=-100.0, y_top=50.0, source="test")
    tiles = cut_tiles(city, min_coverage=0.1, max_coverage=0.6)
    assert [t["origin"] for t in tiles] == [(156.0, 50.0), (-100.0, -206.0)]
    assert [round(t["coverage"], 3) for t in tiles] == [round(100 / 256, 3), round(44 / 256, 3)]


def test_sionna_scene_becomes_a_city_with_heights():
    city = scene_height_map("etoile")
    assert 0.1 < city.buildings.mean() < 0.4
    assert np.isfinite(city.heights[city.buildings == 1]).all() and np.nanmax(city.heights) > 20
    assert len(cut_tiles(city)) >= 3
    with pytest.raises(RadiolocError, match="neither a bundled Sionna scene"):
        scene_height_map("atlantis")


def test_city_tiles_command_writes_tiles_usable_as_building_maps(tmp_path):
    from typer.testing import CliRunner

    from radioloc.city import load_building_png
    from radioloc.cli import app

    out = tmp_path / "etoile"
    result = CliRunner().invoke(app, ["city", "tiles", "etoile", "--out", str(out)])
    assert result.exit_code == 0, result.output
    index = json.loads((out / "tiles.json").read_text())
    assert {t["source"] for t in index["tiles"]} == {"sionna:etoile"} and len(index["tiles"]) >= 3
    first = index["tiles"][0]
    buildings = load_building_png(out / first["file"])
    with np.load(out / first["file"].replace(".png", ".heights.npz")) as data:
        heights = data["heights"]
    assert abs(buildings.mean() - first["coverage"]) < 1e-3
    assert np.isfinite(heights[buildings == 1]).all() and np.isnan(heights[buildings == 0]).all()
    assert (out / "figures" / "etoile_overview.png").stat().st_size > 10_000
    tiles = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = subprocess.run([sys.executable, "-m", "radioloc.cli", "city", "tiles", "etoile", "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "already holds files; give --force" in again.stderr and again.stderr.strip().count("\n") == 0
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == tiles  # nothing replaced without --force
    bad = subprocess.run(
        [sys.executable, "-m", "radioloc.cli", "city", "tiles", "etoile", "--out", str(out), "--min-coverage", "0.95", "--max-coverage", "1", "--force"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "no 256 x 256 m tile" in bad.stderr
    # a second city joins the index; a narrower recut of the first removes its tiles it no longer holds
    runner = CliRunner()
    assert runner.invoke(app, ["city", "tiles", "florence", "--out", str(out), "--force"]).exit_code == 0
    assert runner.invoke(app, ["city", "tiles", "etoile", "--out", str(out), "--force", "--min-coverage", "0.3", "--max-coverage", "0.6"]).exit_code == 0
    index = json.loads((out / "tiles.json").read_text())
    by_city = {source: sorted(t["file"] for t in index["tiles"] if t["source"] == source) for source in ("sionna:etoile", "sionna:florence")}
    assert by_city["sionna:florence"] and 0 < len(by_city["sionna:etoile"]) < len(tiles) // 2
    on_disk = sorted(p.name for p in out.glob("*.png"))
    assert on_disk == sorted(by_city["sionna:etoile"] + by_city["sionna:florence"])  # index and folder agree
    (out / "tiles.json").write_text(json.dumps({"tiles": [{"file": "../x.png", "origin_xy": [0, 0], "coverage": 0.2}]}))
    damaged = runner.invoke(app, ["city", "tiles", "etoile", "--out", str(out), "--force"])
    assert damaged.exit_code == 2 and "tiles.json: corrupt tile index (tiles.0.file:" in damaged.output, damaged.output
