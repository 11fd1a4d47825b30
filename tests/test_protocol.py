import numpy as np
import pytest

from radioloc.datasets.protocol import ProtocolConfig, middle_box, sample_bs_sets, sample_candidates, sample_ues, split_maps
from radioloc.errors import RadiolocError

# The published RadioLocSeer map order (LocUNet's MATLAB scripts list it, 0-based): first 69 train,
# next 15 validation, last 15 test.
PUBLISHED_ORDER = [
    62,
    40,
    95,
    18,
    97,
    84,
    64,
    42,
    10,
    0,
    31,
    76,
    47,
    26,
    44,
    4,
    22,
    12,
    88,
    73,
    49,
    70,
    68,
    15,
    39,
    33,
    9,
    81,
    11,
    65,
    94,
    30,
    28,
    89,
    5,
    45,
    69,
    35,
    16,
    72,
    34,
    7,
    55,
    27,
    19,
    80,
    25,
    53,
    13,
    24,
    3,
    17,
    38,
    8,
    77,
    6,
    79,
    36,
    91,
    56,
    98,
    54,
    43,
    50,
    66,
    46,
    67,
    61,
    96,
    78,
    41,
    58,
    48,
    85,
    57,
    75,
    32,
    93,
    59,
    63,
    83,
    37,
    29,
    1,
    52,
    21,
    2,
    23,
    87,
    90,
    74,
    86,
    82,
    20,
    60,
    71,
    14,
    92,
    51,
]


def test_split_is_the_published_one_for_99_maps():
    split = split_maps(99)
    assert split["train"] == sorted(PUBLISHED_ORDER[:69])
    assert split["val"] == sorted(PUBLISHED_ORDER[69:84])
    assert split["test"] == sorted(PUBLISHED_ORDER[84:])


def test_split_proportions_for_other_sizes():
    split = split_maps(20)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (14, 3, 3)
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(20))
    split = split_maps(3)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (1, 1, 1)


def test_middle_box():
    assert middle_box(150) == (53, 202)
    assert middle_box(164) == (46, 209)


def test_candidates_sets_and_ues_follow_the_protocol():
    rng = np.random.default_rng(0)
    free = np.ones((256, 256), bool)
    free[100:140, 60:200] = False
    config = ProtocolConfig()
    cand = sample_candidates(free, rng, config, "map 0")
    assert len(cand) == 80 and len({tuple(c) for c in cand}) == 80
    assert free[cand[:, 0], cand[:, 1]].all()
    assert cand.min() >= 53 and cand.max() <= 202
    sets = sample_bs_sets(cand, rng, config, "map 0")
    assert sets.shape == (50, 5)
    for bs_set in sets:
        pts = cand[bs_set].astype(float)
        d = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
        assert d[np.triu_indices(5, 1)].min() >= 20
    detectable = np.zeros((80, 256, 256), bool)
    detectable[:, :128] = True  # only the upper half is covered
    ues = sample_ues(free, detectable, sets, rng, config, "map 0")
    assert ues.shape == (200, 2) and (ues[:, 0] < 128).all() and free[ues[:, 0], ues[:, 1]].all()


def test_impossible_requests_name_the_map():
    rng = np.random.default_rng(0)
    free = np.zeros((256, 256), bool)
    free[120:126, 120:126] = True
    with pytest.raises(RadiolocError, match="map 3: only 36 open pixels"):
        sample_candidates(free, rng, ProtocolConfig(), "map 3")
    cramped = np.array([[100 + i, 100 + j] for i in range(9) for j in range(9)])
    with pytest.raises(RadiolocError, match="map 4: cannot pick 5 base stations at least 20 m apart"):
        sample_bs_sets(cramped, rng, ProtocolConfig(), "map 4")
