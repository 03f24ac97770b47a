"""Synthetic stellar spectra with known ground truth, written like real HARPS archive products.

Each spectrum is drawn from factors (the truth): ``teff`` (K), ``logg`` (dex, cgs),
``feh`` (dex), ``rv`` and ``vsini`` (km/s), ``ebv`` (mag), ``snr`` (continuum S/N per
pixel), ``airmass`` (scales the telluric line depths only) and ``control``, a negative
control drawn independently of everything and absent from the spectrum.

Model, per spectrum (counts on an evenly spaced air-wavelength grid):

1. continuum: a blackbody at ``teff`` times a smooth instrument throughput, reddened by
   ``ebv`` with the Cardelli, Clayton & Mathis (1989) curve (R_V = 3.1), normalised to a
   median of ``snr**2`` counts over 3785-6910 A (sampled every 5 A);
2. stellar absorption lines (:mod:`astrolatent.simulate.lines`) whose strengths and widths
   depend on ``teff``, ``logg`` and ``feh``, broadened by rotation (``vsini``),
   macroturbulence and the instrument, Doppler shifted by ``rv``;
3. optional telluric lines (O2 B band, H2O near H-alpha) fixed in the observer frame, with
   optical depth proportional to ``airmass``;
4. Gaussian photon noise: ``err = sqrt(model)`` counts per pixel, so the S/N of the median
   continuum is ``snr``; optionally the HARPS CCD gap (5303.64-5338.04 A) is set to 0.

Stars (objects) carry ``teff``, ``logg``, ``feh``, ``vsini``, ``ebv`` and a systemic
``rv``; spectra carry ``snr``, ``airmass`` and ``control``, and every spectrum of an object
after its first has its ``rv`` moved by a barycentric offset of up to 5 km/s (unless
``rv`` is fixed). Every factor range is sampled uniformly; a single value fixes it.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator, model_validator

from astrolatent.config import Config
from astrolatent.data.readers.eso1d import write_eso1d
from astrolatent.errors import ConfigError
from astrolatent.outputs import marks
from astrolatent.outputs.io import write_atomic
from astrolatent.outputs.layout import (
    SIMULATION_CONFIG_FILE,
    SIMULATION_LABELS_FILE,
    SIMULATION_TRUTH_FILE,
)
from astrolatent.simulate import lines

log = logging.getLogger(__name__)
__all__ = [
    "SimulatedSpectra",
    "SimulationOutput",
    "SpectrumSimulationConfig",
    "draw_truth",
    "simulate_spectra",
    "write_spectra",
]

#: Wavelength grids: first pixel (A), step (A), number of pixels, resolving power.
GRIDS: dict[str, tuple[float, float, int, float]] = {
    "low": (3785.0, 0.5, 6251, 5_000.0),
    "harps": (3785.0, 0.01, 312_501, 115_000.0),
}
#: The HARPS CCD gap (A), as masked by the HARPS preset.
CCD_GAP = (5303.64, 5338.04)
#: Supported range and unit of every factor.
FACTOR_LIMITS: dict[str, tuple[float, float, str]] = {
    "teff": (3000.0, 10000.0, "K"),
    "logg": (0.0, 6.0, "dex"),
    "feh": (-4.0, 1.0, "dex"),
    "rv": (-1000.0, 1000.0, "km/s"),
    "vsini": (0.0, 500.0, "km/s"),
    "ebv": (0.0, 5.0, "mag"),
    "snr": (1.0, 10000.0, ""),
    "airmass": (1.0, 10.0, ""),
}
#: Columns of truth.csv; labels.csv leaves out the HIDDEN factors and the object name
#: (which the FITS files carry).
TRUTH_COLUMNS = ("id", "object", *FACTOR_LIMITS, "control")
HIDDEN = ("vsini", "ebv")
LABEL_COLUMNS = tuple(c for c in TRUTH_COLUMNS if c not in (*HIDDEN, "object"))
#: The labels of a star that ``labelled_fraction`` blanks for the unlabelled stars.
STAR_LABELS = ("teff", "logg", "feh", "rv")

_BARYCENTRIC_KMS = 5.0
_R_V = 3.1
_HC_OVER_K = 1.438777e8  # h c / k_B in A K
_BASE_TIME = np.datetime64("2020-01-01T00:00:00.000", "ms")
_SECONDS_BETWEEN = 10
#: Where the continuum is evaluated (then interpolated) and its median taken, A.
_COARSE = 3785.0 + 5.0 * np.arange(626)

Range = tuple[float, float] | float


class SpectrumSimulationConfig(Config):
    """What to simulate. Ranges are ``(low, high)``, sampled uniformly; a single value is fixed.

    Attributes:
        n: number of spectra.
        resolution: ``"low"`` (3785-6910 A at 0.5 A, 6,251 px, R = 5,000) or ``"harps"``
            (3785-6910 A at 0.01 A, 312,501 px, R = 115,000: the HARPS ESO 1D layout).
        n_objects: number of stars, 1 to ``n`` (default ``n``: one spectrum each); with
            fewer, some stars have several spectra.
        teff: effective temperature, K (the line model is calibrated on FGK stars).
        logg: surface gravity, dex (cgs).
        feh: metallicity [Fe/H], dex.
        rv: radial velocity, km/s.
        vsini: projected rotation velocity, km/s.
        ebv: reddening E(B-V), mag.
        snr: signal-to-noise ratio per pixel of the median continuum.
        airmass: airmass, scales the telluric line depths.
        tellurics: add telluric lines (O2 B band, H2O near H-alpha).
        ccd_gap: set flux and error to 0 in the HARPS CCD gap (5303.64-5338.04 A).
        labelled_fraction: fraction of STARS whose stellar labels (:data:`STAR_LABELS`)
            ``labels.csv`` gives; the others' are left empty (NaN). ``truth.csv`` is always
            complete, and the per-spectrum columns (``snr``, ``airmass``, ``control``) are
            always given. The labelled stars are a seeded draw, independent of the factors.
        random_state: seed of every random draw.
    """

    n: int = 1000
    resolution: Literal["low", "harps"] = "low"
    n_objects: int | None = None
    teff: Range = (4000.0, 7000.0)
    logg: Range = (3.5, 5.0)
    feh: Range = (-1.0, 0.4)
    rv: Range = (-100.0, 100.0)
    vsini: Range = (0.0, 30.0)
    ebv: Range = (0.0, 0.3)
    snr: Range = (30.0, 200.0)
    airmass: Range = (1.0, 2.5)
    tellurics: bool = True
    ccd_gap: bool = False
    labelled_fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    random_state: int = 0

    @field_validator("n", "random_state")
    @classmethod
    def _counts(cls, value: int, info: ValidationInfo) -> int:
        least, what = {"n": (1, "the number of spectra"), "random_state": (0, "a seed")}[
            info.field_name
        ]
        if value < least:
            raise ValueError(f"{info.field_name}={value} must be at least {least} ({what})")
        return value

    @field_validator(*FACTOR_LIMITS)
    @classmethod
    def _within_limits(cls, value: Range, info: ValidationInfo) -> Range:
        name = info.field_name
        low, high, unit = FACTOR_LIMITS[name]
        bounds = value if isinstance(value, tuple) else (value,)
        for v in bounds:
            if not low <= v <= high:
                raise ValueError(
                    f"{name}={v} {unit} is outside the supported range {low} to {high} {unit}"
                )
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            raise ValueError(
                f"{name}={value} is reversed: give the lower bound first, "
                f"e.g. {name}={(bounds[1], bounds[0])}"
            )
        return value

    @model_validator(mode="after")
    def _objects(self) -> SpectrumSimulationConfig:
        if self.n_objects is not None and not 1 <= self.n_objects <= self.n:
            raise ValueError(
                f"n_objects={self.n_objects} must be between 1 and n={self.n} "
                "(every star needs at least one spectrum); leave it unset for one star per spectrum"
            )
        return self

    def wavelengths(self) -> np.ndarray:
        """The wavelength grid in Angstrom, shape ``(L,)``: ``start + step * arange(L)``."""
        start, step, size, _ = GRIDS[self.resolution]
        return start + step * np.arange(size)


@dataclass
class SimulatedSpectra:
    """Spectra ``start:stop`` of a simulated data set.

    Attributes:
        wave: wavelengths in Angstrom (air, observer frame), shape ``(L,)``, float64.
        flux: counts, shape ``(n, L)``, float32 (0 in the CCD gap when it is on).
        err: 1-sigma noise of ``flux`` in counts, shape ``(n, L)``, float32.
        truth: one row per spectrum: ``id``, ``object`` and every factor.
    """

    wave: np.ndarray
    flux: np.ndarray
    err: np.ndarray
    truth: pd.DataFrame


@dataclass
class SimulationOutput:
    """Where :func:`write_spectra` put its files."""

    out_dir: Path
    files: list[Path]
    labels: Path
    truth: Path


def draw_truth(config: SpectrumSimulationConfig) -> pd.DataFrame:
    """The truth table of all ``config.n`` spectra, without simulating them (cheap).

    Columns ``id``, ``object``, ``teff``, ``logg``, ``feh``, ``rv``, ``vsini``, ``ebv``,
    ``snr``, ``airmass``, ``control``; one row per spectrum, in data-set order. Drawn from
    ``config.random_state`` alone; every factor consumes its uniform draws even when
    fixed, so fixing one factor leaves the others unchanged.
    """
    rng = np.random.default_rng(np.random.SeedSequence(config.random_state))
    n = config.n
    n_objects = config.n_objects or n
    if n_objects == n:
        star = np.arange(n)
    else:  # every star once, the remaining spectra to random stars, in random order
        star = rng.permutation(
            np.concatenate([np.arange(n_objects), rng.integers(0, n_objects, n - n_objects)])
        )

    def draw(name: str, size: int) -> np.ndarray:
        value = getattr(config, name)
        low, high = value if isinstance(value, tuple) else (value, value)
        return low + (high - low) * rng.random(size)

    stars = {
        name: draw(name, n_objects)[star] for name in ("teff", "logg", "feh", "rv", "vsini", "ebv")
    }
    spectra = {name: draw(name, n) for name in ("snr", "airmass")}
    control = rng.random(n)
    offset = rng.uniform(-_BARYCENTRIC_KMS, _BARYCENTRIC_KMS, n)
    first = np.zeros(n, dtype=bool)
    first[np.unique(star, return_index=True)[1]] = True
    if isinstance(config.rv, tuple):
        stars["rv"] = stars["rv"] + np.where(first, 0.0, offset)
    times = _BASE_TIME + np.arange(n) * np.timedelta64(_SECONDS_BETWEEN, "s")
    width = max(5, len(str(n_objects - 1)))
    return pd.DataFrame(
        {
            "id": np.char.add("ADP.", np.datetime_as_string(times, unit="ms")).astype(object),
            "object": [f"SIM-{k:0{width}d}" for k in star],
            **stars,
            **spectra,
            "control": control,
        }
    )[list(TRUTH_COLUMNS)]


def _throughput(wave: np.ndarray) -> np.ndarray:
    """Smooth relative instrument throughput, peaking at 5800 A."""
    return np.exp(-0.5 * ((wave - 5800.0) / 1800.0) ** 2)


def _extinction(wave: np.ndarray) -> np.ndarray:
    """A_lambda / E(B-V) of Cardelli, Clayton & Mathis (1989), optical branch, R_V = 3.1."""
    y = 1e4 / wave - 1.82
    a = np.polyval([0.32999, -0.77530, 0.01979, 0.72085, -0.02427, -0.50447, 0.17699, 1.0], y)
    b = np.polyval([-2.09002, 5.30260, 0.62251, -5.38434, 1.07233, 2.28305, 1.41338, 0.0], y)
    return _R_V * a + b


def _continuum(wave: np.ndarray, teff: np.ndarray, ebv: np.ndarray) -> np.ndarray:
    """Blackbody x throughput x reddening (arbitrary units), shape ``(n, L)`` for ``(n,)`` stars."""
    teff, ebv = teff[:, None], ebv[:, None]
    planck = wave**-5.0 / np.expm1(_HC_OVER_K / (wave * teff))
    return planck * _throughput(wave) * 10.0 ** (-0.4 * ebv * _extinction(wave))


#: the columns of a truth table that shape the spectra
_FACTOR_COLUMNS = ("teff", "logg", "feh", "rv", "vsini", "ebv", "snr", "airmass")


def simulate_spectra(
    config: SpectrumSimulationConfig,
    *,
    start: int = 0,
    stop: int | None = None,
    truth: pd.DataFrame | None = None,
) -> SimulatedSpectra:
    """Simulate spectra ``start:stop`` of the data set described by ``config``.

    Spectrum ``i`` is the same whatever ``start``/``stop`` select it: the factors of all
    ``config.n`` spectra are drawn from ``config.random_state`` (or taken from ``truth``,
    ``config.n`` rows with :func:`draw_truth`'s factor columns, e.g. to see what one factor
    changes with the others held), and the noise of spectrum ``i`` from
    ``SeedSequence(config.random_state, spawn_key=(i,))``.

    Memory: about ``8 * (stop - start) * L`` bytes (2.5 MB per spectrum at ``"harps"``).

    Raises:
        ConfigError: when ``0 <= start <= stop <= config.n`` does not hold, or ``truth``
        does not have ``config.n`` rows or a factor column.
    """
    if truth is None:
        truth = draw_truth(config)
    elif len(truth) != config.n:
        raise ConfigError(f"truth has {len(truth)} rows; the simulation has n={config.n}")
    elif missing := [c for c in _FACTOR_COLUMNS if c not in truth.columns]:
        raise ConfigError(f"truth has no column {', '.join(missing)}")
    return _simulate(config, truth, start=start, stop=stop)


def _simulate(
    config: SpectrumSimulationConfig, truth: pd.DataFrame, *, start: int, stop: int | None
) -> SimulatedSpectra:
    stop = config.n if stop is None else stop
    if not 0 <= start <= stop <= config.n:
        raise ConfigError(f"start={start}, stop={stop}: need 0 <= start <= stop <= n={config.n}")
    truth = truth.iloc[start:stop].reset_index(drop=True)
    wave = config.wavelengths()
    resolving_power = GRIDS[config.resolution][3]

    flux = np.ones((len(truth), wave.size), dtype=np.float32)  # transmission first
    lines.absorb(
        flux,
        wave,
        lines.stellar_profiles(
            teff=truth["teff"].to_numpy(),
            logg=truth["logg"].to_numpy(),
            feh=truth["feh"].to_numpy(),
            rv=truth["rv"].to_numpy(),
            vsini=truth["vsini"].to_numpy(),
            resolving_power=resolving_power,
        ),
    )
    if config.tellurics:
        lines.absorb(
            flux,
            wave,
            lines.telluric_profiles(
                airmass=truth["airmass"].to_numpy(), resolving_power=resolving_power
            ),
        )
    # The continuum is smooth: evaluate it every 5 A and interpolate (error < 1e-5).
    continuum = _continuum(_COARSE, truth["teff"].to_numpy(), truth["ebv"].to_numpy())
    continuum *= (truth["snr"].to_numpy() ** 2 / np.median(continuum, axis=1))[:, None]
    err = np.empty_like(flux)
    for k in range(len(truth)):
        model = np.interp(wave, _COARSE, continuum[k]) * flux[k]
        rng = np.random.default_rng(
            np.random.SeedSequence(config.random_state, spawn_key=(start + k,))
        )
        err[k] = np.sqrt(model)
        flux[k] = model + err[k] * rng.standard_normal(wave.size, dtype=np.float32)
    if config.ccd_gap:
        gap = (wave >= CCD_GAP[0] - 1e-6) & (wave <= CCD_GAP[1] + 1e-6)
        flux[:, gap] = 0.0
        err[:, gap] = 0.0
    return SimulatedSpectra(wave=wave, flux=flux, err=err, truth=truth)


def write_spectra(
    out_dir: str | Path,
    config: SpectrumSimulationConfig,
    *,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> SimulationOutput:
    """Simulate the data set and write it as real archive files, ``batch_size`` at a time.

    Writes into ``out_dir``: one ESO Phase-3 1D FITS file per spectrum, named after its
    ``ARCFILE`` (``ADP.<time>.fits``; the spectrum id is that name without ``.fits``);
    ``truth.csv`` (every factor); ``labels.csv`` (the same without the hidden factors
    ``vsini`` and ``ebv``); and ``simulation.yaml`` (the configuration). Each file is
    written under a temporary name and renamed, and the tables come last, so an
    interrupted run never leaves a partial file nor tables that promise missing spectra.

    Memory: about ``8 * batch_size * L`` bytes (640 MB for 256 ``"harps"`` spectra).

    Args:
        out_dir: output folder, created (and marked) if needed; an existing one must be
            empty or an earlier simulation's (:func:`claim_spectra_folder`), whose files of
            the same name are replaced.
        config: what to simulate.
        batch_size: spectra simulated at once.
        progress: called after each batch with the number of files just written.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1")
    _check_disk(Path(out_dir), config)
    out_dir = claim_spectra_folder(out_dir)
    truth = draw_truth(config)
    resolving_power = GRIDS[config.resolution][3]
    log.info(
        "simulating %d %s-resolution spectra of %d stars into %s",
        config.n,
        config.resolution,
        truth["object"].nunique(),
        out_dir,
    )
    files: list[Path] = []
    for start in range(0, config.n, batch_size):
        batch = _simulate(config, truth, start=start, stop=min(start + batch_size, config.n))
        for k, row in enumerate(batch.truth.itertuples(index=False)):
            files.append(
                write_eso1d(
                    out_dir / f"{row.id}.fits",
                    batch.wave,
                    batch.flux[k],
                    batch.err[k],
                    arcfile=f"{row.id}.fits",
                    object_name=row.object,
                    header={
                        "ORIGIN": "astrolatent simulate",
                        "SNR": (round(row.snr, 3), "S/N per pixel of the median continuum"),
                        "SPEC_RES": (resolving_power, "spectral resolving power"),
                    },
                )
            )
        log.debug("wrote spectra %d-%d", start, start + len(batch.truth) - 1)
        if progress is not None:
            progress(len(batch.truth))
    truth_path = _write_csv(truth, out_dir / SIMULATION_TRUTH_FILE)
    labels_path = _write_csv(partial_labels(truth, config), out_dir / SIMULATION_LABELS_FILE)
    config.save(out_dir / SIMULATION_CONFIG_FILE)
    return SimulationOutput(out_dir=out_dir, files=files, labels=labels_path, truth=truth_path)


def partial_labels(truth: pd.DataFrame, config: SpectrumSimulationConfig) -> pd.DataFrame:
    """The ``labels.csv`` table: the truth without the hidden factors, the stellar labels
    blanked (NaN) for the stars outside a seeded ``labelled_fraction`` of them."""
    labels = truth[list(LABEL_COLUMNS)].copy()
    if config.labelled_fraction >= 1.0:
        return labels
    stars = np.array(sorted(truth["object"].unique()))
    rng = np.random.default_rng([config.random_state, 16])
    n_keep = round(config.labelled_fraction * stars.size)
    kept = set(stars[rng.permutation(stars.size)[:n_keep]])
    blank = ~truth["object"].isin(kept).to_numpy()
    labels.loc[blank, list(STAR_LABELS)] = np.nan
    return labels


def _check_disk(out_dir: Path, config: SpectrumSimulationConfig) -> None:
    """Raise ConfigError before anything is allocated if the files cannot fit on the disk."""
    pixels = GRIDS[config.resolution][2]
    need = config.n * (16 * pixels + 20_000)  # wave f8 + flux, err f4 per pixel; headers
    where = next(p for p in (out_dir, *out_dir.absolute().parents) if p.exists())
    free = shutil.disk_usage(where).free
    if need > free:
        raise ConfigError(
            f"n={config.n}: {config.resolution}-resolution files need about {need / 1e9:,.1f} GB, "
            f"and {where} has {free / 1e9:,.1f} GB free"
        )


#: what a simulation writes in its folder (the only names astrolatent removes there)
SPECTRA_OWNS = ("ADP.*.fits", SIMULATION_TRUTH_FILE, SIMULATION_LABELS_FILE, SIMULATION_CONFIG_FILE)


def claim_spectra_folder(out_dir: str | Path, *, fresh: bool = False) -> Path:
    """The folder of a simulation, created and marked (``fresh``: an earlier simulation's
    files in it removed first). Raises OutputFolderError for a folder that is not empty and
    not a simulation's."""
    # a simulation folder written before folders were marked: its configuration loads
    legacy = marks.loads(SpectrumSimulationConfig.load, SIMULATION_CONFIG_FILE)
    return marks.claim(out_dir, "spectra", SPECTRA_OWNS, legacy=legacy, fresh=fresh)


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    return write_atomic(path, lambda tmp: table.to_csv(tmp, index=False))
