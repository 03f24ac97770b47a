"""Reading user tables (CSV, Parquet, FITS) into pandas, with clear errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from astrolatent.errors import ConfigError, InputFileError


def read_table(path: str | Path, *, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.txt``), Parquet (``.parquet``, ``.pq``) or FITS table.

    FITS tables keep scalar columns only (array columns are dropped); byte strings are
    decoded and stripped. ``text_columns`` of a CSV keep their cells as written (``0001``
    stays ``0001``, ``NA`` stays ``NA``, a blank cell is ``""``), e.g. ids.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".fits", ".fit", ".fits.gz", ".fts")):
            from astropy.io import fits
            from astropy.table import Table

            with fits.open(path, memmap=False) as hdul:  # closed even when the table is bad
                table = Table.read(hdul, format="fits")
            scalar = [c for c in table.colnames if table[c].ndim == 1]
            frame = table[scalar].to_pandas()
            for col in frame.columns:
                if frame[col].dtype == object:
                    frame[col] = frame[col].map(
                        lambda v: v.decode().strip() if isinstance(v, bytes) else v
                    )
            return frame
        if name.endswith((".csv", ".txt", ".csv.gz")):
            frame = pd.read_csv(path)
            text = [c for c in text_columns if c in frame.columns]
            if text:
                raw = pd.read_csv(path, usecols=text, dtype=str, keep_default_na=False)
                frame[text] = raw[text]
            return frame
    except Exception as exc:
        raise InputFileError(path, f"cannot read table ({type(exc).__name__}: {exc})") from None
    suffix = "".join(path.suffixes[-2:]) if name.endswith(".gz") else path.suffix
    raise InputFileError(
        path, f"unknown table format {suffix or '(no extension)'!r}; use .csv, .parquet or .fits"
    )


def numeric_columns(
    frame: pd.DataFrame, columns: Sequence[str], *, source: str | Path
) -> np.ndarray:
    """The named columns as a float64 array ``(n, len(columns))``; errors name the column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputFileError(
            source,
            f"missing column(s) {', '.join(missing)} (columns: {', '.join(map(str, frame.columns))})",
        )
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        values = pd.to_numeric(frame[col], errors="coerce")
        if values.isna().all() and frame[col].notna().any():
            raise InputFileError(source, f"column {col!r} is not numeric")
        bad = non_numeric(frame[col])
        if bad:
            raise InputFileError(source, f"column {col!r} {describe_non_numeric(bad)}")
        out[:, j] = values.to_numpy(np.float64, na_value=np.nan)
    return out


#: Table formats astronomers open (TOPCAT, astropy, IDL), by file suffix.
EXPORT_FORMATS = {"fits": ".fits", "votable": ".vot"}


def write_table(frame: pd.DataFrame, path: str | Path, *, meta: dict | None = None) -> Path:
    """Write a table as FITS (``.fits``) or VOTable (``.vot``/``.xml``), atomically.

    Columns of text become fixed-width strings, missing numbers NaN; ``meta`` (short
    scalar values) goes into the FITS header or the VOTable's INFO elements.
    """
    from astropy.table import Table

    path = Path(path)
    name = path.name.lower()
    if name.endswith((".fits", ".fit")):
        fmt = "fits"
    elif name.endswith((".vot", ".xml", ".votable")):
        fmt = "votable"
    else:
        raise ConfigError(f"{path}: unknown output table format; use .fits or .vot")
    clean = frame.copy()
    for col in clean.columns:
        if clean[col].dtype == object or isinstance(clean[col].dtype, pd.StringDtype):
            clean[col] = clean[col].fillna("").astype(str)
        elif pd.api.types.is_bool_dtype(clean[col]) or pd.api.types.is_numeric_dtype(clean[col]):
            if clean[col].hasnans:
                clean[col] = clean[col].astype(np.float64)
    table = Table.from_pandas(clean)
    table.meta.update({str(k)[:8].upper(): v for k, v in (meta or {}).items()})
    tmp = path.with_name(f".{path.name}.tmp")
    table.write(tmp, format=fmt, overwrite=True)
    tmp.replace(path)
    return path


def export_tables(paths: Sequence[str | Path], formats: Sequence[str]) -> list[Path]:
    """Write each Parquet/CSV table beside itself in every format of ``formats``.

    ``formats`` are names from :data:`EXPORT_FORMATS` (``fits``, ``votable``); returns the
    files written (``latents.parquet`` gives ``latents.fits`` and ``latents.vot``).
    """
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ConfigError(
            f"unknown table format(s) {', '.join(unknown)}; choose from {', '.join(EXPORT_FORMATS)}"
        )
    written = []
    for src in map(Path, paths):
        frame = read_table(src)
        stem = src.name.split(".")[0]
        for fmt in formats:
            out = src.with_name(stem + EXPORT_FORMATS[fmt])
            written.append(write_table(frame, out, meta={"origin": src.name}))
    return written


def non_numeric(values: pd.Series) -> list[str]:
    """The distinct cells of ``values`` that are neither missing nor numbers (``[]`` for a
    numeric column)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return []
    present = values[values.notna() & (values.astype(str).str.strip() != "")]
    parsed = pd.to_numeric(present, errors="coerce")
    return list(dict.fromkeys(present[parsed.isna()].astype(str)))


def describe_non_numeric(bad: Sequence[str]) -> str:
    """``holds 2 non-numeric value(s), e.g. 'abc', 'n/a'`` (for messages)."""
    shown = ", ".join(repr(v) for v in bad[:3])
    return f"holds {len(bad)} distinct non-numeric value(s), e.g. {shown}"


def mixed_columns(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Columns of numbers with a few text cells among them: name -> the text cells."""
    out = {}
    for col in frame.columns:
        bad = non_numeric(frame[col])
        if bad and pd.to_numeric(frame[col], errors="coerce").notna().any():
            out[str(col)] = bad
    return out
