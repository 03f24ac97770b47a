"""Absorption lines of FGK stars: a line list at real rest wavelengths and a line model.

The model is deliberately simple, but every dependence on a stellar parameter has a
physical origin, so that Teff, log g and [Fe/H] leave different fingerprints:

* **Line strength** (optical depth at the line centre, ``tau0``) is scaled from the Sun
  (Teff 5772 K, log g 4.44, [Fe/H] 0), where it is calibrated on an approximate solar
  equivalent width, by Boltzmann excitation (``10**(-theta*chi_exc)``), Saha ionisation
  (the fraction of the element in the line's ionisation stage, from an electron
  pressure ``log Pe = 1.2 - 3.2*(theta - theta_sun) + (log g - 4.44)/3 + [Fe/H]/3``)
  and H- continuous opacity (``kappa ~ Pe * T**-2.5 * 10**(0.75*theta)``), with
  ``theta = 5040 / Teff``; partition functions are ignored. Hence lines of neutral metals
  strengthen steeply towards cool stars and are nearly gravity-insensitive, lines of
  ionised metals (Fe II, Ti II, Sr II, Ba II, Ca II) weaken as gravity rises
  (``~ g**-1/3``), and all metal lines scale with metallicity. Hydrogen uses an empirical
  ``log tau0 ~ -3*theta``, calibrated so that the H-alpha equivalent width goes from
  about 1 A at 4000 K to 7 A at 7000 K.
* **Line shape**: a Voigt optical-depth profile with a Gaussian core (thermal motion plus
  1 km/s microturbulence) and Lorentzian pressure wings whose width grows with the gas
  pressure (``gamma ~ g**0.64`` for metals, ``~ g**(1/3)`` for the Stark-broadened
  Balmer lines): strong lines (Balmer, Ca II H&K, Mg I b, Na I D) widen with log g.
* **Saturation**: the depth profile ``max_depth * (1 - exp(-tau))`` follows the curve of
  growth (linear, flat, damping parts). It is summarised by a Voigt profile with the
  same equivalent width, central depth and far wings (tabulated once per process), so
  broadening by macroturbulence, rotation (a Gaussian of the variance of the rotation
  kernel with limb darkening 0.6) and the instrument is an exact, analytic convolution,
  and the equivalent width does not depend on the resolution. (The shape of strongly
  saturated lines is approximate: resolved, their cores are rounder than the true flat
  bottom, by up to 0.1 of the continuum.) The profile is evaluated as a pseudo-Voigt (Thompson, Cox & Hastings 1987; accurate to about 1 %), only on
  pixels within a window around each line, where it is smoothly tapered to zero.

Lines combine multiplicatively (their transmissions multiply). Wavelengths are in air,
in Angstrom; velocities in km/s.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.integrate import trapezoid
from scipy.interpolate import RegularGridInterpolator
from scipy.special import erfcx, voigt_profile

#: Speed of light in km/s.
C_KMS = 299_792.458
#: 2 k_B / (1 atomic mass unit), in (km/s)**2 per K: thermal speed**2 = this * T / mass.
_THERMAL = 2 * 1.380649e-23 / 1.66053906660e-27 / 1e6

SUN_TEFF = 5772.0
SUN_LOGG = 4.44
_SUN_THETA = 5040.0 / SUN_TEFF
#: Microturbulence (inside the optical-depth profile) and macroturbulence (a Gaussian
#: sigma that broadens the emergent profile), km/s.
MICROTURBULENCE = 1.0
MACROTURBULENCE = 2.0
#: Depth of a fully saturated stellar line core (the residual flux is 1 - MAX_DEPTH).
MAX_DEPTH = 0.9
#: Sigma of a Gaussian with the variance of the rotation kernel (linear limb darkening
#: 0.6), per km/s of vsini.
_EPS = 0.6
ROTATION_SIGMA = float(np.sqrt(((1 - _EPS) / 4 + (2 * _EPS / 3) / 5) / (1 - _EPS / 3)))
#: A line's window ends where its wing depth falls below this (or at the cap, in A).
_WING_DEPTH = 1e-4
_MAX_HALF_WIDTH = 60.0

# Species: atomic mass (u), ionisation stage (1 = neutral, 2 = singly ionised), first
# ionisation potential of the element (eV), Lorentzian half width at half maximum of the
# pressure broadening at solar gravity (km/s).
_SPECIES: dict[str, tuple[float, int, float, float]] = {
    "H I": (1.008, 1, 13.60, 8.0),
    "Na I": (22.99, 1, 5.14, 0.15),
    "Mg I": (24.31, 1, 7.65, 0.15),
    "Al I": (26.98, 1, 5.99, 0.15),
    "Si I": (28.09, 1, 8.15, 0.15),
    "Ca I": (40.08, 1, 6.11, 0.15),
    "Ca II": (40.08, 2, 6.11, 0.3),
    "Ti I": (47.87, 1, 6.83, 0.15),
    "Ti II": (47.87, 2, 6.83, 0.3),
    "Cr I": (52.00, 1, 6.77, 0.15),
    "Mn I": (54.94, 1, 7.43, 0.15),
    "Fe I": (55.85, 1, 7.90, 0.15),
    "Fe II": (55.85, 2, 7.90, 0.3),
    "Ni I": (58.69, 1, 7.64, 0.15),
    "Sr II": (87.62, 2, 5.69, 0.3),
    "Ba II": (137.33, 2, 5.21, 0.3),
}

# (species, rest wavelength in air [A], excitation potential of the lower level [eV],
#  approximate solar equivalent width [mA]). Wavelengths are real; excitation potentials
# and equivalent widths are rounded literature values, used only to set the strengths.
_STELLAR_LINES: tuple[tuple[str, float, float, float], ...] = (
    # Balmer series
    ("H I", 6562.80, 10.20, 4000.0),
    ("H I", 4861.33, 10.20, 3700.0),
    ("H I", 4340.47, 10.20, 2900.0),
    ("H I", 4101.74, 10.20, 2300.0),
    ("H I", 3970.07, 10.20, 1800.0),
    ("H I", 3889.05, 10.20, 1400.0),
    ("H I", 3835.38, 10.20, 1100.0),
    ("H I", 3797.90, 10.20, 900.0),
    # Ca II H & K
    ("Ca II", 3933.66, 0.00, 20000.0),
    ("Ca II", 3968.47, 0.00, 15000.0),
    # Na I (D lines and subordinate pairs)
    ("Na I", 5889.95, 0.00, 752.0),
    ("Na I", 5895.92, 0.00, 564.0),
    ("Na I", 5682.63, 2.10, 105.0),
    ("Na I", 5688.20, 2.10, 125.0),
    ("Na I", 6154.23, 2.10, 38.0),
    ("Na I", 6160.75, 2.10, 57.0),
    # Mg I (b triplet and others)
    ("Mg I", 5167.32, 2.71, 935.0),
    ("Mg I", 5172.68, 2.71, 1259.0),
    ("Mg I", 5183.60, 2.72, 1584.0),
    ("Mg I", 3832.30, 2.71, 1700.0),
    ("Mg I", 3838.29, 2.72, 1900.0),
    ("Mg I", 4571.10, 0.00, 109.0),
    ("Mg I", 4702.99, 4.33, 326.0),
    ("Mg I", 5528.40, 4.35, 293.0),
    # Al I, Si I
    ("Al I", 3944.01, 0.00, 488.0),
    ("Al I", 3961.52, 0.01, 621.0),
    ("Si I", 5708.40, 4.95, 79.0),
    ("Si I", 5772.15, 5.08, 50.0),
    ("Si I", 6155.13, 5.62, 85.0),
    # Ca I
    ("Ca I", 4226.73, 0.00, 1476.0),
    ("Ca I", 4454.78, 1.90, 240.0),
    ("Ca I", 5588.76, 2.53, 200.0),
    ("Ca I", 5857.45, 2.93, 150.0),
    ("Ca I", 6102.72, 1.88, 136.0),
    ("Ca I", 6122.22, 1.89, 222.0),
    ("Ca I", 6162.17, 1.90, 222.0),
    ("Ca I", 6439.08, 2.53, 163.0),
    ("Ca I", 6493.78, 2.52, 142.0),
    ("Ca I", 6717.69, 2.71, 120.0),
    # Ti I, Ti II
    ("Ti I", 4533.24, 0.85, 100.0),
    ("Ti I", 4981.73, 0.85, 110.0),
    ("Ti I", 4991.07, 0.84, 95.0),
    ("Ti I", 4999.50, 0.83, 85.0),
    ("Ti I", 5173.74, 0.00, 70.0),
    ("Ti I", 5192.97, 0.02, 80.0),
    ("Ti I", 5210.39, 0.05, 80.0),
    ("Ti II", 4300.05, 1.18, 150.0),
    ("Ti II", 4395.03, 1.08, 150.0),
    ("Ti II", 4443.80, 1.08, 130.0),
    ("Ti II", 4501.27, 1.12, 120.0),
    ("Ti II", 4563.76, 1.22, 110.0),
    ("Ti II", 4571.97, 1.57, 120.0),
    # Cr I, Mn I, Ni I
    ("Cr I", 4254.33, 0.00, 393.0),
    ("Cr I", 4274.80, 0.00, 299.0),
    ("Cr I", 4289.72, 0.00, 250.0),
    ("Cr I", 5204.51, 0.94, 510.0),
    ("Cr I", 5206.04, 0.94, 640.0),
    ("Cr I", 5208.42, 0.94, 850.0),
    ("Mn I", 4030.75, 0.00, 405.0),
    ("Mn I", 4033.06, 0.00, 341.0),
    ("Mn I", 4034.48, 0.00, 256.0),
    ("Ni I", 5476.90, 1.83, 189.0),
    ("Ni I", 6643.63, 1.68, 95.0),
    ("Ni I", 6767.77, 1.83, 79.0),
    # Fe I
    ("Fe I", 3815.84, 1.48, 1270.0),
    ("Fe I", 3820.43, 0.86, 1700.0),
    ("Fe I", 3825.88, 0.92, 1500.0),
    ("Fe I", 3859.91, 0.00, 1550.0),
    ("Fe I", 4045.81, 1.49, 1174.0),
    ("Fe I", 4063.59, 1.56, 787.0),
    ("Fe I", 4071.74, 1.61, 723.0),
    ("Fe I", 4202.03, 1.49, 326.0),
    ("Fe I", 4250.79, 1.56, 342.0),
    ("Fe I", 4271.76, 1.49, 756.0),
    ("Fe I", 4325.76, 1.61, 793.0),
    ("Fe I", 4383.55, 1.48, 1008.0),
    ("Fe I", 4404.75, 1.56, 898.0),
    ("Fe I", 4415.12, 1.61, 417.0),
    ("Fe I", 4891.49, 2.85, 312.0),
    ("Fe I", 4920.50, 2.83, 429.0),
    ("Fe I", 4957.60, 2.81, 696.0),
    ("Fe I", 5232.94, 2.94, 346.0),
    ("Fe I", 5269.54, 0.86, 478.0),
    ("Fe I", 5324.18, 3.21, 330.0),
    ("Fe I", 5328.04, 0.92, 375.0),
    ("Fe I", 5371.49, 0.96, 303.0),
    ("Fe I", 5397.13, 0.92, 245.0),
    ("Fe I", 5405.77, 0.99, 266.0),
    ("Fe I", 5429.70, 0.96, 285.0),
    ("Fe I", 5446.92, 0.99, 240.0),
    ("Fe I", 5455.61, 1.01, 200.0),
    ("Fe I", 5569.62, 3.42, 160.0),
    ("Fe I", 5572.84, 3.40, 200.0),
    ("Fe I", 5586.76, 3.37, 210.0),
    ("Fe I", 5615.64, 3.33, 250.0),
    ("Fe I", 6065.48, 2.61, 117.0),
    ("Fe I", 6136.61, 2.45, 140.0),
    ("Fe I", 6173.34, 2.22, 68.0),
    ("Fe I", 6230.72, 2.56, 150.0),
    ("Fe I", 6246.32, 3.60, 120.0),
    ("Fe I", 6252.56, 2.40, 120.0),
    ("Fe I", 6301.50, 3.65, 127.0),
    ("Fe I", 6302.49, 3.69, 83.0),
    ("Fe I", 6393.60, 2.43, 130.0),
    ("Fe I", 6400.00, 3.60, 150.0),
    ("Fe I", 6430.85, 2.18, 110.0),
    ("Fe I", 6494.98, 2.40, 160.0),
    ("Fe I", 6592.91, 2.73, 120.0),
    ("Fe I", 6677.99, 2.69, 130.0),
    ("Fe I", 6750.15, 2.42, 80.0),
    # Fe II
    ("Fe II", 4233.17, 2.58, 150.0),
    ("Fe II", 4508.29, 2.86, 90.0),
    ("Fe II", 4522.63, 2.84, 110.0),
    ("Fe II", 4583.84, 2.81, 140.0),
    ("Fe II", 4923.93, 2.89, 180.0),
    ("Fe II", 5018.44, 2.89, 200.0),
    ("Fe II", 5169.03, 2.89, 250.0),
    ("Fe II", 5197.58, 3.23, 80.0),
    ("Fe II", 5234.62, 3.22, 85.0),
    ("Fe II", 5276.00, 3.20, 120.0),
    ("Fe II", 5316.62, 3.15, 130.0),
    ("Fe II", 6149.26, 3.89, 36.0),
    ("Fe II", 6247.56, 3.89, 54.0),
    ("Fe II", 6456.38, 3.90, 64.0),
    ("Fe II", 6516.08, 2.89, 56.0),
    # Sr II, Ba II
    ("Sr II", 4077.71, 0.00, 428.0),
    ("Sr II", 4215.52, 0.00, 338.0),
    ("Ba II", 4554.03, 0.00, 159.0),
    ("Ba II", 4934.08, 0.00, 150.0),
    ("Ba II", 5853.67, 0.60, 63.0),
    ("Ba II", 6141.71, 0.70, 120.0),
    ("Ba II", 6496.90, 0.60, 92.0),
)

# Telluric water lines near H-alpha: (air wavelength [A], optical depth at zenith).
# Positions are approximate (about 0.05 A); depths are typical of a dry site.
_WATER_LINES: tuple[tuple[float, float], ...] = (
    (6532.36, 0.05),
    (6543.91, 0.10),
    (6547.71, 0.04),
    (6548.62, 0.08),
    (6552.63, 0.08),
    (6553.79, 0.04),
    (6557.17, 0.08),
    (6564.21, 0.10),
    (6568.81, 0.03),
    (6572.09, 0.08),
    (6574.85, 0.10),
)
# O2 B band (b1Sigma_g+ v=1 <- X3Sigma_g- v=0) from rigid-rotor constants (cm^-1), odd
# rotational levels only, spin splitting ignored; the origin is set so that the R-branch
# head falls at 6867.2 A (air). Positions are good to about 1 A.
_O2_B_UPPER, _O2_B_LOWER = 1.3731, 1.4377
_O2_HEAD_AIR = 6867.2
_O2_TAU_PEAK = 5.0
_AIR_INDEX = 1.000276
_ATMOSPHERE_TEMPERATURE = 250.0
# Masses (u) and pressure-broadening half widths (km/s) of the telluric molecules.
_O2 = (32.0, 0.8)
_H2O = (18.0, 1.5)


@dataclass(frozen=True)
class LineList:
    """Static line data, one entry per line (arrays of shape ``(m,)``)."""

    species: np.ndarray  # str
    wavelength: np.ndarray  # rest wavelength in air, A
    chi_exc: np.ndarray  # eV
    mass: np.ndarray  # u
    stage: np.ndarray  # 1 or 2
    chi_ion: np.ndarray  # eV
    gamma_sun: np.ndarray  # km/s, Lorentzian HWHM at solar gravity
    log_tau_sun: np.ndarray  # log10 central optical depth in the Sun

    @property
    def hydrogen(self) -> np.ndarray:
        return self.species == "H I"


@dataclass(frozen=True)
class LineProfiles:
    """Observed line profiles of ``m`` lines in ``n`` spectra; every array is ``(n, m)``.

    A line removes the fraction ``ew * pseudo_voigt(lambda - centre; fwhm, eta)`` of the
    flux, within ``half_width`` of its centre (all in Angstrom).
    """

    centre: np.ndarray
    ew: np.ndarray
    fwhm: np.ndarray
    eta: np.ndarray
    half_width: np.ndarray


# ---------------------------------------------------------------------------------------
# Curve of growth
# ---------------------------------------------------------------------------------------

_LOG_TAU = np.linspace(-4.0, 10.0, 141)
_LOG_A = np.linspace(-4.0, 2.0, 61)


def _voigt_peak(sigma: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Peak value of the unit-area Voigt profile (Gaussian sigma, Lorentzian HWHM gamma)."""
    return erfcx(gamma / (sigma * np.sqrt(2.0))) / (sigma * np.sqrt(2.0 * np.pi))


@functools.cache
def _curve_of_growth() -> RegularGridInterpolator:
    """Voigt summary of the saturated profile ``1 - exp(-tau0 * V(u; 1, a) / V(0; 1, a))``.

    For each ``(log10 tau0, log10 a)`` (``a`` = Lorentzian HWHM / Gaussian sigma, ``u`` in
    units of the Gaussian sigma) it tabulates, with ``w`` the equivalent width:
    ``log10(w / tau0)``; ``log10(g / a)``, where ``g`` is the Lorentzian HWHM of a
    unit-area Voigt with the same far wings; and ``s``, its Gaussian sigma giving the same
    central depth ``1 - exp(-tau0)`` (0 when the Lorentzian alone is already too shallow).
    In the weak-line limit ``w = tau0 / V(0)``, ``g = a`` and ``s = 1``.
    """
    u = np.concatenate([np.linspace(0.0, 20.0, 2001)[:-1], np.geomspace(20.0, 1e13, 2500)])
    tau0 = 10.0**_LOG_TAU
    ratio_w = np.empty((_LOG_TAU.size, _LOG_A.size))
    ratio_g = np.empty_like(ratio_w)
    for j, a in enumerate(10.0**_LOG_A):
        shape = voigt_profile(u, 1.0, a)
        peak = shape[0]
        absorbed = -np.expm1(-tau0[:, None] * (shape / peak))
        tail = tau0 * a / (np.pi * peak * u[-1])  # integral of tau0*h(u) beyond u[-1]
        w = 2.0 * (trapezoid(absorbed, u, axis=1) + tail)
        ratio_w[:, j] = np.log10(w / tau0)
        ratio_g[:, j] = np.log10(tau0 / (peak * w))  # g / a = tau0 / (V(0) w)
    w = tau0[:, None] * 10.0**ratio_w
    g = 10.0 ** _LOG_A[None, :] * 10.0**ratio_g
    target = -np.expm1(-tau0)[:, None] / w  # the peak value the unit-area Voigt must have
    lo = np.zeros_like(w)
    hi = 1.0 / (target * np.sqrt(2 * np.pi))  # V(0; s, g) <= 1 / (s sqrt(2 pi))
    feasible = 1.0 / (np.pi * g) > target
    for _ in range(60):  # bisection: V(0; s, g) decreases with s
        mid = 0.5 * (lo + hi)
        above = _voigt_peak(np.maximum(mid, 1e-300), g) > target
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    s = np.where(feasible, 0.5 * (lo + hi), 0.0)
    return RegularGridInterpolator((_LOG_TAU, _LOG_A), np.stack([ratio_w, ratio_g, s], axis=-1))


def _summarise(log_tau0, sigma_int, gamma):
    """Equivalent width, Lorentzian HWHM and Gaussian sigma of the intrinsic line.

    ``sigma_int`` and ``gamma`` share any unit; the results are in that unit, for a line
    of unit maximum depth (multiply the width by the line's maximum depth).
    """
    log_a = np.log10(gamma / sigma_int)
    points = np.stack(
        [np.clip(log_tau0, _LOG_TAU[0], _LOG_TAU[-1]), np.clip(log_a, _LOG_A[0], _LOG_A[-1])],
        axis=-1,
    )
    ratio_w, ratio_g, s = np.moveaxis(_curve_of_growth()(points), -1, 0)
    width = sigma_int * 10.0 ** (ratio_w + np.minimum(log_tau0, _LOG_TAU[-1]))
    return width, gamma * 10.0**ratio_g, s * sigma_int


def _invert_curve_of_growth(width, sigma_int, gamma):
    """log10 tau0 of lines of unit maximum depth with the given equivalent widths, shape (m,)."""
    out = np.empty(width.size)
    for k in range(width.size):
        trial, _, _ = _summarise(_LOG_TAU, np.full(_LOG_TAU.size, sigma_int[k]), gamma[k])
        out[k] = np.interp(np.log10(width[k]), np.log10(trial), _LOG_TAU)
    return out


# ---------------------------------------------------------------------------------------
# Line strengths and widths
# ---------------------------------------------------------------------------------------


def _log_electron_pressure(theta, logg, feh):
    """log10 of the electron pressure (dyn cm^-2) where the continuum forms (crude scaling)."""
    return 1.2 - 3.2 * (theta - _SUN_THETA) + (logg - SUN_LOGG) / 3.0 + feh / 3.0


def _excitation_ionisation(lines: LineList, teff, logg, feh):
    """log10 of (line opacity / continuous opacity) up to a per-line constant, shape (n, m)."""
    theta = (5040.0 / np.asarray(teff, dtype=float))[:, None]
    logg = np.asarray(logg, dtype=float)[:, None]
    feh = np.asarray(feh, dtype=float)[:, None]
    log_pe = _log_electron_pressure(theta, logg, feh)
    log_t = np.log10(5040.0 / theta)
    # Saha: N_II / N_I = Phi(T) / Pe with log Phi = log(0.6665) + 2.5 log T - theta chi_ion.
    log_phi = -0.176 + 2.5 * log_t - theta * lines.chi_ion
    excess = np.where(lines.stage == 1, log_phi - log_pe, log_pe - log_phi)
    log_fraction = -np.logaddexp(0.0, excess * np.log(10.0)) / np.log(10.0)
    metal = log_fraction - theta * (lines.chi_exc + 0.75) - log_pe + 2.5 * log_t + feh
    return np.where(lines.hydrogen, -3.0 * theta, metal)


def _pressure_scaling(lines: LineList, logg):
    """Factor on the Lorentzian width relative to solar gravity, shape (n, m)."""
    exponent = np.where(lines.hydrogen, 1.0 / 3.0, 0.64)
    return 10.0 ** (exponent * (np.asarray(logg, dtype=float)[:, None] - SUN_LOGG))


def _instrument_sigma(resolving_power: float) -> float:
    """Gaussian sigma (km/s) of an instrument of resolving power lambda / FWHM."""
    return C_KMS / (resolving_power * 2.0 * np.sqrt(2.0 * np.log(2.0)))


def _intrinsic_sigma(mass, temperature, turbulence):
    """Gaussian sigma (km/s) of thermal plus turbulent motions."""
    return np.sqrt((_THERMAL * temperature / mass + turbulence**2) / 2.0)


@functools.cache
def stellar_lines() -> LineList:
    """The stellar line list, with strengths calibrated on the solar equivalent widths."""
    species, wavelength, chi_exc, ew_sun = zip(*_STELLAR_LINES, strict=True)
    species = np.array(species)
    mass, stage, chi_ion, gamma_sun = (
        np.array([_SPECIES[s][k] for s in species]) for k in range(4)
    )
    wavelength = np.array(wavelength)
    sigma = _intrinsic_sigma(mass, SUN_TEFF, MICROTURBULENCE)
    unit_width = np.array(ew_sun) / 1000.0 / MAX_DEPTH / wavelength * C_KMS  # km/s
    return LineList(
        species=species,
        wavelength=wavelength,
        chi_exc=np.array(chi_exc),
        mass=mass,
        stage=stage.astype(int),
        chi_ion=chi_ion,
        gamma_sun=gamma_sun,
        log_tau_sun=_invert_curve_of_growth(unit_width, sigma, gamma_sun),
    )


def _observed(centre, log_tau0, sigma_int, gamma, broadening, max_depth) -> LineProfiles:
    """Observed profiles from intrinsic parameters (velocities in km/s), all ``(n, m)``."""
    width, gamma_eff, sigma_eff = _summarise(log_tau0, sigma_int, gamma)
    to_angstrom = centre / C_KMS
    ew = max_depth * width * to_angstrom
    fwhm_gauss = 2.0 * np.sqrt(2.0 * np.log(2.0)) * np.hypot(sigma_eff, broadening) * to_angstrom
    fwhm_lorentz = 2.0 * gamma_eff * to_angstrom
    fwhm, eta = _pseudo_voigt_shape(fwhm_gauss, fwhm_lorentz)
    wing = np.sqrt(ew * eta * fwhm / (2.0 * np.pi * _WING_DEPTH))
    half_width = np.minimum(np.maximum(wing, 5.0 * fwhm), _MAX_HALF_WIDTH)
    return LineProfiles(centre=centre, ew=ew, fwhm=fwhm, eta=eta, half_width=half_width)


def stellar_profiles(*, teff, logg, feh, rv, vsini, resolving_power: float) -> LineProfiles:
    """Observed stellar line profiles for ``n`` stars (arrays of shape ``(n,)``).

    ``teff`` in K, ``logg`` in dex (cgs), ``feh`` in dex, ``rv`` and ``vsini`` in km/s;
    ``resolving_power`` = lambda / FWHM of the instrument. Line centres are Doppler
    shifted: ``lambda_obs = lambda_rest * (1 + rv / c)``.
    """
    lines = stellar_lines()
    teff = np.asarray(teff, dtype=float)
    strength = _excitation_ionisation(lines, teff, logg, feh)
    sun = _excitation_ionisation(lines, [SUN_TEFF], [SUN_LOGG], [0.0])
    log_tau0 = lines.log_tau_sun + strength - sun
    sigma_int = _intrinsic_sigma(lines.mass, teff[:, None], MICROTURBULENCE)
    gamma = lines.gamma_sun * _pressure_scaling(lines, logg)
    broadening = np.sqrt(
        MACROTURBULENCE**2
        + (ROTATION_SIGMA * np.asarray(vsini, dtype=float)) ** 2
        + _instrument_sigma(resolving_power) ** 2
    )[:, None]
    centre = lines.wavelength * (1.0 + np.asarray(rv, dtype=float)[:, None] / C_KMS)
    return _observed(centre, log_tau0, sigma_int, gamma, broadening, MAX_DEPTH)


@functools.cache
def _telluric_lines() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Telluric lines: air wavelength (A), zenith optical depth, mass (u), gamma (km/s)."""
    n = np.arange(1, 41, 2.0)
    upper, lower = _O2_B_UPPER, _O2_B_LOWER
    r_branch = 2 * upper + (3 * upper - lower) * n + (upper - lower) * n**2
    p_branch = -(upper + lower) * n + (upper - lower) * n**2
    head = r_branch.max()
    origin = 1e8 / (_O2_HEAD_AIR * _AIR_INDEX) - head
    wavenumber = origin + np.concatenate([r_branch, p_branch])
    population = (2 * n + 1) * np.exp(-1.4388 * lower * n * (n + 1) / _ATMOSPHERE_TEMPERATURE)
    tau_o2 = _O2_TAU_PEAK * np.tile(population / population.max(), 2)
    water_wave, water_tau = (np.array(v) for v in zip(*_WATER_LINES, strict=True))
    wave = np.concatenate([1e8 / (wavenumber * _AIR_INDEX), water_wave])
    tau = np.concatenate([tau_o2, water_tau])
    mass = np.concatenate([np.full(tau_o2.size, _O2[0]), np.full(water_tau.size, _H2O[0])])
    gamma = np.concatenate([np.full(tau_o2.size, _O2[1]), np.full(water_tau.size, _H2O[1])])
    return wave, tau, mass, gamma


def telluric_profiles(*, airmass, resolving_power: float) -> LineProfiles:
    """Observed telluric line profiles for ``n`` spectra (``airmass`` of shape ``(n,)``).

    Telluric lines sit still in the observer frame; their optical depth is the zenith
    value times the airmass; they are broadened by the instrument only.
    """
    wave, tau, mass, gamma = _telluric_lines()
    airmass = np.asarray(airmass, dtype=float)[:, None]
    log_tau0 = np.log10(tau * airmass)
    sigma_int = np.broadcast_to(
        _intrinsic_sigma(mass, _ATMOSPHERE_TEMPERATURE, 0.0), log_tau0.shape
    )
    centre = np.broadcast_to(wave, log_tau0.shape)
    return _observed(centre, log_tau0, sigma_int, gamma, _instrument_sigma(resolving_power), 1.0)


# ---------------------------------------------------------------------------------------
# Evaluation on a wavelength grid
# ---------------------------------------------------------------------------------------


def _pseudo_voigt_shape(fwhm_gauss, fwhm_lorentz):
    """Total FWHM and Lorentzian fraction of the Thompson-Cox-Hastings pseudo-Voigt."""
    fg, fl = fwhm_gauss, fwhm_lorentz
    fwhm = (
        fg**5
        + 2.69269 * fg**4 * fl
        + 2.42843 * fg**3 * fl**2
        + 4.47163 * fg**2 * fl**3
        + 0.07842 * fg * fl**4
        + fl**5
    ) ** 0.2
    r = fl / fwhm
    return fwhm, 1.36603 * r - 0.47719 * r**2 + 0.11116 * r**3


def absorb(transmission: np.ndarray, wave: np.ndarray, profiles: LineProfiles) -> None:
    """Multiply ``transmission`` (shape ``(n, L)``, float32) by the lines, in place.

    ``wave`` (shape ``(L,)``, Angstrom) must be evenly spaced. Each line touches only the
    pixels within its window, so the cost grows with the number of lines, not the grid.
    The value at a pixel depends only on that spectrum's own parameters, whatever the
    other spectra of the batch are.
    """
    if transmission.shape[0] == 0:
        return
    start, step, size = wave[0], wave[1] - wave[0], wave.size
    edges_lo = np.floor((profiles.centre - profiles.half_width - start) / step).min(axis=0)
    edges_hi = np.ceil((profiles.centre + profiles.half_width - start) / step).max(axis=0) + 1
    # pseudo-Voigt = lorentz / (1 + q) + gauss * exp(-ln2 q), q = (2 x / fwhm)**2
    f32 = np.float32
    lorentz = (profiles.ew * profiles.eta * 2.0 / (np.pi * profiles.fwhm)).astype(f32)
    gauss = (
        profiles.ew * (1.0 - profiles.eta) * 2.0 * np.sqrt(np.log(2.0) / np.pi) / profiles.fwhm
    ).astype(f32)
    scale = (4.0 / profiles.fwhm**2).astype(f32)
    taper = (2.0 / profiles.half_width).astype(f32)  # 1 within half_width / 2, 0 beyond it
    ln2 = f32(np.log(2.0))
    for j in range(profiles.centre.shape[1]):
        lo, hi = int(max(edges_lo[j], 0)), int(min(edges_hi[j], size))
        if hi <= lo:
            continue
        x = (wave[lo:hi] - profiles.centre[:, j, None]).astype(f32)
        q = x * x * scale[:, j, None]
        depth = lorentz[:, j, None] / (1 + q) + gauss[:, j, None] * np.exp(-ln2 * q)
        t = np.clip(2 - np.abs(x) * taper[:, j, None], 0, 1)
        depth *= t * t * (3 - 2 * t)
        transmission[:, lo:hi] *= 1 - depth
