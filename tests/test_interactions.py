"""The closed-form interactions of the deterministic ray tracer against their textbook values."""

import numpy as np
import pytest

from radioloc.propagation.dpm import free_space_loss_db
from radioloc.propagation.interactions import (
    ITU_MATERIALS,
    Material,
    corner_nu,
    free_space_gain,
    knife_edge_loss_db,
    reflection_coefficient,
    two_ray_gain,
    wavelength,
)

F = 5.9e9
AIR = Material("air", 1.0, 0.0, 0.0, 0.0)


def test_free_space_is_friis_and_agrees_with_the_dominant_path_model():
    assert 10 * np.log10(free_space_gain(100.0, F)) == pytest.approx(-87.865, abs=1e-3)
    distances = np.array([1.0, 10.0, 250.0])
    assert np.allclose(-10 * np.log10(free_space_gain(distances, F)), free_space_loss_db(distances, F))
    assert free_space_gain(20.0, F) == pytest.approx(free_space_gain(10.0, F) / 4)  # inverse square


def test_itu_concrete_permittivity_at_5_9_ghz():
    eta = ITU_MATERIALS["concrete"].permittivity(F)
    assert eta.real == pytest.approx(5.24) and eta.imag == pytest.approx(-17.98 * 0.0462 * 5.9**0.7822 / 5.9)


@pytest.mark.parametrize("polarization", ["TE", "TM"])
def test_reflection_is_minus_one_at_grazing_incidence_and_fresnel_at_normal(polarization):
    eta = ITU_MATERIALS["concrete"].permittivity(F)
    assert reflection_coefficient(1e-9, eta, polarization) == pytest.approx(-1.0, abs=1e-6)
    normal = (1 - np.sqrt(eta)) / (1 + np.sqrt(eta))
    assert reflection_coefficient(np.pi / 2, eta, polarization) == pytest.approx(normal if polarization == "TE" else -normal)
    assert abs(reflection_coefficient(0.3, ITU_MATERIALS["metal"].permittivity(F), polarization)) == pytest.approx(1.0, abs=1e-3)


def test_tm_reflection_vanishes_at_the_brewster_angle_of_a_lossless_dielectric():
    brewster = np.arctan(1 / np.sqrt(4.0))  # grazing angle: tan = 1 / sqrt(eps)
    assert abs(reflection_coefficient(brewster, 4.0 + 0j, "TM")) < 1e-12
    assert abs(reflection_coefficient(brewster, 4.0 + 0j, "TE")) > 0.3


def test_two_ray_without_a_ground_is_free_space_and_far_away_falls_as_the_fourth_power():
    d = np.array([5.0, 50.0, 300.0])
    assert np.allclose(two_ray_gain(d, 1.5, 1.5, F, AIR), free_space_gain(d, F))
    far = np.array([8000.0, 16000.0])
    gain = two_ray_gain(far, 1.5, 1.5, F, ITU_MATERIALS["metal"])
    assert gain == pytest.approx((1.5 * 1.5) ** 2 / far**4, rel=0.03)  # (h_t h_r / d^2)^2 beyond the break point
    near = two_ray_gain(np.linspace(20, 200, 400), 1.5, 1.5, F, ITU_MATERIALS["medium_dry_ground"])
    free = free_space_gain(np.linspace(20, 200, 400), F)
    assert (near / free).max() < 4.0 + 1e-9 and (near / free).min() < 0.1  # at most +6 dB, and deep fades


def test_knife_edge_loss_follows_itu_p526():
    assert knife_edge_loss_db(0.0) == pytest.approx(6.03, abs=0.01)  # grazing: half the field, about 6 dB
    assert knife_edge_loss_db(-1.0) == 0.0
    for nu in (5.0, 10.0, 50.0):
        assert knife_edge_loss_db(nu) == pytest.approx(12.95 + 20 * np.log10(nu), abs=0.3)  # deep-shadow asymptote


def test_corner_nu_grows_with_the_angle_and_the_fresnel_zone():
    assert corner_nu(30.0, 30.0, 0.0, F) == 0.0
    assert corner_nu(50.0, 50.0, 0.2, F) == pytest.approx(0.2 * np.sqrt(50.0 / wavelength(F)))
    assert corner_nu(10.0, 90.0, 0.5, F) < corner_nu(50.0, 50.0, 0.5, F)  # an edge near one end bends less of the zone
