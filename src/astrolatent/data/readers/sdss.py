"""SDSS spec / spec-lite files: a ``COADD`` table with ``loglam``, ``flux``, ``ivar``, ``and_mask``.

Errors are ``1/sqrt(ivar)``; pixels with ``ivar <= 0`` or a non-zero ``and_mask`` are flagged
bad. The id is ``PLATE-MJD-FIBER`` from the primary header, else the file stem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from astrolatent.data.readers import Reader, column_lookup, open_fits, register
from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import InputFileError


@register
class SDSSReader(Reader):
    name = "sdss"
    priority = 20
    expects = "a COADD table with LOGLAM and FLUX"

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        return "COADD" in hdul and {"LOGLAM", "FLUX"} <= set(column_lookup(hdul["COADD"]))

    def read_one(self, path: Path) -> Spectrum:
        with open_fits(path) as hdul:
            if "COADD" not in hdul:
                raise InputFileError(path, "no COADD extension (not an SDSS spec file)")
            coadd = hdul["COADD"]
            cols = column_lookup(coadd)
            missing = {"LOGLAM", "FLUX"} - set(cols)
            if missing:
                raise InputFileError(
                    path, f"missing column(s) {', '.join(sorted(missing))} in COADD"
                )
            try:
                data = coadd.data
                wave = 10.0 ** np.asarray(data[cols["LOGLAM"]], dtype=np.float64)
                flux = np.asarray(data[cols["FLUX"]], dtype=np.float64)
                ivar = np.asarray(data[cols["IVAR"]], dtype=np.float64) if "IVAR" in cols else None
                and_mask = np.asarray(data[cols["AND_MASK"]]) if "AND_MASK" in cols else None
            except Exception as exc:
                raise InputFileError(
                    path, f"cannot read COADD data, file truncated or corrupt ({exc})"
                ) from None
            header = hdul[0].header
            if all(k in header for k in ("PLATEID", "MJD", "FIBERID")):
                spec_id = f"{int(header['PLATEID']):04d}-{int(header['MJD']):05d}-{int(header['FIBERID']):04d}"
            else:
                spec_id = path.name.split(".fits")[0]
            obj = str(header.get("OBJECT", header.get("NAME", ""))).strip() or spec_id
        err = None
        bad = np.zeros(flux.size, dtype=bool)
        if ivar is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                err = np.where(ivar > 0, 1.0 / np.sqrt(ivar), np.inf)
            bad |= ~(ivar > 0)
        if and_mask is not None:
            bad |= and_mask != 0
        return Spectrum(
            id=spec_id, wave=wave, flux=flux, err=err, bad=bad, object=obj, source=str(path)
        )
