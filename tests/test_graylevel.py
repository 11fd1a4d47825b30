import numpy as np

from radioloc.propagation.graylevel import DB_PER_GRAY, MAX_PATHLOSS_DB, NOISE_FLOOR_DB, db_to_gray, gray_to_db


def test_constants_follow_radiomapseer():
    assert NOISE_FLOOR_DB == -147 + 0.2 * (-47.84 + 147)
    assert round(NOISE_FLOOR_DB, 3) == -127.168
    assert gray_to_db(np.array([255]))[0] == MAX_PATHLOSS_DB


def test_round_trip_within_half_a_gray_level():
    pathloss = np.linspace(NOISE_FLOOR_DB + 0.2, MAX_PATHLOSS_DB, 1000)
    back = gray_to_db(db_to_gray(pathloss))
    assert np.abs(back - pathloss).max() <= DB_PER_GRAY / 2 + 1e-9


def test_undetectable_and_missing_are_zero():
    assert db_to_gray(np.array([np.nan, -200.0, NOISE_FLOOR_DB, -20.0])).tolist() == [0, 0, 0, 255]
