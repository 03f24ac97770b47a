"""Spectra stored as the rows of a 2-D primary array (SpeXtool, LAMOST, or rows you name).

The primary HDU holds a small number of rows of one length N, each row one quantity; which
row is which is the reader's ``rows`` option, a sequence of roles:

``wave`` (wavelength), ``flux``, ``err`` (1-sigma), ``ivar`` (inverse variance; 0 = no
data), ``mask`` (non-zero = bad pixel) and ``skip`` (ignored). Rows after the named ones are
ignored. Without a ``wave`` row the wavelengths come from the axis-1 WCS (``CRVAL1``,
``CDELT1``/``CD1_1``, ``CRPIX1``, log10 when ``DC-FLAG = 1``), also when a file has fewer
rows than the layout names and the wavelength row is among the missing ones.

Arrays stored the other way round (N x rows, as some SpeX library files are) are read
transposed, and a 3-D stack (apertures x rows x N, as SpeXtool writes for several
apertures) gives its first aperture whose flux is not entirely NaN (its index goes into
the ``aperture`` column). The flux unit (``YUNITS``, else ``BUNIT``) is recorded as given
in the ``flux_unit`` column; fluxes are normalised at preprocessing, so mixed units do not
matter to the store.

* ``spextool``: IRTF SpeXtool output (e.g. the SpeX Prism Library): rows wave, flux,
  err[, mask], wavelength unit from ``XUNITS`` (micron when absent and the values are
  below 30, i.e. plainly micron; else Angstrom).
* ``lamost``: LAMOST low-resolution spectra (DR1-DR7 FITS): rows flux, ivar, wave,
  and-mask, or-mask; wavelengths in Angstrom (vacuum).
* ``rows``: the generic form; give ``rows`` (and ``wave_unit``) yourself, e.g.
  ``--config`` with ``reader_options: {rows: [flux, err, wave]}``. Never picked by content.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
from astropy.io import fits

from astrolatent.data.readers import (
    Reader,
    image_data,
    linear_wcs,
    open_fits,
    register,
    to_angstrom,
)
from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import ConfigError, InputFileError

ROLES = ("wave", "flux", "err", "ivar", "mask", "skip")
_MAX_ROWS = 8


def _oriented(data: np.ndarray | None) -> np.ndarray | None:
    """The array as (apertures, rows, N), or None when it is not a small stack of rows."""
    if data is None or data.ndim not in (2, 3):
        return None
    arr = data if data.ndim == 3 else data[None]
    k, n = arr.shape[1:]
    if 2 <= k <= _MAX_ROWS and n > k:
        return arr
    if 2 <= n <= _MAX_ROWS and k > n and data.ndim == 2:
        return arr.transpose(0, 2, 1)
    return None


def _looks_like_wavelength(row: np.ndarray) -> bool:
    finite = row[np.isfinite(row)]
    return finite.size > 2 and finite.min() > 0 and np.median(np.diff(finite)) > 0


class RowsReader(Reader):
    """Base of the row-stack readers; ``rows`` names the role of each row."""

    name = "rows"
    priority = 95
    expects = ""  # the generic reader claims nothing by content
    default_rows: ClassVar[tuple[str, ...]] = ("wave", "flux", "err")

    def __init__(
        self,
        rows: Sequence[str] | None = None,
        wave_unit: str | None = None,
        mask_bits: int = -1,
    ) -> None:
        rows = tuple(self.default_rows if rows is None else rows)
        unknown = [r for r in rows if r not in ROLES]
        if unknown or "flux" not in rows:
            raise ConfigError(
                f"reader {self.name!r}: rows={list(rows)} must name a 'flux' row and use only "
                f"{', '.join(ROLES)}"
            )
        named = [r for r in rows if r != "skip"]
        if len(set(named)) != len(named):
            raise ConfigError(f"reader {self.name!r}: rows={list(rows)} names a role twice")
        self.rows = rows
        self.wave_unit = wave_unit
        self.mask_bits = int(mask_bits)

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        return False

    def _wave_unit(self, header: fits.Header, wave: np.ndarray) -> str | None:
        return self.wave_unit

    def read_one(self, path: Path) -> Spectrum:
        with open_fits(path) as hdul:
            header = hdul[0].header
            data = image_data(hdul[0], path)
        stack = _oriented(data)
        shape = None if data is None else data.shape
        if stack is None:
            raise InputFileError(
                path, f"primary array has shape {shape}, expected a few rows of one length"
            )
        rows = self.rows[: stack.shape[1]]  # trailing rows may be absent
        if "flux" not in rows:
            raise InputFileError(
                path,
                f"primary array has {stack.shape[1]} rows, the {self.name} layout "
                f"({', '.join(self.rows)}) needs its flux row",
            )
        flux_row = rows.index("flux")
        aperture = next(
            (a for a in range(stack.shape[0]) if np.isfinite(stack[a, flux_row]).any()), 0
        )
        arr = {role: stack[aperture, i] for i, role in enumerate(rows) if role != "skip"}
        if "wave" in arr:
            wave = arr["wave"]
            wave = to_angstrom(wave, self._wave_unit(header, wave), path=path, what="wavelength")
        else:
            wave = linear_wcs(header, stack.shape[2], path=path)
        err, bad = arr.get("err"), np.zeros(stack.shape[2], bool)
        if "ivar" in arr:
            ivar = arr["ivar"]
            with np.errstate(divide="ignore", invalid="ignore"):
                err = np.where(ivar > 0, 1.0 / np.sqrt(ivar), np.inf)
            bad |= ~(ivar > 0)
        if "mask" in arr:
            mask = np.nan_to_num(arr["mask"]).astype(np.int64)
            bad |= (mask & self.mask_bits) != 0
        extra: dict[str, object] = {
            "flux_unit": str(header.get("YUNITS", header.get("BUNIT", ""))).strip()
        }
        if stack.shape[0] > 1:
            extra["aperture"] = aperture
        return Spectrum(
            id=path.name.split(".fits")[0],
            wave=wave,
            flux=arr["flux"],
            err=err,
            bad=bad,
            object=str(header.get("OBJECT", "")).strip(),
            source=str(path),
            extra=extra,
        )


register(RowsReader)


@register
class SpeXtoolReader(RowsReader):
    name = "spextool"
    priority = 26
    expects = (
        "a primary array of 2-4 rows (or columns) wavelength, flux[, error, flag] with "
        "increasing positive wavelengths and no CRVAL1"
    )
    default_rows = ("wave", "flux", "err", "mask")

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        header = hdul[0].header
        if "CRVAL1" in header:
            return False
        stack = _oriented(hdul[0].data)
        return stack is not None and stack.shape[1] <= 4 and _looks_like_wavelength(stack[0, 0])

    def _wave_unit(self, header: fits.Header, wave: np.ndarray) -> str | None:
        unit = self.wave_unit or str(header.get("XUNITS", "")).strip()
        if unit:
            return unit
        finite = wave[np.isfinite(wave)]
        return "micron" if finite.size and np.median(finite) < 30 else None


@register
class LAMOSTReader(RowsReader):
    name = "lamost"
    priority = 24
    expects = "a LAMOST primary array of 3-5 rows (flux, ivar, wavelength, masks)"
    default_rows = ("flux", "ivar", "wave", "mask", "skip")

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        header = hdul[0].header
        return (
            header.get("NAXIS") == 2
            and 3 <= int(header.get("NAXIS2", 0)) <= 5
            and ("LAMOST" in str(header.get("TELESCOP", "")).upper() or "COEFF0" in header)
        )
