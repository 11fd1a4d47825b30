"""The evaluation seeds: the only place they are written.

Every accuracy figure the README and the model cards quote is measured on datasets generated from these seeds by
the benchmarks themselves (:mod:`protocol`). No model, calibration or design choice may be fitted or chosen on
them: ``tests/test_evaluation_seeds.py`` fails when a shipped model card or calibration lists one of them among
its fitting data. To re-measure on other unseen maps, change the numbers here (one line per scenario) and run
``make bench``.
"""

NOMINAL = (24601, 24602, 24603)  # procedural maps, UEs report the dominant-path truth
ROBUST = (24611, 24612, 24613)  # procedural maps, UEs report the ray-traced truth with cars (IRT2cars)
REAL_CITY = (24621,)  # BS and UE sampling on the real-city tiles (the bundled Sionna RT scenes)

MAPS_PER_SEED = 10
ROBUST_CANDIDATES = 30  # candidate BSs per robustness map (ray tracing every candidate of 80 is out of a CPU budget)
REAL_CITIES = ("munich", "etoile", "florence", "san_francisco")

EVALUATION_SEEDS = frozenset(NOMINAL + ROBUST + REAL_CITY)

# A diagnostic, never fitted on nor evaluated: BSs and UEs of its own seed on the tiles of two of the real cities, to
# measure how radii fitted on the procedural pool transfer to real street layouts (benchmarks/radii_transfer.py).
TRANSFER_CHECK_SEED = 5121
TRANSFER_CHECK_CITIES = ("etoile", "florence")

# The calibration pool: the maps every shipped radius calibration was fitted on and kNN's k is tuned on (never
# evaluated on). Many maps of several seeds, because a seed of 10 maps can be twice as hard as another.
CALIBRATION_POOL = {"nominal": (5101, 5102, 5103, 5104, 5105, 5106), "robust": (5111, 5112, 5113)}
CALIBRATION_SEEDS = frozenset(CALIBRATION_POOL["nominal"] + CALIBRATION_POOL["robust"])
