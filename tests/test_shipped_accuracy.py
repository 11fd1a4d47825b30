"""Accuracy floors of the shipped models on a small fixed dataset (seeded, generated in the test): an encoding,
kernel or calibration change that breaks the shipped weights fails here.

The dataset: 6 procedural maps of seed 31 with the paper's protocol at a smaller scale (20 candidate BSs, 4 sets
of 5, 40 UEs per map), estimated with the shipped RadioUNet; every query of every map (960) is answered. The
floors sit about 30 % above what the shipped models measured here when they were shipped (comment below), far
below what a localizer without the radio maps gets (the centre of the UE box: about 55 m).
"""

import numpy as np
import pytest

from radioloc.datasets.builder import DatasetConfig, generate_dataset
from radioloc.datasets.localization import load_localization
from radioloc.datasets.protocol import ProtocolConfig
from radioloc.localizers.base import localization_errors
from radioloc.localizers.registry import resolve_localizer
from radioloc.models.estimate import estimate_dataset

FLOORS_M = {  # MAE with 5 BSs, with the first 3 BSs; measured with the cpu-open RadioUNet of 2026-12-06: 3.60/14.42, 6.62/17.77, 6.99/17.98, 3.88/15.15, 3.77/14.44
    "locunet": (4.7, 18.8),  # the quasi-heatmap as the learned prior of the bayes-learned posterior
    "locunet:paper": (8.6, 23.1),  # the paper's centre of mass and local refinement
    "locunet:network": (9.1, 23.4),
    "bayes": (5.0, 19.7),
    "bayes-learned": (4.9, 18.8),
}


# the share of the 960 queries (6 maps) within the 68 % and 95 % radii: about what they promise (6 maps leave a
# few points of spread either way); the benchmark measures it per evaluation seed on thousands
COVERAGE_BANDS = {"68": (0.56, 0.80), "95": (0.88, 0.99)}

RADIOUNET_FLOOR_DB = 2.65  # RMSE over the outdoor pixels of the 120 radio maps; measured when shipped: 2.41 (the previous models: 2.67, 2.78)


@pytest.fixture(scope="module")
def fixed_dataset(tmp_path_factory):
    """The dataset folder and the shipped RadioUNet's estimate-minus-truth statistics on it."""
    root = tmp_path_factory.mktemp("fixed") / "ds"
    protocol = ProtocolConfig(candidates_per_map=20, sets_per_map=4, ues_per_map=40)
    generate_dataset(root, DatasetConfig(maps=6, seed=31, simulations=("DPM",), protocol=protocol), workers=2, quiet=True)
    return root, estimate_dataset(root, quiet=True)


@pytest.fixture(scope="module")
def fixed_data(fixed_dataset):
    return load_localization(fixed_dataset[0], "train,val,test")


def test_shipped_radiounet_accuracy_floor(fixed_dataset):
    outdoor = fixed_dataset[1]["pixels"]["outdoor"]
    assert outdoor["pixels"] > 6 * 20 * 20_000  # every radio map's outdoor pixels were compared
    assert outdoor["rmse_db"] <= RADIOUNET_FLOOR_DB, f"shipped RadioUNet: {outdoor['rmse_db']:.2f} dB RMSE above its floor {RADIOUNET_FLOOR_DB} dB"


def test_the_fixed_data_is_the_expected_one(fixed_data):
    assert len(fixed_data.queries) == 6 * 4 * 40
    centre = np.full_like(fixed_data.queries.position, 127.5)
    assert localization_errors(centre, fixed_data.queries.position).mean() > 40.0  # no radio maps, no accuracy


@pytest.mark.parametrize("spec", list(FLOORS_M))
def test_shipped_model_accuracy_floor(fixed_data, spec):
    localizer = resolve_localizer(spec).localizer
    for floor, count in zip(FLOORS_M[spec], (5, 3)):
        data = fixed_data if count == 5 else fixed_data.with_queries(fixed_data.queries.first_bs(count))
        estimate = localizer.locate(data)
        errors = localization_errors(estimate.positions, data.queries.position)
        assert errors.mean() <= floor, f"{spec} with {count} BSs: MAE {errors.mean():.2f} m above its floor {floor} m"
        assert np.all(estimate.radius_95 >= estimate.radius_68) and np.all(estimate.radius_68 > 0)
        for level, radius in (("68", estimate.radius_68), ("95", estimate.radius_95)):
            low, high = COVERAGE_BANDS[level]
            coverage = np.mean(errors <= radius)
            assert low <= coverage <= high, f"{spec} with {count} BSs: {level} % radii hold {coverage:.3f} of the queries"
