"""State files radioloc reads back (deployment arrays and calibrations, ToA files, likelihood calibrations, training
checkpoints) that parse but are not what radioloc wrote: one line naming the file, never a traceback or an answer
computed from them (issue 32)."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from radioloc.cli import app
from radioloc.deploy.deployment import DeploymentStore
from radioloc.errors import RadiolocError
from radioloc.training.resume import check_schedule, check_training_state

WEIGHTS = Path(__file__).resolve().parent.parent / "src" / "radioloc" / "models" / "weights"


def _home_copy(deployment_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(deployment_home, home, symlinks=True)
    store = DeploymentStore(home)
    [deployment_id] = store.ids()
    return store, deployment_id


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda f: np.save(f / "maps.npy", np.load(f / "maps.npy").astype(np.float32)), "maps.npy: float32 values, uint8 expected"),
        (lambda f: np.save(f / "truth.npy", np.load(f / "truth.npy").astype(np.int64) - 300), "truth.npy: int64 values, uint8 expected"),
        (lambda f: (f / "maps.npy").write_bytes(b""), "maps.npy: not a readable array"),
        (lambda f: np.save(f / "buildings.npy", np.load(f / "buildings.npy") * 7), "buildings.npy: values other than 0 and 1"),
        (lambda f: np.save(f / "obstacles.npy", np.zeros((10, 10), dtype=np.uint8)), "deployment arrays do not match"),
    ],
)
def test_damaged_deployment_arrays_are_one_line(deployment_home, tmp_path, damage, message):
    store, deployment_id = _home_copy(deployment_home, tmp_path)
    damage(store.path(deployment_id))
    with pytest.raises(RadiolocError, match=message) as caught:
        store.load(deployment_id)
    assert "\n" not in str(caught.value)


def test_a_deployment_file_must_calibrate_what_it_serves_and_be_its_own(deployment_home, tmp_path):
    store, deployment_id = _home_copy(deployment_home, tmp_path)
    path = store.path(deployment_id) / "deployment.json"
    config = json.loads(path.read_text())
    served = config["localizers"][0]
    path.write_text(json.dumps({**config, "radius_calibrations": {k: v for k, v in config["radius_calibrations"].items() if k != served}}))
    with pytest.raises(RadiolocError, match=f"radius_calibrations has none for {served}"):
        store.load(deployment_id)
    path.write_text(json.dumps({**config, "id": "another-one"}))
    with pytest.raises(RadiolocError, match=f"id: 'another-one', but it is the folder of '{deployment_id}'"):
        store.load(deployment_id)


def test_cell_ids_and_signal_strengths_out_of_range_are_refused_by_locate(deployment_home):
    env = {"RADIOLOC_HOME": str(deployment_home)}
    [deployment_id] = DeploymentStore(deployment_home).ids()
    for argv, message in (
        (["--cells", str(2**64), "--rss=-70"], f"--cells: every value must lie in 0..{2**36 - 1}"),
        (["--cells", "1", "--rss", "1e308"], "--rss: every value must lie in -200..60"),
        (["--cells", "1,2", "--rss=-70,-1e308"], "--rss: every value must lie in -200..60"),
        (["--cells", "1,2", "--rss=-20,-70"], "--rss -20 dBm of cell 1: pathloss -43 dB (-20 dBm minus the BS's 23 dBm) is outside"),
        (["--cells", "1,1", "--rss=-70,-80"], "--cells: cell 1 listed twice"),
    ):
        result = CliRunner().invoke(app, ["locate", "--deployment", deployment_id, *argv], env=env)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output and "Warning" not in result.output, result.output


def test_a_toa_file_of_another_shape_is_named(small_dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(small_dataset[0], copy)
    test_map = json.loads((copy / "manifest.json").read_text())["split"]["test"][0]
    toa = copy / "DPM" / "toa" / f"{test_map}.npz"
    with np.load(toa) as stored:
        kept = {k: stored[k][:5] for k in stored.files}
    np.savez(toa, **kept)
    result = CliRunner().invoke(app, ["evaluate", "--model", "toa-pocs", "--data", str(copy), "--estimate", "true", "--toa-sigma", "1", "--limit", "5"])
    assert result.exit_code == 2 and f"{toa.name}: corrupt ToA file" in result.output and "Traceback" not in result.output, result.output


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("scenario", "[1, 2]", "scenario must be a JSON object"),
        ("config", "[]", "config must be a JSON object"),
        ("provenance", "3", "provenance must be a JSON object"),
        ("radius_calibration", '"big"', "radius_calibration must be a JSON object"),
        ("scenario", '{"sim": 5, "estimate": "estimate"}', "scenario must name its sim and estimate"),
        ("scenario", "{}", "scenario must name its sim and estimate"),
    ],
)
def test_a_calibration_whose_metadata_has_the_wrong_shape_is_named(tmp_path, key, value, message):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from radioloc.models.likelihood import LikelihoodCalibration

    source = WEIGHTS / "bayes_nominal.safetensors"
    with safe_open(str(source), framework="np") as handle:
        metadata = dict(handle.metadata())
    crafted = tmp_path / "crafted.safetensors"
    save_file(load_file(str(source)), str(crafted), metadata={**metadata, key: value})
    with pytest.raises(RadiolocError, match=f"malformed calibration \\({message}"):
        LikelihoodCalibration.load(crafted)


FRESH = {"epoch": 0, "best_val_mae_m": float("inf"), "history": [], "seconds": 0.0}


@pytest.mark.parametrize(
    "encoded",
    [
        '{"epoch": "3", "best_val_mae_m": 4.0, "history": [], "seconds": 1.0}',
        '{"epoch": -1, "best_val_mae_m": 4.0, "history": [], "seconds": 1.0}',
        '{"epoch": 2.5, "best_val_mae_m": 4.0, "history": [], "seconds": 1.0}',
        '{"epoch": 2, "best_val_mae_m": NaN, "history": [], "seconds": 1.0}',
        '{"epoch": 2, "best_val_mae_m": 4.0, "history": {}, "seconds": 1.0}',
        '{"epoch": 2, "history": [], "seconds": 1.0}',
        "[2]",
        "{not json",
    ],
)
def test_a_crafted_training_state_is_named(tmp_path, encoded):
    with pytest.raises(RadiolocError, match="last.pt: corrupt training state"):
        check_training_state(encoded, FRESH, tmp_path / "last.pt")


def test_a_training_state_of_the_right_shape_is_kept(tmp_path):
    state = check_training_state('{"epoch": 2, "best_val_mae_m": Infinity, "history": [{"epoch": 1}], "seconds": 3}', FRESH, tmp_path / "last.pt")
    assert state["epoch"] == 2 and state["best_val_mae_m"] == float("inf") and state["history"] == [{"epoch": 1}]


def test_a_schedule_that_is_not_where_the_loop_is_is_named(tmp_path):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    check_schedule(scheduler, 3, tmp_path / "last.pt")
    with pytest.raises(RadiolocError, match="its schedule took 3 steps, its loop 2"):
        check_schedule(scheduler, 2, tmp_path / "last.pt")


def _dataset_copy(small_dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(small_dataset[0], copy)
    (copy / "checksums.json").unlink()  # the damage below is the point, not what verify says of it
    return copy


def test_overlapping_splits_in_a_manifest_are_refused(small_dataset, tmp_path):
    copy = _dataset_copy(small_dataset, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["split"]["train"] = manifest["split"]["train"] + manifest["split"]["test"][:1]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, ["evaluate", "--model", "knn", "--data", str(copy), "--estimate", "true", "--limit", "5"])
    assert result.exit_code == 2 and "manifest.json: corrupt manifest" in result.output and "in both the train and the test split" in result.output, (
        result.output
    )


@pytest.mark.parametrize("damage,message", [(lambda t: np.where(np.isnan(t), np.nan, -1e30), "negative or infinite delays"),
                                            (lambda t: np.full_like(t, np.nan), "a transmitter with no path to any pixel")])  # fmt: skip
def test_damaged_delays_in_a_toa_file_are_refused(small_dataset, tmp_path, damage, message):
    copy = _dataset_copy(small_dataset, tmp_path)
    test_map = json.loads((copy / "manifest.json").read_text())["split"]["test"][0]
    toa = copy / "DPM" / "toa" / f"{test_map}.npz"
    with np.load(toa) as stored:
        kept = {k: stored[k] for k in stored.files}
    kept["toa_ns"] = damage(kept["toa_ns"]).astype(kept["toa_ns"].dtype)
    np.savez(toa, **kept)
    result = CliRunner().invoke(app, ["evaluate", "--model", "toa-pocs", "--data", str(copy), "--estimate", "true", "--toa-sigma", "1", "--limit", "5"])
    assert result.exit_code == 2 and message in result.output, result.output


def test_positions_that_are_not_whole_numbers_are_refused(small_dataset, tmp_path):
    import scipy.io

    copy = _dataset_copy(small_dataset, tmp_path)
    data = scipy.io.loadmat(copy / "TxRx.mat")
    data = {k: v for k, v in data.items() if not k.startswith("__")}
    data["rxx"] = data["rxx"].astype(np.float64)
    data["rxx"][0, 0] = np.nan
    scipy.io.savemat(copy / "TxRx.mat", data)
    result = CliRunner().invoke(app, ["evaluate", "--model", "knn", "--data", str(copy), "--estimate", "true", "--limit", "5"])
    assert result.exit_code == 2 and "TxRx.mat: rxx holds values that are not whole" in result.output and "Warning" not in result.output, result.output


def test_a_gray_image_is_not_a_building_map(tmp_path):
    from PIL import Image

    from radioloc.city import load_building_png

    gray = tmp_path / "radio_map.png"
    Image.fromarray(np.arange(256 * 256, dtype=np.uint32).reshape(256, 256).astype(np.uint8)).save(gray)
    with pytest.raises(RadiolocError, match="a building map holds two values"):
        load_building_png(gray)
    mask = tmp_path / "mask.png"
    Image.fromarray((np.arange(256 * 256).reshape(256, 256) % 3 == 0).astype(np.uint8) * 255).save(mask)
    assert load_building_png(mask).sum() == (np.arange(256 * 256) % 3 == 0).sum()


def test_a_misspelt_bs_field_is_named(tmp_path):
    from radioloc.deploy.build import read_base_stations
    from radioloc.deploy.georef import Georeference

    listing = tmp_path / "bs.json"
    listing.write_text(json.dumps([{"cell_id": 1, "row": 10, "col": 20, "tx_powr_dbm": 30}]))
    with pytest.raises(RadiolocError, match="entry 1: unknown field 'tx_powr_dbm' \\(the fields are cell_id, lat, lng, row, col, height_m, tx_power_dbm\\)"):
        read_base_stations(listing, Georeference(48.1, 11.5, 256, 256))


def test_bs_lists_from_spreadsheets_and_ambiguous_rows(tmp_path):
    from radioloc.deploy.build import read_base_stations
    from radioloc.deploy.georef import Georeference

    georef = Georeference(48.1, 11.5, 256, 256)
    listing = tmp_path / "bs.csv"
    listing.write_bytes("\ufeffcell_id,row,col\n7,10,20\n".encode())  # Excel's UTF-8 CSV starts with a byte-order mark
    assert [(bs.cell_id, bs.row, bs.col) for bs in read_base_stations(listing, georef)] == [(7, 10, 20)]
    listing.write_text("cell_id,row,col\n7,10,20,99\n")
    with pytest.raises(RadiolocError, match="entry 1: more values than the header has columns \\(99 left over\\)"):
        read_base_stations(listing, georef)
    listing.write_text("cell_id,row,col,lat,lng\n7,10,20,48.1,11.5\n")
    with pytest.raises(RadiolocError, match="entry 1: give lat and lng, or row and col, not both"):
        read_base_stations(listing, georef)


def test_geojson_with_a_nan_coordinate_is_one_line(tmp_path):
    source = tmp_path / "nan.geojson"
    ring = [[0, 0], [10, float("nan")], [10, 10], [0, 0]]
    source.write_text(
        json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]})
    )
    result = CliRunner().invoke(app, ["city", "import", str(source), "--out", str(tmp_path / "b.png")])
    assert result.exit_code == 2 and "coordinates must be finite numbers" in result.output and "Warning" not in result.output, result.output


def test_the_default_figure_of_dataset_show_is_replaced_only_with_force(small_dataset, tmp_path):
    copy = _dataset_copy(small_dataset, tmp_path)
    figure = copy / "figures" / "map_0.png"
    figure.parent.mkdir(exist_ok=True)
    figure.write_bytes(b"the user's figure")
    result = CliRunner().invoke(app, ["dataset", "show", str(copy), "--map", "0"])
    assert result.exit_code == 2 and "map_0.png: exists; give --force" in result.output and figure.read_bytes() == b"the user's figure", result.output
    assert CliRunner().invoke(app, ["dataset", "show", str(copy), "--map", "0", "--force"]).exit_code == 0
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_deploy_delete_leaves_a_folder_that_is_not_a_deployment(deployment_home, tmp_path):
    store, _ = _home_copy(deployment_home, tmp_path)
    junk = store.path("junk")
    junk.mkdir()
    (junk / "notes.txt").write_text("the user's notes")
    result = CliRunner().invoke(app, ["deploy", "delete", "junk", "--home", str(store.root)])
    assert result.exit_code == 2 and "not a deployment (no deployment.json)" in result.output, result.output
    assert (junk / "notes.txt").read_text() == "the user's notes"


def test_a_truth_that_no_phone_hears_ends_the_survey_with_one_line(deployment_home, tmp_path):
    store, deployment_id = _home_copy(deployment_home, tmp_path)
    folder = store.path(deployment_id)
    np.save(folder / "truth.npy", np.zeros_like(np.load(folder / "truth.npy")))
    with pytest.raises(RadiolocError, match="no outdoor pixel hears a BS"):
        store.load(deployment_id).survey(100, seed=0)


def test_a_checkpoint_with_weights_that_are_not_finite_is_named(tmp_path):
    from radioloc.models.radiounet import SHIPPED_WEIGHTS, load_radiounet

    payload = torch.load(SHIPPED_WEIGHTS, map_location="cpu", weights_only=True)
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name] = torch.full_like(payload["state_dict"][name], float("nan"))
    crafted = tmp_path / "nan.pt"
    torch.save(payload, crafted)
    with pytest.raises(RadiolocError, match=f"nan.pt: weights that are not finite numbers \\({name}\\)"):
        load_radiounet(crafted)


def test_deploy_list_shows_the_others_beside_a_damaged_deployment(deployment_home, tmp_path):
    store, deployment_id = _home_copy(deployment_home, tmp_path)
    damaged = store.path("damaged")
    damaged.mkdir()
    (damaged / "deployment.json").write_text("[1]")
    result = CliRunner().invoke(app, ["deploy", "list", "--home", str(store.root)], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert deployment_id in result.output and "ready" in result.output and "damaged:" in result.output


def test_a_manifest_configuration_out_of_range_names_the_manifest_not_an_option(small_dataset, tmp_path):
    copy = _dataset_copy(small_dataset, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["config"]["maps"] = -3
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, ["dataset", "generate", "--out", str(copy)])
    assert result.exit_code == 2 and "manifest.json: corrupt manifest (config.maps:" in result.output and "--maps" not in result.output, result.output


def test_a_missing_toa_file_says_the_dataset_is_incomplete(small_dataset, tmp_path):
    copy = _dataset_copy(small_dataset, tmp_path)
    test_map = json.loads((copy / "manifest.json").read_text())["split"]["test"][0]
    (copy / "DPM" / "toa" / f"{test_map}.npz").unlink()
    result = CliRunner().invoke(app, ["evaluate", "--model", "toa-pocs", "--data", str(copy), "--estimate", "true", "--toa-sigma", "1", "--limit", "5"])
    assert result.exit_code == 2 and f"missing ToA file of map {test_map} (the dataset is incomplete" in result.output, result.output


def test_a_text_file_as_an_array_is_called_what_it_is(small_dataset, tmp_path):
    copy = _dataset_copy(small_dataset, tmp_path)
    test_map = json.loads((copy / "manifest.json").read_text())["split"]["test"][0]
    (copy / "DPM" / "toa" / f"{test_map}.npz").write_text("not an array")
    result = CliRunner().invoke(app, ["evaluate", "--model", "toa-pocs", "--data", str(copy), "--estimate", "true", "--toa-sigma", "1", "--limit", "5"])
    assert result.exit_code == 2 and "not a NumPy .npy/.npz file" in result.output and "pickled" not in result.output, result.output


@pytest.mark.parametrize("damage,message", [({"state_dict": {"weight": torch.zeros(3, 3)}}, "corrupt training checkpoint (Error(s) in loading state_dict"),
                                            ({"rng_seed": -5}, "rng_seed -5 is not a seed"), ({"optimizer": None}, "a part is missing")])  # fmt: skip
def test_a_tampered_training_checkpoint_is_one_line(tmp_path, damage, message):
    from radioloc.models.checkpoint import save_checkpoint
    from radioloc.training.resume import resume_training

    def parts():
        model = torch.nn.Linear(4, 2)
        optimizer = torch.optim.Adam(model.parameters())
        return model, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 5)

    model, optimizer, scheduler = parts()
    state = {"epoch": 0, "best_val_mae_m": float("inf"), "history": [], "seconds": 0.0}
    payload = {
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": json.dumps(state),
        "rng_seed": 7,
    }
    path = tmp_path / "last.pt"
    save_checkpoint(path, "test-training", {}, **{**payload, **damage})
    with pytest.raises(RadiolocError, match=re.escape(message)):
        resume_training(path, "test-training", *parts(), state, lambda s: 0)


@pytest.mark.parametrize("key,value,message", [("scale", 1e308, "numbers in (0, 10000]"), ("weights", 1e300, "numbers in [-1e+06, 1e+06]")])
def test_radius_calibrations_that_would_overflow_are_refused(key, value, message):
    from radioloc.localizers.registry import resolve_localizer
    from radioloc.localizers.uncertainty import RadiusCalibration

    stored = resolve_localizer("bayes").localizer.uncertainty.to_dict()
    stored[key] = {group: (np.full_like(np.asarray(v, dtype=float), value)).tolist() for group, v in stored[key].items()}
    with pytest.raises(RadiolocError, match=re.escape(message)):
        RadiusCalibration.from_dict(stored, "deployment.json")
    if key == "weights":  # large but admitted weights still give finite radii (the factor is held within 1e-4..1e4)
        stored[key] = {group: (np.full_like(np.asarray(v, dtype=float), 1e5)).tolist() for group, v in stored[key].items()}
        radii = RadiusCalibration.from_dict(stored).apply(np.full((2, 2), 10.0), np.array([3, 5]), np.full((2, 3), 0.5))
        assert np.isfinite(radii).all() and radii.max() <= 1.0001e4 * 10.0 * max(max(v) for v in stored["scale"].values())


def test_city_tiles_of_an_area_smaller_than_a_tile_says_so(tmp_path):
    square = [[0, 0], [20, 0], [20, 20], [0, 20], [0, 0]]
    source = tmp_path / "small.geojson"
    source.write_text(
        json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [square]}}]})
    )
    result = CliRunner().invoke(app, ["city", "tiles", str(source), "--coordinates", "metres", "--out", str(tmp_path / "tiles"), "--min-coverage", "0"])
    assert result.exit_code == 2 and "less than one 256 x 256 m tile" in result.output, result.output
