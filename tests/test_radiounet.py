"""RadioUNet: architecture, the free-space head, augmentation, censored loss, checkpoints."""

import numpy as np
import pytest
import torch

from radioloc.datasets.radiomaps import RadioMapSet
from radioloc.errors import RadiolocError
from radioloc.models.checkpoint import load_checkpoint, save_checkpoint
from radioloc.models.radiounet import PRESETS, RadioUNet, RadioUNetConfig, count_parameters, grow_radiounet, load_radiounet, preset_config
from radioloc.propagation import db_to_gray, free_space_loss_db
from radioloc.training.radiounet import CoarseDPMCache, augmented_geometry, censored_mse, dihedral


@pytest.mark.parametrize("preset", ["cpu", "cpu-open", "cpu-small"])
def test_cpu_presets_return_256_maps_in_range(preset):
    model = RadioUNet(preset_config(preset)).eval()
    buildings = torch.zeros(2, 1, 256, 256)
    buildings[:, :, 100:140, 30:90] = 1
    first, second = model(buildings, torch.tensor([[10.0, 20.0], [200.0, 250.0]]))
    for out in (first, second):
        assert out.shape == (2, 1, 256, 256)
        assert out.min() >= 0 and out.max() <= 1
        assert torch.all(out[:, :, 100:140, 30:90] == 0)  # buildings carry no value


def test_coarse_dpm_cells_must_tile_the_internal_cells():
    config = preset_config("cpu")
    assert config.coarse_dpm_cell == 2 and config.fold == 4
    model = RadioUNet(config)
    # (buildings, one-hot Tx, Tx distance) x 4 x 4 pixels, 2 obstruction channels, 2 x 2 coarse-DPM cells
    assert model.first.encoder[0].in_channels == 3 * 16 + 2 + 4 + 16  # + the grid shifted by 1 px, per pixel
    bad = RadioUNetConfig(**{**config.__dict__, "coarse_dpm_cell": 3})
    with pytest.raises(RadiolocError, match="coarse_dpm_cell 3 must divide the fold 4"):
        RadioUNet(bad)


def test_paper_preset_matches_the_published_size_and_trains_one_step():
    torch.manual_seed(0)
    model = RadioUNet(preset_config("paper"))
    assert 12e6 < count_parameters(model) < 14e6  # about 13.3 M published
    assert PRESETS["paper"].first.widths == (6, 40, 50, 60, 100, 100, 150, 300, 500)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    buildings = torch.zeros(1, 1, 256, 256)
    truth = torch.rand(1, 1, 256, 256)
    before = model.first.last.weight.detach().clone()
    # clamp=False as in training: a clamped output would give no gradient where the untrained net is negative
    _, second = model(buildings, torch.tensor([[128.0, 128.0]]), clamp=False)
    first, _ = model(buildings, torch.tensor([[128.0, 128.0]]), second=False, clamp=False)
    loss = censored_mse(first, truth) + censored_mse(second, truth)
    loss.backward()
    optimizer.step()
    assert not torch.equal(before, model.first.last.weight)


def test_excess_head_with_zero_excess_is_free_space():
    model = RadioUNet(preset_config("cpu-small")).eval()
    with torch.no_grad():
        for unet in (model.first, model.second):
            unet.last.weight.zero_()
            unet.last.bias.fill_(-40.0)  # softplus(-40) = 0: no loss above free space
    tx = (100, 60)
    with torch.no_grad():
        _, gray = model(torch.zeros(1, 1, 256, 256), torch.tensor([tx], dtype=torch.float32))
    rows, cols = np.mgrid[0:256, 0:256]
    distance = np.maximum(np.hypot(rows - tx[0], cols - tx[1]), 1.0)
    expected = db_to_gray(-free_space_loss_db(distance))
    got = np.round(gray[0, 0].numpy() * 255)
    assert np.abs(got - expected).max() <= 1


def test_dihedral_moves_points_with_images():
    image = torch.zeros(1, 1, 256, 256)
    tx = torch.tensor([[30.0, 200.0]])
    image[0, 0, 30, 200] = 1
    for k in range(4):
        for transpose in (False, True):
            moved, moved_tx = dihedral(image, tx, k, transpose)
            r, c = (int(v) for v in moved_tx[0])
            assert moved[0, 0, r, c] == 1 and moved.sum() == 1


@pytest.mark.parametrize("preset, grids", [("cpu", 4 + 16), ("cpu-open", 2 * (4 + 16))])
def test_cached_coarse_dpm_rotated_with_the_map_equals_the_rotated_maps_own(preset, grids):
    """Training keeps the coarse-DPM cells of the stored orientation and rotates them with the augmentation;
    the network must see exactly what it would see computed on the rotated map."""
    rng = np.random.default_rng(3)
    buildings = np.zeros((2, 256, 256), dtype=np.uint8)
    for _ in range(12):
        r, c = rng.integers(0, 220, size=2)
        buildings[0, r : r + rng.integers(8, 36), c : c + rng.integers(8, 36)] = 1
    buildings[1, 60:90, 100:200] = 1
    tx = np.array([[[17, 201], [128, 40]], [[30, 150], [200, 201]]])
    for m in range(2):
        buildings[m, tx[m, :, 0], tx[m, :, 1]] = 0
    data = RadioMapSet(maps=[0, 1], buildings=buildings, cars=np.zeros_like(buildings), tx=tx, truth=np.zeros((2, 2, 256, 256), dtype=np.uint8))
    model = RadioUNet(preset_config(preset))
    cache = CoarseDPMCache(model, data)
    index = np.array([0, 3, 1, 3])
    cells = cache.cells(index)
    assert cache.filled.tolist() == [True, True, False, True]
    maps = torch.from_numpy(buildings[[0, 1, 0, 1]]).float().unsqueeze(1)
    points = torch.from_numpy(tx.reshape(-1, 2)[index]).float()
    obstruction = 2  # the first channels: line of sight and metres through buildings (rounded half-metre steps)
    for k in range(4):
        for transpose in (False, True):
            rotated, rotated_tx = dihedral(maps, points, k, transpose)
            from_cache = augmented_geometry(model, rotated, rotated_tx, cells, k, transpose)
            direct = augmented_geometry(model, rotated, rotated_tx, None)
            assert from_cache.shape == direct.shape == (4, 2 + grids, 64, 64)
            assert np.abs(from_cache[:, obstruction:] - direct[:, obstruction:]).max() < 2e-3  # float16 storage
            assert np.array_equal(from_cache[:, :obstruction], direct[:, :obstruction])


def test_cpu_open_grows_from_cpu_computing_the_same_maps():
    """cpu-open adds the open-cell coarse grids: grown from a cpu model, it reads them through zero weights and
    starts from exactly the cpu model's answers; other presets do not grow into it."""
    torch.manual_seed(0)
    source = RadioUNet(preset_config("cpu")).eval()
    with torch.no_grad():  # a second U that is not the identity, so that its widened inputs matter too
        source.second.last.weight.normal_(0, 0.01)
    grown = grow_radiounet(source, preset_config("cpu-open")).eval()
    assert grown.config.coarse_dpm_grids() == [(0.75, 0), (0.75, 1), (1.0, 0), (1.0, 1)]
    assert grown.first.encoder[0].in_channels == source.first.encoder[0].in_channels + 4 + 16
    buildings = torch.zeros(2, 1, 256, 256)
    buildings[:, :, 100:140, :] = 1
    for k in range(40):  # a diagonal passage the two kinds of grid see differently
        buildings[:, :, 100 + k, 60 + k : 62 + k] = 0
    tx = torch.tensor([[80.0, 40.0], [200.0, 150.0]])
    with torch.no_grad():
        for a, b in zip(source(buildings, tx), grown(buildings, tx)):
            assert torch.equal(a, b)
    with pytest.raises(RadiolocError, match="does not extend preset 'cpu-small' with coarse-DPM grids only"):
        grow_radiounet(RadioUNet(preset_config("cpu-small")), preset_config("cpu-open"))


def test_censored_mse():
    truth = torch.tensor([0.5, 0.0, 0.0])
    prediction = torch.tensor([0.7, -0.3, 0.2])
    # above the floor: (0.2)^2; at the floor: predicted below it costs nothing, above it (0.2)^2
    assert censored_mse(prediction, truth).item() == pytest.approx((0.04 + 0.0 + 0.04) / 3)


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = RadioUNet(preset_config("cpu-small"))
    path = tmp_path / "m.pt"
    save_checkpoint(path, "radiounet", model.config.to_dict(), model.state_dict(), val_rmse_db=3.0)
    loaded = load_radiounet(path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    with pytest.raises(RadiolocError, match="preset 'cpu-small', expected 'cpu'"):
        load_radiounet(path, preset="cpu")
    with pytest.raises(RadiolocError, match="holds a radiounet model, expected a locunet model"):
        load_checkpoint(path, "locunet")
    other = RadioUNet(preset_config("cpu"))
    save_checkpoint(tmp_path / "mixed.pt", "radiounet", model.config.to_dict(), other.state_dict())
    with pytest.raises(RadiolocError, match="weights do not fit the 'cpu-small' preset"):
        load_radiounet(tmp_path / "mixed.pt")
    (tmp_path / "bad.pt").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RadiolocError, match="bad.pt: not a readable radioloc checkpoint"):
        load_radiounet(tmp_path / "bad.pt")
    with pytest.raises(RadiolocError, match="checkpoint file not found"):
        load_radiounet(tmp_path / "none.pt")
    with pytest.raises(RadiolocError, match="unknown RadioUNet preset 'huge'"):
        preset_config("huge")


def test_shipped_model_loads():
    model = load_radiounet()
    assert model.config.preset == "cpu-open"
