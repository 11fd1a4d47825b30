"""Deployment radio maps from RadioUNet and the ray tracer: the near tile, DPM beyond it, and whole builds."""

from __future__ import annotations

import numpy as np
import pytest

from radioloc.city.cars import CarConfig, place_cars
from radioloc.city.generator import CityConfig, generate_city
from radioloc.deploy.build import DeploymentSpec, auto_base_stations, build_deployment
from radioloc.deploy.deployment import DeploymentStore
from radioloc.deploy.radiomaps import NEAR_TILE, AreaRadioMaps, near_tile
from radioloc.deploy.serving import DeploymentLocator
from radioloc.errors import RadiolocError
from radioloc.models.estimate import cached_radiounet, predict_gray
from radioloc.propagation.dpm import free_space_loss_db
from radioloc.propagation.graylevel import DB_PER_GRAY, db_to_gray
from radioloc.propagation.raytracing import cached_tracer


@pytest.fixture(scope="module")
def area():
    buildings = generate_city(4, CityConfig(size=384)).buildings.astype(np.uint8)
    cars = place_cars(buildings, 5, CarConfig(count=200))
    [bs] = [s for s in auto_base_stations(buildings | cars, 192, seed=0) if s.row < 192 and s.col >= 192]
    return AreaRadioMaps(buildings, cars), (bs.row, bs.col)


def _near_on_far(maps: AreaRadioMaps, source: str, far_source: str, row: int, col: int):
    """(the map of ``source``, the DPM map beyond its tile, the tile's slice), checking that outside the tile the
    map is exactly the DPM one."""
    gray, far = maps.gray(source, row, col), maps.gray(far_source, row, col)
    r0, c0 = near_tile(row, col, gray.shape)
    tile = np.s_[r0 : r0 + NEAR_TILE, c0 : c0 + NEAR_TILE]
    outside = np.ones(gray.shape, dtype=bool)
    outside[tile] = False
    assert np.array_equal(gray[outside], far[outside])
    return gray, far, tile


def test_near_tile_is_centred_on_the_bs_and_moved_inside_the_area():
    assert near_tile(300, 400, (1024, 1024)) == (172, 272)
    assert near_tile(10, 1020, (1024, 1024)) == (0, 768)
    assert near_tile(200, 100, (256, 300)) == (0, 0)
    assert near_tile(128, 299, (256, 300)) == (0, 44)
    with pytest.raises(ValueError, match="at least 256 x 256"):
        AreaRadioMaps(np.zeros((200, 300), np.uint8), np.zeros((200, 300), np.uint8))
    with pytest.raises(ValueError, match="unknown radio-map source 'IRT9'"):
        AreaRadioMaps(np.zeros((256, 256), np.uint8), np.zeros((256, 256), np.uint8)).gray("IRT9", 1, 1)


def test_radiounet_maps_are_its_estimate_on_the_tile_and_dpm_beyond(area):
    maps, (row, col) = area
    gray, dpm, tile = _near_on_far(maps, "RadioUNet", "DPM", row, col)
    r0, c0 = tile[0].start, tile[1].start
    model, runtime = cached_radiounet()
    expected = predict_gray(model, np.ascontiguousarray(maps.buildings[tile]), None, np.array([[row - r0, col - c0]]), runtime)[0]
    assert np.array_equal(gray[tile], expected)
    # and the estimate is an estimate of DPM: its shipped accuracy (2.4-2.7 dB RMSE) on this tile's outdoor pixels
    outdoor = maps.buildings[tile] == 0
    rmse = np.sqrt(np.mean(((gray[tile].astype(float) - dpm[tile]) * DB_PER_GRAY)[outdoor] ** 2))
    assert 0.3 < rmse < 3.5
    assert (gray[maps.buildings == 1] == 0).all()


def test_ray_traced_maps_are_the_tile_scene_solved_and_dpm_with_cars_beyond(area):
    maps, (row, col) = area
    gray, dpm_cars, tile = _near_on_far(maps, "IRT2cars", "DPMcars", row, col)
    r0, c0 = tile[0].start, tile[1].start
    scene = cached_tracer().scene(maps.buildings[tile], maps.cars[tile])
    assert np.array_equal(gray[tile], db_to_gray(scene.pathloss(np.array([[row - r0, col - c0]]))[0]))  # one thread: reproducible
    assert (gray[(maps.buildings | maps.cars) == 1] == 0).all()
    # in the open street around the BS the ray tracer sees free space plus a ground reflection, as DPM does
    rows, cols = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]]
    distance = np.hypot(rows - row, cols - col)
    near_los = (distance > 8) & (distance < 40) & (dpm_cars > 0) & (gray > 0)
    near_los &= np.isclose(dpm_cars * DB_PER_GRAY, db_to_gray(-free_space_loss_db(np.maximum(distance, 1.0))) * DB_PER_GRAY, atol=0.5)
    assert near_los.sum() > 200
    excess_db = (gray[near_los].astype(float) - dpm_cars[near_los]) * DB_PER_GRAY
    assert -3.0 < np.median(excess_db) < 4.0
    # without cars the scene differs: IRT2 is its own simulation
    assert not np.array_equal(maps.gray("IRT2", row, col)[tile], gray[tile])


def test_a_deployment_built_on_radiounet_maps_with_ray_traced_truth(tmp_path):
    store = DeploymentStore(tmp_path)
    spec = DeploymentSpec(id="near", city="generated:4", size_m=256, base_stations="auto:128", maps="RadioUNet", truth="IRT2cars", survey=600, seed=3)
    built = build_deployment(store, spec, quiet=True)
    assert (built.config.maps, built.config.truth, built.config.estimate) == ("RadioUNet", "IRT2cars", "estimate")
    assert built.config.provenance["spec"]["maps"] == "RadioUNet"
    area = AreaRadioMaps(np.asarray(built.buildings), np.asarray(built.obstacles) - np.asarray(built.buildings))
    first = built.config.base_stations[0]
    assert np.array_equal(built.maps[0], area.gray("RadioUNet", first.row, first.col))
    assert np.array_equal(built.truth[0], area.gray("IRT2cars", first.row, first.col))
    # the serving localizers answer, with the radii the survey calibrated on these maps and this truth
    assert set(built.config.radius_calibrations) == {"bayes", "locunet"}
    positions, ids, values = built.survey(50, seed=11)
    cells = np.where(ids >= 0, built.cell_ids[np.maximum(ids, 0)], -1)
    located = DeploymentLocator(built).locate(cells, values)
    assert located.positions.shape == (50, 2) and np.isfinite(located.positions).all()
    assert (located.radius_95 >= located.radius_68).all()


@pytest.mark.parametrize("overrides, message", [({"maps": "IRT2cars"}, "--sim must be one of DPM, RadioUNet, IRT2"),
                                                ({"city": "dataset:data/x:0", "maps": "RadioUNet", "truth": "DPM"}, "a dataset map brings its own maps")])  # fmt: skip
def test_map_sources_are_checked(overrides, message):
    with pytest.raises(RadiolocError, match=message):
        DeploymentSpec(**{"id": "ok", **overrides})


def test_a_ray_traced_deployment_fails_before_any_work_without_the_ray_tracer(tmp_path):
    import os
    import subprocess
    import sys

    environment = {**os.environ, "DRJIT_LIBLLVM_PATH": str(tmp_path / "missing" / "libLLVM-19.so")}
    result = subprocess.run([sys.executable, "-m", "radioloc.cli", "deploy", "create", "rt", "--home", str(tmp_path / "home"), "--size", "256",
                             "--truth", "IRT2cars"], env=environment, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    assert len(lines) == 1 and "DRJIT_LIBLLVM_PATH" in lines[0] and "file not found" in lines[0]
    assert not (tmp_path / "home" / "staging" / "rt").exists()
