"""Dataset generation end to end (small protocol): layout, positions, loader, resume and bad input."""

import json
import shutil

import numpy as np
import pytest
import scipy.io
from conftest import SMALL, small_config
from PIL import Image

from radioloc.datasets import layout
from radioloc.datasets.builder import DatasetConfig, generate_dataset, read_map_record
from radioloc.datasets.loader import RadioLocDataset
from radioloc.errors import RadiolocError
from radioloc.propagation import DominantPathSimulator, db_to_gray


def test_layout_and_manifest(small_dataset):
    root, manifest = small_dataset
    assert manifest["complete"] and manifest["simulations"] == ["DPM", "DPMcars"]
    assert manifest["config"]["seed"] == 5 and manifest["config"]["protocol"]["candidates_per_map"] == 12
    assert manifest["gray_level"]["noise_floor_db"] == pytest.approx(-127.168)
    assert sorted(sum(manifest["split"].values(), [])) == [0, 1, 2]
    on_disk = json.loads((root / "manifest.json").read_text())
    assert on_disk == manifest
    for m in range(3):
        assert (root / "buildings" / f"{m}.png").exists() and (root / "cars" / f"{m}.png").exists()
        for sim in ("DPM", "DPMcars"):
            assert len(list((root / sim / "true").glob(f"{m}_*.png"))) == 12
            toa = np.load(root / sim / "toa" / f"{m}.npz")
            assert toa["toa_ns"].shape == (12, 256, 256) and toa["line_of_sight"].dtype == bool
    assert not list(root.rglob("*.tmp"))


def test_stored_maps_are_the_simulation(small_dataset):
    root, _ = small_dataset
    record = read_map_record(root, 1)
    buildings = layout.read_gray_png(layout.building_path(root, 1)) // 255
    cars = layout.read_gray_png(layout.cars_path(root, 1)) // 255
    tx = record["candidates"][4]
    expected = db_to_gray(DominantPathSimulator(buildings | cars).simulate(tx).pathloss_db)
    np.testing.assert_array_equal(layout.read_gray_png(layout.radio_map_path(root, "DPMcars", "true", 1, 4)), expected)
    assert buildings[tx[0], tx[1]] == 0 and cars[tx[0], tx[1]] == 0


def test_positions_file_round_trip(small_dataset):
    root, _ = small_dataset
    raw = scipy.io.loadmat(root / "TxRx.mat")
    assert raw["rxx"].shape == (3, 20) and raw["antList"].shape == (3, 3, 5) and raw["antX"].shape == (3, 5, 3)
    assert raw["antList"].min() >= 1 and raw["rxx"].min() >= 1  # 1-based, as RadioLocSeer
    positions = layout.read_positions(root)
    for m in range(3):
        record = read_map_record(root, m)
        np.testing.assert_array_equal(positions.ue[m], record["ues"])
        np.testing.assert_array_equal(positions.bs_sets[m], record["bs_sets"])
        cand = np.array(record["candidates"])
        np.testing.assert_array_equal(positions.bs[m], cand[np.array(record["bs_sets"])])
        np.testing.assert_array_equal(positions.candidates[m], cand)


def test_loader_sample_matches_files(small_dataset):
    root, manifest = small_dataset
    data = RadioLocDataset(root, split="train", measurement="DPMcars", radio_maps="DPM/true")
    assert len(data) == len(manifest["split"]["train"]) * 3 * 20
    sample = data[len(data) - 1]
    m, s, u = sample["map"], sample["bs_set"], sample["ue"]
    record = read_map_record(root, m)
    row, col = record["ues"][u]
    txs = record["bs_sets"][s]
    assert sample["position"].tolist() == [row, col]
    for k, tx in enumerate(txs):
        truth = layout.read_gray_png(layout.radio_map_path(root, "DPMcars", "true", m, tx))
        seen = layout.read_gray_png(layout.radio_map_path(root, "DPM", "true", m, tx))
        assert sample["measurements"][k].item() == pytest.approx(truth[row, col] / 255)
        np.testing.assert_allclose(sample["radio_maps"][k].numpy(), seen / 255, rtol=0, atol=1e-7)
        assert sample["bs_positions"][k].tolist() == record["candidates"][tx]
    # every UE hears at least one BS of every set above the noise floor (DPM, the nominal truth)
    nominal = RadioLocDataset(root, split="train")
    assert all(nominal[i]["measurements"].gt(0).any() for i in range(0, len(nominal), 7))


def test_loader_reads_the_real_radiolocseer_layout(small_dataset, tmp_path):
    root, _ = small_dataset
    real = tmp_path / "RadioLocSeer"
    for folder in ("buildings", "DPM/true"):
        shutil.copytree(root / folder, real / folder)
    raw = scipy.io.loadmat(root / "TxRx.mat")
    published = {key: raw[key] for key in ("rxx", "rxy", "antList", "antX", "antY")}
    np.save(real / "my_fileCorr.npy", published, allow_pickle=True)  # the published pickled-dict format
    data = RadioLocDataset(real, split="train")
    ours = RadioLocDataset(root, split="train")
    assert data.maps == sorted(data.maps)
    sample = data[5]
    m, s, u = sample["map"], sample["bs_set"], sample["ue"]
    ref = ours[ours.maps.index(m) * 60 + s * 20 + u]
    for key in ("radio_maps", "measurements", "bs_positions", "position"):
        np.testing.assert_array_equal(sample[key].numpy(), ref[key].numpy())


def test_resume_after_a_kill_regenerates_only_missing_maps(small_dataset, tmp_path):
    root, _ = small_dataset
    copy = tmp_path / "ds"
    shutil.copytree(root, copy)
    # Simulate a run killed in the middle of map 2: its record and some of its files are missing.
    (copy / "maps" / "2.json").unlink()
    (copy / "DPM" / "true" / "2_3.png").unlink()
    (copy / "DPM" / "true" / ".2_4.png.x1y2.tmp").write_bytes(b"half a png")
    kept = (copy / "DPM" / "true" / "0_0.png").stat().st_mtime_ns
    generate_dataset(copy, small_config(), workers=1, quiet=True)
    assert (copy / "DPM" / "true" / "0_0.png").stat().st_mtime_ns == kept
    assert not list(copy.rglob("*.tmp"))
    for name in ("DPM/true/2_3.png", "DPMcars/toa/2.npz", "buildings/2.png"):
        assert (copy / name).read_bytes() == (root / name).read_bytes()
    assert (copy / "maps" / "2.json").read_bytes() == (root / "maps" / "2.json").read_bytes()  # nothing of the run in it
    assert "seconds" not in read_map_record(copy, 2)


def test_resume_with_other_parameters_is_refused(small_dataset):
    root, _ = small_dataset
    with pytest.raises(RadiolocError, match="different 'seed'"):
        generate_dataset(root, small_config(seed=6), quiet=True)


def test_buildings_folder_is_used(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    mask = np.zeros((256, 256), np.uint8)
    mask[60:100, 60:100] = 255
    mask[150:170, 120:220] = 255
    Image.fromarray(mask).save(folder / "7.png")
    manifest = generate_dataset(tmp_path / "ds", DatasetConfig(buildings_dir=str(folder), protocol=SMALL, maps=1), quiet=True)
    assert manifest["building_files"] == ["7.png"]
    np.testing.assert_array_equal(layout.read_gray_png(tmp_path / "ds" / "buildings" / "0.png"), mask)


def test_bad_inputs(small_dataset, tmp_path):
    root, _ = small_dataset
    folder = tmp_path / "pngs"
    folder.mkdir()
    Image.fromarray(np.zeros((128, 128), np.uint8)).save(folder / "0.png")
    with pytest.raises(RadiolocError, match=r"0.png: building map must be 256 x 256"):
        generate_dataset(tmp_path / "out", DatasetConfig(buildings_dir=str(folder)), quiet=True)
    assert not (tmp_path / "out").exists()  # nothing written for a bad request
    full = np.full((256, 256), 255, np.uint8)
    full[0:10, 0:10] = 0
    Image.fromarray(full).save(folder / "0.png")
    with pytest.raises(RadiolocError, match=r"map 0: only 0 open pixels in the middle 150 x 150 box"):
        generate_dataset(tmp_path / "out2", DatasetConfig(buildings_dir=str(folder)), quiet=True)
    with pytest.raises(RadiolocError, match="unknown simulation IRT9"):
        generate_dataset(tmp_path / "out3", small_config(simulations=("IRT9",)), quiet=True)

    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    data = RadioLocDataset(broken, split="train")
    m = data.maps[0]
    tx = int(data.positions.bs_sets[m, 0, 0])
    (broken / "DPM" / "true" / f"{m}_{tx}.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(RadiolocError, match=rf"{m}_{tx}.png: corrupt or unreadable PNG"):
        data[0]
    (broken / "DPM" / "true" / f"{m}_{tx}.png").unlink()
    with pytest.raises(RadiolocError, match=rf"{m}_{tx}.png: missing file"):
        RadioLocDataset(broken, split="train")[0]
    with pytest.raises(RadiolocError, match="DPM/estimate: missing folder"):
        RadioLocDataset(root, radio_maps="DPM/estimate")
    (broken / "TxRx.mat").write_bytes(b"garbage")
    with pytest.raises(RadiolocError, match="TxRx.mat: corrupt positions file"):
        RadioLocDataset(broken)
    with pytest.raises(RadiolocError, match="no positions file"):
        RadioLocDataset(tmp_path / "pngs")
    with pytest.raises(RadiolocError, match="dataset folder not found"):
        RadioLocDataset(tmp_path / "nowhere")


def test_existing_dataset_gets_only_the_missing_simulations(tmp_path):
    import json as json_module

    from radioloc.datasets import layout
    from radioloc.datasets.builder import DatasetConfig, generate_dataset
    from radioloc.datasets.protocol import ProtocolConfig

    protocol = ProtocolConfig(candidates_per_map=6, sets_per_map=2, ues_per_map=5)
    root = tmp_path / "ds"
    generate_dataset(root, DatasetConfig(maps=2, seed=3, protocol=protocol), workers=1, quiet=True)
    dpm_file = layout.radio_map_path(root, "DPM", "true", 0, 0)
    before = dpm_file.stat().st_mtime_ns
    record_path = layout.map_record_path(root, 1)
    legacy = json_module.loads(record_path.read_text())
    del legacy["simulations"]  # a map written before records listed their simulations
    record_path.write_text(json_module.dumps(legacy))
    manifest = generate_dataset(root, DatasetConfig(maps=2, seed=3, protocol=protocol, simulations=("DPMcars",)), workers=1, quiet=True)
    assert manifest["simulations"] == ["DPM", "DPMcars"] and manifest["complete"]
    assert dpm_file.stat().st_mtime_ns == before  # nothing already written is redone
    for m in (0, 1):
        assert json_module.loads(layout.map_record_path(root, m).read_text())["simulations"] == ["DPM", "DPMcars"]
        assert layout.radio_map_path(root, "DPMcars", "true", m, 5).exists() and layout.toa_path(root, "DPMcars", m).exists()


def test_ray_tracing_resumes_without_redoing_finished_radio_maps(tmp_path):
    """add_ray_traced after a kill: radio maps already on disk are kept, only the rest is solved."""
    import json as json_module

    from radioloc.datasets import layout
    from radioloc.datasets.builder import DatasetConfig, add_ray_traced, generate_dataset
    from radioloc.datasets.protocol import ProtocolConfig
    from radioloc.io import atomic_write_png

    root = tmp_path / "ds"
    generate_dataset(root, DatasetConfig(maps=1, seed=4, protocol=ProtocolConfig(candidates_per_map=6, sets_per_map=2, ues_per_map=5)), workers=1, quiet=True)
    done = layout.radio_map_path(root, "IRT2", "true", 0, 1)
    atomic_write_png(done, np.full((256, 256), 7, np.uint8))  # finished before the kill

    class FakeScene:
        solved = []

        def pathloss(self, txs):
            FakeScene.solved.extend(map(tuple, txs))
            return np.full((len(txs), 256, 256), -80.0, np.float32)

    class FakeTracer:
        def scene(self, buildings, cars, heights):
            assert cars is None and heights is None
            return FakeScene()

    add_ray_traced(root, 0, ["IRT2"], FakeTracer())
    candidates = json_module.loads(layout.map_record_path(root, 0).read_text())["candidates"]
    assert FakeScene.solved == [tuple(c) for k, c in enumerate(candidates) if k != 1]
    assert (layout.read_gray_png(done) == 7).all()
    assert json_module.loads(layout.map_record_path(root, 0).read_text())["simulations"] == ["DPM", "IRT2"]
