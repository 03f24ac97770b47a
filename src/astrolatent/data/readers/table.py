"""Tables of many spectra: one row per spectrum, the flux as an array column.

Covers Gaia XP sampled spectra and APOGEE-like tables. The wavelength comes from an array
column (per row, or one shared value in every row), or from a linear (or log10-linear) grid
given by the user (``wave_start``, ``wave_step`` in Angstrom). Errors come from an error
column (``err_column``, else ``FLUX_ERROR``, ``ERR``, ...) or, when there is none, from an
inverse-variance column (``IVAR``, ``INVVAR``, as in LAMOST DR8+ tables): ``1/sqrt(ivar)``,
with pixels of ``ivar <= 0`` flagged bad. Scalar columns named in ``extra_columns`` travel
with each spectrum (e.g. labels stored in the same table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits

from astrolatent.data.readers import Reader, column_lookup, open_fits, register, to_angstrom
from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import ConfigError, InputFileError

_ERR_CANDIDATES = ("FLUX_ERROR", "FLUX_ERR", "ERR", "ERROR", "SIGMA")
_IVAR_CANDIDATES = ("IVAR", "INVVAR", "IVAR_FLUX")  # e.g. LAMOST DR8+ and SDSS-like tables
_WAVE_CANDIDATES = ("WAVE", "WAVELENGTH", "LAMBDA")
_ID_CANDIDATES = ("ID", "SPECID", "SOURCE_ID", "OBJID")


def _table_hdu(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU):
            return hdu
    return None


@register
class TableReader(Reader):
    name = "table"
    priority = 90
    expects = "a binary table with a FLUX array column"

    def __init__(
        self,
        *,
        flux_column: str = "flux",
        err_column: str | None = None,
        wave_column: str | None = None,
        wave_start: float | None = None,
        wave_step: float | None = None,
        wave_log10: bool = False,
        id_column: str | None = None,
        object_column: str | None = None,
        extra_columns: Sequence[str] | Mapping[str, str] = (),
    ) -> None:
        if (wave_start is None) != (wave_step is None):
            raise ConfigError(
                "give both wave_start and wave_step for a linear wavelength grid, or neither"
            )
        if wave_step is not None and wave_step <= 0:
            raise ConfigError(f"wave_step={wave_step} must be positive")
        if wave_column is not None and wave_start is not None:
            raise ConfigError("give either wave_column or wave_start/wave_step, not both")
        self.flux_column = flux_column
        self.err_column = err_column
        self.wave_column = wave_column
        self.wave_start = wave_start
        self.wave_step = wave_step
        self.wave_log10 = wave_log10
        self.id_column = id_column
        self.object_column = object_column
        # {column in the table: name it gets in the store}
        if isinstance(extra_columns, Mapping):
            self.extra_columns = dict(extra_columns)
        else:
            self.extra_columns = {name: name for name in extra_columns}

    @classmethod
    def identify(cls, hdul: fits.HDUList) -> bool:
        hdu = _table_hdu(hdul)
        if hdu is None:
            return False
        return any(col.format.repeat > 1 for col in hdu.columns if col.name.upper() == "FLUX")

    def count(self, path: Path) -> int:
        with open_fits(path) as hdul:
            hdu = _table_hdu(hdul)
            if hdu is None:
                raise InputFileError(path, "no binary table extension")
            return int(hdu.header.get("NAXIS2", 0))

    def _column(
        self,
        cols: dict[str, str],
        name: str | None,
        candidates: Sequence[str],
        path: Path,
        what: str,
    ) -> str | None:
        if name is not None:
            if name.upper() not in cols:
                raise InputFileError(
                    path, f"{what} column {name!r} not found (columns: {', '.join(cols.values())})"
                )
            return cols[name.upper()]
        for cand in candidates:
            if cand in cols:
                return cols[cand]
        return None

    def read(self, path: Path, start: int = 0, stop: int | None = None) -> list[Spectrum]:
        path = Path(path)
        with open_fits(path) as hdul:
            hdu = _table_hdu(hdul)
            if hdu is None:
                raise InputFileError(path, "no binary table extension")
            cols = column_lookup(hdu)
            flux_col = self._column(cols, self.flux_column, (), path, "flux")
            err_col = self._column(cols, self.err_column, _ERR_CANDIDATES, path, "error")
            ivar_col = None if err_col else self._column(cols, None, _IVAR_CANDIDATES, path, "")
            wave_col = None
            if self.wave_start is None:
                wave_col = self._column(
                    cols, self.wave_column, _WAVE_CANDIDATES, path, "wavelength"
                )
                if wave_col is None:
                    raise InputFileError(
                        path,
                        "table has no wavelength column; name one (wave_column) or give a linear grid (wave_start, wave_step)",
                    )
            id_col = self._column(cols, self.id_column, _ID_CANDIDATES, path, "id")
            obj_col = self._column(cols, self.object_column, (), path, "object")
            extra = {
                self._column(cols, col, (), path, "extra"): new
                for col, new in self.extra_columns.items()
            }
            n_rows = int(hdu.header.get("NAXIS2", 0))
            stop = n_rows if stop is None else min(stop, n_rows)
            if stop <= start:
                return []
            try:
                data = hdu.data[start:stop]
                flux = np.asarray(data[flux_col], dtype=np.float64)
                err_values = data[err_col or ivar_col] if (err_col or ivar_col) else None
                err = None if err_values is None else np.asarray(err_values, dtype=np.float64)
                waves = np.asarray(data[wave_col], dtype=np.float64) if wave_col else None
                ids = np.asarray(data[id_col]) if id_col else None
                objs = np.asarray(data[obj_col]) if obj_col else None
                extras = {new: np.asarray(data[col]) for col, new in extra.items()}
            except Exception as exc:
                raise InputFileError(
                    path,
                    f"cannot read table rows {start}:{stop}, file truncated or corrupt ({exc})",
                ) from None
            wave_unit = hdu.columns[wave_col].unit if wave_col else None
        if flux.ndim != 2:
            raise InputFileError(
                path, f"flux column {flux_col!r} holds scalars, not one array per row"
            )
        n_pix = flux.shape[1]
        if err is not None and err.shape != flux.shape:
            raise InputFileError(
                path,
                f"error column {err_col or ivar_col!r} has shape {err.shape[1:]}, flux has {(n_pix,)}",
            )
        bad = None
        if ivar_col is not None:  # inverse variance: 0 means no data
            with np.errstate(divide="ignore", invalid="ignore"):
                bad = ~(err > 0)
                err = np.where(bad, np.inf, 1.0 / np.sqrt(err))
        if waves is None:
            grid = self.wave_start + self.wave_step * np.arange(n_pix)
            shared = 10.0**grid if self.wave_log10 else grid
        else:
            waves = to_angstrom(
                waves.reshape(len(flux), -1), wave_unit, path=path, what=f"column {wave_col!r}"
            )
            if waves.shape[1] != n_pix:
                raise InputFileError(
                    path, f"wavelength column has {waves.shape[1]} values per row, flux has {n_pix}"
                )
            shared = None
        stem = path.name.split(".fits")[0]
        out = []
        for i in range(len(flux)):
            row = start + i
            spec_id = _text(ids[i]) if ids is not None else f"{stem}:{row}"
            obj = _text(objs[i]) if objs is not None else spec_id
            out.append(
                Spectrum(
                    id=spec_id,
                    wave=shared if waves is None else waves[i],
                    flux=flux[i],
                    err=None if err is None else err[i],
                    bad=None if bad is None else bad[i],
                    object=obj,
                    source=f"{path}[{row}]",
                    extra={name: _scalar(values[i]) for name, values in extras.items()},
                )
            )
        return out


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip()


def _scalar(value: object) -> object:
    if isinstance(value, bytes | np.bytes_ | str | np.str_):
        return _text(value)
    if isinstance(value, np.integer):
        return int(value)
    return float(value)
