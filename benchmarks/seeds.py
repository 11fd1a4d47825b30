"""The evaluation seeds: the only place they are written.

Every accuracy figure the README and the model cards quote is measured on datasets generated from these seeds by
the benchmarks themselves (:mod:`protocol`). No model, calibration or design choice may be fitted or chosen on
them: ``tests/test_evaluation_seeds.py`` fails when a shipped model card or calibration lists one of them among
its fitting data. To re-measure on other unseen maps, change the numbers here (one line per scenario) and run
``make bench``.
"""

NOMINAL = (24601, 24602, 24603)  # procedural maps, UEs report the dominant-path truth
ROBUST = (24611, 24612, 24613)  # procedural maps, UEs report the ray-traced truth with cars (IRT2cars)
REAL_CITY = (24621,)  # BS and UE sampling on the real-city tiles of REAL_CITIES (bundled Sionna RT scenes)

MAPS_PER_SEED = 10
ROBUST_CANDIDATES = 30  # candidate BSs per robustness map (ray tracing every candidate of 80 is out of a CPU budget)
# The bundled real-city scenes, split by name (alphabetical: the first two calibrate, the last two are evaluated), so
# that the radii can learn from real street layouts while the reported cities stay unseen.
REAL_CITIES = ("munich", "san_francisco")
REAL_CITIES_CALIBRATION = ("etoile", "florence")

EVALUATION_SEEDS = frozenset(NOMINAL + ROBUST + REAL_CITY)

# The calibration pool: the maps every shipped radius calibration was fitted on and kNN's k is tuned on (never
# evaluated on). Many maps of several seeds, because a seed of 10 maps can be twice as hard as another.
CALIBRATION_POOL = {"nominal": (5101, 5102, 5103, 5104, 5105, 5106), "robust": (5111, 5112, 5113), "real": (5121,)}
CALIBRATION_SEEDS = frozenset(seed for pool in CALIBRATION_POOL.values() for seed in pool)
