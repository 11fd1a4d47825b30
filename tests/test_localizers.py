"""The localizers package: the shared cost kernel, validation in one place, the radius calibration, the Bayesian
grid posterior and its calibration file, the registry."""

import json

import numpy as np
import pytest

from radioloc.baselines.knn import KNNLocalizer
from radioloc.datasets.fit_cost import pixel_cost, relative_cost_maps, report_levels, squared_residual_tables
from radioloc.datasets.localization import LocalizationData, Queries, SceneBank
from radioloc.datasets.protocol import ue_region
from radioloc.errors import RadiolocError
from radioloc.localizers.bayes import BayesLocalizer, prior_pixels
from radioloc.localizers.registry import names, resolve_localizer
from radioloc.localizers.uncertainty import FEATURES, LEVELS, RadiusCalibration, mass_radii, query_features
from radioloc.models.likelihood import LikelihoodCalibration, LikelihoodConfig, log_likelihood_table, pair_counts
from radioloc.propagation.graylevel import DB_PER_GRAY, NOISE_FLOOR_DB


def gray_db(gray):
    return NOISE_FLOOR_DB + gray * DB_PER_GRAY


def ramp_scene(buildings=None):
    rows, cols = np.mgrid[0:256, 0:256]
    maps = np.stack([rows, cols, (rows + cols) // 2]).astype(np.uint8)
    b = np.zeros((1, 256, 256), np.uint8) if buildings is None else buildings
    return SceneBank(map_ids=[0], buildings=b, bs_positions=np.array([[[10, 10], [20, 200], [200, 30]]]), radio_maps=maps[None])


def queries_at(points, scene, ids=(0, 1, 2)):
    points = np.asarray(points)
    bs_ids = np.tile(np.asarray(ids), (len(points), 1))
    gray = scene.radio_maps[0][bs_ids, points[:, None, 0], points[:, None, 1]].astype(np.float32)
    return Queries(np.zeros(len(points), np.int64), bs_ids, gray_db(gray).astype(np.float32), points.astype(float))


def test_the_cost_kernel_sums_each_bs_table_at_the_pixel_value():
    scene = ramp_scene()
    levels = report_levels(np.array([[gray_db(10), gray_db(20.5), np.nan]], np.float32))
    np.testing.assert_allclose(levels[0, :2], [10, 20.5], atol=1e-4)
    tables = squared_residual_tables(levels)
    assert tables.shape == (1, 3, 256) and (tables[0, 2] == 0).all()  # an absent BS costs nothing
    maps = scene.radio_maps.reshape(1, 3, -1)
    x = 30 * 256 + 40  # row 30, col 40: BS 0 reads 30, BS 1 reads 40
    cost = pixel_cost(maps, 0, np.array([0, 1, -1]), tables[0], x)
    assert cost == pytest.approx((30 - 10) ** 2 + (40 - 20.5) ** 2, rel=1e-5)
    mask = ue_region(scene.buildings, "map")
    dense = relative_cost_maps(scene.radio_maps, np.array([0]), np.array([[0, 1, -1]]), tables, mask)[0]
    best = (10 - 10) ** 2 + (20 - 20.5) ** 2  # the lowest cost: row 10, col 20 or 21
    assert dense[30, 40] == pytest.approx(cost - best, rel=1e-5) and dense.min() == 0.0


def test_validation_in_one_place_rejects_a_bs_the_scene_lacks():
    scene = ramp_scene()
    data = LocalizationData(scene, queries_at([(40, 90)], scene), {})
    data.queries.bs_ids[0, 2] = 7  # the scene has BSs 0..2: numba would read out of bounds
    with pytest.raises(RadiolocError, match="unknown BS id 7"):
        KNNLocalizer(k=4).predict(data)
    data.queries.bs_ids[0, 2] = 2
    data.queries.map_slot[0] = 3
    with pytest.raises(RadiolocError, match="map slot 3 has no radio maps"):
        KNNLocalizer(k=4).predict(data)
    empty = LocalizationData(scene, data.queries.subset(np.array([], dtype=np.int64)), {})
    with pytest.raises(RadiolocError, match="training split has none"):
        BayesLocalizer().fit(empty)


def test_radius_calibration_is_the_conformal_quantile():
    rng = np.random.default_rng(0)
    raw = rng.uniform(1, 10, size=(4000, 2))
    errors = raw[:, 0] * rng.uniform(0, 2, size=4000)  # error / raw spread uniform on [0, 2]
    calibration = RadiusCalibration.fit(raw, errors, np.full(4000, 5))
    scale = dict(zip(LEVELS, calibration.scale["5"]))
    assert scale[0.68] == pytest.approx(2 * 0.68, abs=0.05) and scale[0.5] == pytest.approx(1.0, abs=0.05)
    radii = calibration.apply(raw, np.full(4000, 5))
    assert np.mean(errors <= radii[:, LEVELS.index(0.68)]) == pytest.approx(0.68, abs=0.002)
    assert RadiusCalibration.from_dict(json.loads(calibration.to_json())).scale == calibration.scale
    with pytest.raises(RadiolocError, match="malformed radius calibration"):
        RadiusCalibration.from_dict({"version": 1, "levels": list(LEVELS), "scale": {"all": [1.0]}})


def test_radius_calibration_conditions_on_query_features():
    """log(error / raw) = 1.5 x + log U(0, 2): the fitted slope is 1.5 and the radii hold 68 % of the queries at
    every x, where one scale for all holds far more at small x than at large x."""
    rng = np.random.default_rng(1)
    n = 20000
    raw = np.repeat(rng.uniform(5, 50, size=(n, 1)), 2, axis=1)
    features = rng.uniform(0, 1, (n, len(FEATURES)))  # only the first carries information
    errors = raw[:, 0] * np.exp(1.5 * features[:, 0]) * rng.uniform(0, 2, n)
    fitted = RadiusCalibration.fit(raw, errors, np.full(n, 5), features)
    w68 = fitted.weights["5"][0]  # 1, log raw, the features
    # (errors below MIN_RAW_M count as MIN_RAW_M: a slight pull on the raw spread)
    assert w68[1] == pytest.approx(0.0, abs=0.06) and w68[2] == pytest.approx(1.5, abs=0.05) and np.allclose(w68[3:], 0.0, atol=0.05)
    plain = RadiusCalibration.fit(raw, errors, np.full(n, 5))
    low, high = features[:, 0] < 0.2, features[:, 0] > 0.8
    for calibration, margin in ((fitted, 0.03), (plain, None)):
        radii = calibration.apply(raw, np.full(n, 5), features if calibration.uses_features else None)[:, LEVELS.index(0.68)]
        cover_low, cover_high = np.mean(errors[low] <= radii[low]), np.mean(errors[high] <= radii[high])
        if margin:
            assert cover_low == pytest.approx(0.68, abs=margin) and cover_high == pytest.approx(0.68, abs=margin)
        else:
            assert cover_low > 0.85 and cover_high < 0.5
    with pytest.raises(RadiolocError, match="conditions on query features"):
        fitted.apply(raw, np.full(n, 5))
    again = RadiusCalibration.from_dict(json.loads(fitted.to_json()))
    np.testing.assert_allclose(again.apply(raw[:50], np.full(50, 5), features[:50]), fitted.apply(raw[:50], np.full(50, 5), features[:50]))
    broken = {**fitted.to_dict(), "weights": {"all": [[1.0, 2.0]]}}
    with pytest.raises(RadiolocError, match="malformed radius calibration.*weights"):
        RadiusCalibration.from_dict(broken)
    v1 = {"version": 1, "levels": list(LEVELS), "scale": {"all": [1.0] * len(LEVELS)}}
    assert not RadiusCalibration.from_dict(v1).uses_features  # calibrations written before features still apply


def test_radius_calibration_weighs_maps_equally():
    """Map A: 100 queries at error / raw 1; map B: 1,000 at 3. Each map weighs half: the 50 % scale is A's 1 and
    the 68 % one B's 3; counted per query, B's 3 at both."""
    raw = np.ones((1100, 2))
    errors = np.r_[np.ones(100), np.full(1000, 3.0)]
    maps = np.r_[np.zeros(100), np.ones(1000)]
    by_map = dict(zip(LEVELS, RadiusCalibration.fit(raw, errors, np.full(1100, 5), maps=maps).scale["5"]))
    by_query = dict(zip(LEVELS, RadiusCalibration.fit(raw, errors, np.full(1100, 5)).scale["5"]))
    assert (by_map[0.5], by_map[0.68]) == (pytest.approx(1.0), pytest.approx(3.0))
    assert (by_query[0.5], by_query[0.68]) == (pytest.approx(3.0), pytest.approx(3.0))
    assert RadiusCalibration.fit(raw, errors, np.full(1100, 5), maps=maps).maps == 2


def test_rare_numbers_of_bss_are_pooled_with_their_neighbours_not_with_all_queries():
    """A survey: 2,000 queries with 5 BSs at error / raw 1, 120 with 1 BS and 120 with 2 at 50 (each under
    MIN_GROUP). Under "all" (the 5-BS queries) the 1-2 BS radii would hold almost none of them; pooled, they hold
    68 % / 95 % of them."""
    n_bs = np.r_[np.full(2000, 5), np.full(120, 1), np.full(120, 2)]
    rng = np.random.default_rng(3)
    errors = np.where(n_bs == 5, 1.0, 50.0) * rng.uniform(0.5, 1.5, len(n_bs))
    calibration = RadiusCalibration.fit(np.ones((len(n_bs), 2)), errors, n_bs)
    assert calibration.scale["1"] == calibration.scale["2"] and calibration.count["1"] == 240 and "3" not in calibration.scale
    radii = calibration.apply(np.ones((len(n_bs), 2)), n_bs)
    few = n_bs < 5
    covered = errors[:, None] <= radii[:, [LEVELS.index(0.68), LEVELS.index(0.95)]]
    assert covered[few].mean(axis=0) == pytest.approx([0.68, 0.95], abs=0.02)
    assert covered[~few].mean(axis=0) == pytest.approx([0.68, 0.95], abs=0.02)


@pytest.mark.parametrize(
    "sizes,groups",
    [
        ({5: 1600, 4: 76, 3: 123, 2: 110, 1: 85}, [["1", "2", "3", "4"], ["5"]]),  # a deployment's survey
        ({1: 300, 2: 300, 3: 300, 4: 300, 5: 300}, [["1"], ["2"], ["3"], ["4"], ["5"]]),  # the calibration pool
        ({4: 250, 5: 100}, [["4", "5"]]),  # too few at the top: joins the group below
        ({1: 30, 2: 250, 3: 20, 5: 500}, [["1", "2", "3"], ["5"]]),  # a small bottom joins the group above
        ({5: 50}, []),  # too few for any group: the fit over all queries serves
    ],
)
def test_count_groups(sizes, groups):
    from radioloc.localizers.uncertainty import _count_groups

    n_bs = np.concatenate([np.full(count, k) for k, count in sizes.items()])
    assert [names for names, _ in _count_groups(n_bs)] == groups
    assert all(mask.sum() == sum(sizes[int(k)] for k in names) for names, mask in _count_groups(n_bs))


def test_query_features_are_the_detectable_share_the_fit_and_the_buildings_at_the_answer():
    buildings = np.zeros((1, 256, 256), np.uint8)
    buildings[0, :, :95] = 1  # columns 0..94 built: the 65 m square around column 90 holds 95 - 58 = 37 of them
    scene = ramp_scene(buildings)
    queries = queries_at([(40, 90), (40, 90)], scene)
    queries.pathloss_db[1, 0] = NOISE_FLOOR_DB  # BS 0 not heard by the second phone
    queries.pathloss_db[1, 1] += 3.0  # and BS 1 reported 3 dB stronger than its map says
    features = query_features(LocalizationData(scene, queries, {}), np.array([[40.0, 90.0], [40.2, 89.8]]))
    assert features.shape == (2, len(FEATURES))
    np.testing.assert_allclose(features[:, 0], [1.0, 2 / 3])
    residual = np.sqrt(((40 * DB_PER_GRAY) ** 2 + 3.0**2) / 3)  # map minus report at the answer's pixel (40, 90)
    np.testing.assert_allclose(features[:, 1], [0.0, np.log1p(residual)], rtol=1e-5)
    np.testing.assert_allclose(features[:, 2], 37 / 65)


def test_mass_radii_of_a_uniform_square_are_analytic():
    weights = np.ones((1, 256, 256), np.float32)
    coords = np.arange(256.0)
    radii = mass_radii(weights, coords, coords, np.array([[127.5, 127.5]]))[0]
    # a disc of area 0.68 * 256^2 has radius 256 sqrt(0.68 / pi) (inside the square)
    assert radii[0] == pytest.approx(256 * np.sqrt(0.68 / np.pi), rel=0.01)


def test_likelihood_counts_and_table():
    scene = ramp_scene()
    data = LocalizationData(scene, queries_at([(5, 9)] * 100 + [(100, 3)], scene, ids=(0, 1)), {"sim": "DPM", "estimate": "true", "measurement_sim": "DPM"})
    counts = pair_counts(data)
    assert counts.sum() == 202 and counts[5, 5] == 100 and counts[9, 9] == 100 and counts[100, 100] == 1 and counts[3, 3] == 1
    table = log_likelihood_table(counts, LikelihoodConfig())
    np.testing.assert_allclose(np.exp(table.astype(np.float64)).sum(axis=1), 1.0, rtol=1e-5)
    assert table[5].argmax() == 5 and table[9].argmax() == 9 and np.isfinite(table).all()  # well-counted rows peak where counted
    # a row never counted falls back to a Gaussian around the map value, its tail below the floor at gray 0
    assert table[200].argmax() == 200 and table[3].argmax() == 0


def exact_calibration(scenario):
    """A likelihood that trusts the maps (reports within one gray level of the map value)."""
    table = np.full((256, 256), np.log(1e-9), np.float32)
    for g in range(256):
        table[g, g] = 0.0
    table = np.log(np.exp(table.astype(np.float64)) / np.exp(table.astype(np.float64)).sum(axis=1, keepdims=True)).astype(np.float32)
    return LikelihoodCalibration(table, np.zeros((256, 256), np.float32), scenario, LikelihoodConfig(prior="map"), 1.0)


def test_posterior_with_exact_maps_is_at_the_truth_and_uniform_without_reports():
    scene = ramp_scene()
    points = [(40, 90), (150, 60)]
    data = LocalizationData(scene, queries_at(points, scene), {"sim": "DPM", "estimate": "true", "measurement_sim": "DPM"})
    bayes = BayesLocalizer(LikelihoodConfig(prior="map"))
    bayes.calibration = exact_calibration({"sim": "DPM", "estimate": "true", "measurement": "DPM"})
    positions, raw, _ = bayes._locate(data, False)
    np.testing.assert_allclose(positions, points, atol=1e-3)
    assert (raw < 1.0).all()  # all the mass on one pixel
    # one BS at the floor everywhere it reads 0 ... here a flat likelihood: uniform posterior over the prior
    flat = exact_calibration(bayes.calibration.scenario)
    flat.log_likelihood[:] = np.log(1 / 256)
    bayes.calibration = flat
    bayes.config = LikelihoodConfig(prior="ue-box")
    bayes._prior = None
    positions, raw, heat = bayes._locate(data, True)
    np.testing.assert_allclose(positions, [[127.5, 127.5]] * 2, atol=1e-6)  # the middle of the 164 m box (46..209)
    assert raw[0, 0] == pytest.approx(164 * np.sqrt(0.68 / np.pi), rel=0.01)
    assert heat.shape == (2, 256, 256) and heat[0].sum() == pytest.approx(1.0) and heat[0, 0, 0] == 0.0


def test_bayes_fit_save_load_round_trip_and_bad_files(tmp_path):
    scene = ramp_scene()
    rng = np.random.default_rng(0)
    source = {"sim": "DPM", "estimate": "true", "measurement_sim": "DPM"}
    train = LocalizationData(scene, queries_at(rng.integers(50, 200, size=(300, 2)), scene), source)
    bayes = BayesLocalizer(temperatures=(0.5, 1.0)).fit(train)
    assert bayes.calibration.temperature in (0.5, 1.0) and bayes.uncertainty is not None
    path = bayes.save(tmp_path / "cal.safetensors")
    loaded = BayesLocalizer.load(path)
    np.testing.assert_array_equal(loaded.calibration.log_likelihood, bayes.calibration.log_likelihood)
    assert loaded.uncertainty.scale == bayes.uncertainty.scale and loaded.calibration.scenario == {"sim": "DPM", "estimate": "true", "measurement": "DPM"}
    test = LocalizationData(scene, queries_at([(60, 70), (120, 180)], scene), source)
    estimate = loaded.locate(test)
    np.testing.assert_allclose(estimate.positions, bayes.locate(test).positions)
    assert (estimate.radius_95 >= estimate.radius_68).all()
    # another scenario's calibration is refused, naming the file
    robust = LocalizationData(scene, test.queries, {**source, "measurement_sim": "IRT2cars"})
    with pytest.raises(RadiolocError, match="cal.safetensors: calibration for another scenario"):
        loaded.locate(robust)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(RadiolocError, match="corrupt.safetensors: not a readable calibration file"):
        BayesLocalizer.load(corrupt)
    with pytest.raises(RadiolocError, match="nothing.safetensors: calibration file not found"):
        BayesLocalizer.load(tmp_path / "nothing.safetensors")


def test_shipped_calibrations_load_for_their_scenario():
    for name, measurement in (("bayes", "DPM"), ("bayes-robust", "IRT2cars"), ("bayes-learned", "DPM"), ("bayes-learned-robust", "IRT2cars")):
        localizer = resolve_localizer(name).localizer
        assert localizer.calibration.scenario["measurement"] == measurement and localizer.uncertainty is not None
        assert localizer.calibration.provenance["pairs"] > 100_000


def test_registry_names_options_and_scenarios():
    assert {"locunet", "locunet-robust", "bayes", "bayes-robust", "knn", "knn-cond", "adaptive-knn"} <= set(names())
    assert "locunet-robust" not in names("nominal") and "knn" in names("nominal") and "bayes" in names("nominal")
    median = resolve_localizer("bayes:median")
    assert median.localizer.config.estimator == "median" and not median.needs_fit
    fitted = resolve_localizer("bayes:fit")
    assert fitted.needs_fit and fitted.localizer.calibration is None
    with pytest.raises(RadiolocError, match="unknown option 'network'"):
        resolve_localizer("bayes:network")
    with pytest.raises(RadiolocError, match="not a known localizer"):
        resolve_localizer("kalman")


def test_prior_pixels_are_the_outdoor_pixels_of_the_ue_box():
    buildings = np.zeros((2, 256, 256), np.uint8)
    buildings[1, 100:110, 100:120] = 1
    prior = prior_pixels(buildings, "ue-box")
    assert prior.offsets.tolist() == [0, 164 * 164, 2 * 164 * 164 - 200]
    rows = prior.pixels[: prior.offsets[1]] // 256
    assert rows.min() == 46 and rows.max() == 209
    # every 2nd row and column of the same support: 82 x 82 pixels of the empty map, none inside the building
    coarse = prior_pixels(buildings, "ue-box", stride=2)
    assert coarse.offsets.tolist() == [0, 82 * 82, 2 * 82 * 82 - 50]
    assert set(coarse.pixels[: coarse.offsets[1]].tolist()) == {p for p in prior.pixels[: prior.offsets[1]].tolist() if (p // 256) % 2 == 0 and p % 2 == 0}


def test_spread_around_a_centre_is_the_mass_radius_around_it():
    scene = ramp_scene()
    points = [(40, 90), (150, 60)]
    data = LocalizationData(scene, queries_at(points, scene, ids=(0,)), {"sim": "DPM", "estimate": "true", "measurement_sim": "DPM"})
    bayes = BayesLocalizer(LikelihoodConfig(prior="map"))
    bayes.calibration = exact_calibration({"sim": "DPM", "estimate": "true", "measurement": "DPM"})
    positions, raw, _ = bayes._locate(data, False)
    np.testing.assert_array_equal(bayes.spread_around(data, positions), raw)  # around its own answers: its own radii
    # one BS whose map is a ramp down the rows: the posterior is the row of the report's value, uniform over the
    # 256 columns; around the middle of that row the mass radii are 0.68 and 0.95 of its half-length, and a point
    # 30 m off the row sees it no closer than 30 m
    row = positions[0, 0]
    assert row == pytest.approx(40.0)
    around = bayes.spread_around(data.subset(np.array([0, 0])), np.array([[row, 128.0], [row + 30.0, 128.0]]))
    assert around[0] == pytest.approx([0.68 * 128, 0.95 * 128], abs=1.5)
    assert (around[1] > 30.0).all() and (around[1] > around[0]).all()


@pytest.mark.parametrize("likelihood_weights", [False, True])
def test_an_untrained_posterior_head_answers_as_bayes(likelihood_weights):
    import torch

    from radioloc.localizers.locunet import LocUNetLocalizer
    from radioloc.models.locunet import LocUNet, preset_config

    scene = ramp_scene()
    rng = np.random.default_rng(4)
    source = {"sim": "DPM", "estimate": "true", "measurement_sim": "DPM"}
    data = LocalizationData(scene, queries_at(rng.integers(60, 190, size=(6, 2)), scene), source)
    data.queries.pathloss_db[:] += rng.normal(0, 1.0, data.queries.pathloss_db.shape).astype(np.float32)  # reports off the maps
    calibration = exact_calibration({"sim": "DPM", "estimate": "true", "measurement": "DPM"})
    calibration.log_likelihood = log_likelihood_table(np.eye(256) * 50, LikelihoodConfig())  # a smooth, peaked table
    calibration.temperature = 0.7
    bayes = BayesLocalizer(LikelihoodConfig(prior="ue-box"))
    bayes.calibration = calibration
    model = LocUNet(preset_config("cpu", head="posterior", temperature=0.7, prior="ue-box", likelihood_weights=likelihood_weights))
    model.log_likelihood.copy_(torch.from_numpy(calibration.log_likelihood))
    locunet = LocUNetLocalizer(model.eval())
    expected, _, _ = bayes._locate(data, False)
    answered, raw, posterior = locunet._locate(data, True)
    np.testing.assert_allclose(answered, expected, atol=1e-3)
    assert posterior.shape == (6, 256, 256) and posterior.sum(axis=(1, 2)) == pytest.approx(np.ones(6), rel=1e-4)
    assert (raw[:, 1] >= raw[:, 0]).all()


def test_likelihood_weights_scale_each_bs_term_of_the_posterior():
    """Weights exp(w) on BS j's log-likelihood: the posterior is softmax(prior + sum_j exp(w_j) l_j), cell by cell."""
    import torch

    from radioloc.models.locunet import WEIGHT_RANGE, LocUNet, preset_config

    model = LocUNet(preset_config("cpu", head="posterior", likelihood_weights=True, prior="outdoor")).eval()
    assert model.config.out_channels == 1 + model.config.max_bs
    raw = torch.zeros(1, model.config.out_channels, 64, 64)
    raw[0, 2, :32] = 0.5  # BS 1's evidence weighed more in the northern half of the map
    model.outputs = lambda inputs: raw  # the network's output, fixed
    log_likelihood = -torch.rand(1, 2, 256, 256, generator=torch.Generator().manual_seed(0)) * 5
    weight = float(np.exp(WEIGHT_RANGE * np.tanh(0.5 / WEIGHT_RANGE)))
    expected = log_likelihood[0, 0] + log_likelihood[0, 1] * torch.where(torch.arange(256)[:, None] < 128, weight, 1.0)
    posterior = model.posterior(torch.zeros(1, 1, 64, 64), log_likelihood)
    torch.testing.assert_close(posterior[0], torch.softmax(expected.flatten(), 0).view(256, 256))
    with pytest.raises(RadiolocError, match="log-likelihood of each BS"):
        model.posterior(torch.zeros(1, 1, 64, 64), log_likelihood.sum(dim=1))


def test_the_posterior_window_is_the_ue_box_on_whole_cells_and_survives_rotations():
    from radioloc.models.locunet import preset_config

    assert preset_config("cpu", head="posterior", prior="ue-box").posterior_window == (44, 212)  # 46..209 on 4 m cells
    assert preset_config("cpu-fine", head="posterior", prior="ue-box").posterior_window == (46, 210)  # 2 m cells
    assert preset_config("cpu", head="posterior", prior="outdoor").posterior_window == (0, 256)
    lo, hi = preset_config("cpu", head="posterior").posterior_window
    assert lo + hi == 256  # centred: a rotated or transposed window is the window


def test_a_learned_prior_reweights_the_posterior_by_its_cells():
    from radioloc.localizers.heatmap_prior import belief_maps, prior_cost

    # the belief map: the positive part of the sign with the larger mass, summing to 1; uniform without mass
    heat = np.zeros((3, 2, 2))
    heat[0] = [[1.0, -0.5], [3.0, 0.0]]
    heat[1] = -heat[0]
    np.testing.assert_allclose(belief_maps(heat)[0], [[0.25, 0.0], [0.75, 0.0]])
    np.testing.assert_allclose(belief_maps(heat)[1], belief_maps(heat)[0])
    np.testing.assert_allclose(belief_maps(heat)[2], 0.25)
    np.testing.assert_allclose(prior_cost(heat, 2.0, 0.5)[2], -2.0 * np.log(1.5), rtol=1e-6)  # uniform: S^2 b = 1
    # one BS whose map is a ramp down the rows: the posterior is the row of the report's value, uniform along it;
    # a prior three times as likely on the left half (4-pixel cells, log 3 nats cheaper) moves the mean column to
    # (3 x 63.5 + 191.5) / 4 and weighs each left pixel three times a right one
    scene = ramp_scene()
    data = LocalizationData(scene, queries_at([(40, 90)], scene, ids=(0,)), {"sim": "DPM", "estimate": "true", "measurement_sim": "DPM"})
    bayes = BayesLocalizer(LikelihoodConfig(prior="map"))
    bayes.calibration = exact_calibration({"sim": "DPM", "estimate": "true", "measurement": "DPM"})
    cost = np.zeros((1, 64, 64), np.float32)
    cost[0, :, 32:] = np.log(3.0)
    plain, _, _ = bayes.posterior(data)
    positions, raw, image = bayes.posterior(data, heatmaps=True, prior_cost=cost, cell=4)
    assert plain[0] == pytest.approx([40.0, 127.5])
    assert positions[0] == pytest.approx([40.0, (3 * 63.5 + 191.5) / 4])
    assert image[0, 40, 10] == pytest.approx(3 * image[0, 40, 200]) and image[0].sum() == pytest.approx(1.0)
    assert image[0, 41].sum() < 1e-6  # the next row does not fit the report
    np.testing.assert_array_equal(bayes.posterior(data, prior_cost=np.zeros((1, 64, 64), np.float32), cell=4)[0], plain)
    # bilinear: the cells' costs at their centres, interpolated between them as torch upsamples (constant beyond the
    # outer centres); the same posterior as with that 1 m prior given pixel by pixel
    import torch

    rough = np.random.default_rng(0).normal(0.0, 2.0, (1, 64, 64)).astype(np.float32)
    fine = torch.nn.functional.interpolate(torch.from_numpy(rough)[:, None], scale_factor=4, mode="bilinear", align_corners=False)[:, 0].numpy()
    smooth = bayes.posterior(data, heatmaps=True, prior_cost=rough, cell=4, bilinear=True)
    given = bayes.posterior(data, heatmaps=True, prior_cost=fine, cell=1)
    np.testing.assert_allclose(smooth[0], given[0], atol=1e-6)
    np.testing.assert_allclose(smooth[2], given[2], atol=1e-9)
    # along the report's row the posterior follows the interpolated prior: exp(-cost) up to a constant
    row = smooth[2][0, 40]
    np.testing.assert_allclose(row[1:] / row[:-1], np.exp(-(fine[0, 40, 1:] - fine[0, 40, :-1])), rtol=1e-4)
    assert not np.allclose(smooth[0], bayes.posterior(data, prior_cost=rough, cell=4)[0])  # the cells' steps differ
    with pytest.raises(RadiolocError, match=r"prior cost per query needs shape \(1, S, S\)"):
        bayes.posterior(data, prior_cost=np.zeros((2, 64, 64)), cell=4)
