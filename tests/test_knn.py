import numpy as np
import pytest

from radioloc.baselines import knn
from radioloc.baselines.knn import AdaptiveKNNLocalizer, ConditionalKNNLocalizer, KNNLocalizer, make, nearest_pixels, prefix_centroids
from radioloc.datasets.fit_cost import nearest_pixels as nearest_flat
from radioloc.datasets.localization import LocalizationData, Queries, SceneBank
from radioloc.datasets.protocol import ue_region
from radioloc.errors import RadiolocError
from radioloc.localizers.registry import resolve_localizer
from radioloc.propagation.graylevel import DB_PER_GRAY, NOISE_FLOOR_DB


def ramp_scene(noise_seed=None, buildings=None):
    rows, cols = np.mgrid[0:256, 0:256]
    maps = np.stack([rows, cols, (rows + cols) // 2]).astype(np.uint8)
    if noise_seed is not None:
        maps = np.clip(maps.astype(int) + np.random.default_rng(noise_seed).integers(-3, 4, maps.shape), 0, 255).astype(np.uint8)
    buildings = np.zeros((1, 256, 256), np.uint8) if buildings is None else buildings
    return SceneBank(map_ids=[0], buildings=buildings, bs_positions=np.array([[[10, 10], [20, 200], [200, 30]]]), radio_maps=maps[None])


def blocks():
    """Buildings: a grid of 20 x 20 m blocks, some inside the UE box, some outside it."""
    buildings = np.zeros((1, 256, 256), np.uint8)
    for r in range(0, 256, 50):
        for c in range(0, 256, 50):
            buildings[0, r : r + 20, c : c + 20] = 1
    return buildings


def queries_at(points, scene, ids=(0, 1, 2)):
    points = np.asarray(points)
    n = len(points)
    bs_ids = np.tile(np.asarray(ids), (n, 1))
    gray = scene.radio_maps[0][bs_ids, points[:, None, 0], points[:, None, 1]].astype(np.float32)
    pathloss = (NOISE_FLOOR_DB + gray * DB_PER_GRAY).astype(np.float32)
    return Queries(np.zeros(n, np.int64), bs_ids, pathloss, points.astype(float))


def test_k1_finds_the_only_exact_pixel():
    scene = ramp_scene()
    points = [(5, 7), (128, 40), (250, 251)]  # two outside the UE box: the paper's whole-map search finds them
    data = LocalizationData(scene, queries_at(points, scene), {})
    estimate = KNNLocalizer(k=1, region="map").predict(data)
    np.testing.assert_array_equal(estimate, np.asarray(points, dtype=float))


@pytest.mark.parametrize("region", ["map", "outdoor", "ue-box"])
def test_k_nearest_centroid_equals_brute_force_over_the_region(region):
    # "map" is the paper's search (buildings included): the answers of the code before regions existed
    scene = ramp_scene(noise_seed=1, buildings=blocks())
    points = [(30, 60), (100, 100), (200, 17)]
    data = LocalizationData(scene, queries_at(points, scene), {})
    idx, cost = nearest_pixels(data, 16, region)
    inside = np.flatnonzero(ue_region(scene.buildings[0], region))
    assert np.isin(idx, inside).all()  # no pixel outside the region is ever chosen
    maps_db = NOISE_FLOOR_DB + scene.radio_maps[0].astype(np.float64) * DB_PER_GRAY
    for q in range(3):
        full = ((maps_db - data.queries.pathloss_db[q][:, None, None].astype(np.float64)) ** 2).sum(axis=0).ravel()
        full = np.where(np.isin(np.arange(full.size), inside), full, np.inf)
        order = np.lexsort((np.arange(full.size), full))[:16]  # by cost, ties by pixel index
        np.testing.assert_allclose(cost[q], full[order], rtol=1e-4, atol=1e-3)
        sorted_cost = full[order]
        full_sorted = np.sort(full)
        for m in range(1, 16):  # prefixes that end at a clear gap in cost (ties could be split either way)
            if full_sorted[m] - sorted_cost[m - 1] > 1e-2:
                expected = np.array([order // 256, order % 256], dtype=float).T[:m].mean(axis=0)
                np.testing.assert_allclose(prefix_centroids(idx)[q, m - 1], expected)


def test_absent_bs_is_ignored():
    scene = ramp_scene()
    data = LocalizationData(scene, queries_at([(60, 90)], scene), {})
    q = data.queries
    q.bs_ids[0, 2] = -1
    q.pathloss_db[0, 2] = np.nan
    np.testing.assert_array_equal(KNNLocalizer(k=1).predict(data), [[60.0, 90.0]])


def test_grid_search_picks_the_best_training_k():
    scene = ramp_scene(noise_seed=2)
    rng = np.random.default_rng(0)
    points = rng.integers(20, 236, size=(300, 2))
    data = LocalizationData(scene, queries_at(points, scene), {})
    knn = KNNLocalizer(grid=(1, 4, 64, 512)).fit(data)
    assert knn.k == min(knn.grid_mae, key=knn.grid_mae.get)
    for k, mae in knn.grid_mae.items():
        estimate = KNNLocalizer(k=k).predict(data)
        assert mae == pytest.approx(np.hypot(*(estimate - points).T).mean(), rel=1e-9)


def test_conditional_and_adaptive_fit_and_predict():
    scene = ramp_scene(noise_seed=3)
    points = np.random.default_rng(1).integers(20, 236, size=(200, 2))
    data = LocalizationData(scene, queries_at(points, scene), {})
    cond = ConditionalKNNLocalizer(grid=(1, 8, 64)).fit(data)
    assert set(cond.k_by_count) <= {0, 1, 2, 3} and cond.predict(data).shape == (200, 2)
    adaptive = AdaptiveKNNLocalizer(grid=(0.0, 1.0), max_k=64).fit(data)
    assert adaptive.delta_db in (0.0, 1.0)
    assert adaptive.predict(data).shape == (200, 2) and 1 <= adaptive.mean_k <= 64


def test_adaptive_with_zero_delta_and_unique_best_is_k1():
    scene = ramp_scene()
    points = [(77, 150)]
    data = LocalizationData(scene, queries_at(points, scene), {})
    np.testing.assert_array_equal(AdaptiveKNNLocalizer(delta_db=0.0).predict(data), [[77.0, 150.0]])


def test_unknown_baseline_and_unfitted():
    with pytest.raises(RadiolocError, match="unknown baseline"):
        make("svm")
    scene = ramp_scene()
    with pytest.raises(RadiolocError, match="fit"):
        KNNLocalizer().predict(LocalizationData(scene, queries_at([(1, 1)], scene), {}))


def test_best_pixel_of_a_support_equals_brute_force_over_it():
    scene = ramp_scene(noise_seed=2)
    rng = np.random.default_rng(0)
    tables = rng.random((4, 3, 256)).astype(np.float32)
    ids = np.array([[0, 1, 2], [2, 0, -1], [1, -1, -1], [0, 1, 2]])
    support = np.sort(rng.choice(256 * 256, 5000, replace=False))
    idx, cost = nearest_flat(scene.radio_maps, np.zeros(4, np.int64), ids, tables, 1, support)
    flat = scene.radio_maps[0].reshape(3, -1)
    for q in range(4):
        full = sum(tables[q, j][flat[b, support]] for j, b in enumerate(ids[q]) if b >= 0)
        assert idx[q, 0] == support[np.argmin(full)] and np.isclose(cost[q, 0], full.min())
    whole, _ = nearest_flat(scene.radio_maps, np.zeros(4, np.int64), ids, tables, 1)
    assert not np.isin(whole[:, 0], support).all()  # the support changed some answer: it is not ignored
    three, _ = nearest_flat(scene.radio_maps, np.zeros(4, np.int64), ids, tables, 3, support)
    assert three[:, 0].tolist() == idx[:, 0].tolist() and np.isin(three, support).all()
    with pytest.raises(ValueError, match="not both"):
        nearest_flat(scene.radio_maps, np.zeros(4, np.int64), ids, tables, 2, support, mask=np.ones((1, 256, 256), bool))


def test_a_region_smaller_than_max_k_is_taken_whole_then_padded():
    scene = ramp_scene(noise_seed=4)
    mask = np.zeros((1, 256, 256), bool)
    mask[0, 100, 100:105] = True  # five candidates
    tables = np.random.default_rng(0).random((2, 3, 256)).astype(np.float32)
    ids = np.array([[0, 1, 2], [2, -1, 0]])
    idx, cost = nearest_flat(scene.radio_maps, np.zeros(2, np.int64), ids, tables, 8, mask=mask)
    assert idx.shape == (2, 8) and (idx[:, 5:] == -1).all() and np.isinf(cost[:, 5:]).all()
    assert (np.sort(idx[:, :5], axis=1) == 100 * 256 + np.arange(100, 105)).all() and (np.diff(cost[:, :5], axis=1) >= 0).all()
    # a k beyond the region averages the whole region: the padding adds nothing
    np.testing.assert_allclose(prefix_centroids(idx)[:, 7], [[100.0, 102.0], [100.0, 102.0]])


def test_a_mask_of_every_pixel_is_the_whole_map_search_and_each_slot_has_its_own_region():
    scene = ramp_scene(noise_seed=5)
    two = SceneBank([0, 1], np.zeros((2, 256, 256), np.uint8), np.repeat(scene.bs_positions, 2, axis=0), np.repeat(scene.radio_maps, 2, axis=0))
    tables = np.random.default_rng(1).random((4, 3, 256)).astype(np.float32)
    ids, slots = np.tile([0, 1, 2], (4, 1)), np.array([0, 1, 0, 1])
    whole = nearest_flat(two.radio_maps, slots, ids, tables, 40)
    every = nearest_flat(two.radio_maps, slots, ids, tables, 40, mask=np.ones((2, 256 * 256), bool))
    np.testing.assert_array_equal(whole[0], every[0])
    np.testing.assert_array_equal(whole[1], every[1])
    mask = np.zeros((2, 256, 256), bool)
    mask[0, :128] = True  # slot 0: the top half; slot 1: the bottom half
    mask[1, 128:] = True
    idx, _ = nearest_flat(two.radio_maps, slots, ids, tables, 40, mask=mask)
    assert (idx[slots == 0] < 128 * 256).all() and (idx[slots == 1] >= 128 * 256).all()


def test_blocks_of_queries_give_the_answers_of_one_block(monkeypatch):
    scene = ramp_scene(noise_seed=6)
    points = np.random.default_rng(2).integers(50, 200, size=(40, 2))
    data = LocalizationData(scene, queries_at(points, scene), {})
    one = nearest_pixels(data, 64), KNNLocalizer(k=20).raw_estimates(data)
    monkeypatch.setattr(knn, "BLOCK_ENTRIES", 64 * 3)  # three queries a block
    many = nearest_pixels(data, 64), KNNLocalizer(k=20).raw_estimates(data)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def square_scene(graded=False):
    """One BS whose map is gray 100 on the 64 x 64 square rows, cols 96..159, 0 elsewhere (``graded``: the square's
    bottom half in four bands of 8 rows, 1, 2, 3, 4 gray levels lower); queries report gray 100 and stand at the
    square's centre."""
    maps = np.zeros((1, 1, 256, 256), np.uint8)
    maps[0, 0, 96:160, 96:160] = 100
    if graded:
        maps[0, 0, 128:160, 96:160] -= np.repeat(np.arange(1, 5, dtype=np.uint8), 8)[:, None]
    scene = SceneBank([0], np.zeros((1, 256, 256), np.uint8), np.array([[[128, 20]]]), maps)
    n = 30
    pathloss = np.full((n, 1), NOISE_FLOOR_DB + 100 * DB_PER_GRAY, np.float32)
    return LocalizationData(scene, Queries(np.zeros(n, np.int64), np.zeros((n, 1), np.int64), pathloss, np.full((n, 2), 127.5)), {})


def test_the_k_grid_extends_past_its_end_until_the_optimum_is_interior():
    # the square's 4096 pixels cost 0, ties by raster order: fewer of them lean to its top rows, more add far
    # pixels, so k = 4096 alone is exact, beyond the grid given; the extension reaches it and one step past
    data = square_scene()
    for localizer in (KNNLocalizer(grid=(1, 16, 256, 1024)), ConditionalKNNLocalizer(grid=(1, 16, 256, 1024))):
        info = localizer.fit(data).describe()
        assert info["grid"] == [1, 16, 256, 1024, 1536, 2048, 3072, 4096, 6144, 8192]
        assert info["k_optimum"] == "interior" and info["k_at_grid_edge"] is False
        assert info["region"] == "ue-box" and info["region_pixels"] == 164 * 164
    assert localizer.k_by_count == {1: 4096} and localizer.optimum_by_count == {1: "interior"}
    knn_fit = KNNLocalizer(grid=(1, 16, 256, 1024)).fit(data)
    assert knn_fit.k == 4096 and knn_fit.grid_mae[4096] == 0.0
    np.testing.assert_array_equal(knn_fit.predict(data), data.queries.position)


def test_k_one_is_a_minimum_and_the_whole_region_an_end_not_grid_edges():
    scene = ramp_scene()
    points = np.random.default_rng(3).integers(60, 190, size=(30, 2))
    info = KNNLocalizer(grid=(1, 2, 4)).fit(LocalizationData(scene, queries_at(points, scene), {})).describe()
    assert info["k"] == 1 and info["k_optimum"] == "minimum" and info["k_at_grid_edge"] is False and info["grid"] == [1, 2, 4]
    # every pixel of a flat map fits alike: the best estimate of a UE at the box's centre is the whole box
    flat = square_scene()
    flat.scenes.radio_maps[:] = 100
    fitted = KNNLocalizer(grid=(1, 4096)).fit(flat)
    info = fitted.describe()
    assert fitted.k == 164 * 164 == info["grid"][-1] and info["k_optimum"] == "region-size" and info["k_at_grid_edge"] is False
    # a grid that starts above k = 1 and is best at its start is at an edge (it grows upward only): reported
    info = KNNLocalizer(grid=(4096, 8192)).fit(square_scene()).describe()
    assert info["k"] == 4096 and info["k_optimum"] == "grid-edge" and info["k_at_grid_edge"] is True and info["grid"] == [4096, 8192]


def test_the_delta_grid_and_the_cap_grow_until_the_optimum_is_interior():
    # the square's top half fits exactly, its bottom bands 0.31, 0.62, 0.93, 1.24 dB off: each larger delta averages
    # more bands (16, 12, 4 m off at 0, 0.5, 1 dB), 1.5 dB the whole square (exact), beyond the grid given; the
    # top half's 2048 tied pixels need a cap above 512 before the deltas differ at all
    data = square_scene(graded=True)
    adaptive = AdaptiveKNNLocalizer(grid=(0.0, 0.5, 1.0), max_k=512).fit(data)
    info = adaptive.describe()
    assert adaptive.delta_db == 1.5 and info["grid"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert info["delta_optimum"] == "interior" and info["delta_at_grid_edge"] is False
    assert adaptive.max_k == 512 * 4 * 4 and adaptive.grid_mae == pytest.approx({0.0: 16.0, 0.5: 12.0, 1.0: 4.0, 1.5: 0.0, 2.0: 0.0})
    np.testing.assert_array_equal(adaptive.predict(data), data.queries.position)
    assert adaptive.mean_k == 4096


def test_the_region_option_and_its_one_line_error():
    assert make("knn").region == "ue-box" and make("adaptive-knn", ("region=map",)).region == "map"
    for name in ("knn", "knn-cond", "adaptive-knn"):
        assert resolve_localizer(f"{name}:region=outdoor").localizer.region == "outdoor"
    with pytest.raises(RadiolocError, match=r"^--model knn:region=box: the region must be one of ue-box, outdoor, map, got 'box'$"):
        resolve_localizer("knn:region=box")
    with pytest.raises(RadiolocError, match="unknown option"):
        make("knn", ("k=3",))
    with pytest.raises(RadiolocError, match="kNN region must be one of"):
        KNNLocalizer(region="city")
