"""The gray-level convention of RadioLocSeer pathloss PNGs (and of radioloc's datasets).

RadioMapSeer stores ``f = max((PL - PL_trnc) / (M1 - PL_trnc), 0)`` with ``PL_trnc = -147 dB`` and
``M1 = -47.84 dB``; its noise floor is ``f = 0.2``. RadioLocSeer (and RadioUNet's loader) keep only what is above
the noise floor and rescale ``(f - 0.2) / 0.8`` to gray 0..255. Hence::

    PL = NOISE_FLOOR_DB + gray / 255 * (MAX_PATHLOSS_DB - NOISE_FLOOR_DB)

with ``NOISE_FLOOR_DB = -147 + 0.2 * 99.16 = -127.168 dB`` and gray 0 meaning "not detectable" (at or below the
noise floor, or inside a building). One gray level is 0.311 dB.
"""

from __future__ import annotations

import numpy as np

TRUNCATION_DB = -147.0
MAX_PATHLOSS_DB = -47.84
NOISE_FLOOR_DB = TRUNCATION_DB + 0.2 * (MAX_PATHLOSS_DB - TRUNCATION_DB)
DB_PER_GRAY = (MAX_PATHLOSS_DB - NOISE_FLOOR_DB) / 255.0


def db_to_gray(pathloss_db: np.ndarray) -> np.ndarray:
    """Pathloss in dB (NaN = no value) to uint8 gray; NaN and values at or below the noise floor give 0."""
    pl = np.asarray(pathloss_db, dtype=np.float64)
    scaled = np.round((pl - NOISE_FLOOR_DB) / DB_PER_GRAY)
    scaled = np.where(np.isfinite(scaled), scaled, 0.0)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def gray_to_db(gray: np.ndarray) -> np.ndarray:
    """uint8 gray to pathloss in dB; gray 0 maps to the noise floor (callers treat it as not detectable)."""
    return NOISE_FLOOR_DB + np.asarray(gray, dtype=np.float64) * DB_PER_GRAY


def gray_to_db32(gray: np.ndarray) -> np.ndarray:
    """:func:`gray_to_db` in float32 arithmetic, as reports and the radio maps localizers see are stored: every
    producer of reported pathloss uses it, so equal gray levels give bit-equal reports."""
    return (NOISE_FLOOR_DB + np.asarray(gray).astype(np.float32) * np.float32(DB_PER_GRAY)).astype(np.float32)


def conversion_record() -> dict:
    """The conversion, as stored in every dataset manifest."""
    return {
        "formula": "pathloss_db = noise_floor_db + gray / 255 * (max_pathloss_db - noise_floor_db); gray 0 = not detectable",
        "noise_floor_db": NOISE_FLOOR_DB,
        "max_pathloss_db": MAX_PATHLOSS_DB,
        "db_per_gray": DB_PER_GRAY,
        "radiomapseer_truncation_db": TRUNCATION_DB,
    }
