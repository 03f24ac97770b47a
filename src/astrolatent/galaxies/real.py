"""Real SDSS galaxy catalogues that ship inside PyPI packages.

kcorrect (``pip install kcorrect==5.1.9``, BSD-3; SDSS, 2MASS and GALEX data under their
own citation terms)
    ``kcorrect/data/test/gst_tests_small.fits``: 10,000 SDSS galaxies. :func:`load_kcorrect`
    returns, per galaxy: ``id`` (row), ``ra``/``dec`` (deg), ``z`` (spectroscopic),
    ``ebv`` (Galactic E(B-V) = A_r / 2.751, mag), ``mag_u``..``mag_z`` and ``err_*``
    (Petrosian AB magnitudes from the fluxes and inverse variances, NOT corrected for
    Galactic extinction), ``mag_J``/``mag_H``/``mag_K`` and ``err_*`` (2MASS extended
    magnitudes, Vega system; NaN where 2MASS has none) and ``logmass``.

    ``logmass`` is log10 of the current stellar mass in solar masses from kcorrect's own
    template fit (:func:`kcorrect_masses`): ugriz model fluxes corrected for Galactic
    extinction and to AB (``KcorrectSDSS``), then ``derived(...)["mremain"]``. kcorrect v5
    computes distances with astropy's Planck18 cosmology, so the masses are in Msun for
    h = 0.677 (no h^-2 scaling, unlike the IDL v4 convention), for the Chabrier-IMF
    templates of Blanton & Roweis (2007). CAVEAT: this mass comes from the same ugriz
    photometry that estimators take as input, so as a target it is partly circular: an
    estimator can reach a small scatter by re-learning the template fit, and information
    measures on it describe the template fit as much as the galaxies.
    The GALEX columns are left out: the file does not state their units, and 92% are empty.

MLZ (``MLZ==1.2`` sdist; SDSS data)
    ``mlz/test/SDSS_MGS.train`` and ``.test``: 5,000 + 5,000 galaxies of the SDSS Main
    Galaxy Sample. :func:`load_mlz` returns ``id``, ``split`` (train/test, the files),
    ``z`` (spectroscopic), ``mag_u``..``mag_z``, colours ``u_g g_r r_i i_z`` and errors
    ``err_u``..``err_z``, ``err_u_g``..``err_i_z``. (The files' header line omits the
    ``eu`` column; the 19 columns are named here by their content.) The package's
    setup.py needs numpy.distutils and a Fortran compiler, so it is not installed: its
    sdist is downloaded (``pip download --no-deps --no-binary :all: --no-build-isolation
    MLZ==1.2 -d <venv>/share/astrolatent``) and the files are read from the tarball.

Files are located with ``importlib.util.find_spec`` (no package is imported for that).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import sys
import tarfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from astrolatent.config import Config
from astrolatent.errors import ConfigError, InputFileError
from astrolatent.galaxies.catalog import flux_to_mag

log = logging.getLogger(__name__)


class FetchRealConfig(Config):
    """Options of ``astrolatent galaxy fetch-real``: a file, folder or sdist to read the
    catalogue from (None: the installed package)."""

    source: str | None = None


KCORRECT_FILE = Path("data") / "test" / "gst_tests_small.fits"
MLZ_FILES = {"train": "SDSS_MGS.train", "test": "SDSS_MGS.test"}
#: Where the Makefile puts downloaded sdists (inside the active environment).
DATA_DIR = Path(sys.prefix) / "share" / "astrolatent"
MLZ_INSTALL_HINT = (
    f"pip download --no-deps --no-binary :all: --no-build-isolation MLZ==1.2 -d {DATA_DIR}"
)
#: A_band / E(B-V) for SDSS ugriz (Schlegel, Finkbeiner & Davis 1998, table 6).
SFD_COEFFICIENTS = np.array([5.155, 3.793, 2.751, 2.086, 1.479])
_BANDS = "ugriz"
_MLZ_COLUMNS = (
    ["z"]
    + [f"mag_{b}" for b in _BANDS]
    + ["u_g", "g_r", "r_i", "i_z"]
    + [f"err_{b}" for b in _BANDS]
    + ["err_u_g", "err_g_r", "err_r_i", "err_i_z"]
)

#: Column descriptions of the tables written by ``astrolatent galaxy fetch-real``.
COLUMN_DOCS: dict[str, dict[str, str]] = {
    "kcorrect": {
        "id": "row number in gst_tests_small.fits",
        "ra, dec": "J2000 position (deg)",
        "z": "spectroscopic redshift",
        "ebv": "Galactic E(B-V) = A_r / 2.751 (mag)",
        "mag_u..mag_z, err_*": "Petrosian AB magnitudes and errors (not extinction corrected)",
        "mag_J, mag_H, mag_K, err_*": "2MASS extended magnitudes (Vega; NaN if absent)",
        "logmass": "log10 M*/Msun from kcorrect's template fit to the ugriz model fluxes "
        "(Planck18, h=0.677); partly circular as a target",
    },
    "mlz": {
        "id": "row number (train rows first)",
        "split": "train or test (the two MLZ files)",
        "z": "spectroscopic redshift",
        "mag_u..mag_z, err_*": "SDSS magnitudes and errors",
        "u_g, g_r, r_i, i_z, err_*": "colours and their errors",
    },
}


def package_dir(name: str) -> Path | None:
    """The folder of installed package ``name``, found without importing it (None if absent)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def kcorrect_path() -> Path:
    """Path of kcorrect's ``gst_tests_small.fits``; ConfigError if kcorrect is missing."""
    root = package_dir("kcorrect")
    if root is None or not (root / KCORRECT_FILE).is_file():
        raise ConfigError(
            "the kcorrect SDSS test set needs the kcorrect package: pip install kcorrect==5.1.9"
        )
    return root / KCORRECT_FILE


def _read_kcorrect_fits(path: Path) -> dict[str, np.ndarray]:
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            data = hdul[1].data
            return {name.upper(): np.array(data[name]) for name in data.columns.names}
    except (OSError, KeyError, IndexError) as exc:
        raise InputFileError(path, f"cannot read the kcorrect table ({exc})") from None


def kcorrect_masses(
    redshift: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    extinction: np.ndarray,
    *,
    chunk: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """log10 stellar mass (Msun, Planck18) from kcorrect's template fit to SDSS ugriz.

    Args:
        redshift: ``(n,)`` spectroscopic redshifts (0 < z < 0.6 here).
        flux: ``(n, 5)`` ugriz fluxes in nanomaggies (SDSS system; AB-corrected here).
        ivar: ``(n, 5)`` inverse variances (nanomaggies^-2); 0 marks a missing band.
        extinction: ``(n, 5)`` Galactic extinction (mag), corrected before the fit.
        chunk: galaxies per call of the fitter (``progress`` is called after each).
        progress: called with the number of galaxies just fitted.

    Returns:
        ``(n,)`` float64 log10 of ``derived(...)["mremain"]``; NaN where the fit gives no
        positive mass.
    """
    from kcorrect.kcorrect import KcorrectSDSS

    z = np.asarray(redshift, dtype=np.float32)
    scale = 10.0 ** (0.4 * np.asarray(extinction, dtype=np.float64))
    maggies = np.asarray(flux, dtype=np.float64) * 1e-9 * scale
    ivar = np.asarray(ivar, dtype=np.float64) * 1e18 / scale**2
    ivar = np.where(np.isfinite(ivar) & np.isfinite(maggies), ivar, 0.0)
    maggies = np.where(np.isfinite(maggies), maggies, 0.0)
    mass = np.empty(len(z))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # kcorrect leaves template files open and divides by empty bands: not our warnings
        warnings.simplefilter("ignore")
        # a redshift grid step of 0.006 changes masses by < 0.003 dex against 0.001
        z_hi = max(0.6, float(z.max()) + 0.01)
        fitter = KcorrectSDSS(redshift_range=[0.0, z_hi], nredshift=int(np.ceil(z_hi / 0.006)) + 1)
        for start in range(0, len(z), chunk):
            sl = slice(start, start + chunk)
            coeffs = fitter.fit_coeffs(redshift=z[sl], maggies=maggies[sl], ivar=ivar[sl])
            mass[sl] = fitter.derived(redshift=z[sl], coeffs=coeffs)["mremain"]
            if progress is not None:
                progress(len(z[sl]))
    good = np.isfinite(mass) & (mass > 0)
    out = np.full(len(z), np.nan)
    out[good] = np.log10(mass[good])
    return out


def load_kcorrect(
    path: str | Path | None = None,
    *,
    with_mass: bool = True,
    max_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The kcorrect SDSS test set as a catalogue (columns in the module docstring).

    Args:
        path: the FITS file (default: the one in the installed kcorrect package).
        with_mass: run kcorrect's template fit for ``logmass`` (about 10 s for 10,000
            galaxies, most of it setting up the fitter).
        max_rows: keep only the first ``max_rows`` galaxies (quick looks, tests).
        progress: called with the number of galaxies just fitted.
    """
    path = Path(path) if path is not None else kcorrect_path()
    d = _read_kcorrect_fits(path)
    if max_rows is not None:
        if max_rows < 1:
            raise ConfigError(f"max_rows={max_rows} must be at least 1")
        d = {k: v[:max_rows] for k, v in d.items()}
    n = len(d["Z"])
    frame: dict[str, np.ndarray] = {
        "id": np.arange(n),
        "ra": d["RA"].astype(np.float64),
        "dec": d["DEC"].astype(np.float64),
        "z": d["Z"].astype(np.float64),
        "ebv": d["EXTINCTION"][:, 2].astype(np.float64) / SFD_COEFFICIENTS[2],
    }
    mag, err = flux_to_mag(d["PETROFLUX"], d["PETROFLUX_IVAR"])
    for j, band in enumerate(_BANDS):
        frame[f"mag_{band}"] = mag[:, j]
    for j, band in enumerate(_BANDS):
        frame[f"err_{band}"] = err[:, j]
    for band in "JHK":
        m = d[f"{band}_M_EXT"].astype(np.float64)
        e = d[f"{band}_MSIG_EXT"].astype(np.float64)
        missing = ~(m > 0) | ~(e > 0)
        frame[f"mag_{band}"] = np.where(missing, np.nan, m)
        frame[f"err_{band}"] = np.where(missing, np.nan, e)
    if with_mass:
        frame["logmass"] = kcorrect_masses(
            d["Z"], d["MODELFLUX"], d["MODELFLUX_IVAR"], d["EXTINCTION"], progress=progress
        )
    return pd.DataFrame(frame)


def mlz_source() -> Path:
    """Where the MLZ SDSS MGS files are: an installed ``mlz``/``mlz_desc`` package's
    ``test`` folder, else an ``MLZ*-1.2.tar.gz`` sdist in :data:`DATA_DIR`."""
    for name in ("mlz", "mlz_desc"):
        root = package_dir(name)
        if root is not None and (root / "test" / MLZ_FILES["train"]).is_file():
            return root / "test"
    if DATA_DIR.is_dir():
        found = sorted(DATA_DIR.glob("MLZ*-1.2.tar.gz"))
        if found:
            return found[0]
    raise ConfigError(
        f"the MLZ SDSS sample was not found (no mlz package, no MLZ sdist in {DATA_DIR}); "
        f"download it with: {MLZ_INSTALL_HINT}"
    )


def _mlz_text(source: Path, filename: str) -> str:
    if source.is_dir():
        path = source / filename
        if not path.is_file():
            raise InputFileError(path, "file not found")
        return path.read_text()
    try:
        with tarfile.open(source, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.name.endswith(f"/test/{filename}")]
            if not members:
                raise InputFileError(source, f"the archive holds no */test/{filename}")
            handle = tar.extractfile(members[0])
            if handle is None:
                raise InputFileError(source, f"{members[0].name} is not a regular file")
            return handle.read().decode()
    except (OSError, tarfile.TarError) as exc:
        raise InputFileError(source, f"cannot read the archive ({exc})") from None


def load_mlz(source: str | Path | None = None) -> pd.DataFrame:
    """The MLZ SDSS Main Galaxy Sample (train then test rows; columns in the module docstring).

    Args:
        source: a folder holding ``SDSS_MGS.train``/``.test`` or an MLZ sdist tarball
            (default: :func:`mlz_source`).
    """
    source = Path(source) if source is not None else mlz_source()
    parts = []
    for split, filename in MLZ_FILES.items():
        text = _mlz_text(source, filename)
        part = pd.read_csv(io.StringIO(text), sep=r"\s+", comment="#", header=None)
        if part.shape[1] != len(_MLZ_COLUMNS):
            raise InputFileError(
                source, f"{filename}: {part.shape[1]} columns, expected {len(_MLZ_COLUMNS)}"
            )
        part.columns = _MLZ_COLUMNS
        part.insert(0, "split", split)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "id", np.arange(len(frame)))
    return frame


def fetch_real(
    name: Literal["kcorrect", "mlz"],
    *,
    source: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The packaged real catalogue ``name`` (``kcorrect`` with masses, or ``mlz``)."""
    if name == "kcorrect":
        return load_kcorrect(source, progress=progress)
    if name == "mlz":
        return load_mlz(source)
    raise ConfigError(f"real catalogue {name!r} is unknown; choose kcorrect or mlz")


__all__ = [
    "COLUMN_DOCS",
    "DATA_DIR",
    "fetch_real",
    "kcorrect_masses",
    "kcorrect_path",
    "load_kcorrect",
    "load_mlz",
    "mlz_source",
    "package_dir",
]
