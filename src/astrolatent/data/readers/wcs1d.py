"""1D spectra stored in the primary HDU with a linear or log-linear wavelength WCS.

Wavelength of pixel p (1-based): ``CRVAL1 + CDELT1 * (p - CRPIX1)`` (``CD1_1`` may stand
for ``CDELT1``). With ``DC-FLAG = 1`` (IRAF) or ``log10_wavelength=True`` that value is
log10 of the wavelength. ``CUNIT1`` gives the unit (Angstrom when absent). An error array
may follow in an extension named ``ERR``, ``ERROR``, ``SIGMA`` or ``UNCERTAINTY``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from astrolatent.data.readers import Reader, image_data, linear_wcs, open_fits, register
from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import InputFileError

_ERR_EXTENSIONS = ("ERR", "ERROR", "SIGMA", "UNCERTAINTY")


@register
class WCS1DReader(Reader):
    name = "wcs-1d"
    priority = 30
    expects = "a 1-D primary array with CRVAL1 and CDELT1/CD1_1"

    def __init__(self, log10_wavelength: bool | None = None) -> None:
        self.log10_wavelength = log10_wavelength

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        header = hdul[0].header
        return (
            header.get("NAXIS") == 1
            and "CRVAL1" in header
            and ("CDELT1" in header or "CD1_1" in header)
        )

    def read_one(self, path: Path) -> Spectrum:
        with open_fits(path) as hdul:
            header = hdul[0].header
            if header.get("NAXIS") != 1:
                raise InputFileError(
                    path, f"primary HDU has NAXIS={header.get('NAXIS')}, expected a 1D spectrum"
                )
            flux = np.asarray(image_data(hdul[0], path), dtype=np.float64).ravel()
            wave = linear_wcs(header, flux.size, path=path, log10=self.log10_wavelength)
            err = None
            for ext in _ERR_EXTENSIONS:
                if ext in hdul:
                    err = np.array(hdul[ext].data, dtype=np.float64).ravel()
                    break
            obj = str(header.get("OBJECT", "")).strip()
        return Spectrum(
            id=path.name.split(".fits")[0],
            wave=wave,
            flux=flux,
            err=err,
            object=obj,
            source=str(path),
        )
