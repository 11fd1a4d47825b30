"""The paper's published numbers (arXiv 2106.12556, Yapar et al.), set beside ours in the report."""

from __future__ import annotations

FIG1 = {"line_of_sight_share": 0.47, "nlos_bias_under_30m_share": 0.92, "bias_cdf_0.5_m": 0.7, "bias_cdf_0.9_m": 20.0}

FIG2 = {"nominal": {"rmse_db": 1.66, "mae_db": 0.87}, "robust": {"rmse_db": 4.80, "mae_db": 3.55}}

# Table VIII: MAE (m) with 5 / 3 BSs at sigma 0, 10, 20 m; run time (ms)
TABLE8 = {
    ("pocs", None): {0: (37.75, 46.15), 10: (39.36, 47.26), 20: (41.27, 48.72), "ms": 15},
    ("sdp", None): {0: (6.81, 13.95), 10: (15.52, 27.81), 20: (24.88, 41.02), "ms": 600},
    ("rsdp1", 20.0): {0: (9.98, 17.10), 10: (17.02, 27.59), 20: (27.76, 40.37), "ms": 600},
    ("rsdp1", 0.7): {0: (7.04, 15.38), 10: (17.13, 28.12), 20: (28.42, 41.74), "ms": 600},
    ("rsdp2", 20.0): {0: (12.53, 19.63), 10: (18.66, 28.59), 20: (27.81, 39.93), "ms": 600},
    ("rsdp2", 0.7): {0: (7.14, 15.63), 10: (17.10, 28.10), 20: (28.39, 41.72), "ms": 600},
    ("bisection", 20.0): {0: (9.16, 15.87), 10: (14.42, 25.40), 20: (23.30, 38.14), "ms": 16},
    ("bisection", 0.7): {0: (9.49, 14.95), 10: (14.80, 27.35), 20: (24.09, 40.75), "ms": 16},
    ("mcc", None): {0: (12.44, 18.40), 10: (20.54, 31.27), 20: (31.91, 45.68), "ms": 30},
}
# LocUNet in the paper's pairing: nominal against sigma = 0, robustness against sigma = 10 and 20
TABLE8_LOCUNET = {0: (4.80, 10.70), 10: (13.14, 19.06), 20: (13.14, 19.06), "ms": 5}

# LocSwinNet (MLSP 2023), on true radio maps: RSS + ToA against RSS only
LOCSWINNET = {"rss_toa_m": 1.9, "rss_m": 5.9}

# Table VI: MAE (m) by the noise (m) on the training positions, robustness scenario
TABLE6 = {
    "sigma_m": (0, 2, 5, 10, 15, 20, 25),
    "locunet": (13.14, 12.76, 13.47, 13.90, 13.79, 14.18, 13.58),
    "knn": (27.38, 27.38, 27.20, 27.13, 27.13, 27.12, 27.20),
}

# Table VII: MAE (m) by the noise (m) on the position each BS's report is read at
TABLE7 = {
    "sigma_m": (5, 10, 15, 20, 25),
    "knn_zero_shot": (30.91, 36.34, 43.67, 50.98, 57.95),
    "locunet_zero_shot": (16.42, 22.23, 29.01, 35.29, 40.96),
    "knn_trained": (30.11, 34.78, 38.81, 42.54, 45.19),
    "locunet_trained": (16.26, 20.52, 25.43, 29.55, 34.09),
}

# Table IX, LeakyReLU trained with the MAE loss, both input maps: MAE / RMSE (m)
TABLE9_LEAKY_MAE = {"mae_m": 13.14, "rmse_m": 21.78}
