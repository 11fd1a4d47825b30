"""Localization end to end on the small session dataset: loading queries, LocUNet training and resume, the
common localizer interface, evaluation reports and CLI errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from radioloc.baselines.knn import KNNLocalizer
from radioloc.cli import app
from radioloc.datasets import layout
from radioloc.datasets.localization import SceneBank, concat_localization, load_localization, validate_queries
from radioloc.errors import RadiolocError
from radioloc.evaluation.localization import by_detectable, error_stats
from radioloc.localizers.locunet import LocUNetLocalizer, fit_checkpoint
from radioloc.models.locunet import load_locunet
from radioloc.propagation.graylevel import DB_PER_GRAY, NOISE_FLOOR_DB
from radioloc.training.locunet import LocUNetTrainConfig, load_training_splits, train_locunet

TINY = dict(epochs=2, samples_per_epoch=64, batch_size=16, val_queries=20)


def test_queries_report_the_truth_at_the_ue(small_dataset):
    root, manifest = small_dataset
    data = load_localization(root, "train", estimate="true")
    positions = layout.read_positions(root)
    map_id = manifest["split"]["train"][0]
    n_sets, n_ue = positions.bs_sets.shape[1], positions.ue.shape[1]
    assert len(data.queries) == len(manifest["split"]["train"]) * n_sets * n_ue
    q = 2 * n_ue + 7  # set 2, UE 7 of the first training map
    assert (data.queries.bs_set[q], data.queries.ue[q]) == (2, 7)
    np.testing.assert_array_equal(data.queries.bs_ids[q], positions.bs_sets[map_id, 2])
    np.testing.assert_array_equal(data.queries.position[q], positions.ue[map_id, 7])
    row, col = positions.ue[map_id, 7]
    for j, tx in enumerate(positions.bs_sets[map_id, 2]):
        truth = layout.read_gray_png(layout.radio_map_path(root, "DPM", "true", map_id, int(tx)))
        assert data.queries.pathloss_db[q, j] == pytest.approx(NOISE_FLOOR_DB + truth[row, col] * DB_PER_GRAY, abs=1e-4)
        np.testing.assert_array_equal(data.scenes.radio_maps[0, tx], truth)
    three = data.queries.first_bs(3)
    assert (three.bs_ids[:, 3:] == -1).all() and np.isnan(three.pathloss_db[:, 3:]).all()


def test_joined_datasets_keep_every_query_on_its_own_map(small_dataset):
    root, _ = small_dataset
    first, second = load_localization(root, "train", estimate="true"), load_localization(root, "test", estimate="true")
    joined = concat_localization([first, second])
    n1 = len(first.queries)
    assert len(joined.queries) == n1 + len(second.queries)
    assert joined.scenes.map_ids == first.scenes.map_ids + second.scenes.map_ids
    assert [part["split"] for part in joined.source["parts"]] == ["train", "test"]
    # a query of the second part sees the radio maps of its own map, now in a later slot
    q = len(second.queries) - 1
    slot = joined.queries.map_slot[n1 + q]
    assert slot == second.queries.map_slot[q] + len(first.scenes.map_ids)
    np.testing.assert_array_equal(joined.scenes.radio_maps[slot], second.scenes.radio_maps[second.queries.map_slot[q]])
    np.testing.assert_array_equal(joined.queries.pathloss_db[n1 + q], second.queries.pathloss_db[q])
    np.testing.assert_array_equal(joined.queries.position[:n1], first.queries.position)
    fewer = SceneBank(second.scenes.map_ids, second.scenes.buildings, second.scenes.bs_positions[:, :3], second.scenes.radio_maps[:, :3])
    with pytest.raises(RadiolocError, match="different numbers of candidate BSs"):
        concat_localization([first, second.__class__(fewer, second.queries, second.source)])


def test_noisy_maps_have_the_requested_error(small_dataset):
    root, _ = small_dataset
    true = load_localization(root, "train", estimate="true")
    noisy = load_localization(root, "train", estimate="noisy:4", noise_seed=3)
    again = load_localization(root, "train", estimate="noisy:4", noise_seed=3)
    np.testing.assert_array_equal(noisy.scenes.radio_maps, again.scenes.radio_maps)  # seeded
    t = true.scenes.radio_maps.astype(float)
    inside = (t > 60) & (t < 190)  # far from the clipping at 0 and 255
    diff = (noisy.scenes.radio_maps.astype(float) - t)[inside] * DB_PER_GRAY
    assert abs(diff.std() - 4.0) < 0.2 and abs(diff.mean()) < 0.1
    np.testing.assert_array_equal(noisy.queries.pathloss_db, true.queries.pathloss_db)  # the UE still reports the truth


def test_missing_estimates_and_bad_estimate_option(small_dataset):
    root, _ = small_dataset
    with pytest.raises(RadiolocError, match="dataset estimate"):
        load_localization(root, "test")
    with pytest.raises(RadiolocError, match="noisy:SIGMA"):
        load_localization(root, "test", estimate="noisy:-1")
    with pytest.raises(RadiolocError, match="noisy:SIGMA needs SIGMA in \\(0, 100\\] dB"):
        load_localization(root, "test", estimate="noisy:1e308")
    with pytest.raises(RadiolocError, match="split must be one of"):
        load_localization(root, "holdout", estimate="true")


@pytest.mark.parametrize(
    "ids, pathloss, message",
    [
        ([[0, 1]], [[-90.0, np.nan]], "pathloss is NaN"),
        ([[0, 1]], [[-90.0, 95.0]], "out of range"),
        ([[0, 99]], [[-90.0, -80.0]], "unknown BS id 99"),
        ([[0, 1, 2, 3, 4, 5]], [[-90.0] * 6], "at most 5 BSs"),
        ([[-1, -1]], [[np.nan, np.nan]], "no BS"),
        ([[3, 3]], [[-90.0, -91.0]], "listed twice"),
    ],
)
def test_query_validation(ids, pathloss, message):
    with pytest.raises(RadiolocError, match=message):
        validate_queries(np.array(ids), np.array(pathloss), n_bs=12)


def test_query_validation_clips_to_the_noise_floor():
    ids, pathloss = validate_queries(np.array([[0, 1, -1]]), np.array([[-200.0, -90.0, np.nan]]), n_bs=12)
    assert pathloss[0, 0] == pytest.approx(NOISE_FLOOR_DB) and pathloss[0, 1] == pytest.approx(-90.0) and np.isnan(pathloss[0, 2])


def test_error_statistics():
    stats = error_stats(np.array([3.0, 4.0]))
    assert stats == {"mae": 3.5, "rmse": pytest.approx(np.sqrt(12.5)), "median": 3.5, "p90": pytest.approx(3.9), "n": 2}
    table = by_detectable(np.array([1.0, 2.0, 6.0]), np.array([5, 5, 1]))
    assert table["5"]["mae"] == 1.5 and table["1"]["n"] == 1 and table["0"]["n"] == 0 and table["5"]["share"] == pytest.approx(2 / 3)


def test_bootstrap_over_maps():
    from radioloc.evaluation.bootstrap import per_map_sums, ratio_of_sums_interval

    np.testing.assert_array_equal(per_map_sums([1.0, 2.0, 4.0, 8.0], [7, 3, 7, 5]), [2.0, 8.0, 5.0])  # maps 3, 5, 7
    # every map at the same ratio: every draw gives it, whatever maps are drawn
    assert ratio_of_sums_interval([1.0, 3.0, 5.0], [2.0, 6.0, 10.0]) == pytest.approx((0.5, 0.5))
    # one map alone: no variation to draw; two maps at ratios 0 and 1 of equal weight: the draws span 0..1
    assert ratio_of_sums_interval([2.0], [4.0]) == (0.5, 0.5)
    low, high = ratio_of_sums_interval(np.r_[np.zeros(20), np.ones(20)], np.ones(40))
    assert 0.3 < low < 0.5 < high < 0.7
    assert ratio_of_sums_interval(np.arange(40.0), np.full(40, 39.0), seed=3) == ratio_of_sums_interval(np.arange(40.0), np.full(40, 39.0), seed=3)
    with pytest.raises(ValueError, match="two equal non-empty"):
        ratio_of_sums_interval([1.0, 2.0], [1.0])


@pytest.fixture(scope="module")
def trained(small_dataset, tmp_path_factory):
    root, _ = small_dataset
    out = tmp_path_factory.mktemp("locunet")
    config = LocUNetTrainConfig.for_preset("cpu", estimate="true", **TINY)
    summary = train_locunet(root, out, config, quiet=True)
    summary["fitted"] = fit_checkpoint(out / "best.pt", *load_training_splits([root], config, quiet=True))
    return out, config, summary


def test_training_writes_checkpoints_and_resumes(trained, small_dataset):
    root, _ = small_dataset
    out, config, summary = trained
    assert (out / "best.pt").exists() and (out / "last.pt").exists()
    assert len(summary["history"]) == 2 and np.isfinite(summary["best_val_mae_m"])
    with pytest.raises(RadiolocError, match="different training configuration"):
        train_locunet(root, out, LocUNetTrainConfig.for_preset("cpu", estimate="true", **{**TINY, "epochs": 3}), quiet=True)


def test_fitting_a_checkpoint_stores_refinement_and_radii(trained):
    out, _, summary = trained
    refinement = summary["fitted"]["refinement"]
    grid = refinement["val_grid_mae_m"]
    # the refinement chosen on validation is the grid's best and travels with the weights
    assert grid[f"{refinement['radius_m']:g} m, k={refinement['k']}"] == min(grid.values())
    model = load_locunet(out / "best.pt")
    assert (model.config.refine_radius_m, model.config.refine_k) == (refinement["radius_m"], refinement["k"])
    for refine in (True, False):  # both answers have their own radius calibration
        localizer = LocUNetLocalizer.load(out / "best.pt", refine=refine)
        assert localizer.uncertainty is not None
        assert localizer.uncertainty.to_dict() == summary["fitted"]["radius_calibration"]["refined" if refine and refinement["k"] else "network"]


def test_localizers_share_one_interface(trained, small_dataset):
    root, _ = small_dataset
    out, _, _ = trained
    train = load_localization(root, "train", estimate="true")
    test = load_localization(root, "test", estimate="true")
    for localizer in (LocUNetLocalizer.load(out / "best.pt"), KNNLocalizer(grid=(1, 4, 16)).fit(train)):
        estimate = localizer.locate(test)
        assert estimate.positions.shape == (len(test.queries), 2) and np.isfinite(estimate.positions).all()
        assert np.all(estimate.radius_95 >= estimate.radius_68) and np.all(estimate.radius_68 > 0)
        np.testing.assert_array_equal(localizer.predict(test), estimate.positions)
        assert localizer.ms_per_query > 0 and "name" in localizer.describe()


def test_evaluate_cli_writes_the_report(trained, small_dataset, tmp_path):
    root, _ = small_dataset
    out, _, _ = trained
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--model",
            f"{out / 'best.pt'},knn",
            "--data",
            str(root),
            "--estimate",
            "true",
            "--json",
            str(report_path),
            "--figures",
            str(tmp_path / "fig"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    test_queries = load_localization(root, "test", estimate="true").queries
    assert report["n"] == len(test_queries) and report["mae"] > 0 and report["rmse"] >= report["mae"]
    knn = report["models"]["knn"]
    assert set(knn) == {"5bs", "3bs"} and knn["5bs"]["n"] == len(test_queries)
    assert sum(row["n"] for row in knn["5bs"]["by_detectable_bs"].values()) == len(test_queries)
    assert (tmp_path / "fig" / "error_cdf_test.png").read_bytes()[:4] == b"\x89PNG"
    assert any("example_" in f for f in report["figures"])
    # the per-query errors behind the report, for paired statistics: the same queries, each on its map
    from radioloc.evaluation.experiment import evaluate_models

    per_query = {}
    again = evaluate_models(["knn"], root, "test", estimate="true", per_query=per_query)
    test = load_localization(root, "test", estimate="true")
    np.testing.assert_array_equal(per_query["map"], np.asarray(test.scenes.map_ids)[test.queries.map_slot])
    assert [per_query["knn"][s].errors.mean() for s in ("5bs", "3bs")] == pytest.approx([again["models"]["knn"][s]["mae"] for s in ("5bs", "3bs")])


def test_cli_errors_are_one_line(small_dataset, tmp_path):
    root, _ = small_dataset
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    for args, message in (
        (["evaluate", "--model", "svm", "--data", str(root)], "--model 'svm'"),
        (["evaluate", "--model", "knn", "--data", str(root)], "dataset estimate"),
        (["evaluate", "--model", str(tmp_path / "nothing.pt"), "--data", str(root)], "checkpoint file not found"),
        (["train", "locunet", "--data", str(root), "--out", str(tmp_path / "r"), "--preset", "gpu"], "unknown LocUNet preset"),
        (["train", "locunet", "--data", ",", "--out", str(tmp_path / "r")], "name at least one dataset folder"),
        (["train", "locunet", "--data", f"{root},{tmp_path / 'nowhere'}", "--out", str(tmp_path / "r2")], "nowhere: no such dataset folder"),
        (
            ["train", "locunet", "--data", str(root), "--out", str(tmp_path / "r3"), "--head", "posterior", "--estimate", "true"],
            "--head posterior needs --likelihood",
        ),
        (["train", "bayes", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "b")], "nowhere: no such dataset folder"),
        (["evaluate", "--model", "bayes:network", "--data", str(root)], "unknown option 'network'"),
        # the shipped calibration is for RadioUNet estimates with DPM reports, not for true maps
        (["evaluate", "--model", "bayes", "--data", str(root), "--estimate", "true"], "calibration for another scenario"),
        (["evaluate", "--model", str(corrupt), "--data", str(root), "--estimate", "true"], "corrupt.safetensors: not a readable calibration file"),
    ):
        result = subprocess.run([sys.executable, "-m", "radioloc.cli", *args], capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_locate_cli(trained, small_dataset):
    root, _ = small_dataset
    out, _, _ = trained
    args = ["locate", "--data", str(root), "--map", "0", "--model", str(out / "best.pt"), "--estimate", "true"]
    result = CliRunner().invoke(app, [*args, "--bs", "0,3", "--pathloss=-90,-110.5"])
    assert result.exit_code == 0, result.output
    assert "estimated position" in result.output and "68 % within" in result.output and "95 % within" in result.output
    bayes = [arg if arg != str(out / "best.pt") else "bayes:fit" for arg in args]
    fitted = CliRunner().invoke(app, [*bayes, "--bs", "0,3", "--pathloss=-90,-110.5"])
    assert fitted.exit_code == 2 and "must be fitted on a training split first" in fitted.output
    for extra, message in (
        (["--bs", "0,3,-1", "--pathloss=-90,-100,-50"], "unknown BS id -1"),
        (["--bs", "0", "--pathloss=-90", "--estimator", "median"], "applies to the bayes localizer only"),
        (["--bs", "0,3", "--pathloss=-90,nan"], "--pathloss: every value must be a finite number"),
        (["--bs", "0,30", "--pathloss=-90,-100"], "unknown BS id 30"),
        (["--bs", "0,1,2,3,4,5", "--pathloss=-90,-90,-90,-90,-90,-90"], "at most 5 BSs"),
        (["--bs", "0,3", "--pathloss=-90"], "--pathloss 1 values"),
        (["--bs", "0", "--pathloss=20"], "out of range"),
    ):
        failed = subprocess.run([sys.executable, "-m", "radioloc.cli", *args, *extra], capture_output=True, text=True)
        assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and message in failed.stderr, failed.stderr


def test_a_map_without_radio_maps_is_a_one_line_error(small_dataset, tmp_path):
    import shutil

    root, _ = small_dataset
    copy = tmp_path / "ds"
    shutil.copytree(root, copy)
    (copy / "DPM" / "true" / "0_3.png").unlink()
    args = ["locate", "--data", str(copy), "--map", "0", "--estimate", "true", "--bs", "0,3", "--pathloss=-90,-110.5"]
    failed = subprocess.run([sys.executable, "-m", "radioloc.cli", *args], capture_output=True, text=True)
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and "0_3.png: missing file" in failed.stderr, failed.stderr


def test_fine_tuning_starts_from_the_given_weights(trained, small_dataset, tmp_path):
    import torch

    from radioloc.models.locunet import LocUNet, load_locunet, preset_config

    root, _ = small_dataset
    out, _, _ = trained
    config = LocUNetTrainConfig.for_preset("cpu", estimate="true", init=str(out / "best.pt"), **{**TINY, "epochs": 1, "lr": 1e-12})
    train_locunet(root, tmp_path / "tuned", config, quiet=True)
    start, tuned = load_locunet(out / "best.pt"), load_locunet(tmp_path / "tuned" / "best.pt")
    for a, b in zip(start.state_dict().values(), tuned.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)  # lr ~0: still the initial weights
    # a cpu checkpoint grows into the deeper preset and starts from the same answers
    deep = LocUNetTrainConfig.for_preset("cpu-deep", estimate="true", init=str(out / "best.pt"), **{**TINY, "epochs": 1, "lr": 1e-12})
    train_locunet(root, tmp_path / "deep", deep, quiet=True)
    grown = load_locunet(tmp_path / "deep" / "best.pt").eval()
    assert grown.config.preset == "cpu-deep"
    inputs = torch.randn(2, start.config.in_channels, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(grown.heatmap(inputs), start.eval().heatmap(inputs), atol=1e-4, rtol=1e-4)
    other = tmp_path / "fine.pt"
    from radioloc.models.checkpoint import save_checkpoint

    save_checkpoint(other, "locunet", preset_config("cpu-fine").to_dict(), LocUNet(preset_config("cpu-fine")).state_dict())
    with pytest.raises(RadiolocError, match="another model configuration"):
        train_locunet(root, tmp_path / "bad", LocUNetTrainConfig.for_preset("cpu", estimate="true", init=str(other), **TINY), quiet=True)
    with pytest.raises(RadiolocError, match="does not grow into it"):
        train_locunet(root, tmp_path / "bad2", LocUNetTrainConfig.for_preset("cpu-deep", estimate="true", init=str(other), **TINY), quiet=True)


def test_out_of_distribution_matrix_over_measurements(small_dataset, tmp_path):
    root, _ = small_dataset
    report_path = tmp_path / "ood.json"
    result = CliRunner().invoke(
        app,
        ["evaluate", "--model", "knn", "--data", str(root), "--estimate", "true", "--measurement", "DPM,DPMcars", "--json", str(report_path)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert set(report["matrix_mae_m"]["knn"]) == {"DPM", "DPMcars"}
    for sim in ("DPM", "DPMcars"):
        assert report["measurements"][sim]["data"]["measurement_sim"] == sim
        assert report["matrix_mae_m"]["knn"][sim]["5bs"] == report["measurements"][sim]["models"]["knn"]["5bs"]["mae"]
    assert report["mae"] == report["matrix_mae_m"]["knn"]["DPM"]["5bs"] and report["n"] > 0


def test_positions_stay_on_the_map(small_dataset, monkeypatch):
    import torch

    root, _ = small_dataset
    data = load_localization(root, "test", estimate="true")
    localizer = LocUNetLocalizer.load(None, refine=False)

    def cancelling(self, x):  # a quasi-heatmap whose sum nears zero sends the centre of mass far off the map
        heat = torch.zeros(x.shape[0], 64, 64)
        heat[:, 63, 0] = 1.0
        heat[:, 0, 63] = -1.0 + 1e-4
        return heat

    monkeypatch.setattr(type(localizer.model), "heatmap", cancelling)
    positions = localizer.predict(data)
    np.testing.assert_array_equal(positions, np.tile([[255.0, 0.0]], (len(data.queries), 1)))
    localizer.refine = True  # the refinement searches near the clipped answer: still on the map, near the corner
    refined = localizer.predict(data)
    radius = localizer.model.config.refine_radius_m
    assert radius > 0 and np.all(np.hypot(refined[:, 0] - 255.0, refined[:, 1]) <= radius)


def test_radii_on_a_posteriors_spread(trained, small_dataset, tmp_path):
    from radioloc.localizers.bayes import BayesLocalizer
    from radioloc.localizers.locunet import SPREAD_STRIDE
    from radioloc.localizers.registry import resolve_localizer

    root, train, val, bayes, spread, checkpoint = _calibration_and_checkpoint(trained, small_dataset, tmp_path)
    with pytest.raises(RadiolocError, match="no radii calibrated on a posterior's spread"):
        LocUNetLocalizer.load(checkpoint, posterior_spread=True)
    fitted = fit_checkpoint(checkpoint, train, val, spread=spread)
    assert {"refined", "network", f"network@{spread}"} <= set(fitted["radius_calibration"])
    # the registry takes the posterior's spread when the checkpoint has it; :heatmap-radii the quasi-heatmap's
    localizer = resolve_localizer(str(checkpoint)).localizer
    heatmap = resolve_localizer(f"{checkpoint}:heatmap-radii").localizer
    assert localizer.spread == spread and heatmap.spread is None
    key = "refined" if localizer.model.config.refine_k else "network"
    assert localizer.uncertainty.to_dict() == fitted["radius_calibration"][f"{key}@{spread}"]
    assert heatmap.uncertainty.to_dict() == fitted["radius_calibration"][key]
    test = load_localization(root, "test", estimate="true")
    positions, raw = localizer.raw_estimates(test)
    np.testing.assert_array_equal(positions, heatmap.predict(test))  # the same answers, other radii
    np.testing.assert_array_equal(raw, BayesLocalizer.load(spread).spread_around(test, positions, SPREAD_STRIDE))
    # a changed calibration file no longer matches the radii fitted on its spread
    bayes.calibration.temperature = 0.5
    bayes.save(spread)
    with pytest.raises(RadiolocError, match="calibrated on the spread of another"):
        resolve_localizer(str(checkpoint))


def _calibration_and_checkpoint(trained, small_dataset, tmp_path):
    """(dataset root, train, val, a bayes fitted on them, its saved calibration, a copy of the trained checkpoint)."""
    import shutil

    from radioloc.localizers.bayes import BayesLocalizer

    root, _ = small_dataset
    out, config, _ = trained
    train, val = load_training_splits([root], config, quiet=True)
    bayes = BayesLocalizer(temperatures=(1.0,)).fit(train, val)
    calibration = str(bayes.save(tmp_path / "bayes.safetensors"))
    checkpoint = tmp_path / "model.pt"
    shutil.copy(out / "best.pt", checkpoint)
    return root, train, val, bayes, calibration, checkpoint


def test_the_quasi_heatmap_as_a_learned_prior_round_trip(trained, small_dataset, tmp_path, monkeypatch):
    from radioloc.localizers import heatmap_prior
    from radioloc.localizers.bayes import BayesLocalizer
    from radioloc.localizers.heatmap_prior import BETAS, FLOORS, HeatmapPriorLocalizer, fuse_checkpoint, prior_cost
    from radioloc.localizers.registry import resolve_localizer

    root, train, val, bayes, calibration, checkpoint = _calibration_and_checkpoint(trained, small_dataset, tmp_path)
    with pytest.raises(RadiolocError, match="no learned-prior fusion"):
        HeatmapPriorLocalizer.load(checkpoint)
    assert isinstance(resolve_localizer(str(checkpoint)).localizer, LocUNetLocalizer)  # without a fusion: the paper's answer
    fitted = fuse_checkpoint(checkpoint, calibration, train, val, tmp_path / "fused.pt")
    # the weight and floor chosen on validation are the grid's best, and the weights are the network's
    grid = fitted["val_grid_mae_m"]
    assert len(grid) == len(BETAS) * len(FLOORS) and grid[f"beta {fitted['beta']:g}, floor {fitted['floor']:g}"] == min(grid.values())
    fused = resolve_localizer(str(tmp_path / "fused.pt")).localizer
    paper = resolve_localizer(f"{tmp_path / 'fused.pt'}:paper").localizer
    assert isinstance(fused, HeatmapPriorLocalizer) and isinstance(paper, LocUNetLocalizer)
    assert (fused.beta, fused.floor, fused.uncertainty.to_dict()) == (fitted["beta"], fitted["floor"], fitted["radius_calibration"])
    test = load_localization(root, "test", estimate="true")
    np.testing.assert_array_equal(paper.predict(test), LocUNetLocalizer.load(checkpoint).predict(test))
    # its answers are the calibrated posterior's under the network's heatmaps as prior, chunk by chunk alike
    heat = fused.heatmaps(test)
    assert fused.interpolation == "bilinear"  # new fusions interpolate the prior between the cell centres
    expected, raw, _ = BayesLocalizer.load(calibration).posterior(test, prior_cost=prior_cost(heat, fused.beta, fused.floor), cell=4, bilinear=True)
    monkeypatch.setattr(heatmap_prior, "QUERY_CHUNK", 7)
    positions, spread = fused.raw_estimates(test)
    np.testing.assert_allclose(positions, expected, atol=1e-9)
    np.testing.assert_allclose(spread, raw, atol=1e-9)
    # a fusion stored before the interpolation was (no "interpolation" field): constant on cells, as fitted
    from radioloc.models.checkpoint import load_checkpoint, save_checkpoint
    from radioloc.models.locunet import KIND

    stored = load_checkpoint(tmp_path / "fused.pt", KIND)
    del stored["fusion"]["interpolation"]
    save_checkpoint(tmp_path / "fused_cells.pt", KIND, **{k: v for k, v in stored.items() if k not in ("format", "kind")})
    cells = HeatmapPriorLocalizer.load(tmp_path / "fused_cells.pt")
    cells_expected, _, _ = BayesLocalizer.load(calibration).posterior(test, prior_cost=prior_cost(heat, fused.beta, fused.floor), cell=4)
    assert cells.interpolation == "cells"
    stored["fusion"]["interpolation"] = "nearest"
    save_checkpoint(tmp_path / "fused_bad.pt", KIND, **{k: v for k, v in stored.items() if k not in ("format", "kind")})
    with pytest.raises(RadiolocError, match=r"fused_bad\.pt: learned prior: interpolation must be one of bilinear, cells, got 'nearest'"):
        HeatmapPriorLocalizer.load(tmp_path / "fused_bad.pt")
    np.testing.assert_allclose(cells.predict(test), cells_expected, atol=1e-9)
    estimate = fused.locate(test.subset(np.arange(3)), heatmaps=True)
    assert estimate.heatmaps.shape == (3, 256, 256) and estimate.heatmaps.sum(axis=(1, 2)) == pytest.approx(1.0)
    # a changed calibration file no longer matches the fusion fitted on it
    bayes.calibration.temperature = 0.5
    bayes.save(calibration)
    with pytest.raises(RadiolocError, match="fused with another"):
        resolve_localizer(str(tmp_path / "fused.pt"))
    assert isinstance(resolve_localizer(f"{tmp_path / 'fused.pt'}:paper").localizer, LocUNetLocalizer)
