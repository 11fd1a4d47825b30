import numpy as np
import pytest

from radioloc.baselines.knn import AdaptiveKNNLocalizer, ConditionalKNNLocalizer, KNNLocalizer, make, nearest_pixels, prefix_centroids
from radioloc.datasets.localization import LocalizationData, Queries, SceneBank
from radioloc.errors import RadiolocError
from radioloc.propagation.graylevel import DB_PER_GRAY, NOISE_FLOOR_DB


def ramp_scene(noise_seed=None):
    rows, cols = np.mgrid[0:256, 0:256]
    maps = np.stack([rows, cols, (rows + cols) // 2]).astype(np.uint8)
    if noise_seed is not None:
        maps = np.clip(maps.astype(int) + np.random.default_rng(noise_seed).integers(-3, 4, maps.shape), 0, 255).astype(np.uint8)
    return SceneBank(map_ids=[0], buildings=np.zeros((1, 256, 256), np.uint8), bs_positions=np.array([[[10, 10], [20, 200], [200, 30]]]), radio_maps=maps[None])


def queries_at(points, scene, ids=(0, 1, 2)):
    points = np.asarray(points)
    n = len(points)
    bs_ids = np.tile(np.asarray(ids), (n, 1))
    gray = scene.radio_maps[0][bs_ids, points[:, None, 0], points[:, None, 1]].astype(np.float32)
    pathloss = (NOISE_FLOOR_DB + gray * DB_PER_GRAY).astype(np.float32)
    return Queries(np.zeros(n, np.int64), bs_ids, pathloss, points.astype(float))


def test_k1_finds_the_only_exact_pixel():
    scene = ramp_scene()
    points = [(5, 7), (128, 40), (250, 251)]
    data = LocalizationData(scene, queries_at(points, scene), {})
    estimate = KNNLocalizer(k=1).predict(data)
    np.testing.assert_array_equal(estimate, np.asarray(points, dtype=float))


def test_k_nearest_centroid_equals_brute_force():
    scene = ramp_scene(noise_seed=1)
    points = [(30, 60), (100, 100), (200, 17)]
    data = LocalizationData(scene, queries_at(points, scene), {})
    idx, cost = nearest_pixels(data, 16)
    maps_db = NOISE_FLOOR_DB + scene.radio_maps[0].astype(np.float64) * DB_PER_GRAY
    for q in range(3):
        full = ((maps_db - data.queries.pathloss_db[q][:, None, None].astype(np.float64)) ** 2).sum(axis=0).ravel()
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
    data = LocalizationData(scene, queries_at([(40, 90)], scene), {})
    q = data.queries
    q.bs_ids[0, 2] = -1
    q.pathloss_db[0, 2] = np.nan
    np.testing.assert_array_equal(KNNLocalizer(k=1).predict(data), [[40.0, 90.0]])


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
    from radioloc.datasets.fit_cost import nearest_pixels as nearest_flat

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
    with pytest.raises(ValueError, match="max_k 1"):
        nearest_flat(scene.radio_maps, np.zeros(4, np.int64), ids, tables, 2, support)
