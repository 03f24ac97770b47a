"""APOGEE ``apStar`` and ``aspcapStar`` files.

The primary HDU holds no data; HDU 1 is the flux with a log10-linear wavelength WCS
(``CRVAL1``, ``CDELT1``, ``CRPIX1``; ``CTYPE1 = 'LOG-LINEAR'``), HDU 2 the 1-sigma error
with the same shape. In ``apStar`` files the flux is one row per combination (row 0, the
pixel-weighted combined spectrum, is read) and HDU 3 is the integer pixel mask: pixels with
any of ``mask_bits`` set are flagged bad (default bits 0-7: BADPIX, CRPIX, SATPIX,
UNFIXABLE, BADDARK, BADFLAT, BADERR, NOSKY). In ``aspcapStar`` files HDU 3 is the best-fit
model (floats) and is not used. Pixels with exactly zero flux (the chip gaps) are flagged
bad. The id is ``OBJID`` (the APOGEE id; else ``OBJECT``, else the file stem).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from astrolatent.data.readers import Reader, is_log10_wcs, linear_wcs, open_fits, register
from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import InputFileError


def _image(hdul: fits.HDUList, index: int) -> fits.ImageHDU | None:
    if len(hdul) > index and isinstance(hdul[index], fits.ImageHDU):
        return hdul[index]
    return None


@register
class APOGEEReader(Reader):
    name = "apogee"
    priority = 22
    expects = (
        "an empty primary HDU, flux with a log-linear WCS in HDU 1 and errors of the same "
        "shape in HDU 2 (apStar/aspcapStar)"
    )

    def __init__(self, mask_bits: int = 0xFF) -> None:
        self.mask_bits = int(mask_bits)

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        flux, err = _image(hdul, 1), _image(hdul, 2)
        if hdul[0].header.get("NAXIS", 0) != 0 or flux is None or err is None:
            return False
        head = flux.header
        is_log = is_log10_wcs(head)
        return (
            "CRVAL1" in head
            and ("CDELT1" in head or "CD1_1" in head)
            and is_log
            and head.get("NAXIS1") == err.header.get("NAXIS1")
        )

    def read_one(self, path: Path) -> Spectrum:
        with open_fits(path) as hdul:
            flux_hdu, err_hdu = _image(hdul, 1), _image(hdul, 2)
            if flux_hdu is None or err_hdu is None:
                raise InputFileError(path, "no flux and error images in HDU 1 and 2 (not APOGEE)")
            try:
                flux = np.atleast_2d(np.asarray(flux_hdu.data, np.float64))[0]
                err = np.atleast_2d(np.asarray(err_hdu.data, np.float64))[0]
                mask_hdu = _image(hdul, 3)
                mask = None
                if mask_hdu is not None and np.issubdtype(mask_hdu.data.dtype, np.integer):
                    mask = np.atleast_2d(np.asarray(mask_hdu.data))[0].astype(np.int64)
            except Exception as exc:
                raise InputFileError(
                    path, f"cannot read data, file truncated or corrupt ({exc})"
                ) from None
            wave = linear_wcs(flux_hdu.header, flux.size, path=path, log10=True)
            header = hdul[0].header
            spec_id = next(
                (
                    str(header[k]).strip()
                    for k in ("OBJID", "OBJECT")
                    if str(header.get(k, "")).strip()
                ),
                path.name.split(".fits")[0],
            )
        bad = flux == 0
        if mask is not None and mask.shape == flux.shape:
            bad |= (mask & self.mask_bits) != 0
        return Spectrum(
            id=spec_id,
            wave=wave,
            flux=flux,
            err=err,
            bad=bad,
            object=spec_id,
            source=str(path),
            extra={"flux_unit": str(flux_hdu.header.get("BUNIT", "")).strip()},
        )
