"""Readers of archive spectrum formats, registered by name and identified by content.

Each format lives in its own module and registers a :class:`Reader` subclass with
:func:`register`. :func:`identify` opens a file once and asks every reader whether it
recognises the content (never the file name).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
from astropy import units as u
from astropy.io import fits

from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import ConfigError, InputFileError, UnknownFormatError

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Reader]] = {}


class Reader:
    """Base class of a format reader.

    Subclasses set ``name``, implement :meth:`identify` and :meth:`read`, and override
    :meth:`count` when a file can hold more than one spectrum. Options (e.g. which table
    column holds the flux) are keyword arguments of ``__init__``.
    """

    name: ClassVar[str]
    #: Identification order: specific formats first, generic ones (any table) last.
    priority: ClassVar[int] = 50

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
        """Spectra ``start:stop`` of the file (all of them by default)."""
        raise NotImplementedError


def register(cls: type[Reader]) -> type[Reader]:
    """Class decorator that adds a reader to the registry under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Reader)):
        raise TypeError(f"{cls!r} is not a Reader subclass")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a reader named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


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
    """Open a FITS file, translating astropy's errors into one clear :class:`InputFileError`."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=not path.name.endswith(".gz"), lazy_load_hdus=False)
    except OSError as exc:
        raise InputFileError(path, f"not a readable FITS file ({exc})") from None
    except Exception as exc:  # astropy raises many types on corrupt headers
        raise InputFileError(path, f"corrupt FITS file ({type(exc).__name__}: {exc})") from None
    for warning in caught:
        if "truncated" in str(warning.message).lower():
            hdul.close()
            raise InputFileError(path, "truncated FITS file (data shorter than its header says)")
    return hdul


def column_lookup(hdu: fits.FITS_rec | fits.BinTableHDU) -> dict[str, str]:
    """Map upper-cased column names to their spelling in the table (names are case-insensitive)."""
    names = hdu.columns.names
    return {name.upper(): name for name in names}


def to_angstrom(values: np.ndarray, unit: str | None, *, path: Path, what: str) -> np.ndarray:
    """Convert wavelengths to Angstrom; ``unit`` None or empty means the values already are."""
    values = np.asarray(values, dtype=np.float64)
    if not unit or not unit.strip():
        return values
    try:
        parsed = u.Unit(unit.strip(), format="fits", parse_strict="silent")
        if isinstance(parsed, u.UnrecognizedUnit):
            parsed = u.Unit(unit.strip().lower(), parse_strict="raise")
        return (values * parsed).to_value(u.AA)
    except (ValueError, u.UnitConversionError, TypeError):
        raise InputFileError(path, f"{what} has unit {unit!r}, which is not a wavelength") from None


def identify(path: str | Path) -> str:
    """Name of the first registered reader that recognises the file's content."""
    with open_fits(path) as hdul:
        for name in available():
            try:
                if _REGISTRY[name].identify(hdul):
                    return name
            except Exception as exc:  # a reader's probe must not crash identification
                log.debug("reader %s failed to probe %s: %s", name, path, exc)
    raise UnknownFormatError(
        path, f"no reader recognises this file (formats: {', '.join(available())})"
    )


# Import the format modules so that they register themselves.
from astrolatent.data.readers import eso1d, sdss, table, wcs1d  # noqa: E402, F401
