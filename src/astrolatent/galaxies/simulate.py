"""Synthetic galaxy catalogues and multi-band Sersic image cutouts with known relations.

Every galaxy is drawn from the factors below (logs are base 10, magnitudes AB, M is the
true log stellar mass in Msun, N a standard normal draw, U a uniform one on [0, 1)):

1. ``true_logmass`` M ~ N(mass_mean, mass_sd) truncated to [8, 12]; redshift
   ``z = z_max U^(1/3)`` (uniform in Euclidean volume, at least 0.005).
2. ``passive`` ~ Bernoulli(1 / (1 + exp(-(M - 10.6) / 0.25))); ``class`` is
   ``passive`` or ``star-forming``.
3. ``delta_ml`` ~ N: a stellar-population factor that moves the mass-to-light ratio and
   the light profile but NOT the colours.
4. Mass-colour relation (rest-frame intrinsic g - r): ``colour_gr = 0.45 + 0.12 (M - 10)
   + 0.25 passive + 0.04 N``.
5. Mass-to-light ratio (Bell et al. 2003, i band, plus the hidden term):
   ``log M/L_i = -0.152 + 0.518 colour_gr + 0.08 delta_ml``; absolute magnitude
   ``M_i = 4.53 - 2.5 (M - log M/L_i)``. Other bands follow rest-frame colours that are
   linear in c = colour_gr - 0.6: u-g = 1.2 + 1.8c, g-r = colour_gr, r-i = 0.35 + 0.5c,
   i-z = 0.2 + 0.35c, i-W1 = 0.3 + 0.5c, W1-W2 = -0.5 + 0.1c.
6. Sersic index ``true_n = clip(1 + 2.5 passive + 0.4 delta_ml + 0.3 (M - 10) + 0.15 N,
   0.5, 6)``.
7. Mass-size relation: ``log true_re_kpc = 0.55 + 0.22 (M - 10) - 0.1 passive + 0.12 N``;
   the angular size uses the angular-diameter distance.
8. Orientation: ``cos_i`` ~ U, ``inclination`` = arccos(cos_i) in degrees; intrinsic
   thickness q0 = 0.15 (star-forming) or 0.55 (passive); ``axis_ratio = sqrt(cos_i^2 +
   q0^2 (1 - cos_i^2))``; position angle ``pa`` ~ U(0, 180) degrees.
9. Inclination-dependent dust: ``av_dust = A_face (1 + 1.5 (1 - cos_i))`` with A_face =
   clip(0.3 + 0.2 (M - 10), 0.05, 1) for star-forming and 0.05 for passive galaxies;
   A_band = av_dust x (1.55, 1.18, 0.85, 0.64, 0.47, 0.06, 0.04) for u g r i z W1 W2, so the
   dust reddening ``egr_dust`` = E(g-r) = 0.33 av_dust grows with inclination.
10. Galactic extinction ``ebv`` = 0.005 + Exponential(0.025) mag, A_band = ebv x (5.155,
    3.793, 2.751, 2.086, 1.479, 0.18, 0.16) (SFD98 for ugriz).
11. K-correction ``z (k0 + k1 c)`` with k0 = (2.0, 1.6, 0.6, 0.3, 0.2, -0.6, -0.4) and
    k1 = (3, 3, 1, 0.5, 0.3, 0, 0); apparent magnitude = absolute + distance modulus
    (flat LCDM, Planck18's H0 and Omega_m) + K-correction + dust + Galactic extinction.
12. The TARGET ``logmass = M + inclination_bias (cos_i - 0.5)``: a catalogue-level bias
    (like an SED fit that mis-corrects dust for inclination) that reaches the target
    WITHOUT passing through the photometry or the images.
13. ``control`` ~ N: a negative control that affects nothing.

Observations. Fluxes (nanomaggies) get Gaussian noise of sigma = sqrt((f5/5)^2 +
(0.01 f)^2), f5 the flux of the 5-sigma depths (22.0, 22.2, 22.2, 21.3, 20.5, 19.6, 19.3);
``mag_*``/``err_*`` come from :func:`~astrolatent.galaxies.catalog.flux_to_mag`, and a
non-positive flux is written as the sentinels mag = 99, err = -9999. The selection keeps
galaxies with observed ``mag_r < r_limit``. Morphology measurements (r band): ``morph_n =
true_n e^(0.1 N)``, ``morph_q = clip(axis_ratio + 0.03 N, 0.05, 1)``, ``morph_r50`` and
``morph_r90`` = the Sersic half- and 90%-light semi-major axes (arcsec) times e^(0.08 N).
``z`` and ``ebv`` are observed exactly.

Images ``(N, bands, S, S)`` float32, nanomaggies per pixel (``pixel_scale`` arcsec): each
band is a Sersic profile (true_n, axis_ratio, pa, centre offset within half a pixel) of
half-light radius ``true_re_arcsec (1 + gradient (2 - j) / 2)`` for band index j (u = 0 ..
z = 4), ``gradient = clip(0.1 + 0.08 delta_ml, -0.3, 0.4)`` (bluer outskirts), scaled to the
band's noiseless flux (the stamp holds all the light), convolved with a Gaussian PSF of
FWHM (1.5, 1.4, 1.3, 1.25, 1.3) arcsec, plus noise of variance sky^2 + f/200 with sky =
(0.10, 0.03, 0.04, 0.06, 0.20) nanomaggies. The stored pixels are linear; the data module
applies sign(x) log(|x| + 1) when it loads them.

Planted information about the target ``logmass``, by input set:

* shared (redundant): luminosity and size both grow with M; passive galaxies are red
  (photometry) AND concentrated (morphology);
* unique to photometry: colours carry the mass-to-light ratio and the dust; the IR bands
  (W1, W2) see mass almost free of dust;
* unique to morphology/images: ``delta_ml`` moves M/L but not the colours; only the
  Sersic index (and the images' colour gradient) carry it;
* joint (synergistic): apparent magnitude and angular size are both dimmed by distance;
  together (or magnitude with redshift) they give luminosity and hence M, neither alone;
* inclination: acts on the observed colours through dust (the photometry path) and on the
  target directly (outside it); ``axis_ratio``/``morph_q`` measure it; ``control`` is
  unrelated to everything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import fft, special, stats

from astrolatent.errors import ConfigError
from astrolatent.galaxies.catalog import flux_to_mag
from astrolatent.galaxies.config import SIM_BANDS, GalaxySimulationConfig
from astrolatent.outputs import marks
from astrolatent.outputs.layout import (
    GALAXY_CATALOG_FILE,
    GALAXY_IMAGES_FILE,
    GALAXY_TRUTH_FILE,
    SIMULATION_CONFIG_FILE,
)

log = logging.getLogger(__name__)

#: Catalogue bands: the image bands then two WISE-like infrared bands.
CATALOG_BANDS = (*SIM_BANDS, "W1", "W2")
_DEPTH_5SIGMA = np.array([22.0, 22.2, 22.2, 21.3, 20.5, 19.6, 19.3])
_DUST_RATIO = np.array([1.55, 1.18, 0.85, 0.64, 0.47, 0.06, 0.04])
_MW_RATIO = np.array([5.155, 3.793, 2.751, 2.086, 1.479, 0.18, 0.16])
_K0 = np.array([2.0, 1.6, 0.6, 0.3, 0.2, -0.6, -0.4])
_K1 = np.array([3.0, 3.0, 1.0, 0.5, 0.3, 0.0, 0.0])
_PSF_FWHM = np.array([1.5, 1.4, 1.3, 1.25, 1.3])  # arcsec, ugriz
_SKY_SIGMA = np.array([0.10, 0.03, 0.04, 0.06, 0.20])  # nanomaggies per pixel, ugriz
_COUNTS_PER_NANOMAGGY = 200.0
_MASS_LIMITS = (8.0, 12.0)
_CHUNK = 256
_MAX_BATCHES = 50
_OMEGA_M = 0.30966
_HUBBLE_DISTANCE_MPC = 299_792.458 / 67.66
MAG_SENTINEL = 99.0
ERR_SENTINEL = -9999.0

#: Columns of ``truth.parquet`` (besides ``id``); the catalogue holds them too.
TRUTH_COLUMNS = (
    "logmass",
    "true_logmass",
    "z",
    "ebv",
    "passive",
    "class",
    "delta_ml",
    "colour_gr",
    "true_n",
    "true_re_kpc",
    "true_re_arcsec",
    "cos_i",
    "inclination",
    "axis_ratio",
    "pa",
    "av_dust",
    "egr_dust",
    "gradient",
    "control",
)


@dataclass
class GalaxySimulationOutput:
    """Paths written by :func:`write_galaxies`."""

    out_dir: Path
    catalog: Path
    truth: Path
    images: Path | None
    n: int

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def _cosmology_tables(z_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z grid, distance modulus (mag) and angular-diameter distance (kpc) in flat LCDM
    with Planck18's H0 = 67.66 km/s/Mpc and Omega_m = 0.30966 (radiation neglected)."""
    grid = np.linspace(0.0, z_max * 1.01, 2001)
    inv_e = 1 / np.sqrt(_OMEGA_M * (1 + grid) ** 3 + 1 - _OMEGA_M)
    steps = np.diff(grid) * (inv_e[1:] + inv_e[:-1]) / 2
    comoving = _HUBBLE_DISTANCE_MPC * np.concatenate([[0.0], np.cumsum(steps)])
    grid, comoving = grid[1:], comoving[1:]
    dist_mod = 5 * np.log10(comoving * (1 + grid) * 1e5)  # luminosity distance / 10 pc
    return grid, dist_mod, comoving / (1 + grid) * 1e3


def _sersic_b(n: np.ndarray) -> np.ndarray:
    """b_n such that R_e holds half the light: P(2n, b_n) = 1/2."""
    return special.gammaincinv(2.0 * n, 0.5)


def sersic_radius_ratio(n: np.ndarray, fraction: float) -> np.ndarray:
    """R_fraction / R_e of a Sersic profile of index ``n`` (e.g. R90/R50 for 0.9)."""
    n = np.asarray(n, dtype=np.float64)
    return (special.gammaincinv(2.0 * n, fraction) / _sersic_b(n)) ** n


def _draw_population(
    config: GalaxySimulationConfig, rng: np.random.Generator, size: int, cosmology: tuple
) -> dict:
    """Truth, noiseless and observed quantities of ``size`` galaxies (before selection)."""
    lo, hi = _MASS_LIMITS
    a, b = (lo - config.mass_mean) / config.mass_sd, (hi - config.mass_mean) / config.mass_sd
    mass = stats.truncnorm.rvs(
        a, b, loc=config.mass_mean, scale=config.mass_sd, size=size, random_state=rng
    )
    z = np.maximum(config.z_max * rng.random(size) ** (1 / 3), 0.005)
    passive = (rng.random(size) < special.expit((mass - 10.6) / 0.25)).astype(np.int64)
    delta = rng.standard_normal(size)
    colour = 0.45 + 0.12 * (mass - 10) + 0.25 * passive + 0.04 * rng.standard_normal(size)
    log_ml_i = -0.152 + 0.518 * colour + 0.08 * delta
    abs_i = 4.53 - 2.5 * (mass - log_ml_i)
    c = colour - 0.6
    # absolute magnitudes in u g r i z W1 W2 from the rest-frame colours
    abs_r = abs_i + 0.35 + 0.5 * c
    abs_g = abs_r + colour
    abs_u = abs_g + 1.2 + 1.8 * c
    abs_z = abs_i - (0.2 + 0.35 * c)
    abs_w1 = abs_i - (0.3 + 0.5 * c)
    abs_w2 = abs_w1 - (-0.5 + 0.1 * c)
    absolute = np.stack([abs_u, abs_g, abs_r, abs_i, abs_z, abs_w1, abs_w2], axis=1)

    sersic_n = np.clip(
        1 + 2.5 * passive + 0.4 * delta + 0.3 * (mass - 10) + 0.15 * rng.standard_normal(size),
        0.5,
        6.0,
    )
    re_kpc = 10 ** (0.55 + 0.22 * (mass - 10) - 0.1 * passive + 0.12 * rng.standard_normal(size))
    cos_i = rng.random(size)
    q0 = np.where(passive == 1, 0.55, 0.15)
    axis_ratio = np.sqrt(cos_i**2 + q0**2 * (1 - cos_i**2))
    pa = 180.0 * rng.random(size)
    a_face = np.where(passive == 1, 0.05, np.clip(0.3 + 0.2 * (mass - 10), 0.05, 1.0))
    av = a_face * (1 + 1.5 * (1 - cos_i))
    ebv = 0.005 + rng.exponential(0.025, size)

    grid, dm_grid, da_grid = cosmology
    dist_mod = np.interp(z, grid, dm_grid)
    re_arcsec = re_kpc / np.interp(z, grid, da_grid) * 206_264.806
    kcorr = z[:, None] * (_K0 + _K1 * c[:, None])
    apparent = (
        absolute + dist_mod[:, None] + kcorr + av[:, None] * _DUST_RATIO + ebv[:, None] * _MW_RATIO
    )
    flux = 10 ** (-0.4 * (apparent - 22.5))
    sigma = np.sqrt((10 ** (-0.4 * (_DEPTH_5SIGMA - 22.5)) / 5) ** 2 + (0.01 * flux) ** 2)
    observed = flux + sigma * rng.standard_normal(flux.shape)
    mag, err = flux_to_mag(observed, 1 / sigma**2)

    noise = rng.standard_normal((size, 4))
    return {
        "true_logmass": mass,
        "z": z,
        "passive": passive,
        "delta_ml": delta,
        "colour_gr": colour,
        "true_n": sersic_n,
        "true_re_kpc": re_kpc,
        "true_re_arcsec": re_arcsec,
        "cos_i": cos_i,
        "axis_ratio": axis_ratio,
        "pa": pa,
        "av_dust": av,
        "ebv": ebv,
        "flux": flux,
        "mag": mag,
        "err": err,
        "morph_n": sersic_n * np.exp(0.1 * noise[:, 0]),
        "morph_q": np.clip(axis_ratio + 0.03 * noise[:, 1], 0.05, 1.0),
        "morph_r50": re_arcsec * np.exp(0.08 * noise[:, 2]),
        "morph_r90": re_arcsec * sersic_radius_ratio(sersic_n, 0.9) * np.exp(0.08 * noise[:, 3]),
        "control": rng.standard_normal(size),
    }


def _select(config: GalaxySimulationConfig, rng: np.random.Generator) -> dict:
    """Draw batches until ``config.n`` galaxies pass ``mag_r < r_limit`` (in draw order)."""
    parts: list[dict] = []
    have = 0
    batch = max(2 * config.n, 1000)
    cosmology = _cosmology_tables(config.z_max)
    for _ in range(_MAX_BATCHES):
        pop = _draw_population(config, rng, batch, cosmology)
        if config.r_limit is not None:
            r = pop["mag"][:, SIM_BANDS.index("r")]
            keep = np.isfinite(r) & (r < config.r_limit)
            pop = {k: v[keep] for k, v in pop.items()}
        parts.append(pop)
        have += len(pop["z"])
        if have >= config.n:
            break
    else:
        raise ConfigError(
            f"r_limit={config.r_limit} accepts only {have} of {_MAX_BATCHES * batch} drawn "
            f"galaxies (n={config.n} wanted); raise r_limit or lower z_max"
        )
    return {k: np.concatenate([p[k] for p in parts])[: config.n] for k in parts[0]}


def simulate_catalog(config: GalaxySimulationConfig) -> tuple[pd.DataFrame, dict]:
    """The catalogue of ``config.n`` selected galaxies, and the per-band noiseless fluxes.

    Returns:
        ``(catalog, render)``: the catalogue (columns in the module docstring) and the
        arrays :func:`render_images` needs (``flux`` ``(n, bands)`` in nanomaggies, shape
        parameters and a random generator for image noise).
    """
    catalog_seed, image_seed = np.random.SeedSequence(config.random_state).spawn(2)
    pop = _select(config, np.random.default_rng(catalog_seed))
    n = len(pop["z"])
    logmass = pop["true_logmass"] + config.inclination_bias * (pop["cos_i"] - 0.5)
    gradient = np.clip(0.1 + 0.08 * pop["delta_ml"], -0.3, 0.4)
    frame = {
        "id": np.arange(n),
        "class": np.where(pop["passive"] == 1, "passive", "star-forming"),
        "logmass": logmass,
        "z": pop["z"],
        "ebv": pop["ebv"],
    }
    for j, band in enumerate(CATALOG_BANDS):
        frame[f"mag_{band}"] = np.where(
            np.isfinite(pop["mag"][:, j]), pop["mag"][:, j], MAG_SENTINEL
        )
    for j, band in enumerate(CATALOG_BANDS):
        frame[f"err_{band}"] = np.where(
            np.isfinite(pop["err"][:, j]), pop["err"][:, j], ERR_SENTINEL
        )
    for key in ("morph_n", "morph_q", "morph_r50", "morph_r90"):
        frame[key] = pop[key]
    frame.update(
        {
            "true_logmass": pop["true_logmass"],
            "passive": pop["passive"],
            "delta_ml": pop["delta_ml"],
            "colour_gr": pop["colour_gr"],
            "true_n": pop["true_n"],
            "true_re_kpc": pop["true_re_kpc"],
            "true_re_arcsec": pop["true_re_arcsec"],
            "cos_i": pop["cos_i"],
            "inclination": np.degrees(np.arccos(pop["cos_i"])),
            "axis_ratio": pop["axis_ratio"],
            "pa": pop["pa"],
            "av_dust": pop["av_dust"],
            "egr_dust": pop["av_dust"] * (_DUST_RATIO[1] - _DUST_RATIO[2]),
            "gradient": gradient,
            "control": pop["control"],
        }
    )
    band_index = [SIM_BANDS.index(b) for b in config.bands]
    render = {
        "flux": pop["flux"][:, band_index],
        "re_arcsec": pop["true_re_arcsec"],
        "n": pop["true_n"],
        "q": pop["axis_ratio"],
        "pa": pop["pa"],
        "gradient": gradient,
        "rng": np.random.default_rng(image_seed),
    }
    return pd.DataFrame(frame), render


def render_images(
    render: dict,
    config: GalaxySimulationConfig,
    *,
    out: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Noisy PSF-convolved Sersic cutouts ``(n, len(bands), S, S)`` float32 (nanomaggies).

    Args:
        render: the second value of :func:`simulate_catalog`.
        config: the simulation configuration (bands, image size, pixel scale).
        out: an array (e.g. a ``.npy`` memory map) to fill; allocated when None.
        progress: called with the number of galaxies rendered after each chunk.
    """
    n = len(render["n"])
    size = config.image_size
    band_index = np.array([SIM_BANDS.index(b) for b in config.bands])
    if out is None:
        out = np.empty((n, len(band_index), size, size), dtype=np.float32)
    rng = render["rng"]
    pix = (np.arange(size) - (size - 1) / 2).astype(np.float32)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    psf_sigma = _PSF_FWHM[band_index] / (2 * np.sqrt(2 * np.log(2))) / config.pixel_scale
    transfer = np.exp(-2 * np.pi**2 * psf_sigma[:, None, None] ** 2 * (fx**2 + fy**2))
    transfer = transfer.astype(np.float32)
    sky = _SKY_SIGMA[band_index]
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        m = sl.stop - sl.start
        offset = rng.uniform(-0.5, 0.5, size=(2, m, 1, 1)).astype(np.float32)
        dx = pix[None, None, :] - offset[0]
        dy = pix[None, :, None] - offset[1]
        theta = np.radians(render["pa"][sl])[:, None, None].astype(np.float32)
        major = dx * np.cos(theta) + dy * np.sin(theta)
        minor = -dx * np.sin(theta) + dy * np.cos(theta)
        q = render["q"][sl][:, None, None].astype(np.float32)
        # elliptical radius in pixels, softened by a quarter pixel at the cusp
        radius = np.sqrt(major**2 + (minor / q) ** 2 + np.float32(0.0625))
        n_s = render["n"][sl][:, None, None]
        b_n = _sersic_b(n_s).astype(np.float32)
        inv_n = (1 / n_s).astype(np.float32)
        re_pix = render["re_arcsec"][sl] / config.pixel_scale
        stamp = np.empty((m, len(band_index), size, size), dtype=np.float32)
        for k, j in enumerate(band_index):
            re_b = (re_pix * (1 + render["gradient"][sl] * (2 - j) / 2))[:, None, None]
            profile = np.exp(-b_n * ((radius / re_b.astype(np.float32)) ** inv_n - 1))
            profile /= profile.sum(axis=(1, 2), keepdims=True)
            stamp[:, k] = profile * render["flux"][sl, k][:, None, None]
        stamp = fft.irfft2(fft.rfft2(stamp) * transfer, s=(size, size))
        variance = sky[None, :, None, None] ** 2 + np.clip(stamp, 0, None) / _COUNTS_PER_NANOMAGGY
        stamp += np.sqrt(variance) * rng.standard_normal(stamp.shape, dtype=np.float32)
        out[sl] = stamp
        if progress is not None:
            progress(m)
    return out


def write_galaxies(
    out_dir: str | Path,
    config: GalaxySimulationConfig,
    *,
    images: bool = True,
    progress: Callable[[int], None] | None = None,
) -> GalaxySimulationOutput:
    """Simulate and write ``catalog.parquet``, ``truth.parquet``, ``images.npy`` (rows in
    ``id`` order) and ``simulation.yaml`` (the configuration) into ``out_dir``.

    Images are written chunk by chunk into a ``.npy`` memory map, so memory stays small.
    ``progress`` is called with the number of galaxies rendered (or all at once without
    images).
    """
    owns = (GALAXY_CATALOG_FILE, GALAXY_TRUTH_FILE, SIMULATION_CONFIG_FILE, GALAXY_IMAGES_FILE)
    out_dir = marks.claim(out_dir, "galaxies", owns)
    catalog, render = simulate_catalog(config)
    catalog_path = out_dir / GALAXY_CATALOG_FILE
    truth_path = out_dir / GALAXY_TRUTH_FILE
    catalog.to_parquet(catalog_path, index=False)
    catalog[["id", *TRUTH_COLUMNS]].to_parquet(truth_path, index=False)
    config.save(out_dir / SIMULATION_CONFIG_FILE)
    images_path = None
    if images:
        images_path = out_dir / GALAXY_IMAGES_FILE
        shape = (len(catalog), len(config.bands), config.image_size, config.image_size)
        mm = np.lib.format.open_memmap(images_path, mode="w+", dtype=np.float32, shape=shape)
        render_images(render, config, out=mm, progress=progress)
        mm.flush()
        del mm
    elif progress is not None:
        progress(len(catalog))
    log.info("wrote %d simulated galaxies to %s", len(catalog), out_dir)
    return GalaxySimulationOutput(out_dir, catalog_path, truth_path, images_path, len(catalog))


__all__ = [
    "CATALOG_BANDS",
    "TRUTH_COLUMNS",
    "GalaxySimulationOutput",
    "render_images",
    "sersic_radius_ratio",
    "simulate_catalog",
    "write_galaxies",
]
