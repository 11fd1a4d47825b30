"""The learned radio-map error model and the likelihood counted per reliability bin (``bayes-learned``): exact input
geometry, the analytic loss, the bins, the calibration file with its error model, and the training command."""

import json

import numpy as np
import pytest
import torch
from test_localizers import queries_at, ramp_scene

from radioloc.datasets.localization import LocalizationData
from radioloc.errors import RadiolocError
from radioloc.localizers.bayes import BayesLocalizer, BayesTrainConfig, train_bayes
from radioloc.localizers.registry import resolve_localizer
from radioloc.models.checkpoint import save_checkpoint
from radioloc.models.error_model import (
    KIND,
    MIN_LOG_SCALE,
    ErrorModel,
    ErrorModelConfig,
    error_inputs,
    laplace_nll,
    load_error_model,
    predict_log_scale,
    reliability_bins,
)  # fmt: skip
from radioloc.models.likelihood import code_maps, pair_counts

SOURCE = {"sim": "DPM", "estimate": "true", "measurement_sim": "DPM"}


def test_error_inputs_are_the_exact_geometry():
    buildings = np.zeros((256, 256), np.uint8)
    buildings[100:120, 50:60] = 1
    maps = np.zeros((2, 256, 256), np.uint8)
    maps[0, 5, 7] = 51
    inputs = error_inputs(buildings, maps, np.array([[0, 0], [110, 10]]))
    assert inputs.shape == (2, 6, 256, 256) and inputs.dtype == np.float32
    assert inputs[0, 0, 110, 55] == 1.0 and inputs[0, 0, 0, 0] == 0.0  # building mask
    assert inputs[0, 1, 5, 7] == pytest.approx(0.2) and inputs[0, 2, 5, 7] == 0.0 and inputs[0, 2, 5, 8] == 1.0  # map and floor mask
    assert inputs[0, 3, 30, 40] == pytest.approx(50.0 / 128.0)  # distance 50 m (3-4-5)
    # BS 1 at (110, 10) looks east through the building (columns 50..59) at (110, 100): no line of sight there,
    # about 10 m of building on the direct line; it sees (110, 40) freely
    assert inputs[1, 4, 110, 100] == 0.0 and inputs[1, 5, 110, 100] == pytest.approx(10.0 / 64.0, abs=1.5 / 64)
    assert inputs[1, 4, 110, 40] == 1.0 and inputs[1, 5, 110, 40] == 0.0
    with pytest.raises(ValueError, match="disagree"):
        error_inputs(buildings, maps, np.zeros((3, 2)))


def test_laplace_nll_is_analytic_and_minimal_at_the_mean_absolute_residual():
    residual = torch.tensor([[[-3.0, 1.0], [2.0, 0.0]]])
    weight = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])  # the last pixel does not count
    for b in (0.5, 2.0, 3.0):
        value = laplace_nll(torch.full_like(residual, np.log(b)), residual, weight)
        assert float(value) == pytest.approx(np.log(b) + 2.0 / b, rel=1e-6)  # mean |r| over weighted pixels = 2
    best = min((float(laplace_nll(torch.full_like(residual, np.log(b)), residual, weight)), b) for b in np.linspace(0.5, 4, 351))[1]
    assert best == pytest.approx(2.0, abs=0.01)


def test_the_predicted_scale_is_bounded_below_and_the_geometry_is_radiounets():
    torch.manual_seed(0)
    model = ErrorModel(ErrorModelConfig())
    with torch.no_grad():
        model.unet.last.bias.fill_(-50.0)  # a network that wants a vanishing scale everywhere
    scene = ramp_scene()
    scales = predict_log_scale(model, scene)
    assert scales.shape == (1, 3, 256, 256) and np.all(scales.astype(np.float32) >= MIN_LOG_SCALE - 5e-3)  # float16 storage
    geometry = model.geometry(scene.buildings[0][None].repeat(2, 0), scene.bs_positions[0, :2])
    assert geometry.shape == (2, 22, 64, 64)  # LOS on 4 m cells (2) + coarse DPM on 2 m cells, two grids (4 + 16)
    assert ErrorModel(ErrorModelConfig(geometry_preset=None)).geometry(scene.buildings, scene.bs_positions[0, :1]) is None


def test_reliability_bins_and_code_maps():
    scale = np.array([[-1.0, 0.0, 0.5, 3.0]], np.float16)
    bins = reliability_bins(scale, np.array([0.0, 1.0]))
    assert bins.tolist() == [[0, 1, 1, 2]] and bins.dtype == np.uint8
    codes = code_maps(np.array([[7, 7, 0, 255]], np.uint8), bins)
    assert codes.tolist() == [[7, 263, 256, 767]] and codes.dtype == np.uint16
    assert code_maps(np.array([[3]], np.uint8), None).tolist() == [[3]]


def test_pair_counts_per_bin():
    scene = ramp_scene()
    data = LocalizationData(scene, queries_at([(5, 9)] * 10 + [(100, 3)], scene, ids=(0, 1)), SOURCE)
    bins = np.zeros(scene.radio_maps.shape, np.uint8)
    bins[0, 1] = 2  # every pixel of BS 1's map in bin 2
    counts = pair_counts(data, bins, 3)
    assert counts.shape == (768, 256) and counts.sum() == 22
    assert counts[5, 5] == 10 and counts[100, 100] == 1  # BS 0: bin 0
    assert counts[512 + 9, 9] == 10 and counts[512 + 3, 3] == 1 and counts[256:512].sum() == 0  # BS 1: bin 2


class ConstantErrorModel(ErrorModel):
    """Predicts the same scale everywhere: every pixel in one bin, so the per-bin table is the plain one."""

    def forward(self, inputs, geometry=None):
        return torch.zeros(inputs.shape[0], *inputs.shape[-2:]) + 0.0 * self.unet.last.bias.sum()


def _save_model(model: ErrorModel, path):
    save_checkpoint(path, KIND, model.config.to_dict(), {k: v.detach().clone() for k, v in model.state_dict().items()})
    return path


def test_a_constant_error_model_answers_as_plain_bayes_and_round_trips(tmp_path):
    scene = ramp_scene()
    rng = np.random.default_rng(0)
    train = LocalizationData(scene, queries_at(rng.integers(50, 200, size=(300, 2)), scene), SOURCE)
    train.queries.pathloss_db[:] += rng.normal(0, 2.0, train.queries.pathloss_db.shape).astype(np.float32)
    test = LocalizationData(scene, queries_at(rng.integers(60, 190, size=(20, 2)), scene), SOURCE)
    test.queries.pathloss_db[:] += rng.normal(0, 2.0, test.queries.pathloss_db.shape).astype(np.float32)
    plain = BayesLocalizer(temperatures=(0.7,)).fit(train)
    torch.manual_seed(0)
    file = _save_model(ErrorModel(ErrorModelConfig()), tmp_path / "errors.pt")
    learned = BayesLocalizer(temperatures=(0.7,), error_model=ConstantErrorModel(), error_model_file=file, reliability_bins=(4,)).fit(train)
    assert learned.calibration.bins == 4 and learned.calibration.log_likelihood.shape == (1024, 256)
    np.testing.assert_allclose(learned.calibration.log_likelihood[768:], plain.calibration.log_likelihood, rtol=1e-6)  # all in the last bin
    np.testing.assert_allclose(learned.locate(test).positions, plain.locate(test).positions, atol=1e-6)
    # saved beside its error model, loaded with it; a changed or missing model is refused
    path = learned.save(tmp_path / "cal.safetensors")
    loaded = BayesLocalizer.load(path)
    assert loaded.calibration.error_model == {"file": "errors.pt", "sha256": learned.calibration.error_model["sha256"]}
    np.testing.assert_array_equal(loaded.calibration.reliability_edges, learned.calibration.reliability_edges)
    assert isinstance(loaded.error_model, ErrorModel) and loaded.calibration.bins == 4
    with pytest.raises(RadiolocError, match="must be saved beside"):
        learned.save(tmp_path / "elsewhere" / "cal.safetensors")
    torch.manual_seed(1)
    _save_model(ErrorModel(ErrorModelConfig()), tmp_path / "errors.pt")
    with pytest.raises(RadiolocError, match="errors.pt is not the error model this calibration was counted with"):
        BayesLocalizer.load(path)
    (tmp_path / "errors.pt").unlink()
    with pytest.raises(RadiolocError, match="errors.pt is missing"):
        BayesLocalizer.load(path)


def test_error_model_checkpoint_errors(tmp_path):
    with pytest.raises(RadiolocError, match="nothing.pt: error-model checkpoint not found"):
        load_error_model(tmp_path / "nothing.pt")
    other = tmp_path / "other.pt"
    save_checkpoint(other, "radiounet", {}, {})
    with pytest.raises(RadiolocError, match="other.pt: holds a radiounet model, expected a error-model model"):
        load_error_model(other)


def test_shipped_bayes_learned_loads_with_its_error_model():
    localizer = resolve_localizer("bayes-learned").localizer
    assert localizer.calibration.bins > 1 and isinstance(localizer.error_model, ErrorModel)
    assert localizer.calibration.scenario["measurement"] == "DPM" and localizer.uncertainty is not None
    assert localizer.calibration.provenance["pairs"] > 100_000
    scene = ramp_scene()
    scales = predict_log_scale(localizer.error_model, scene)
    assert scales.shape == scene.radio_maps.shape and np.isfinite(scales.astype(np.float32)).all()


def test_train_error_model_then_bayes_learned_on_a_small_dataset(small_dataset, tmp_path):
    """The two training commands end to end (tiny budgets): an error model, then a calibration counted per bin of
    it, which locates; the training resumes from last.pt and refuses another configuration."""
    import shutil

    from typer.testing import CliRunner

    from radioloc.cli import app
    from radioloc.models.estimate import estimate_dataset

    root = tmp_path / "ds"
    shutil.copytree(small_dataset[0], root)  # the session's dataset stays as other tests expect it
    estimate_dataset(root, quiet=True)
    runner = CliRunner()
    run = tmp_path / "err"
    result = runner.invoke(app, ["train", "error-model", "--data", str(root), "--out", str(run), "--steps", "4", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    assert [h["step"] for h in summary["history"]] == [4] and np.isfinite(summary["best_val_nll"])
    again = runner.invoke(app, ["train", "error-model", "--data", str(root), "--out", str(run), "--steps", "4", "--batch-size", "2"])
    assert again.exit_code == 0 and json.loads((run / "summary.json").read_text())["history"] == summary["history"]  # already done
    other = runner.invoke(app, ["train", "error-model", "--data", str(root), "--out", str(run), "--steps", "5", "--batch-size", "2"])
    assert other.exit_code == 2 and "different training configuration" in other.output
    # fine-tuning starts from the given weights: with a learning rate of ~0 they stay those weights
    tuned = runner.invoke(app, ["train", "error-model", "--data", str(root), "--out", str(tmp_path / "tuned"), "--steps", "2", "--batch-size", "2",
                                "--lr", "1e-12", "--init", str(run / "best.pt")])  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    for a, b in zip(load_error_model(run / "best.pt").state_dict().values(), load_error_model(tmp_path / "tuned" / "best.pt").state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    missing = runner.invoke(app, ["train", "error-model", "--data", str(root), "--out", str(tmp_path / "t2"), "--init", str(tmp_path / "none.pt")])
    assert missing.exit_code == 2 and "none.pt: error-model checkpoint not found" in missing.output
    bad = runner.invoke(app, ["train", "error-model", "--data", str(root), "--out", str(tmp_path / "x"), "--estimate", "true"])
    assert bad.exit_code == 2 and "--estimate true" in bad.output
    bad = runner.invoke(app, ["train", "bayes", "--data", str(root), "--out", str(tmp_path / "y"), "--error-model", str(run / "best.pt"), "--bins", "4,x"])
    assert bad.exit_code == 2 and "--bins must be comma-separated" in bad.output
    summary = train_bayes([root], tmp_path / "cal", BayesTrainConfig(error_model=str(run / "best.pt"), reliability_bins=(2, 3)), quiet=True)
    assert summary["reliability_bins"] in (2, 3) and (tmp_path / "cal" / "best.pt").is_file()
    assert {"2 bins, 0.5", "3 bins, 1"} <= set(summary["temperature_val_mae_m"])  # both tried, with every tempering
    localizer = BayesLocalizer.load(tmp_path / "cal" / "calibration.safetensors")
    from radioloc.datasets.localization import load_localization

    estimate = localizer.locate(load_localization(root, "test"))
    assert np.isfinite(estimate.positions).all() and (estimate.radius_95 >= estimate.radius_68).all()
