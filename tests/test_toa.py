"""ToA ranging: path lengths and ranges from the dataset, the NLOS bias of Fig. 1, the six ToA baselines on exact
geometry, failures, and RSS + ToA fusion in the grid posterior."""

import numpy as np
import pytest

from radioloc.baselines.toa import METHODS, ToALocalizer, bisection, mcc, pocs, solve_gtrs
from radioloc.datasets.localization import LocalizationData, Queries, SceneBank, load_localization
from radioloc.datasets.ranging import attach_ranges, nlos_bias, read_path_lengths
from radioloc.errors import RadiolocError
from radioloc.localizers.base import localization_errors
from radioloc.localizers.bayes import BayesLocalizer
from radioloc.localizers.registry import resolve_localizer

TRUTH = np.array([[120.0, 131.0], [90.5, 160.0], [150.0, 100.0]])
BS = np.array([[60.0, 60.0], [60.0, 200.0], [200.0, 200.0], [200.0, 60.0], [128.0, 30.0]])


def exact(points=TRUTH, bs=BS, bias=None):
    """bs (n, k, 2), ranges (n, k), present (n, k) for line-of-sight ranges (plus ``bias`` per BS)."""
    n, k = len(points), len(bs)
    stations = np.broadcast_to(bs, (n, k, 2)).copy()
    ranges = np.hypot(*(points[:, None, :] - stations).transpose(2, 0, 1))
    if bias is not None:
        ranges = ranges + bias
    return stations, ranges, np.ones((n, k), dtype=bool)


def scene_queries(points=TRUTH, ranges=None):
    scene = SceneBank([0], np.zeros((1, 256, 256), np.uint8), BS[None].astype(np.int64), np.zeros((1, len(BS), 256, 256), np.uint8))
    n = len(points)
    bs_ids = np.tile(np.arange(len(BS)), (n, 1))
    stations, exact_ranges, _ = exact(points)
    q = Queries(np.zeros(n, np.int64), bs_ids, np.full(bs_ids.shape, -100.0, np.float32), points, ranges_m=exact_ranges if ranges is None else ranges)
    return LocalizationData(scene, q, {"root": "", "estimate": "true", "sim": "DPM", "measurement_sim": "DPM"})


def test_gtrs_recovers_a_point_from_exact_squared_ranges():
    stations, ranges, _ = exact()
    rows = np.concatenate([-2.0 * stations, np.ones(stations.shape[:2] + (1,))], axis=2)
    targets = ranges**2 - (stations**2).sum(axis=2)
    y, ok = solve_gtrs(rows, targets, np.ones(ranges.shape), upper=1e5)
    assert ok.all()
    np.testing.assert_allclose(y[:, :2], TRUTH, atol=1e-4)
    np.testing.assert_allclose(y[:, 2], (TRUTH**2).sum(axis=1), rtol=1e-6)


def test_gtrs_reports_a_singular_problem_as_failed():
    rows = np.zeros((1, 4, 3))
    y, ok = solve_gtrs(rows, np.zeros((1, 4)), np.ones((1, 4)), upper=100.0)
    assert not ok[0]


@pytest.mark.parametrize("method, tolerance", [("pocs", 1.0), ("sdp", 0.05), ("rsdp1", 0.7), ("rsdp2", 0.7), ("bisection", 0.7), ("mcc", 1e-3)])
def test_every_method_finds_the_ue_from_exact_line_of_sight_ranges(method, tolerance):
    localizer = ToALocalizer(method, bias_bound=0.7, sigma_m=0.0)
    data = scene_queries()
    positions = localizer.predict(data)
    assert not localizer.last_failed.any()
    assert localization_errors(positions, TRUTH).max() < tolerance


def test_robust_methods_absorb_a_positive_bias_within_their_bound():
    # one BS 15 m too long (an NLOS path): plain least squares is pulled away, the robust bisection with b = 20 less
    stations, ranges, present = exact(bias=np.array([0.0, 0.0, 15.0, 0.0, 0.0]))
    robust, ok = bisection(stations, ranges, present, bias_bound=20.0)
    plain, ok_plain = mcc(stations, ranges, present, iterations=1)  # one SR-LS step
    assert ok.all() and ok_plain.all()
    assert localization_errors(robust, TRUTH).mean() < localization_errors(plain, TRUTH).mean()


def test_pocs_stays_inside_every_disc_when_they_intersect():
    stations, ranges, present = exact(bias=np.full(len(BS), 10.0))  # every disc 10 m too big: a region to land in
    x = pocs(stations, ranges, present)
    distance = np.hypot(*(x[:, None, :] - stations).transpose(2, 0, 1))
    assert (distance <= ranges + 1e-6).all()


def test_an_infeasible_sdp_is_counted_and_answered_with_the_centroid_of_the_bss():
    tiny = np.full((len(TRUTH), len(BS)), 5.0)  # 5 m discs around BSs 100 m apart: no common point
    data = scene_queries(ranges=tiny)
    localizer = ToALocalizer("rsdp1", bias_bound=0.7)
    positions = localizer.predict(data)
    assert localizer.last_failed.all()
    np.testing.assert_allclose(positions, np.broadcast_to(BS.mean(axis=0), positions.shape))
    localizer.calibrate_radii(scene_queries())
    estimate = localizer.locate(data)
    assert estimate.failed.all() and np.isfinite(estimate.radii).all()


def test_a_toa_method_needs_ranges_and_names_them():
    data = scene_queries()
    data.queries.ranges_m = None
    with pytest.raises(RadiolocError, match="no ToA ranges"):
        ToALocalizer("pocs").predict(data)


def test_registry_knows_the_toa_methods_and_their_valued_options():
    resolved = resolve_localizer("toa-rsdp1:b=0.7:sigma=10")
    assert resolved.localizer.bias_bound == 0.7 and resolved.localizer.sigma_m == 10.0 and resolved.needs_fit
    from radioloc.localizers.registry import names

    assert {f"toa-{m}" for m in METHODS} <= set(names()) and {f"toa-{m}" for m in METHODS} <= set(names("ranging"))
    assert not any(name.startswith("toa-") for name in names("nominal") + names("robust"))  # RSS-only listings (the demo)
    with pytest.raises(RadiolocError, match="b=NUMBER"):
        resolve_localizer("toa-bisection:b=wide")
    with pytest.raises(RadiolocError, match="unknown option"):
        resolve_localizer("toa-pocs:fast")
    with pytest.raises(RadiolocError, match="toa=SIGMA"):
        resolve_localizer("bayes:toa=-3")


def test_ranges_are_the_path_lengths_plus_the_stated_noise(small_dataset):
    root, _ = small_dataset
    data = load_localization(root, "train", estimate="true")
    clean = attach_ranges(data, 0.0, seed=3)
    q = clean.queries
    rows, cols = q.position[:, 0].astype(int), q.position[:, 1].astype(int)
    lengths = clean.scenes.path_length_m[q.map_slot[:, None], q.bs_ids, rows[:, None], cols[:, None]]
    np.testing.assert_array_equal(q.ranges_m, lengths.astype(np.float64))
    bs = clean.scenes.bs_positions[q.map_slot[:, None], q.bs_ids]
    straight = np.hypot(bs[..., 0] - rows[:, None], bs[..., 1] - cols[:, None])
    assert (q.ranges_m >= straight - 1e-3).all()  # a dominant path is never shorter than the straight line
    noisy = attach_ranges(data, 10.0, seed=3).queries.ranges_m - q.ranges_m
    assert abs(noisy.mean()) < 4 * 10.0 / np.sqrt(noisy.size) and 8.5 < noisy.std() < 11.5  # 300 draws: 4 standard errors
    np.testing.assert_array_equal(attach_ranges(data, 10.0, seed=3).queries.ranges_m, attach_ranges(data, 10.0, seed=3).queries.ranges_m)
    three = clean.queries.first_bs(3)
    assert np.isnan(three.ranges_m[:, 3:]).all() and np.isfinite(three.ranges_m[:, :3]).all()
    with pytest.raises(RadiolocError, match="sigma"):
        attach_ranges(data, -1.0)


def test_nlos_bias_is_zero_on_line_of_sight_links_and_positive_otherwise(small_dataset):
    root, _ = small_dataset
    bias = nlos_bias(root, [0, 1])
    assert bias.bias_m.size + bias.no_path == 2 * 12 * 20
    assert (bias.bias_m >= 0).all()
    assert np.abs(bias.bias_m[bias.line_of_sight]).max() < 1e-3
    assert (bias.bias_m[~bias.line_of_sight] > 0).mean() > 0.9
    summary = bias.summary()
    assert 0 < summary["line_of_sight_share"] < 1 and summary["bias_cdf_0.5_m"] <= summary["bias_cdf_0.9_m"]
    with pytest.raises(RadiolocError, match="no ToA file"):
        read_path_lengths(root, 0, "IRT2")


def test_fusing_ranges_sharpens_the_posterior(small_dataset):
    root, _ = small_dataset
    train = load_localization(root, "train", estimate="noisy:4")
    test = load_localization(root, "test", estimate="noisy:4")
    rss = BayesLocalizer(temperatures=(1.0,)).fit(train)
    fused = BayesLocalizer(temperatures=(1.0,))
    fused.calibration, fused.uncertainty, fused.toa_sigma_m = rss.calibration, rss.uncertainty, 2.0
    with_ranges = attach_ranges(test, 2.0, seed=1)
    rss_error = localization_errors(rss.predict(with_ranges), with_ranges.queries.position).mean()
    fused_error = localization_errors(fused.predict(with_ranges), with_ranges.queries.position).mean()
    assert fused_error < 0.5 * rss_error and fused_error < 2.0
    with pytest.raises(RadiolocError, match="ranges"):
        fused.predict(test)


def test_mcc_weights_down_the_outlying_range():
    # exact ranges but one 10 m too long: SR-LS (the first step) is pulled metres away, the correntropy weights
    # then drop the outlier and land on the truth
    stations, ranges, present = exact(bias=np.array([0.0, 0.0, 10.0, 0.0, 0.0]))
    first, _ = mcc(stations, ranges, present, iterations=1)
    robust, ok = mcc(stations, ranges, present)
    assert ok.all()
    assert localization_errors(first, TRUTH).mean() > 2.0
    assert localization_errors(robust, TRUTH).max() < 0.01


def test_answers_are_projected_onto_the_ue_box_unless_the_region_is_the_map():
    # exact ranges from a point outside the box: region map answers it, the default clips it onto the box's nearest
    # point (46..209 m), never farther from a UE, who stands in the box
    far = np.array([[10.0, 240.0], [120.0, 131.0]])
    data = scene_queries(points=far)
    np.testing.assert_allclose(ToALocalizer("mcc", region="map").predict(data), far, atol=1e-3)
    np.testing.assert_allclose(ToALocalizer("mcc").predict(data), [[46.0, 209.0], [120.0, 131.0]], atol=1e-3)
    assert resolve_localizer("toa-pocs:region=map").localizer.describe()["region"] == "map" and ToALocalizer("pocs").region == "ue-box"
    with pytest.raises(RadiolocError, match=r"^--model toa-mcc:region=box: the region must be one of ue-box, outdoor, map, got 'box'$"):
        resolve_localizer("toa-mcc:region=box")
