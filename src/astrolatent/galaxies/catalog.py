"""Galaxy catalogues: magnitudes from fluxes, named column groups, sentinel/NaN cleaning.

Column groups name the input sets of an estimator (``--inputs optical,ir``). A group is a
list of column names or shell-style patterns (``mag_W[1-4]``), matched in table order.
The defaults follow the column names that this package writes (``astrolatent galaxy
simulate`` and ``fetch-real``):

============  ==========================================================================
group         columns
============  ==========================================================================
``optical``   ``mag_u mag_g mag_r mag_i mag_z err_u err_g err_r err_i err_z`` (AB mag)
``band_X``    ``mag_X err_X`` for X in ugriz (single-band sets)
``colours``   ``u_g g_r r_i i_z`` (MLZ tables)
``ir``        ``mag_J mag_H mag_K mag_W1``-``mag_W4`` and their ``err_*`` (those present)
``morph``     every ``morph_*`` column (Sersic index, axis ratio, R50, R90)
``z``         ``z`` (spectroscopic redshift)
``ebv``       ``ebv`` (Galactic E(B-V), mag)
============  ==========================================================================

A token of ``--inputs`` that is not a group may be a column name or a pattern. Groups of
one's own come from a YAML/JSON file mapping names to lists (:func:`load_groups`); they
extend and override the defaults.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from astrolatent.config import Config, read_mapping
from astrolatent.errors import ConfigError, InputFileError
from astrolatent.tables import numeric_columns

log = logging.getLogger(__name__)

#: 2.5 / ln(10): the magnitude error of a relative flux error of 1.
POGSON = 2.5 / np.log(10.0)
#: Zero point of SDSS nanomaggies: m = 22.5 - 2.5 log10(f / nanomaggy).
NANOMAGGY_ZERO_POINT = 22.5

_OPTICAL = "ugriz"


class GroupsConfig(Config):
    """Options of ``astrolatent galaxy groups``: a YAML/JSON file of extra column groups."""

    groups: str | None = None


DEFAULT_GROUPS: dict[str, list[str]] = {
    "optical": [f"mag_{b}" for b in _OPTICAL] + [f"err_{b}" for b in _OPTICAL],
    **{f"band_{b}": [f"mag_{b}", f"err_{b}"] for b in _OPTICAL},
    "colours": ["u_g", "g_r", "r_i", "i_z"],
    "ir": ["mag_[JHK]", "mag_W[1-4]", "err_[JHK]", "err_W[1-4]"],
    "morph": ["morph_*"],
    "z": ["z"],
    "ebv": ["ebv"],
}


def flux_to_mag(
    flux: np.ndarray, ivar: np.ndarray | None = None, *, zero_point: float = NANOMAGGY_ZERO_POINT
) -> tuple[np.ndarray, np.ndarray | None]:
    """AB magnitudes and their errors from fluxes and inverse variances.

    Args:
        flux: fluxes in nanomaggies (any shape); ``m = zero_point - 2.5 log10(flux)``.
        ivar: inverse variances of ``flux`` (nanomaggies^-2, same shape) or None.
        zero_point: magnitude of a flux of 1 (22.5 for nanomaggies).

    Returns:
        ``(mag, err)`` float64 arrays of ``flux``'s shape; ``err = 1.0857 / (flux *
        sqrt(ivar))`` (None without ``ivar``). Non-positive or non-finite fluxes (and
        non-positive inverse variances) give NaN, never a warning.
    """
    flux = np.asarray(flux, dtype=np.float64)
    good = np.isfinite(flux) & (flux > 0)
    mag = np.full(flux.shape, np.nan)
    mag[good] = zero_point - 2.5 * np.log10(flux[good])
    if ivar is None:
        return mag, None
    ivar = np.broadcast_to(np.asarray(ivar, dtype=np.float64), flux.shape)
    good &= np.isfinite(ivar) & (ivar > 0)
    err = np.full(flux.shape, np.nan)
    err[good] = POGSON / (flux[good] * np.sqrt(ivar[good]))
    mag[~good] = np.nan
    return mag, err


def load_groups(path: str | Path) -> dict[str, list[str]]:
    """Read column groups from YAML (``.yaml``/``.yml``) or JSON: ``{name: [columns]}``
    (optionally under a top-level ``groups`` key). Raises ConfigError naming the file."""
    data = read_mapping(path, what="column groups")
    if isinstance(data, dict) and set(data) == {"groups"}:
        data = data["groups"]
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and v and all(isinstance(c, str) for c in v) for v in data.values()
    ):
        raise ConfigError(
            f"{path}: expected a mapping of group names to non-empty lists of column names, "
            'e.g. {"optical": ["mag_u", "mag_g"]}'
        )
    return {str(k): list(v) for k, v in data.items()}


def _expand(entries: Iterable[str], columns: Sequence[str], *, group: str) -> list[str]:
    out: list[str] = []
    for entry in entries:
        if any(ch in entry for ch in "*?["):
            out.extend(c for c in columns if fnmatch.fnmatchcase(c, entry))
        elif entry in columns:
            out.append(entry)
        else:
            raise ConfigError(
                f"group {group!r} needs column {entry!r}, which the table lacks "
                f"(columns: {', '.join(columns)})"
            )
    if not out:
        raise ConfigError(
            f"group {group!r} ({', '.join(entries)}) matches no column of the table "
            f"(columns: {', '.join(columns)})"
        )
    return out


def resolve_inputs(
    tokens: Sequence[str], columns: Sequence[str], *, groups: Mapping[str, list[str]] | None = None
) -> list[str]:
    """The input columns named by ``tokens`` (group names, column names or patterns).

    Args:
        tokens: e.g. ``["optical", "ebv"]``.
        columns: the table's columns.
        groups: extra or overriding group definitions (name -> columns/patterns).

    Returns:
        Distinct column names in the order the tokens name them.
    """
    table = [str(c) for c in columns]
    known = {**DEFAULT_GROUPS, **(groups or {})}
    out: list[str] = []
    for token in tokens:
        if token in known:
            found = _expand(known[token], table, group=token)
        elif token in table or any(ch in token for ch in "*?["):
            found = _expand([token], table, group=token)
        else:
            raise ConfigError(
                f"input {token!r} is neither a column group ({', '.join(sorted(known))}) "
                "nor a column of the table"
            )
        out.extend(c for c in found if c not in out)
    return out


def available_groups(
    columns: Sequence[str], *, groups: Mapping[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """Every group (defaults plus ``groups``) that resolves on a table with ``columns``."""
    table = [str(c) for c in columns]
    out = {}
    for name, entries in {**DEFAULT_GROUPS, **(groups or {})}.items():
        try:
            out[name] = _expand(entries, table, group=name)
        except ConfigError:
            continue
    return out


@dataclass
class CleaningReport:
    """How many rows a cleaning step dropped, and why, per column.

    ``per_column[col]`` counts the rows whose ``col`` was non-finite (``nan``), a sentinel
    value (``sentinel``) or outside its allowed range (``out_of_range``); a row bad in
    several columns counts in each, once in ``n_dropped``.
    """

    n_rows: int
    n_kept: int
    per_column: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def n_dropped(self) -> int:
        return self.n_rows - self.n_kept

    def to_dict(self) -> dict:
        return {**asdict(self), "n_dropped": self.n_dropped}

    def lines(self) -> list[str]:
        """One human-readable line per column that lost rows."""
        return [
            f"{col}: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in why.items() if v)
            for col, why in self.per_column.items()
        ]


def clean_rows(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    sentinels: Sequence[float] = (),
    ranges: Mapping[str, tuple[float, float]] | None = None,
    source: str | Path = "table",
) -> tuple[np.ndarray, np.ndarray, CleaningReport]:
    """The named numeric columns with bad rows removed, and a report of what went.

    Args:
        frame: the catalogue (n rows).
        columns: columns to check and return (k).
        sentinels: values meaning "no measurement" (e.g. -9999, 99); they count as bad.
        ranges: allowed closed intervals per column; values outside are bad.
        source: the file name for error messages.

    Returns:
        ``(values, keep, report)``: ``values`` float64 ``(n_kept, k)``, ``keep`` a boolean
        mask ``(n,)`` over the input rows, ``report`` a :class:`CleaningReport`.
    """
    values = numeric_columns(frame, list(columns), source=source)
    bad = np.zeros(len(frame), dtype=bool)
    per_column: dict[str, dict[str, int]] = {}
    sentinel_values = np.asarray(list(sentinels), dtype=np.float64)
    for j, col in enumerate(columns):
        v = values[:, j]
        nan = ~np.isfinite(v)
        sentinel = np.isin(v, sentinel_values) & ~nan
        out = np.zeros_like(nan)
        if ranges and col in ranges:
            lo, hi = ranges[col]
            out = ~nan & ~sentinel & ((v < lo) | (v > hi))
        counts = {"nan": int(nan.sum()), "sentinel": int(sentinel.sum())}
        if ranges and col in ranges:
            counts["out_of_range"] = int(out.sum())
        if any(counts.values()):
            per_column[col] = counts
        bad |= nan | sentinel | out
    report = CleaningReport(n_rows=len(frame), n_kept=int((~bad).sum()), per_column=per_column)
    if report.n_dropped:
        log.info(
            "%s: dropped %d of %d rows (%s)",
            source,
            report.n_dropped,
            report.n_rows,
            "; ".join(report.lines()),
        )
    return values[~bad], ~bad, report


def require_rows(report: CleaningReport, minimum: int, *, source: str | Path) -> None:
    """Raise InputFileError when cleaning left fewer than ``minimum`` rows."""
    if report.n_kept < minimum:
        raise InputFileError(
            source,
            f"only {report.n_kept} of {report.n_rows} rows are usable (need at least "
            f"{minimum}); dropped: {'; '.join(report.lines()) or 'none'}",
        )


__all__ = [
    "DEFAULT_GROUPS",
    "NANOMAGGY_ZERO_POINT",
    "POGSON",
    "CleaningReport",
    "available_groups",
    "clean_rows",
    "flux_to_mag",
    "load_groups",
    "require_rows",
    "resolve_inputs",
]
