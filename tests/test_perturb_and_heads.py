"""The perturbations of the robustness studies (Tables VI, VII) and the keypoint baselines' heads (Fig. 4)."""

import numpy as np
import pytest
import torch

from radioloc.datasets import layout
from radioloc.datasets.localization import load_localization
from radioloc.datasets.perturb import displaced_pixels, distorted_reports, noisy_positions
from radioloc.errors import RadiolocError
from radioloc.models.locunet import LocUNet, preset_config
from radioloc.models.runtime import Runtime
from radioloc.propagation.graylevel import gray_to_db
from radioloc.training.locunet import LocUNetTrainConfig, gaussian_targets, training_loss


def test_noisy_positions_move_labels_by_the_stated_noise(small_dataset):
    root, _ = small_dataset
    data = load_localization(root, "train", estimate="true")
    noisy = noisy_positions(data, 5.0, seed=1)
    shift = noisy.queries.position - data.queries.position
    inside = (noisy.queries.position > 0).all(axis=1) & (noisy.queries.position < 255).all(axis=1)
    assert 4.0 < shift[inside].std() < 6.0
    np.testing.assert_array_equal(noisy.queries.pathloss_db, data.queries.pathloss_db)  # only the labels change
    np.testing.assert_array_equal(noisy_positions(data, 0.0).queries.position, data.queries.position)
    with pytest.raises(RadiolocError, match="sigma"):
        noisy_positions(data, float("nan"))


def test_displaced_pixels_never_land_on_buildings_or_off_the_map():
    buildings = np.zeros((256, 256), np.uint8)
    buildings[100:160, 100:160] = 1
    rows, cols = np.full(4000, 98.0), np.full(4000, 130.0)
    r, c = displaced_pixels(buildings, rows, cols, 15.0, np.random.default_rng(0))
    assert ((r >= 0) & (r < 256) & (c >= 0) & (c < 256)).all()
    assert (buildings[r, c] == 0).all()
    assert 10 < np.hypot(r - rows, c - cols).mean() < 25  # 15 m per coordinate: about 19 m, minus redraws


def test_distorted_reports_read_the_truth_at_displaced_outdoor_pixels(small_dataset):
    root, _ = small_dataset
    data = load_localization(root, "test", estimate="true")
    same = distorted_reports(data, "DPM", 0.0)
    np.testing.assert_array_equal(same.queries.pathloss_db, data.queries.pathloss_db)
    moved = distorted_reports(data, "DPM", 10.0, seed=4)
    np.testing.assert_array_equal(moved.queries.position, data.queries.position)
    assert (moved.queries.pathloss_db != data.queries.pathloss_db).mean() > 0.3
    # every distorted report is a value of that BS's truth map at an outdoor pixel within 6 sigma of the UE
    q, scenes = moved.queries, moved.scenes
    for i in range(0, len(q), 17):
        for j, bs in enumerate(q.bs_ids[i]):
            truth = gray_to_db(layout.read_gray_png(layout.radio_map_path(root, "DPM", "true", scenes.map_ids[q.map_slot[i]], int(bs))))
            rows, cols = np.mgrid[0:256, 0:256]
            near = (np.hypot(rows - q.position[i, 0], cols - q.position[i, 1]) < 60) & (scenes.buildings[q.map_slot[i]] == 0)
            assert np.isclose(truth[near], q.pathloss_db[i, j], atol=1e-3).any()
    with pytest.raises(RadiolocError, match="IRT2"):
        distorted_reports(data, "IRT2", 5.0)


def test_gaussian_targets_peak_at_the_position():
    rows = torch.arange(64, dtype=torch.float32) * 4 + 1.5
    target = gaussian_targets(torch.tensor([[41.5, 101.5]]), rows, rows, 4.0)
    assert target.shape == (1, 64, 64)
    assert torch.isclose(target[0, 10, 25], torch.tensor(1.0)) and target.max() == target[0, 10, 25]
    assert torch.isclose(target[0, 11, 25], torch.tensor(np.exp(-16 / 32), dtype=torch.float32))


@pytest.mark.parametrize("head", ["heatmap", "direct", "classify"])
def test_keypoint_heads_answer_in_metres_and_train(head):
    torch.manual_seed(0)
    config = LocUNetTrainConfig(head=head, heatmap_sigma_m=6.0)
    model = LocUNet(config.model_config())
    inputs = torch.randn(3, model.config.in_channels, 64, 64)
    position = torch.tensor([[30.0, 40.0], [128.0, 128.0], [200.0, 90.0]])
    answer = model(inputs)
    assert answer.shape == (3, 2) and torch.isfinite(answer).all()
    loss = training_loss(model, inputs, [], position, config, Runtime.pick("cpu"))
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    used = [(n, p) for n, p in model.named_parameters() if head != "direct" or n.startswith(("encoder.", "direct."))]  # direct skips the decoder
    assert all(p.grad is not None for _, p in used)


def test_argmax_position_is_the_centre_of_the_largest_cell():
    model = LocUNet(preset_config("cpu"))
    heat = torch.zeros(2, 64, 64)
    heat[0, 3, 60], heat[1, 63, 0] = 5.0, 1.0
    np.testing.assert_allclose(model.argmax_position(heat).numpy(), [[3 * 4 + 1.5, 60 * 4 + 1.5], [63 * 4 + 1.5, 1.5]])


def test_toa_channels_start_at_zero_and_read_the_range_residual(small_dataset):
    from radioloc.datasets.ranging import attach_ranges
    from radioloc.models.locunet import InputEncoder, add_toa_channels, load_locunet

    root, _ = small_dataset
    data = attach_ranges(load_localization(root, "test", estimate="true"), 0.0)
    rss = load_locunet("locunet").eval()
    fused = add_toa_channels(rss).eval()
    q = data.queries.subset(np.arange(6))
    plain = InputEncoder(rss.config, data.scenes).encode(q.map_slot, q.bs_ids, q.pathloss_db)
    inputs = InputEncoder(fused.config, data.scenes).encode(q.map_slot, q.bs_ids, q.pathloss_db, q.ranges_m)
    assert inputs.shape[1] == plain.shape[1] + 5
    torch.testing.assert_close(inputs[:, : plain.shape[1]], plain)
    with torch.no_grad():
        torch.testing.assert_close(fused(inputs), rss(plain))  # zero-initialized: the RSS model's answers
    # noise-free ranges: the residual is smallest in the UE's own cell
    toa = inputs[:, plain.shape[1] :].abs().sum(dim=1)
    cells = (q.position // 4).astype(int)
    for i in range(len(cells)):
        assert toa[i, cells[i, 0], cells[i, 1]] <= toa[i].min() + 0.3
    with pytest.raises(RadiolocError, match="ranges"):
        InputEncoder(fused.config, data.scenes).encode(q.map_slot, q.bs_ids, q.pathloss_db)
