"""Readers of archive spectrum formats, registered by name and identified by content.

Each format lives in its own module and registers a :class:`Reader` subclass with
:func:`register`. :func:`identify` opens a file once and asks every reader whether it
recognises the content (never the file name).
"""

from __future__ import annotations

import functools
import logging
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
from astropy import units as u
from astropy.io import fits

from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import ConfigError, InputFileError, UnknownFormatError
from astrolatent.registry import Registry

log = logging.getLogger(__name__)


class Reader:
    """Base class of a format reader.

    Subclasses set ``name`` and implement :meth:`identify` and :meth:`read_one` (a file
    holding one spectrum) or :meth:`read` and :meth:`count` (a file holding several). Options (e.g. which table
    column holds the flux) are keyword arguments of ``__init__``.
    """

    name: ClassVar[str]
    #: Identification order: specific formats first, generic ones (any table) last.
    priority: ClassVar[int] = 50
    #: What the reader looks for, quoted when no reader recognises a file.
    expects: ClassVar[str] = ""
    #: Whether :meth:`read_bytes` parses files (ingestion then reads each file once).
    reads_bytes: ClassVar[bool] = False

    def __init__(self, **options: object) -> None:
        if options:
            raise ConfigError(f"reader {self.name!r} takes no options, got {sorted(options)}")

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        """Whether this reader recognises the opened file."""
        raise NotImplementedError

    def count(self, path: Path) -> int:
        """Number of spectra in the file."""
        return 1

    def read(self, path: Path, start: int = 0, stop: int | None = None) -> list[Spectrum]:
        """Spectra ``start:stop`` of the file (all of them by default). This default serves
        files that hold one spectrum (:meth:`read_one`); readers of files that hold several
        override it and :meth:`count`."""
        return [self.read_one(Path(path))] if holds_first(start, stop) else []

    def read_one(self, path: Path) -> Spectrum:
        """The spectrum of a file that holds one."""
        raise NotImplementedError

    def read_bytes(
        self, path: Path, data: memoryview, start: int = 0, stop: int | None = None
    ) -> list[Spectrum] | None:
        """Spectra ``start:stop`` parsed from ``data``, the file's bytes already in memory
        (ingestion has read them to hash them); None when this reader cannot, and
        :meth:`read` reads the file. The spectra's arrays may be views of ``data`` in the
        file's byte order, valid only as long as ``data`` is."""
        return None


def holds_first(start: int, stop: int | None) -> bool:
    """Whether rows ``start:stop`` of a file include its first spectrum (row 0)."""
    return start <= 0 and (stop is None or stop >= 1)


_REGISTRY: Registry[type[Reader]] = Registry(Reader, "format")


def register(cls: type[Reader]) -> type[Reader]:
    """Class decorator that adds a reader to the registry under ``cls.name``."""
    return _REGISTRY.register(cls)


def available() -> list[str]:
    """Names of the registered formats, in identification order."""
    return sorted(_REGISTRY, key=lambda name: (_REGISTRY[name].priority, name))


def get(name: str, **options: object) -> Reader:
    """An instance of the reader registered as ``name``."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown format {name!r}; available formats: {', '.join(available())}"
        ) from None
    return cls(**options)


def open_fits(path: str | Path) -> fits.HDUList:
    """Open a FITS file, translating astropy's errors into one clear :class:`InputFileError`.

    gzip and bzip2 files are decompressed on the fly. An fpack'ed image (``.fits.fz``: an
    empty primary HDU followed by the tile-compressed primary, ``COMPRESSED_IMAGE``) is
    returned with the decompressed image as its primary HDU, so readers see the original
    layout.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    compressed = path.name.lower().endswith((".gz", ".bz2"))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=not compressed, lazy_load_hdus=False)
            hdul = _unpack_fpack(hdul)
    except OSError as exc:
        raise InputFileError(path, f"not a readable FITS file ({exc})") from None
    except Exception as exc:  # astropy raises many types on corrupt headers
        raise InputFileError(path, f"corrupt FITS file ({type(exc).__name__}: {exc})") from None
    for warning in caught:
        if "truncated" in str(warning.message).lower():
            hdul.close()
            raise InputFileError(path, "truncated FITS file (data shorter than its header says)")
    return hdul


def _unpack_fpack(hdul: fits.HDUList) -> fits.HDUList:
    if (
        len(hdul) >= 2
        and hdul[0].data is None
        and isinstance(hdul[1], fits.CompImageHDU)
        and hdul[1].header.get("EXTNAME", "COMPRESSED_IMAGE") == "COMPRESSED_IMAGE"
    ):
        header = hdul[1].header.copy()
        for key in ("XTENSION", "EXTNAME", "PCOUNT", "GCOUNT"):
            header.remove(key, ignore_missing=True)
        primary = fits.PrimaryHDU(data=hdul[1].data, header=header)
        rest = [_in_memory(h) for h in hdul[2:]]
        hdul.close()
        return fits.HDUList([primary, *rest])
    return hdul


def _in_memory(hdu):
    """A copy of an HDU that no longer reads from the open file."""
    data = None if hdu.data is None else hdu.data.copy()
    if isinstance(hdu, fits.CompImageHDU):
        return fits.ImageHDU(data=data, header=hdu.header.copy())
    return type(hdu)(data=data, header=hdu.header.copy())


def image_data(hdu: fits.PrimaryHDU | fits.ImageHDU, path: Path) -> np.ndarray | None:
    """An image HDU's data as a float64 copy (None when it has none); raises
    :class:`InputFileError` when the file is truncated or corrupt."""
    try:
        return None if hdu.data is None else np.array(hdu.data, dtype=np.float64)
    except Exception as exc:
        raise InputFileError(path, f"cannot read data, file truncated or corrupt ({exc})") from None


def column_lookup(hdu: fits.FITS_rec | fits.BinTableHDU) -> dict[str, str]:
    """Map upper-cased column names to their spelling in the table (names are case-insensitive)."""
    names = hdu.columns.names
    return {name.upper(): name for name in names}


#: Wavelength unit spellings found in archive headers that astropy does not parse.
_UNIT_ALIASES = {
    "microns": "micron",
    "micrometers": "micron",
    "micrometer": "micron",
    "angstroms": "Angstrom",
    "a": "Angstrom",
    "ang": "Angstrom",
    "nanometers": "nm",
}


def to_angstrom(values: np.ndarray, unit: str | None, *, path: Path, what: str) -> np.ndarray:
    """Convert wavelengths to Angstrom; ``unit`` None or empty means the values already are.

    float64 values already in Angstrom are returned as they are (in any byte order).
    """
    values = np.asarray(values)
    if values.dtype.kind != "f" or values.dtype.itemsize != 8:  # float64 of either byte order stays
        values = values.astype(np.float64)
    if not unit or not unit.strip():
        return values
    factor = _angstrom_per(unit.strip())
    if factor is None:
        raise InputFileError(path, f"{what} has unit {unit!r}, which is not a wavelength")
    return values if factor == 1.0 else values * factor


@functools.lru_cache(maxsize=64)
def _angstrom_per(unit: str) -> float | None:
    """Angstrom per ``unit`` (as spelled in a header), None when it is not a wavelength."""
    text = _UNIT_ALIASES.get(unit.lower(), unit)
    try:
        parsed = u.Unit(text, format="fits", parse_strict="silent")
        if isinstance(parsed, u.UnrecognizedUnit):
            parsed = u.Unit(text.lower(), parse_strict="raise")
        return float(parsed.to(u.AA))
    except (ValueError, u.UnitConversionError, TypeError):
        return None


def is_log10_wcs(header: fits.Header) -> bool:
    """Whether a 1-D WCS gives log10 wavelengths: IRAF's ``DC-FLAG = 1`` or APOGEE's
    ``CTYPE1 = 'LOG-LINEAR'`` (the FITS standard's ``WAVE-LOG`` keeps CRVAL1 in wavelength
    units, so it is not)."""
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    return int(header.get("DC-FLAG", 0)) == 1 or ctype == "LOG-LINEAR"


def linear_wcs(header: fits.Header, n: int, *, path: Path, log10: bool | None = None) -> np.ndarray:
    """Wavelengths in Angstrom of ``n`` pixels from a linear or log10-linear axis-1 WCS.

    Pixel p (1-based) is at ``CRVAL1 + CDELT1 * (p - CRPIX1)`` (``CD1_1`` may stand for
    ``CDELT1``); that value is log10 of the wavelength when ``log10`` is True, or, when it
    is None, when :func:`is_log10_wcs`. ``CUNIT1`` gives the
    unit (Angstrom when absent).
    """
    if "CRVAL1" not in header or not ("CDELT1" in header or "CD1_1" in header):
        raise InputFileError(path, "missing CRVAL1 or CDELT1/CD1_1 (no wavelength solution)")
    keys = ("CRVAL1", "CDELT1" if "CDELT1" in header else "CD1_1", "CRPIX1", "DC-FLAG")
    for key in keys:  # a text or boolean value would fail below with no keyword named
        value = header.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputFileError(path, f"{key} = {value!r} is not a number")
    crval, cdelt = float(header[keys[0]]), float(header[keys[1]])
    crpix = float(header.get("CRPIX1", 1.0))
    coord = crval + cdelt * (np.arange(1, n + 1, dtype=np.float64) - crpix)
    if log10 is None:
        log10 = is_log10_wcs(header)
    wave = 10.0**coord if log10 else coord
    return to_angstrom(wave, header.get("CUNIT1"), path=path, what="CUNIT1")


def identify(path: str | Path) -> str:
    """Name of the first registered reader that recognises the file's content.

    Raises :class:`UnknownFormatError` naming what every reader expects.
    """
    with open_fits(path) as hdul:
        for name in available():
            try:
                if _REGISTRY[name].identify(hdul):
                    return name
            except Exception as exc:  # a reader's probe must not crash identification
                log.debug("reader %s failed to probe %s: %s", name, path, exc)
    wants = "; ".join(
        f"{name} expects {_REGISTRY[name].expects}"
        for name in available()
        if _REGISTRY[name].expects
    )
    raise UnknownFormatError(path, f"no reader matched: {wants}")


# Import the format modules so that they register themselves.
from astrolatent.data.readers import (  # noqa: E402, F401
    apogee,
    eso1d,
    rows,
    sdss,
    specutils_reader,
    table,
    wcs1d,
)
