"""Deployments: georeference, BS lists, the resumable build, windows, reports and locating through them."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from deploy_spec import SMALL_DEPLOYMENT as SPEC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from radioloc.cli import app
from radioloc.deploy import build as build_module
from radioloc.deploy.build import DeploymentSpec, auto_base_stations, build_deployment, check_base_stations, read_base_stations
from radioloc.deploy.deployment import WINDOW, DeploymentStore, UnknownCells
from radioloc.deploy.georef import Georeference
from radioloc.deploy.serving import DeploymentLocator
from radioloc.errors import RadiolocError


@pytest.fixture(scope="module")
def home(deployment_home):
    return deployment_home


@pytest.fixture(scope="module")
def deployment(home):
    return DeploymentStore(home).load(SPEC.id)


# -- georeference -------------------------------------------------------------------------------------------------
def test_georeference_round_trip_and_metric_distances():
    from pyproj import Geod

    ref = Georeference(48.1372, 11.5756, 1024, 1024)
    rows, cols = np.array([0.0, 511.5, 1023.0, 300.25]), np.array([0.0, 511.5, 17.0, 900.75])
    lat, lng = ref.to_latlng(rows, cols)
    back = ref.to_grid(lat, lng)
    assert np.allclose(back[0], rows, atol=1e-6) and np.allclose(back[1], cols, atol=1e-6)
    assert np.isclose(lat[1], 48.1372) and np.isclose(lng[1], 11.5756)  # the grid centre is the origin
    geod = Geod(ellps="WGS84")
    # 400 m east of the centre is 400 m away on the ellipsoid (azimuthal equidistant), and north is up
    lat_e, lng_e = ref.to_latlng(511.5, 911.5)
    _, _, distance = geod.inv(11.5756, 48.1372, float(lng_e), float(lat_e))
    assert abs(distance - 400.0) < 1e-3
    lat_n, _ = ref.to_latlng(411.5, 511.5)
    assert lat_n > 48.1372
    with pytest.raises(RadiolocError, match="latitude"):
        Georeference(95.0, 0.0, 10, 10)


# -- base stations ------------------------------------------------------------------------------------------------
def test_auto_base_stations_one_per_cell_on_free_pixels():
    obstacles = np.zeros((512, 512), dtype=np.uint8)
    obstacles[:, :200] = 1
    stations = auto_base_stations(obstacles, 128, seed=0)
    assert [bs.cell_id for bs in stations] == list(range(1, len(stations) + 1))
    assert all(obstacles[bs.row, bs.col] == 0 for bs in stations)
    cells = {(bs.row // 128, bs.col // 128) for bs in stations}
    assert len(cells) == len(stations)  # one per grid cell
    assert len(stations) == 4 * 3  # the first column of cells is all buildings in its middle half
    check_base_stations(stations, obstacles, "--bs")


def test_bs_list_from_csv_and_json_with_lat_lng(tmp_path):
    ref = Georeference(48.0, 11.0, 512, 512)
    lat, lng = ref.to_latlng(100.0, 300.0)
    (tmp_path / "bs.csv").write_text(f"cell_id,lat,lng,tx_power_dbm\n17,{float(lat)!r},{float(lng)!r},30\n18,,,\n")
    with pytest.raises(RadiolocError, match="entry 2: a position is needed: lat and lng, or row and col"):
        read_base_stations(tmp_path / "bs.csv", ref)
    (tmp_path / "bs.csv").write_text(f"cell_id,lat,lng,tx_power_dbm\n17,{float(lat)!r},{float(lng)!r},30\n")
    [bs] = read_base_stations(tmp_path / "bs.csv", ref)
    assert (bs.cell_id, bs.row, bs.col, bs.tx_power_dbm, bs.height_m) == (17, 100, 300, 30.0, 1.5)
    (tmp_path / "bs.json").write_text(json.dumps([{"cell_id": 5, "row": 10, "col": 20}, {"cell_id": 5, "row": 11, "col": 20}]))
    stations = read_base_stations(tmp_path / "bs.json", ref)
    with pytest.raises(RadiolocError, match="cell id 5 listed twice"):
        check_base_stations(stations, np.zeros((512, 512), np.uint8), "--bs bs.json")
    blocked = np.zeros((512, 512), np.uint8)
    blocked[10, 20] = 1
    with pytest.raises(RadiolocError, match="inside a building"):
        check_base_stations(stations[:1], blocked, "--bs bs.json")
    with pytest.raises(RadiolocError, match="outside the 8 x 8 m area"):
        check_base_stations(read_base_stations(tmp_path / "bs.json", Georeference(48.0, 11.0, 8, 8))[:1], np.zeros((8, 8), np.uint8), "--bs")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RadiolocError, match="not a readable BS list"):
        read_base_stations(tmp_path / "bad.json", ref)


def test_bs_list_keeps_zero_values_and_refuses_values_out_of_physical_range(tmp_path):
    ref = Georeference(48.0, 11.0, 512, 512)
    path = tmp_path / "bs.json"
    path.write_text(json.dumps([{"cell_id": 0, "row": 10, "col": 20, "tx_power_dbm": 0, "height_m": 0}]))
    [bs] = read_base_stations(path, ref)
    assert (bs.cell_id, bs.tx_power_dbm, bs.height_m) == (0, 0.0, 0.0)  # 0 dBm and 0 m on purpose, not the defaults
    (tmp_path / "bs.csv").write_text("cell_id,row,col,tx_power_dbm,height_m\n7,10,20,0,0\n")
    [bs] = read_base_stations(tmp_path / "bs.csv", ref)
    assert (bs.tx_power_dbm, bs.height_m) == (0.0, 0.0)
    bad = [
        ({"cell_id": True}, "cell_id: Value error, must be a whole number, got True"),
        ({"cell_id": 4.7}, "cell_id: Value error, must be a whole number, got 4.7"),
        ({"cell_id": "4.7"}, "must be a whole number, got '4.7'"),
        ({"cell_id": 2**70}, "cell_id: Input should be less than or equal to"),
        ({"cell_id": -1}, "cell_id: Input should be greater than or equal to 0"),
        ({"tx_power_dbm": 1e308}, "tx_power_dbm: Input should be less than or equal to 80"),
        ({"height_m": -3}, "height_m: Input should be greater than or equal to 0"),
        ({"row": float("nan")}, "row: Value error, must be finite"),
        ({"lat": 91.0, "lng": 11.0}, "lat: Input should be less than or equal to 90"),
        ({"row": 1e300}, "is not on a city's grid"),
    ]
    for change, message in bad:
        path.write_text(json.dumps([{"cell_id": 3, "row": 10, "col": 20} | change]))
        with pytest.raises(RadiolocError) as caught:
            read_base_stations(path, ref)
        text = str(caught.value).replace("Value error, ", "")
        assert text.startswith(f"--bs {path}, entry 1: ") and message.replace("Value error, ", "") in text and "\n" not in text, text


json_values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80), st.floats(allow_nan=True, allow_infinity=True),
                        st.text(max_size=8), st.lists(st.integers(), max_size=2))  # fmt: skip
fields = st.sampled_from(["cell_id", "lat", "lng", "row", "col", "height_m", "tx_power_dbm", "other"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(fields, json_values, max_size=8), max_size=3))
def test_any_bs_list_is_read_in_range_or_refused_in_one_line(tmp_path, records):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(records))  # NaN and infinities as JSON's extension: refused as not finite
    try:
        stations = read_base_stations(path, Georeference(48.0, 11.0, 512, 512))
    except RadiolocError as exc:
        assert str(exc).startswith(f"--bs {path}") and "\n" not in str(exc)
        return
    for bs in stations:
        assert isinstance(bs.cell_id, int) and not isinstance(bs.cell_id, bool) and 0 <= bs.cell_id < 2**36
        assert 0 <= bs.height_m <= 500 and -50 <= bs.tx_power_dbm <= 80


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"id": "Bad_Id"}, "lower-case"),
        ({"maps": "IRT9"}, "--sim"),
        ({"truth": "X"}, "--truth"),
        ({"localizers": ("knn",)}, "--localizers"),
        ({"survey": 10}, "--survey"),
        ({"size_m": 100}, "--size"),
    ],  # fmt: skip
)
def test_bad_specs_are_one_line_errors(overrides, message):
    with pytest.raises(RadiolocError, match=message):
        DeploymentSpec(**{"id": "ok", **overrides})


def test_a_build_that_failed_before_any_work_can_be_rerun_with_other_settings(tmp_path):
    store = DeploymentStore(tmp_path)
    with pytest.raises(RadiolocError, match="auto:SPACING needs a spacing of 32..1000 m"):
        build_deployment(store, DeploymentSpec(id="retry", city="generated:4", size_m=256, base_stations="auto:5"), quiet=True)
    with pytest.raises(RadiolocError, match="--city missing.png: file not found"):  # not "an unfinished build with other settings"
        build_deployment(store, DeploymentSpec(id="retry", city="missing.png", size_m=256), quiet=True)
    assert not store.staging("retry").exists() and store.pending() == []  # refused before any work: nothing left


# -- the built deployment -----------------------------------------------------------------------------------------
def test_build_publishes_a_whole_deployment_with_memory_mapped_arrays(home, deployment):
    store = DeploymentStore(home)
    assert store.ids() == [SPEC.id] and store.pending() == []
    assert isinstance(deployment.maps, np.memmap) and deployment.maps.shape == (len(deployment.cell_ids), 512, 512)
    config = json.loads((home / "deployments" / SPEC.id / "deployment.json").read_text())
    assert config["provenance"]["spec"]["city"] == "generated:4" and config["truth"] == "DPMcars"
    assert set(config["radius_calibrations"]) == {"bayes", "locunet"}
    assert not (home / "deployments" / SPEC.id / "bs").exists()  # per-BS work files are gone once published
    # the truth knows the cars, the maps do not: they differ exactly where cars shadow
    assert np.asarray(deployment.obstacles).sum() > np.asarray(deployment.buildings).sum()
    assert (np.asarray(deployment.maps) != np.asarray(deployment.truth)).any()


def test_reports_come_from_the_truth_strongest_first(deployment):
    free = np.argwhere(np.asarray(deployment.obstacles) == 0)
    row, col = free[len(free) // 3]
    reports = deployment.reports_at(row, col)
    strengths = [r["signalStrength"] for r in reports]
    assert strengths == sorted(strengths, reverse=True) and len(reports) >= 1
    for report in reports:
        b = int(np.flatnonzero(deployment.cell_ids == report["cellId"])[0])
        assert deployment.truth[b, row, col] > 0
        assert report["signalStrength"] == pytest.approx(report["pathloss_db"] + 23.0, abs=0.01)
    building = np.argwhere(np.asarray(deployment.obstacles) == 1)[0]
    with pytest.raises(RadiolocError, match="inside a building or a car"):
        deployment.reports_at(*building)
    with pytest.raises(RadiolocError, match="outside the deployment"):
        deployment.reports_at(600, 10)


def test_windows_lie_inside_the_area_on_the_step_grid(deployment):
    ids = np.tile(np.arange(5), (4, 1))
    centres = np.array([[0.0, 0.0], [511.0, 511.0], [255.5, 255.5], [300.0, 100.0]])
    origins = deployment.window_origins(ids, centres)
    assert (origins >= 0).all() and (origins <= 512 - WINDOW).all()
    assert (origins % 64 == 0).all()
    assert origins[0].tolist() == [0, 0] and origins[1].tolist() == [256, 256] and origins[2].tolist() == [128, 128]


def test_scenes_hold_only_the_bss_each_window_uses(deployment):
    ids = np.array([[0, 1, -1, -1, -1], [2, -1, -1, -1, -1], [1, 3, 4, -1, -1]])
    values = np.where(ids >= 0, -100.0, np.nan)
    origins = np.array([[0, 0], [0, 0], [128, 192]])
    windowed = deployment.scenes(ids, values, origins, positions=np.array([[10.0, 20.0], [30.0, 40.0], [200.0, 300.0]]))
    scenes, q = windowed.data.scenes, windowed.data.queries
    assert scenes.radio_maps.shape == (2, 3, WINDOW, WINDOW)  # slot 0 uses BSs 0, 1, 2; slot 1 uses 1, 3, 4
    for n in range(3):
        for j, b in enumerate(ids[n]):
            if b >= 0:
                r0, c0 = windowed.origins[q.map_slot[n]].astype(int)
                assert np.array_equal(scenes.radio_maps[q.map_slot[n], q.bs_ids[n, j]], deployment.maps[b, r0 : r0 + WINDOW, c0 : c0 + WINDOW])
    assert q.position[2].tolist() == [72.0, 108.0]
    assert np.allclose(windowed.to_area(q.position), [[10, 20], [30, 40], [200, 300]])


def test_locating_survey_phones_through_the_deployment(deployment):
    positions, ids, values = deployment.survey(300, seed=1234)  # phones the calibrations never saw
    cells = np.where(ids >= 0, deployment.cell_ids[np.maximum(ids, 0)], -1)
    rss = values + 23.0
    # floors of a 400-phone likelihood fit on a 512 m area (broken windows or radii put the median near 100 m)
    for name, median_floor in (("bayes", 15.0), ("locunet", 30.0)):
        answer = DeploymentLocator(deployment, name).locate(cells, rss - 23.0)
        errors = np.hypot(*(answer.positions - positions).T)
        five = (ids >= 0).sum(axis=1) == 5
        assert np.median(errors[five]) < median_floor, name
        assert 0.5 < np.mean(errors <= answer.radius_95) <= 1.0 and (answer.radius_95 >= answer.radius_68).all()
        lat, lng = deployment.georef.to_latlng(*answer.positions.T)
        assert np.allclose(lat, answer.lat) and np.allclose(lng, answer.lng)
    # unknown cells are ignored; a report with none known is its own error (the API's notFound)
    locator = DeploymentLocator(deployment)
    with_unknown = locator.locate(np.array([[999, cells[0, 0]]]), np.array([[-60.0, values[0, 0]]]))
    only_known = locator.locate(np.array([[cells[0, 0]]]), np.array([[values[0, 0]]]))
    assert np.allclose(with_unknown.positions, only_known.positions)
    with pytest.raises(UnknownCells, match="none of its cells"):
        locator.locate(np.array([[999]]), np.array([[-60.0]]))


# -- resumable, atomic builds ---------------------------------------------------------------------------------
def test_a_killed_build_is_never_served_and_resumes_to_the_same_arrays(home, tmp_path, monkeypatch):
    store = DeploymentStore(tmp_path)
    real = build_module._simulate_bs
    done = []

    def dies_after_three(args):
        if len(done) == 3:
            raise KeyboardInterrupt  # as a kill would stop it
        done.append(args[1])
        return real(args)

    monkeypatch.setattr(build_module, "_simulate_bs", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        build_deployment(store, SPEC, quiet=True)
    assert store.ids() == [] and store.pending() == [SPEC.id]
    from radioloc.deploy.build import read_progress

    assert read_progress(store, SPEC.id) == {"stage": "radio maps", "done": 3, "total": 9}
    with pytest.raises(RadiolocError, match="has not finished"):
        store.load(SPEC.id)
    with pytest.raises(RadiolocError, match="other settings \\(seed\\)"):
        build_deployment(store, DeploymentSpec(**{**SPEC.__dict__, "seed": 4}), quiet=True)
    monkeypatch.setattr(build_module, "_simulate_bs", lambda args: (done.append(args[1]), real(args))[1])
    build_deployment(store, SPEC, quiet=True)
    assert done[3:] == list(range(3, len(done)))  # the three finished BSs were not simulated again
    for name in ("maps", "truth", "buildings", "obstacles"):
        a = (tmp_path / "deployments" / SPEC.id / f"{name}.npy").read_bytes()
        assert a == (home / "deployments" / SPEC.id / f"{name}.npy").read_bytes(), name
    assert store.pending() == []


# -- command line ---------------------------------------------------------------------------------------------
def test_deploy_commands_and_locate(home, deployment, tmp_path):
    runner = CliRunner()
    env = {"RADIOLOC_HOME": str(home)}
    listed = runner.invoke(app, ["deploy", "list"], env=env)
    assert listed.exit_code == 0 and SPEC.id in listed.output
    figure = tmp_path / "d.png"
    shown = runner.invoke(app, ["deploy", "show", SPEC.id, "--figure", str(figure)], env=env)
    assert shown.exit_code == 0 and "DPMcars" in shown.output and figure.stat().st_size > 10_000
    free = np.argwhere(np.asarray(deployment.obstacles) == 0)
    row, col = free[len(free) // 2]
    reports = deployment.reports_at(row, col)[:5]
    cells = ",".join(str(r["cellId"]) for r in reports)
    rss = ",".join(str(r["signalStrength"]) for r in reports)
    located = runner.invoke(app, ["locate", "--deployment", SPEC.id, "--cells", cells, f"--rss={rss}"], env=env)
    assert located.exit_code == 0, located.output
    assert "68 % within" in located.output and "lat 48.1" in located.output
    for args, message in (
        (["locate", "--deployment", SPEC.id, "--cells", "999", "--rss=-60"], "none of its cells"),
        (["locate", "--deployment", SPEC.id, "--cells", cells], "either --rss"),
        (["locate", "--deployment", SPEC.id, "--cells", "1,2", "--rss=-60"], "--cells lists 2 cells but --rss 1"),
        (["locate", "--deployment", "nope", "--cells", "1", "--rss=-60"], "no deployment 'nope'"),
        (["locate", "--deployment", SPEC.id, "--cells", "1", "--rss=-60", "--model", "knn"], "served by bayes, locunet"),
        (["deploy", "delete", "nope"], "no deployment 'nope'"),
        (["deploy", "create", "Bad"], "lower-case"),
        (["deploy", "create", SPEC.id], "exists"),
        (["deploy", "create", "neg", "--city", "generated:-1"], "generated:SEED needs a whole-number seed"),
        (["locate", "--deployment", SPEC.id, "--cells", "1,2", "--rss=-60,nan"], "--rss: every value must be a finite number"),
        (["locate", "--map", "0"], "--data is required"),
        (["serve", "--db", "mysql://x/y"], "--db"),
        (["serve", "--db", "postgresql://nobody:wrong@127.0.0.1:1/none"], "cannot prepare the database"),
        (["serve", "--port", "70000"], "--port"),
    ):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    listed = runner.invoke(app, ["deploy", "list"], env=env)
    assert listed.exit_code == 0 and "neg" not in listed.output  # a build refused before any work leaves nothing
    copy = tmp_path / "copy"
    os.makedirs(copy / "deployments")
    os.symlink(home / "deployments" / SPEC.id, copy / "deployments" / "gone")
    deleted = runner.invoke(app, ["deploy", "delete", "gone"], env={"RADIOLOC_HOME": str(copy)})
    assert deleted.exit_code == 0 and not (copy / "deployments" / "gone").exists() and (home / "deployments" / SPEC.id).exists()


def test_a_dataset_map_deployment_answers_as_evaluate_does(small_dataset, tmp_path):
    """A deployment of a dataset map, served by the shipped LocUNet: through the locator and through the API, the
    same positions and radii as `radioloc evaluate` on the same queries (to 0.01 m)."""
    from fastapi.testclient import TestClient

    from radioloc.datasets.localization import load_localization
    from radioloc.localizers.registry import resolve_localizer
    from radioloc.service.app import Settings, create_app

    root, _ = small_dataset
    with pytest.raises(RadiolocError, match="--truth"):
        DeploymentSpec(id="map0", city=f"dataset:{root}:0:true")
    spec = DeploymentSpec(id="map0", city=f"dataset:{root}:0:true", truth="DPM", localizers=("locunet",))
    deployment = build_deployment(DeploymentStore(tmp_path), spec, quiet=True)
    assert deployment.config.serving == "shipped" and len(deployment.cell_ids) == 12 and deployment.config.shape == (256, 256)
    data = load_localization(root, "custom", "true", maps=[0])
    evaluated = resolve_localizer("locunet:paper").localizer.locate(data)  # what deployments serve as locunet
    q = data.queries
    answer = DeploymentLocator(deployment, "locunet").locate(q.bs_ids, q.pathloss_db)
    assert np.abs(answer.positions - evaluated.positions).max() <= 0.01
    assert np.abs(answer.radii - evaluated.radii).max() <= 0.01
    app = create_app(Settings(home=tmp_path, run_jobs=False))
    _, key = app.state.radioloc.db.create_key("c", "client", "map0")
    reports = [
        {"cells": [int(b) for b in ids if b >= 0], "pathloss_db": [float(p) for b, p in zip(ids, values) if b >= 0]}
        for ids, values in zip(q.bs_ids, q.pathloss_db)
    ]
    with TestClient(app) as client:
        response = client.post(f"/v1/deployments/map0/locate?key={key}", json={"reports": reports})
    assert response.status_code == 200, response.text
    through_api = np.array([[r["row_m"], r["col_m"]] for r in response.json()["results"]])
    assert np.abs(through_api - evaluated.positions).max() <= 0.01
    assert abs(np.hypot(*(through_api - q.position).T).mean() - np.hypot(*(evaluated.positions - q.position).T).mean()) <= 0.01


def test_a_replacement_killed_between_its_renames_restores_the_old_deployment(deployment_home, tmp_path):
    import shutil

    from radioloc.deploy.deployment import DeploymentStore

    home = tmp_path / "home"
    shutil.copytree(deployment_home, home, symlinks=True)
    store = DeploymentStore(home)
    [deployment_id] = store.ids()
    before = {p.relative_to(store.path(deployment_id)): p.read_bytes() for p in store.path(deployment_id).rglob("*") if p.is_file()}
    store.path(deployment_id).rename(store.replaced(deployment_id))  # the kill: old moved aside, new not yet in place
    assert store.ids() == []
    loaded = store.load(deployment_id)  # any reader (the service, locate) puts the old one back, whole
    assert loaded is not None and store.ids() == [deployment_id] and not store.replaced(deployment_id).exists()
    assert {p.relative_to(store.path(deployment_id)): p.read_bytes() for p in store.path(deployment_id).rglob("*") if p.is_file()} == before
    # deleted while a cut swap left a linked old copy aside: it never comes back, and what it links to stays
    outside = tmp_path / "outside"
    shutil.copytree(store.path(deployment_id), outside)
    store.replaced(deployment_id).symlink_to(outside)
    store.delete(deployment_id)
    with pytest.raises(RadiolocError, match="no deployment"):
        store.load(deployment_id)
    assert not store.replaced(deployment_id).is_symlink() and (outside / "deployment.json").is_file()


@pytest.mark.parametrize("name,content,message", [("stations.json", '{"georef": 1}', "corrupt BS placement"), ("stations.json", "[]", "corrupt BS placement"), ("stations.json", json.dumps({"georef": {"lat": 48.0, "lng": 11.0, "rows": 256, "cols": 256}, "base_stations": [{"cell_id": True, "row": 3, "col": 4, "height_m": 1.5, "tx_power_dbm": 23.0}]}), "base_stations.0.cell_id"),
                                                  ("spec.json", "{oops", "not valid JSON")])  # fmt: skip
def test_a_corrupt_staging_file_is_one_line(tmp_path, name, content, message):
    """A build killed and its staging files damaged: the resumed build names the file instead of a traceback."""
    store = DeploymentStore(tmp_path)
    spec = DeploymentSpec(id="hurt", city="generated:4", size_m=256, base_stations="auto:100")
    staging = store.staging(spec.id)
    staging.mkdir(parents=True)
    (staging / "spec.json").write_text(json.dumps(spec.to_dict()))
    (staging / "city.npz").write_bytes(b"")  # marks the placement as done, so the build reads stations.json
    (staging / name).write_text(content)
    with pytest.raises(RadiolocError, match=message) as caught:
        build_deployment(store, spec, quiet=True)
    assert name in str(caught.value) and "\n" not in str(caught.value)


def _crafted(config: dict, change) -> dict:
    config = json.loads(json.dumps(config))
    change(config)
    return config


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda c: c["base_stations"][0].update(cell_id=True), "base_stations.0.cell_id"),
        (lambda c: c["base_stations"][0].update(cell_id=4.7), "base_stations.0.cell_id"),
        (lambda c: c["base_stations"][0].update(row=c["georef"]["rows"]), "outside the"),
        (lambda c: c["base_stations"][1].update(cell_id=c["base_stations"][0]["cell_id"]), "share a cell id"),
        (lambda c: c["base_stations"][0].update(tx_power_dbm=float("nan")), "base_stations.0.tx_power_dbm"),
        (lambda c: c["georef"].update(lat=500), "georef.lat"),
        (lambda c: c.update(localizers=["knn"]), "localizers.0"),
        (lambda c: c.update(maps="IRT9"), "maps"),
        (lambda c: c.update(radius_calibrations="none"), "radius_calibrations"),
        (lambda c: c.update(base_stations=[]), "base_stations"),
        (lambda c: c.pop("georef"), "georef"),
        (lambda c: c["city"].update(coverage=None), "city.coverage"),
        (lambda c: c["survey"]["localizers"][c["localizers"][0]].update(held_out_mae_m={"1": None}), "survey.localizers"),
    ],
)
def test_a_crafted_deployment_file_names_its_field(deployment_home, tmp_path, change, field):
    """deployment.json is parsed through its schema: a file that is JSON but not what radioloc wrote fails on
    load with one line naming the field, never later with a wrong cell or a traceback."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(deployment_home, home, symlinks=True)
    store = DeploymentStore(home)
    [deployment_id] = store.ids()
    path = store.path(deployment_id) / "deployment.json"
    path.write_text(json.dumps(_crafted(json.loads(path.read_text()), change)))
    with pytest.raises(RadiolocError) as caught:
        store.load(deployment_id)
    message = str(caught.value)
    assert message.startswith(f"{path}: corrupt deployment (") and field in message and "\n" not in message, message


def test_the_written_deployment_file_passes_its_own_schema(deployment_home):
    from radioloc.deploy.state import DeploymentFields

    store = DeploymentStore(deployment_home)
    [deployment_id] = store.ids()
    fields = DeploymentFields.model_validate(json.loads((store.path(deployment_id) / "deployment.json").read_text()))
    assert fields.id == deployment_id and len(fields.base_stations) == len(store.load(deployment_id).config.base_stations)
