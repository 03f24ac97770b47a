"""ESO Phase-3 1D spectrum products (e.g. HARPS ``ADP.*`` files).

Extension 1 is a binary table with one row whose cells are arrays ``WAVE``, ``FLUX`` and,
optionally, ``ERR`` (column names are case-insensitive). The spectrum id is the ESO product
id (``ARCFILE`` without ``.fits``), else the file stem; the object name comes from ``OBJECT``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from astrolatent.data.checksum import read_file
from astrolatent.data.readers import (
    Reader,
    column_lookup,
    fits_bytes,
    holds_first,
    open_fits,
    register,
    to_angstrom,
)
from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import InputFileError
from astrolatent.outputs.io import write_atomic


@register
class ESO1DReader(Reader):
    name = "eso-1d"
    priority = 10
    expects = "a one-row binary table with WAVE and FLUX arrays in extension 1"
    reads_bytes = True

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            return False
        cols = column_lookup(hdul[1])
        return {"WAVE", "FLUX"} <= set(cols) and hdul[1].header.get("NAXIS2") == 1

    def read_bytes(
        self, path: Path, data: memoryview, start: int = 0, stop: int | None = None
    ) -> list[Spectrum] | None:
        if not holds_first(start, stop):
            return []
        row = fits_bytes.read_row(data, {"WAVE", "FLUX"}, {"ERR"})
        if row is None:
            return None
        return [_spectrum(Path(path), row.cells, row.units["WAVE"], row.primary)]

    def read_one(self, path: Path) -> Spectrum:
        if path.name.lower().endswith((".fits", ".fit", ".fts")) and path.is_file():
            row = fits_bytes.read_row(read_file(path), {"WAVE", "FLUX"}, {"ERR"})
            if row is not None:  # copies: the bytes are a buffer that the next read reuses
                cells = {name: _native_copy(cell) for name, cell in row.cells.items()}
                return _spectrum(path, cells, row.units["WAVE"], row.primary)
        with open_fits(path) as hdul:
            if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                raise InputFileError(
                    path, "no binary table in extension 1 (not an ESO 1D spectrum)"
                )
            table = hdul[1]
            cols = column_lookup(table)
            missing = {"WAVE", "FLUX"} - set(cols)
            if missing:
                raise InputFileError(
                    path, f"missing column(s) {', '.join(sorted(missing))} in extension 1"
                )
            if table.header.get("NAXIS2", 0) < 1:
                raise InputFileError(path, "extension 1 table has no rows")
            try:
                row = table.data[0]
                cells = {
                    c: _native_copy(row[cols[c]]) for c in ("WAVE", "FLUX", "ERR") if c in cols
                }
            except Exception as exc:
                raise InputFileError(
                    path, f"cannot read table data, file truncated or corrupt ({exc})"
                ) from None
            unit = table.columns[cols["WAVE"]].unit
            return _spectrum(path, cells, unit, hdul[0].header)


def _spectrum(path: Path, cells: dict[str, np.ndarray], wave_unit: str | None, primary) -> Spectrum:
    """The spectrum from the table cells (upper-cased names) and the primary header."""
    wave = to_angstrom(cells["WAVE"], wave_unit, path=path, what="WAVE")
    arcfile = str(primary.get("ARCFILE", "")).strip()
    spec_id = arcfile.removesuffix(".fits") if arcfile else path.name.split(".fits")[0]
    obj = str(primary.get("OBJECT", "")).strip()
    return Spectrum(
        id=spec_id,
        wave=wave,
        flux=cells["FLUX"],
        err=cells.get("ERR"),
        object=obj,
        source=str(path),
    )


def _native_copy(cell: np.ndarray) -> np.ndarray:
    """A 1D copy of a table cell in native byte order, keeping the file's float precision."""
    cell = np.asarray(cell)
    dtype = cell.dtype if cell.dtype.kind == "f" else np.dtype(np.float64)
    return np.array(cell, dtype=dtype.newbyteorder("=")).ravel()


def write_eso1d(
    path: str | Path,
    wave: np.ndarray,
    flux: np.ndarray,
    err: np.ndarray | None = None,
    *,
    arcfile: str | None = None,
    object_name: str = "",
    header: dict | None = None,
) -> Path:
    """Write one spectrum as an ESO Phase-3 1D product (atomically: temp file, then rename).

    ``wave`` in Angstrom (stored as float64), ``flux``/``err`` stored as float32. astropy
    builds both headers; the one-row table body is written as big-endian bytes directly,
    because astropy's writer byte-swaps array cells element by element in Python (seconds
    for one 312,501-pixel HARPS row).
    """
    path = Path(path)
    n = len(wave)
    arrays = [("WAVE", "D", ">f8", wave), ("FLUX", "E", ">f4", flux)]
    if err is not None:
        arrays.append(("ERR", "E", ">f4", err))
    cols = [
        fits.Column(
            name=name,
            format=f"{n}{code}",
            unit="Angstrom" if name == "WAVE" else None,
            array=np.zeros((1, n), dtype[1:]),
        )
        for name, code, dtype, _ in arrays
    ]
    table_header = fits.BinTableHDU.from_columns(cols).header
    primary = fits.PrimaryHDU().header
    primary["ARCFILE"] = arcfile or path.name
    primary["OBJECT"] = object_name
    for key, value in (header or {}).items():
        primary[key] = value
    body = b"".join(
        np.ascontiguousarray(values, dtype=dtype).tobytes() for _, _, dtype, values in arrays
    )

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(primary.tostring().encode("ascii"))
            fh.write(table_header.tostring().encode("ascii"))
            fh.write(body)
            fh.write(b"\0" * (-len(body) % 2880))

    return write_atomic(path, write)
