"""Optional fast path for one-row binary tables: ``fitsio`` (CFITSIO) instead of astropy.

Opening a HARPS ``ADP`` file and copying its three 312,501-pixel cells takes astropy several
milliseconds of header parsing and page faults on its memory map; CFITSIO reads the row into
memory in a fraction of that (docs/benchmarks.md, "Ingestion speed"). ``fitsio`` is an
optional extra (``pip install 'astrolatent[fast]'``). Whenever it is missing, or the file is
anything but a plain uncompressed table with the columns asked for, :func:`read_row` returns
None and the caller reads the file with astropy, which also words the errors for broken files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import fitsio
except ImportError:  # optional extra
    fitsio = None

log = logging.getLogger(__name__)


@dataclass
class Row:
    """Cells of row 0 of extension 1 (native byte order), their units and the primary header."""

    cells: dict[str, np.ndarray]
    units: dict[str, str | None]
    primary: dict[str, object]


def available() -> bool:
    return fitsio is not None


def read_row(path: Path, required: set[str], optional: set[str] = frozenset()) -> Row | None:
    """Row 0 of extension 1: the columns ``required`` (all present) and those of ``optional``
    that exist, keyed by upper-cased name; None when fitsio cannot or should not read it."""
    if fitsio is None or not path.name.lower().endswith((".fits", ".fit", ".fts")):
        return None
    try:
        with fitsio.FITS(str(path)) as fits_file:
            if len(fits_file) < 2 or fits_file[1].get_exttype() != "BINARY_TBL":
                return None
            table = fits_file[1]
            header = table.read_header()
            if header.get("NAXIS2", 0) < 1:
                return None
            names = {name.upper(): (i, name) for i, name in enumerate(table.get_colnames())}
            if not required <= set(names):
                return None
            wanted = [c for c in names if c in required | optional]
            # the whole row at once: asking for a subset of columns is ~10x slower in fitsio
            data = table.read(rows=[0])
            primary = dict(fits_file[0].read_header())
    except Exception as exc:  # anything CFITSIO dislikes goes to the astropy path
        log.debug("fitsio could not read %s (%s); using astropy", path, exc)
        return None
    cells, units = {}, {}
    for column in wanted:
        number = names[column][0] + 1
        if any(f"{key}{number}" in header for key in ("TSCAL", "TZERO", "TNULL")):
            return None  # scaled or flagged integers: astropy's handling is the reference
        cell = np.asarray(data[names[column][1]][0])
        if cell.dtype.kind not in "fiu" or cell.ndim != 1:
            return None
        cells[column] = cell.astype(cell.dtype.newbyteorder("="))
        unit = header.get(f"TUNIT{number}")
        units[column] = None if unit is None else str(unit)
    return Row(cells=cells, units=units, primary=primary)
