"""The field of one interaction, in closed form: what a deterministic image-method ray tracer multiplies along a
path (docs/design/ray-traced-truth.md).

- :func:`free_space_gain`: Friis, ``(lambda / (4 pi d))^2``;
- :class:`Material` and :data:`ITU_MATERIALS`: complex relative permittivity ``eta = a f^b - j 17.98 c f^d / f``
  (f in GHz) with the coefficients of ITU-R P.2040-3, Table 3 (concrete, ground, metal, ...);
- :func:`reflection_coefficient`: the Fresnel coefficients of a flat half-space for perpendicular (TE) and
  parallel (TM) polarization, from the grazing angle;
- :func:`two_ray_gain`: the direct path plus the ground reflection, coherently (the ground bounce of every path
  between antennas at the same height above a flat ground);
- :func:`knife_edge_loss_db`: the Fresnel-Kirchhoff loss of one edge, ITU-R P.526's approximation of
  ``-20 log10 |F(nu)|``, and :func:`corner_nu`: the Fresnel parameter of a path that bends around a corner.

All functions take NumPy arrays (broadcast) and return float64 or complex128 arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPEED_OF_LIGHT = 299_792_458.0


def wavelength(frequency_hz: float) -> float:
    return SPEED_OF_LIGHT / frequency_hz


def free_space_gain(distance_m, frequency_hz: float):
    """Power gain of free space over ``distance_m`` (isotropic antennas): ``(lambda / (4 pi d))^2``."""
    return (wavelength(frequency_hz) / (4.0 * np.pi * np.asarray(distance_m, dtype=np.float64))) ** 2


@dataclass(frozen=True)
class Material:
    """ITU-R P.2040-3 model: relative permittivity ``a f^b`` and conductivity ``c f^d`` S/m, f in GHz."""

    name: str
    a: float
    b: float
    c: float
    d: float

    def permittivity(self, frequency_hz: float) -> complex:
        """Complex relative permittivity ``eps' - j sigma / (omega eps0)`` at ``frequency_hz``."""
        f_ghz = frequency_hz / 1e9
        real = self.a * f_ghz**self.b
        conductivity = self.c * f_ghz**self.d
        return complex(real, -17.98 * conductivity / f_ghz)


ITU_MATERIALS = {
    material.name: material
    for material in (
        Material("concrete", 5.24, 0.0, 0.0462, 0.7822),
        Material("brick", 3.91, 0.0, 0.0238, 0.16),
        Material("glass", 6.31, 0.0, 0.0036, 1.3394),
        Material("metal", 1.0, 0.0, 1e7, 0.0),
        Material("very_dry_ground", 3.0, 0.0, 0.00015, 2.52),
        Material("medium_dry_ground", 15.0, -0.1, 0.035, 1.63),
        Material("wet_ground", 30.0, -0.4, 0.15, 1.30),
    )
}


def reflection_coefficient(grazing_rad, permittivity: complex, polarization: str):
    """Fresnel reflection coefficient of a half-space of relative ``permittivity`` for a wave arriving at the
    grazing angle ``grazing_rad`` (0 = along the surface, pi/2 = normal incidence): ``"TE"`` (electric field
    parallel to the surface) or ``"TM"`` (in the plane of incidence). Both tend to -1 at grazing incidence."""
    sin_g = np.sin(np.asarray(grazing_rad, dtype=np.float64))
    root = np.sqrt(permittivity - np.cos(np.asarray(grazing_rad, dtype=np.float64)) ** 2 + 0j)
    if polarization == "TE":
        return (sin_g - root) / (sin_g + root)
    if polarization == "TM":
        return (permittivity * sin_g - root) / (permittivity * sin_g + root)
    raise ValueError(f"polarization must be TE or TM, got {polarization!r}")


def two_ray_gain(distance_m, height_tx_m: float, height_rx_m: float, frequency_hz: float, ground: Material, polarization: str = "TM"):
    """Power gain of the direct ray plus the ground-reflected ray between antennas ``distance_m`` apart
    horizontally, added as fields (a vertical antenna's field is TM to the ground)."""
    d = np.asarray(distance_m, dtype=np.float64)
    direct = np.hypot(d, height_tx_m - height_rx_m)
    bounced = np.hypot(d, height_tx_m + height_rx_m)
    k = 2.0 * np.pi / wavelength(frequency_hz)
    gamma = reflection_coefficient(np.arctan2(height_tx_m + height_rx_m, d), ground.permittivity(frequency_hz), polarization)
    field = np.exp(-1j * k * direct) / direct + gamma * np.exp(-1j * k * bounced) / bounced
    return (wavelength(frequency_hz) / (4.0 * np.pi)) ** 2 * np.abs(field) ** 2


def knife_edge_loss_db(nu):
    """Loss in dB (positive) of one knife edge with Fresnel parameter ``nu``: ITU-R P.526's
    ``6.9 + 20 log10(sqrt((nu - 0.1)^2 + 1) + nu - 0.1)`` for ``nu > -0.78``, 0 below (the edge is then far
    enough out of the first Fresnel zone)."""
    v = np.asarray(nu, dtype=np.float64)
    loss = 6.9 + 20.0 * np.log10(np.sqrt((v - 0.1) ** 2 + 1.0) + v - 0.1)
    return np.where(v > -0.78, loss, 0.0)


def corner_nu(d1_m, d2_m, deflection_rad, frequency_hz: float):
    """Fresnel parameter of a path that turns by ``deflection_rad`` at an edge ``d1_m`` from one end and ``d2_m``
    from the other: ``nu = theta sqrt(2 d1 d2 / (lambda (d1 + d2)))`` (ITU-R P.526, from the angle of
    diffraction)."""
    d1 = np.asarray(d1_m, dtype=np.float64)
    d2 = np.asarray(d2_m, dtype=np.float64)
    theta = np.asarray(deflection_rad, dtype=np.float64)
    return theta * np.sqrt(2.0 * d1 * d2 / (wavelength(frequency_hz) * (d1 + d2)))
