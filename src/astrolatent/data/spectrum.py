"""The canonical container every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Spectrum:
    """One observed 1D spectrum as read from a file, before any preprocessing.

    Attributes:
        id: unique spectrum id (e.g. the ESO product id ``ADP.2014-09-16T11:03:31.127``).
        wave: wavelengths in Angstrom, shape ``(L,)``, float64, strictly increasing.
        flux: flux in the file's units, shape ``(L,)``.
        err: 1-sigma flux uncertainty, shape ``(L,)``, or None when the file has none.
        bad: pixels the file itself flags as unusable (e.g. SDSS ``and_mask`` or zero
            inverse variance), shape ``(L,)`` bool, or None.
        object: name of the observed object (used to keep an object's spectra together).
        source: path of the file it came from.
        extra: per-spectrum values carried by the file (e.g. label columns of a table).
    """

    id: str
    wave: np.ndarray
    flux: np.ndarray
    err: np.ndarray | None = None
    bad: np.ndarray | None = None
    object: str = ""
    source: str = ""
    extra: dict[str, object] = field(default_factory=dict)
