from pathlib import Path

import numpy as np
import pytest
import torch

from radioloc.datasets.localization import LocalizationData, Queries, SceneBank
from radioloc.errors import RadiolocError
from radioloc.localizers.locunet import refine_positions
from radioloc.models.checkpoint import save_checkpoint
from radioloc.models.locunet import (
    PAPER_DECODER_KERNELS,
    PAPER_ENCODER,
    WEIGHTS_DIR,
    InputEncoder,
    LocUNet,
    center_of_mass,
    count_parameters,
    grow_locunet,
    load_locunet,
    preset_config,
)
from radioloc.propagation.graylevel import DB_PER_GRAY, NOISE_FLOOR_DB
from radioloc.training.locunet import dihedral_batch, localization_loss, random_subsets


def coords(size=256, cell=1.0):
    c = (torch.arange(size, dtype=torch.float32) + 0.5) * cell - 0.5
    return c.view(1, size, 1), c.view(1, 1, size)


def test_center_of_mass_of_known_heatmaps():
    rows, cols = coords()
    heat = torch.zeros(3, 256, 256)
    heat[0, 10, 200] = 1.0  # one hot pixel: its own position
    heat[1, 0, 0] = heat[1, 100, 50] = 2.0  # two equal peaks: the midpoint
    heat[2, 40, 40] = 2.0  # negative values allowed: (2 * a - 1 * b) / (2 - 1)
    heat[2, 60, 10] = -1.0
    com = center_of_mass(heat, rows, cols)
    np.testing.assert_allclose(com.numpy(), [[10, 200], [50, 25], [20, 70]], atol=1e-4)
    np.testing.assert_allclose(center_of_mass(-heat, rows, cols).numpy(), com.numpy(), atol=1e-4)  # sign invariant


def test_cell_centres_in_metres():
    rows, _ = coords(64, 4.0)
    assert rows[0, 0, 0] == pytest.approx(1.5) and rows[0, -1, 0] == pytest.approx(253.5)  # mean of pixels 0..3 / 252..255


def paper_parameter_count(in_channels: int) -> int:
    """Table I read as in radioloc.models.locunet, counted independently of the module."""
    conv = lambda i, o, k: i * o * k * k + o  # noqa: E731
    widths = [20, 50, 60, 70, 90, 100, 120, 120, 135, 150, 225, 300, 400, 500]
    kernels_in = [3, 5, 5, 5, 5, 5, 5, 3, 5, 5, 5, 5, 5, 5]
    total = sum(conv(i, o, k) for i, o, k in zip([in_channels] + widths[:-1], widths, kernels_in))
    dec_kernels = [4, 5, 4, 5, 4, 5, 3, 6, 5, 6, 5, 6, 6]
    prev = 500
    for step, out in enumerate(reversed(widths[:-1])):
        source = prev if step == 0 else prev + widths[len(widths) - 1 - step]
        total += conv(source, out, dec_kernels[step])
        prev = out
    return total + conv(20 + 20 + in_channels, 20, 5) + conv(20 + in_channels, 1, 5)


def test_paper_preset_follows_table_one():
    config = preset_config("paper")
    assert config.in_channels == 16 and config.input_size == 256 and config.fold == 1
    model = LocUNet(config)
    assert [(c.out_channels, c.kernel_size[0]) for c in model.encoder] == [(w, k) for w, k, _ in PAPER_ENCODER]
    assert [c.kernel_size[0] for c in model.decoder] == list(PAPER_DECODER_KERNELS)
    assert [c.out_channels for c in model.decoder] == [400, 300, 225, 150, 135, 120, 120, 100, 90, 70, 60, 50, 20]
    assert model.penultimate.in_channels == 20 + 20 + 16 and model.last.in_channels == 20 + 16
    assert count_parameters(model) == paper_parameter_count(16)
    # resolutions of Table I: 256 at layer 1, down to 2 x 2 at layer 14
    sizes = []
    hooks = [c.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for c in model.encoder]
    with torch.no_grad():
        out = model(torch.rand(1, 16, 256, 256))
    for h in hooks:
        h.remove()
    pooled = [s // 2 if p else s for s, (_, _, p) in zip(sizes, PAPER_ENCODER)]
    assert pooled == [256, 128, 64, 64, 32, 32, 16, 16, 16, 8, 8, 4, 4, 2]
    assert out.shape == (1, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize("preset", ["cpu", "cpu-deep", "cpu-fine"])
def test_cpu_presets_answer_in_metres(preset):
    config = preset_config(preset, activation="softmax")
    model = LocUNet(config).eval()
    with torch.no_grad():
        out = model(torch.randn(4, config.in_channels, config.input_size, config.input_size))
    half = config.cell_m / 2
    assert out.shape == (4, 2)
    assert (out >= half - 0.5 - 1e-3).all() and (out <= 255.5 - half + 1e-3).all()  # a convex combination of cell centres


def test_ablation_options_change_the_inputs():
    assert preset_config("paper", city_map=False).in_channels == 15
    assert preset_config("paper", tx_maps=False).in_channels == 11
    assert preset_config("paper", tx_maps=False, city_map=False).in_channels == 10
    with pytest.raises(RadiolocError, match="activation"):
        preset_config("cpu", activation="tanh")
    with pytest.raises(RadiolocError, match="unknown LocUNet preset"):
        preset_config("gpu")


def toy_scene():
    maps = np.zeros((1, 3, 256, 256), np.uint8)
    maps[0, 0] = 100
    maps[0, 1, :, :128] = 200  # left half 200, right half 0 (not detectable)
    maps[0, 2] = 50
    buildings = np.zeros((1, 256, 256), np.uint8)
    buildings[0, :4, :4] = 1
    return SceneBank([7], buildings, np.array([[[10, 10], [100, 20], [250, 250]]]), maps)


def gray_db(gray):
    return NOISE_FLOOR_DB + gray * DB_PER_GRAY


def test_residual_encoding_values():
    scene = toy_scene()
    config = preset_config("cpu")  # 4 m cells
    encoder = InputEncoder(config, scene)
    ids = np.array([[0, 1, -1]])
    pathloss = np.array([[gray_db(90), NOISE_FLOOR_DB, np.nan]], dtype=np.float32)
    x = encoder.encode(np.array([0]), ids, pathloss)[0].numpy()
    assert x.shape == (config.in_channels, 64, 64) and config.in_channels == 9
    np.testing.assert_allclose(x[0, 1:], 10 * DB_PER_GRAY / 10, rtol=1e-4)  # (100 - 90) gray = 3.1 dB -> 0.311
    assert x[0, 0, 0] == pytest.approx(-90 * DB_PER_GRAY / 10, rel=1e-4)  # an all-building cell reads as the floor
    np.testing.assert_allclose(x[1, 1:, :32], 4.0)  # 200 gray above the floor = 62 dB, clipped at +4
    np.testing.assert_allclose(x[1, :, 32:], 0.0)  # not detectable where the map is at the floor: consistent
    assert np.all(x[2:5] == 0)  # absent BS and unused slots
    np.testing.assert_allclose(x[5], (x[0] ** 2 + x[1] ** 2) / 2 / 4.0, rtol=1e-5)  # mean squared residual / 4
    tx = x[7]
    assert tx.sum() == 2 and tx[2, 2] == 1 and tx[25, 5] == 1  # BS 0 and 1 at their 4 m cells, not the absent BS 2
    assert x[8, 0, 0] == 1.0 and x[8, 1, 1] == 0.0  # building fraction


def test_paper_encoding_values():
    scene = toy_scene()
    encoder = InputEncoder(preset_config("paper"), scene)
    x = encoder.encode(np.array([0]), np.array([[2, 0]]), np.array([[gray_db(40), gray_db(120)]], dtype=np.float32))[0].numpy()
    assert x.shape == (16, 256, 256)
    np.testing.assert_allclose(x[0, 100, 100], 50 / 255, rtol=1e-5)
    np.testing.assert_allclose(x[1], 40 / 255, rtol=1e-4)  # constant image of the measured gray level
    np.testing.assert_allclose(x[3], 120 / 255, rtol=1e-4)
    assert np.all(x[4:10] == 0)  # three absent BSs
    assert x[10, 250, 250] == 1 and x[11, 10, 10] == 1 and x[10].sum() == 1 and np.all(x[12:15] == 0)
    np.testing.assert_array_equal(x[15], scene.buildings[0])


def test_dihedral_moves_images_and_positions_together():
    size = 64
    for k in range(4):
        for transpose in (False, True):
            images = torch.zeros(1, 1, size, size)
            images[0, 0, 5, 40] = 1
            position = torch.tensor([[5 * 4 + 1.5, 40 * 4 + 1.5]])
            out_images, out_pos = dihedral_batch(images, position, k, transpose)
            i, j = np.unravel_index(int(out_images[0, 0].argmax()), (size, size))
            np.testing.assert_allclose(out_pos[0].numpy(), [i * 4 + 1.5, j * 4 + 1.5])


def test_random_subsets_keep_at_least_one_bs():
    rng = np.random.default_rng(0)
    ids = np.tile(np.arange(5), (1000, 1))
    pathloss = np.full((1000, 5), -100.0, np.float32)
    new_ids, new_pl = random_subsets(ids, pathloss, 0.5, rng)
    kept = (new_ids >= 0).sum(axis=1)
    assert kept.min() >= 1 and 0.4 < (kept < 5).mean() < 0.6
    assert np.array_equal(np.isnan(new_pl), new_ids < 0)
    same_ids, _ = random_subsets(ids, pathloss, 0.0, rng)
    assert np.array_equal(same_ids, ids)


def test_losses():
    estimate = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    truth = torch.zeros(2, 2)
    assert localization_loss(estimate, truth, "mae").item() == pytest.approx(2.5, rel=1e-4)
    assert localization_loss(estimate, truth, "mse").item() == pytest.approx(12.5)


def test_checkpoint_errors(tmp_path):
    model = LocUNet(preset_config("cpu"))
    good = tmp_path / "cpu.pt"
    save_checkpoint(good, "locunet", model.config.to_dict(), model.state_dict())
    assert count_parameters(load_locunet(good)) == count_parameters(model)
    with pytest.raises(RadiolocError, match="expected 'paper'"):
        load_locunet(good, preset="paper")
    other = tmp_path / "radiounet.pt"
    save_checkpoint(other, "radiounet", {}, {})
    with pytest.raises(RadiolocError, match="expected a locunet model"):
        load_locunet(other)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(RadiolocError, match="not a readable radioloc checkpoint"):
        load_locunet(truncated)
    misfit = tmp_path / "misfit.pt"
    save_checkpoint(misfit, "locunet", preset_config("cpu-fine").to_dict(), model.state_dict())
    with pytest.raises(RadiolocError, match="do not fit"):
        load_locunet(misfit)


def test_a_cpu_model_grows_into_cpu_deep_with_the_same_answers():
    torch.manual_seed(0)
    small = LocUNet(preset_config("cpu")).eval()
    grown = grow_locunet(small, preset_config("cpu-deep")).eval()
    assert count_parameters(grown) > 3 * count_parameters(small)
    inputs = torch.randn(3, small.config.in_channels, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(grown.heatmap(inputs), small.heatmap(inputs))
        # the new levels are wired in: once their zero weights move, the answer changes
        grown.decoder[2].weight[:, :128] += 0.05
        assert not torch.allclose(grown.heatmap(inputs), small.heatmap(inputs))
    for target, source in (("cpu-deep", "cpu-fine"), ("cpu", "cpu"), ("cpu", "cpu-deep")):
        with pytest.raises(RadiolocError, match="does not extend"):
            grow_locunet(LocUNet(preset_config(source)), preset_config(target))


@pytest.mark.parametrize("head", ["com", "posterior"])
def test_the_inference_copy_answers_as_autocast_does(head):
    from radioloc.models.runtime import Runtime

    torch.manual_seed(0)
    model = LocUNet(preset_config("cpu", head=head)).eval()
    if head == "posterior":  # the zero-initialized head and the unit norm would answer alike at any precision
        torch.nn.init.normal_(model.last.weight, std=0.05)
        torch.nn.init.normal_(model.head_norm.weight, mean=1.0, std=0.1)
    runtime = Runtime(torch.device("cpu"), torch.bfloat16)
    copy = runtime.for_inference(model)
    # the copy's convolution weights are stored in bf16; the normalization (which autocast runs in fp32) and the
    # buffers (cell coordinates, the likelihood table) stay fp32; the original, whose weights are saved, is untouched
    convolutions = [m for m in copy.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(p.dtype == torch.bfloat16 and not p.requires_grad for m in convolutions for p in m.parameters())
    if head == "posterior":
        assert copy.head_norm.weight.dtype == torch.float32
    assert all(b.dtype == torch.float32 for b in copy.buffers())
    assert all(p.dtype == torch.float32 for p in model.parameters()) and not copy.training
    inputs = torch.randn(2, model.config.in_channels, 64, 64).to(torch.bfloat16)
    with torch.no_grad(), runtime.autocast():
        if head == "com":
            expected, got = model.heatmap(inputs), copy.heatmap(inputs)
        else:
            table = torch.randn(2, *(2 * [model.pixel_rows.shape[1]]))
            expected, got = model.posterior(inputs, table), copy.posterior(inputs, table)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert Runtime(torch.device("cpu"), None).for_inference(model).last.weight.dtype == torch.float32  # fp32 runtimes keep fp32


@pytest.mark.parametrize("name", [None, "locunet", "locunet-robust"])
def test_shipped_model_loads_and_localizes(name):
    from radioloc.localizers.locunet import LocUNetLocalizer

    localizer = LocUNetLocalizer.load(name)
    expected = "cpu-deep" if name == "locunet-robust" else "cpu"
    assert localizer.model.config.preset == expected and Path(localizer.checkpoint).parent == WEIGHTS_DIR
    assert (WEIGHTS_DIR / (Path(localizer.checkpoint).stem + ".md")).exists()  # every shipped model has its card
    scene = toy_scene()
    queries = Queries(
        np.zeros(2, np.int64), np.array([[0, 1, 2], [0, 1, -1]]), np.array([[-90.0, -80.0, -100.0], [-90.0, -80.0, np.nan]], np.float32), np.zeros((2, 2))
    )
    estimate = localizer.locate(LocalizationData(scene, queries, {}))
    assert estimate.positions.shape == (2, 2) and np.isfinite(estimate.positions).all()
    # shipped models carry calibrated radii: 95 % discs are wider than 68 % ones
    assert (estimate.radius_68 > 0).all() and (estimate.radius_95 > estimate.radius_68).all()


def test_best_fit_channel_is_the_best_pixel_of_each_cell():
    scene = toy_scene()
    scene.radio_maps[0, 0, 21, 22] = 90  # one 1 m pixel in 4 m cell (5, 5) fits exactly
    config = preset_config("cpu")
    assert config.best_fit
    x = InputEncoder(config, scene).encode(np.array([0]), np.array([[0]]), np.array([[gray_db(90)]], dtype=np.float32))[0].numpy()
    assert x.shape[0] == config.in_channels == 9
    fit = x[6]
    assert fit[5, 5] == pytest.approx(0.0, abs=1e-4)  # the exact pixel
    assert fit[5, 6] == pytest.approx(10 * DB_PER_GRAY / 10, rel=1e-4)  # elsewhere 10 gray levels off
    assert x[0, 5, 5] == pytest.approx((100 - 10 / 16 - 90) * DB_PER_GRAY / 10, rel=1e-4)  # the cell mean blurs it


def test_refinement_moves_to_the_best_fitting_outdoor_pixels_near_the_answer():
    scene = toy_scene()  # BS 0 reads 100 everywhere
    maps = scene.radio_maps
    maps[0, 0, 60, 70] = 90  # exact fit, 5 m from the start below
    maps[0, 0, 63, 66] = 91  # the next best, 1 gray level off
    maps[0, 0, 200, 200] = 90  # an exact fit far away: outside the radius, ignored
    scene.buildings[0, 57, 68] = 1
    maps[0, 0, 57, 68] = 90  # an exact fit inside a building: the UE is outdoors, ignored
    start = np.array([[60.0, 65.0], [100.0, 100.0]])
    ids, slot = np.array([[0, -1], [0, -1]]), np.array([0, 0])
    pathloss = np.array([[gray_db(90), np.nan]] * 2, dtype=np.float32)
    one = refine_positions(scene, slot, ids, pathloss, start, radius_m=6.0, k=1)
    assert one[0].tolist() == [60.0, 70.0]
    two = refine_positions(scene, slot, ids, pathloss, start, radius_m=6.0, k=2)
    assert two[0].tolist() == [61.5, 68.0]  # the centroid of the two best
    # no outstanding pixel near the second start: the k first of the equally good pixels in the disc
    assert np.hypot(*(two[1] - start[1])) <= 6.0
    too_small = refine_positions(scene, slot, ids, pathloss, start, radius_m=4.0, k=1)
    assert too_small[0].tolist() == [63.0, 66.0]  # the exact fit is 5 m away, beyond 4 m
    assert refine_positions(scene, slot, ids, pathloss, start, radius_m=0.0, k=8) is start  # off
    scene.buildings[0] = 1  # no outdoor pixel anywhere: the answer stays
    assert refine_positions(scene, slot, ids, pathloss, start, radius_m=6.0, k=4).tolist() == start.tolist()


def test_paper_preset_trains_with_the_published_recipe():
    from radioloc.training.locunet import LocUNetTrainConfig

    config = LocUNetTrainConfig.for_preset("paper")
    assert (config.lr, config.schedule, config.step_epochs, config.epochs, config.batch_size, config.samples_per_epoch, config.loss) == (
        1e-5, "step", 30, 50, 15, 0, "mae",
    )  # fmt: skip
    assert LocUNetTrainConfig.for_preset("paper", epochs=3).epochs == 3


def test_unknown_model_spec_names_what_is_accepted():
    from radioloc.localizers.registry import resolve_localizer

    with pytest.raises(RadiolocError, match="locunet-robust") as info:
        resolve_localizer("locunet-robustt")
    assert "knn" in str(info.value) and "bayes" in str(info.value) and len(str(info.value).splitlines()) == 1
    resolved = resolve_localizer("locunet-robust:network")
    assert resolved.label == "locunet-robust:network" and not resolved.localizer.refine and not resolved.needs_fit
    with pytest.raises(RadiolocError, match="unknown option 'median'.*network"):
        resolve_localizer("locunet:median")
    with pytest.raises(RadiolocError, match="unknown option 'network'.*region="):
        resolve_localizer("knn:network")


def test_evaluation_labels_tell_training_runs_apart(tmp_path):
    from radioloc.evaluation.experiment import evaluate_models
    from radioloc.localizers.registry import resolve_localizer

    runs = []
    for name in ("run_a", "run_b"):
        (tmp_path / name).mkdir()
        runs.append(tmp_path / name / "best.pt")
        runs[-1].write_bytes((WEIGHTS_DIR / "locunet_cpu.pt").read_bytes())
    assert [resolve_localizer(str(run)).label for run in runs] == ["locunet:run_a/best.pt", "locunet:run_b/best.pt"]
    with pytest.raises(RadiolocError, match="two models would both be reported as 'locunet'"):
        evaluate_models(["locunet", "locunet"], tmp_path / "no-dataset")
