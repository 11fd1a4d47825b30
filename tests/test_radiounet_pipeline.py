"""Training, estimation and evaluation of RadioUNet end to end on the small test dataset."""

import json

import numpy as np
import pytest

from radioloc.datasets import layout
from radioloc.errors import RadiolocError
from radioloc.evaluation.radiomaps import evaluate_radiounet, large_error_shares
from radioloc.models.estimate import estimate_dataset
from radioloc.models.radiounet import load_radiounet
from radioloc.training.radiounet import RadioUNetTrainConfig, train_radiounet

TINY = RadioUNetTrainConfig(preset="cpu-small", epochs_first=1, epochs_second=1, samples_per_epoch=16, batch_size=8, val_samples=8)


@pytest.fixture(scope="module")
def trained(small_dataset, tmp_path_factory):
    root, _ = small_dataset
    out = tmp_path_factory.mktemp("run")
    summary = train_radiounet(root, out, TINY, quiet=True)
    return out, summary


def test_training_writes_checkpoints_and_resumes(trained, small_dataset):
    out, summary = trained
    assert [h["phase"] for h in summary["history"]] == [1, 2]
    assert (out / "best.pt").exists() and (out / "last.pt").exists()
    assert json.loads((out / "summary.json").read_text())["preset"] == "cpu-small"
    # Running again finds the run finished and trains nothing more.
    again = train_radiounet(small_dataset[0], out, TINY, quiet=True)
    assert again["history"] == summary["history"]
    with pytest.raises(RadiolocError, match="different training configuration"):
        train_radiounet(small_dataset[0], out, RadioUNetTrainConfig(preset="cpu-small", seed=9), quiet=True)


def test_estimate_writes_every_map_and_resumes(trained, small_dataset, tmp_path):
    import shutil

    out, _ = trained
    root = tmp_path / "ds"
    shutil.copytree(small_dataset[0], root)
    stats = estimate_dataset(root, out / "best.pt", quiet=True)
    files = sorted((root / "DPM" / "estimate").glob("*.png"))
    assert len(files) == 3 * 12
    assert stats["pixels"]["outdoor"]["pixels"] > 0 and np.isfinite(stats["pixels"]["outdoor"]["rmse_db"])
    assert json.loads((root / "manifest.json").read_text())["estimates"]["DPM"]["model_sha256"] == stats["model_sha256"]
    # the estimate keeps the gray convention: 0 inside buildings
    buildings = layout.read_gray_png(layout.building_path(root, 0)) > 0
    assert (layout.read_gray_png(root / "DPM" / "estimate" / "0_3.png")[buildings] == 0).all()
    # resume: only the missing file is written again, with the same content
    kept = (root / "DPM" / "estimate" / "0_0.png").stat().st_mtime_ns
    content = (root / "DPM" / "estimate" / "1_5.png").read_bytes()
    (root / "DPM" / "estimate" / "1_5.png").unlink()
    again = estimate_dataset(root, out / "best.pt", quiet=True)
    assert (root / "DPM" / "estimate" / "0_0.png").stat().st_mtime_ns == kept
    assert (root / "DPM" / "estimate" / "1_5.png").read_bytes() == content
    assert again["pixels"] == stats["pixels"]
    with pytest.raises(RadiolocError, match="IRT2/true: missing folder"):
        estimate_dataset(root, out / "best.pt", sim="IRT2", quiet=True)
    # another model replaces every estimate rather than mixing with the first model's
    other = estimate_dataset(root, None, quiet=True)  # the shipped model
    assert other["model_sha256"] != stats["model_sha256"]
    assert (root / "DPM" / "estimate" / "0_0.png").stat().st_mtime_ns != kept
    assert other["pixels"] != stats["pixels"]
    assert json.loads((root / "DPM" / "estimate" / "model.json").read_text())["model_sha256"] == other["model_sha256"]


def test_evaluate_reports_metrics_and_figures(trained, small_dataset, tmp_path):
    out, _ = trained
    result = evaluate_radiounet(load_radiounet(out / "best.pt"), small_dataset[0], "test", figures=tmp_path, quiet=True)
    assert result["radio_maps"] == 12 * len(json.loads((small_dataset[0] / "manifest.json").read_text())["split"]["test"])
    assert result["outdoor"]["rmse_db"] >= result["outdoor"]["mae_db"] > 0
    # the per-map sums add up to the whole split's figures
    test_maps = json.loads((small_dataset[0] / "manifest.json").read_text())["split"]["test"]
    assert sorted(m["map"] for m in result["per_map"]) == sorted(test_maps)
    assert sum(m["pixels"] for m in result["per_map"]) == result["outdoor"]["pixels"]
    pooled = np.sqrt(sum(m["squared_error_db2"] for m in result["per_map"]) / result["outdoor"]["pixels"])
    assert pooled == pytest.approx(result["outdoor"]["rmse_db"], rel=1e-9)
    over5, over10 = result["large_errors"]["over_5_db"], result["large_errors"]["over_10_db"]
    assert 0 <= over10["pixel_share"] <= over5["pixel_share"] <= 1 and 0 <= over10["squared_error_share"] <= over5["squared_error_share"] <= 1
    assert (tmp_path / "radiounet_test_examples.png").exists() and (tmp_path / "radiounet_test_histogram.png").exists()


def test_large_error_shares_count_pixels_beyond_each_threshold():
    diff = np.array([0.0, 1.0, -6.0, 12.0])  # squared: 0, 1, 36, 144 of 181
    shares = large_error_shares(diff)
    assert shares["over_5_db"] == {"pixel_share": 0.5, "squared_error_share": pytest.approx(180 / 181)}
    assert shares["over_10_db"] == {"pixel_share": 0.25, "squared_error_share": pytest.approx(144 / 181)}


def test_an_interrupted_replacement_leaves_the_old_estimates_whole(trained, small_dataset, tmp_path, monkeypatch):
    import shutil

    import radioloc.models.estimate as estimate_module
    from radioloc.datasets.checksums import damaged_files

    out, _ = trained
    root = tmp_path / "ds"
    shutil.copytree(small_dataset[0], root)
    first = estimate_dataset(root, out / "best.pt", quiet=True)
    folder = root / "DPM" / "estimate"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real = estimate_module.estimate_map
    calls = []

    def interrupted(*args):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second map is being estimated
        return real(*args)

    monkeypatch.setattr(estimate_module, "estimate_map", interrupted)
    with pytest.raises(KeyboardInterrupt):
        estimate_dataset(root, None, quiet=True, workers=1)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the old set, byte-identical
    assert damaged_files(root) == {}  # and its checksums still describe it
    monkeypatch.setattr(estimate_module, "estimate_map", real)
    # the same command again finishes the replacement (the new set resumes) and swaps it in whole
    replaced = estimate_dataset(root, None, quiet=True, workers=1)
    assert replaced["model_sha256"] != first["model_sha256"] and replaced["pixels"] != first["pixels"]
    assert not (root / "DPM" / estimate_module.STAGING).exists() and not (root / "DPM" / estimate_module.OLD).exists()
    assert json.loads((folder / "model.json").read_text())["model_sha256"] == replaced["model_sha256"]
    assert len(list(folder.glob("*.png"))) == 3 * 12 and damaged_files(root) == {}


def test_a_swap_killed_between_its_two_renames_is_completed(tmp_path):
    from radioloc.models.estimate import OLD, STAGING, finish_replacement

    sim = tmp_path / "DPM"
    (sim / OLD).mkdir(parents=True)
    (sim / OLD / "0_0.png").write_bytes(b"old")
    (sim / STAGING).mkdir()
    (sim / STAGING / "0_0.png").write_bytes(b"new")
    finish_replacement(sim)
    assert (sim / "estimate" / "0_0.png").read_bytes() == b"new" and not (sim / OLD).exists() and not (sim / STAGING).exists()
