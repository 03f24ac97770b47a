"""Shared fixtures: tiny spectrum files written in real archive formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from astrolatent.data.readers.eso1d import write_eso1d

LOW_WAVE = 3785.0 + 0.5 * np.arange(6251)


def absorption_spectrum(
    wave: np.ndarray, *, level: float = 1000.0, rv: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A flat continuum with a few Gaussian lines, Doppler shifted by rv (km/s), with noise."""
    rng = np.random.default_rng(seed)
    flux = np.full(wave.size, level)
    for centre in (4861.3, 5175.0, 5890.0, 6562.8):
        c = centre * (1 + rv / 299_792.458)
        flux *= 1 - 0.5 * np.exp(-0.5 * ((wave - c) / 1.5) ** 2)
    err = np.sqrt(flux)
    return flux + rng.normal(0, 1, wave.size) * err, err


@pytest.fixture
def eso_folder(tmp_path: Path) -> Path:
    """Twelve good ESO 1D files of 4 objects on the low-resolution grid."""
    folder = tmp_path / "eso"
    folder.mkdir()
    for i in range(12):
        flux, err = absorption_spectrum(LOW_WAVE, level=500.0 + 50 * i, rv=10.0 * i, seed=i)
        arc = f"ADP.2020-01-01T00:{i:02d}:00.000.fits"
        write_eso1d(folder / arc, LOW_WAVE, flux, err, arcfile=arc, object_name=f"STAR{i % 4}")
    return folder
