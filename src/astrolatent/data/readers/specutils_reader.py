"""specutils as the fallback reader, and stored spectra exported as specutils spectra.

specutils is optional (``pip install 'astrolatent[specutils]'``). When it is installed, a
FITS file that no astrolatent reader claims but that a loader of specutils' registry
identifies is read with ``Spectrum.read`` (``Spectrum1D`` in specutils < 2): its spectral
axis converted to Angstrom, its uncertainty (standard deviation, variance or inverse
variance) to 1-sigma errors, its mask to bad pixels. Only 1-D spectra are read.

:func:`to_specutils` goes the other way: rows of a store as one specutils spectrum with
units (Angstrom; the normalised flux is dimensionless), its uncertainty and mask.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.utils.exceptions import AstropyDeprecationWarning

from astrolatent.data.readers import Reader, register
from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import ConfigError, InputFileError


@contextmanager
def _quiet() -> Iterator[None]:
    """specutils and gwcs warn about deprecated astropy calls; those are not the user's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyDeprecationWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _spectrum_class():
    """specutils' spectrum class (``Spectrum``, or ``Spectrum1D`` before 2.0), or None."""
    if importlib.util.find_spec("specutils") is None:
        return None
    with _quiet():
        specutils = importlib.import_module("specutils")
    return getattr(specutils, "Spectrum", None) or specutils.Spectrum1D


def _formats(cls, path: str) -> list[str]:
    from astropy.io import registry

    return registry.identify_format("read", cls, path, None, [], {})


@register
class SpecutilsReader(Reader):
    name = "specutils"
    priority = 99
    expects = "a file one of specutils' loaders identifies (specutils installed)"

    def __init__(self, format: str | None = None) -> None:
        self.format = format

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        # specutils' identifiers are loose (any binary table looks "tabular"), so a file
        # is claimed only when a loader actually reads a 1-D spectrum from it
        path = hdul.filename()
        if _spectrum_class() is None or path is None:
            return False
        try:
            cls().read(Path(path))
        except InputFileError:
            return False
        return True

    def read_one(self, path: Path) -> Spectrum:
        spec_cls = _spectrum_class()
        if spec_cls is None:
            raise ConfigError("the specutils reader needs specutils: pip install specutils")
        fmt = self.format or next(iter(_formats(spec_cls, str(path))), None)
        if fmt is None:
            raise InputFileError(path, "no specutils loader identifies this file")
        try:
            with _quiet():
                spec = spec_cls.read(str(path), format=fmt)
        except Exception as exc:  # loaders raise anything
            raise InputFileError(
                path, f"specutils loader {fmt!r} failed ({type(exc).__name__}: {exc})"
            ) from None
        if spec.flux.ndim != 1:
            raise InputFileError(path, f"specutils read flux of shape {spec.flux.shape}, not 1-D")
        try:
            wave = spec.spectral_axis.to_value(u.AA, equivalencies=u.spectral())
        except u.UnitConversionError:
            raise InputFileError(
                path, f"spectral axis unit {spec.spectral_axis.unit} is not a wavelength"
            ) from None
        return Spectrum(
            id=path.name.split(".fits")[0],
            wave=np.asarray(wave, np.float64),
            flux=np.asarray(spec.flux.value, np.float64),
            err=_sigma(spec),
            bad=None if spec.mask is None else np.asarray(spec.mask, bool),
            object=str(spec.meta.get("header", {}).get("OBJECT", "")).strip(),
            source=str(path),
            extra={"flux_unit": spec.flux.unit.to_string(), "specutils_format": fmt},
        )


def _sigma(spec) -> np.ndarray | None:
    unc = spec.uncertainty
    if unc is None:
        return None
    kind = type(unc).__name__
    values = np.asarray(unc.array, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind.startswith("Inverse"):
            return np.where(values > 0, 1.0 / np.sqrt(values), np.inf)
        if kind.startswith("Variance"):
            return np.sqrt(values)
    return values


def to_specutils(store, rows: np.ndarray | list[int] | None = None):
    """Stored rows as one specutils spectrum of shape ``(len(rows), L)``.

    Args:
        store: a :class:`~astrolatent.data.store.SpectrumStore` or its path.
        rows: store rows (default: every accepted spectrum, in row order).

    Returns:
        A specutils spectrum: ``spectral_axis`` the store grid in Angstrom, ``flux`` the
        normalised flux (dimensionless; multiply by ``meta['scale']``, in the file's
        ``meta['flux_unit']``, for the original scale), ``uncertainty`` a
        ``StdDevUncertainty`` when the store keeps errors, ``mask`` True where a pixel is
        not valid, and ``meta`` with ``id``, ``row``, ``scale`` and ``flux_unit`` per row.
    """
    from astrolatent.data.store import SpectrumStore

    spec_cls = _spectrum_class()
    if spec_cls is None:
        raise ConfigError("exporting to specutils needs specutils: pip install specutils")
    from astropy.nddata import StdDevUncertainty

    store = store if isinstance(store, SpectrumStore) else SpectrumStore.open(store)
    order = np.sort(store.accepted_rows() if rows is None else np.asarray(rows, np.int64))
    flux, valid = store.read(order)
    err = (
        None
        if store.err is None
        else np.asarray(store.err.get_orthogonal_selection((order, slice(None))), np.float64)
    )
    meta = store.metadata.set_index("row").loc[order]
    units = meta["flux_unit"] if "flux_unit" in meta else [""] * len(order)
    with _quiet():
        return spec_cls(
            spectral_axis=store.wave * u.AA,
            flux=np.asarray(flux, np.float64) * u.dimensionless_unscaled,
            uncertainty=None if err is None else StdDevUncertainty(err),
            mask=~np.asarray(valid, bool),
            meta={
                "id": meta["id"].astype(str).tolist(),
                "row": order.tolist(),
                "scale": meta["scale"].to_numpy(np.float64).tolist(),
                "flux_unit": [str(x) for x in units],
            },
        )
