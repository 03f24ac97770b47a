"""The result type, the measure interface and the registry of PID measures by name.

A partial information decomposition (PID) splits the information two sources X1 and X2
carry about a target Y, I(Y; X1, X2), into four atoms, all in nats:

- ``redundancy``: what both sources tell about Y;
- ``unique1`` / ``unique2``: what only X1 / only X2 tells;
- ``synergy``: what only X1 and X2 together tell.

They add up: I(Y;X1) = redundancy + unique1, I(Y;X2) = redundancy + unique2 and
I(Y;X1,X2) = redundancy + unique1 + unique2 + synergy. Measures differ in how they define
the redundancy. Every measure is a small subclass of :class:`PIDMeasure` registered with
:func:`register_measure`; :func:`get_measure` builds one from its name.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from astrolatent.analysis.mi.base import as_samples
from astrolatent.errors import ConfigError
from astrolatent.registry import Registry

log = logging.getLogger(__name__)

#: Names of the four PID atoms, in the order measures return them.
ATOMS = ("redundancy", "unique1", "unique2", "synergy")

#: Fewest rows (after dropping NaN) any measure accepts.
MIN_ROWS = 20


@dataclass(frozen=True)
class PIDSample:
    """The validated, paired rows a measure decomposes: the target ``y`` (n,) and the
    sources ``x1`` (n, d1) and ``x2`` (n, d2), all finite float64."""

    y: np.ndarray
    x1: np.ndarray
    x2: np.ndarray

    @property
    def n(self) -> int:
        """Number of rows."""
        return self.y.shape[0]


#: Names that measures had before -> the measure that name now is. An old name still works
#: for a while, with a one-line deprecation warning.
RENAMED = {"variational": "pointwise"}


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class PIDResult:
    """A two-source partial information decomposition of I(Y; X1, X2), in nats.

    redundancy, unique1, unique2, synergy: the atoms (means over objects for pointwise
    methods; they can be negative there). ``*_err``: their bootstrap standard errors (NaN
    when no bootstrap was asked for). method: the measure's name. n: objects used (None
    for a decomposition of a given distribution or covariance). pointwise: for pointwise
    methods, a DataFrame with one row per object (columns m1, m2, m12 and the four atoms);
    None otherwise. It is left out of :meth:`to_dict`.
    """

    redundancy: float
    unique1: float
    unique2: float
    synergy: float
    method: str
    n: int | None
    redundancy_err: float = math.nan
    unique1_err: float = math.nan
    unique2_err: float = math.nan
    synergy_err: float = math.nan
    pointwise: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    @property
    def mi1(self) -> float:
        """I(Y; X1) in nats."""
        return self.redundancy + self.unique1

    @property
    def mi2(self) -> float:
        """I(Y; X2) in nats."""
        return self.redundancy + self.unique2

    @property
    def mi12(self) -> float:
        """I(Y; X1, X2) in nats."""
        return self.redundancy + self.unique1 + self.unique2 + self.synergy

    def to_dict(self) -> dict[str, float | int | str | None]:
        """JSON-safe dict: the atoms, their ``*_err`` (None when not computed), the three
        mutual informations mi1, mi2, mi12, method, n and units ("nats")."""
        out: dict[str, float | int | str | None] = {}
        for atom in ATOMS:
            out[atom] = _json_float(getattr(self, atom))
            out[f"{atom}_err"] = _json_float(getattr(self, f"{atom}_err"))
        out.update(
            mi1=_json_float(self.mi1),
            mi2=_json_float(self.mi2),
            mi12=_json_float(self.mi12),
            method=self.method,
            n=None if self.n is None else int(self.n),
            units="nats",
        )
        return out


def atoms_from_mi(redundancy: float, mi1: float, mi2: float, mi12: float) -> np.ndarray:
    """The four atoms (redundancy, unique1, unique2, synergy) from a redundancy and the
    three mutual informations I(Y;X1), I(Y;X2), I(Y;X1,X2), all in nats."""
    return np.array([redundancy, mi1 - redundancy, mi2 - redundancy, mi12 - mi1 - mi2 + redundancy])


class PIDMeasure(ABC):
    """A two-source PID measure applied to samples (rows are objects).

    Subclasses set ``name``, implement :meth:`_decompose` (or, through
    :class:`ResamplingPIDMeasure`, just the atoms) and, when they take the shared
    ``n_bins`` option, ``default_bins``. ``__init__`` only stores parameters.
    """

    name: ClassVar[str]
    #: The ``n_bins`` of a measure that discretises its inputs (None: it takes no ``n_bins``).
    default_bins: ClassVar[int | None] = None

    @classmethod
    def from_options(cls, *, n_bins: int | None) -> Self:
        """Build the measure from the options shared by all measures (None = default)."""
        if cls.default_bins is not None:
            return cls(n_bins=cls.default_bins if n_bins is None else n_bins)
        if n_bins is not None:
            raise ConfigError(
                f"n_bins={n_bins} does not apply to method={cls.name!r}, which works on "
                f"continuous values; leave n_bins unset or choose one of "
                f"{sorted(n for n, c in MEASURES.items() if c.default_bins is not None)}"
            )
        return cls()

    def decompose(
        self,
        y: object,
        x1: object,
        x2: object,
        *,
        n_bootstrap: int = 0,
        random_state: int | np.random.Generator | None = None,
    ) -> PIDResult:
        """Decompose I(Y; X1, X2) in nats.

        y: (n,) target; x1: (n,) or (n, d1); x2: (n,) or (n, d2). ``n_bootstrap``
        resamples of the rows give the ``*_err`` standard errors (0: none).
        """
        ys = as_samples(y, "y")
        if ys.shape[1] != 1:
            raise ConfigError(f"y has shape {np.shape(y)}; the target must be one column (n,)")
        x1s, x2s = as_samples(x1, "x1"), as_samples(x2, "x2")
        n = ys.shape[0]
        for arr, label in ((x1s, "x1"), (x2s, "x2")):
            if arr.shape[0] != n:
                raise ConfigError(
                    f"{label} has {arr.shape[0]} rows but y has {n}; pass paired rows"
                )
        if n < MIN_ROWS:
            raise ConfigError(f"{n} rows are too few for a PID; at least {MIN_ROWS} are needed")
        if n_bootstrap < 0 or n_bootstrap == 1:
            raise ConfigError(f"n_bootstrap={n_bootstrap} must be 0 (no errors) or at least 2")
        sample = PIDSample(ys[:, 0], x1s, x2s)
        self._check(sample)
        return self._decompose(
            sample, n_bootstrap=n_bootstrap, rng=np.random.default_rng(random_state)
        )

    def _check(self, sample: PIDSample) -> None:
        """Refuse (ConfigError) or warn about options this validated sample cannot
        support; a binned measure needs at least two bins."""
        if self.default_bins is not None and self.n_bins < 2:
            raise ConfigError(f"n_bins={self.n_bins} must be at least 2")

    @abstractmethod
    def _decompose(
        self, sample: PIDSample, *, n_bootstrap: int, rng: np.random.Generator
    ) -> PIDResult:
        """The decomposition of a validated sample."""


MEASURES: Registry[type[PIDMeasure]] = Registry(PIDMeasure, "method")


class ResamplingPIDMeasure(PIDMeasure):
    """A measure computed from the whole sample at once; errors come from re-running it on
    bootstrap resamples of the rows. Subclasses implement :meth:`_atoms`."""

    def _decompose(
        self, sample: PIDSample, *, n_bootstrap: int, rng: np.random.Generator
    ) -> PIDResult:
        y, x1, x2 = sample.y, sample.x1, sample.x2
        n = sample.n
        atoms = self._atoms(y, x1, x2)
        errors = np.full(len(ATOMS), np.nan)
        if n_bootstrap:
            draws = np.empty((n_bootstrap, len(ATOMS)))
            for b in range(n_bootstrap):
                idx = rng.integers(0, n, n)
                draws[b] = self._atoms(y[idx], x1[idx], x2[idx])
            errors = draws.std(axis=0, ddof=1)
        return PIDResult(
            *(float(a) for a in atoms),
            method=self.name,
            n=n,
            **{f"{atom}_err": float(e) for atom, e in zip(ATOMS, errors, strict=True)},
        )

    @abstractmethod
    def _atoms(self, y: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        """Atoms (redundancy, unique1, unique2, synergy) in nats for arrays of shape
        (n,), (n, d1) and (n, d2)."""


def register_measure(cls: type[PIDMeasure]) -> type[PIDMeasure]:
    """Class decorator: make a measure available by its ``name``."""
    return MEASURES.register(cls)


def get_measure(name: str, *, n_bins: int | None = None) -> PIDMeasure:
    """Build the registered measure ``name``; ``n_bins`` only for binning measures."""
    if name in RENAMED:
        log.warning(
            "method=%r is deprecated: it is now %r (the 2025 study's per-object measure, biased "
            "on redundant sources); the default is 'mmi'",
            name,
            RENAMED[name],
        )
        name = RENAMED[name]
    return MEASURES.lookup(name).from_options(n_bins=n_bins)


def select_columns(
    table: pd.DataFrame, *, target: str, x1: list[str], x2: list[str]
) -> tuple[pd.DataFrame, int]:
    """The rows of ``table[[target, *x1, *x2]]`` without NaN, and how many were dropped.

    Raises ConfigError naming the column when a column is missing or not numeric, when
    x1 or x2 is empty, when a column is used twice, or when fewer than MIN_ROWS rows stay.
    """
    if not x1 or not x2:
        raise ConfigError("x1 and x2 must each name at least one column")
    used = [target, *x1, *x2]
    twice = sorted({c for c in used if used.count(c) > 1})
    if twice:
        raise ConfigError(
            f"column(s) {twice} appear more than once in target/x1/x2; each column may "
            "belong to one of them only"
        )
    missing = [c for c in used if c not in table.columns]
    if missing:
        raise ConfigError(
            f"column(s) {missing} not found; available: {', '.join(map(str, table.columns))}"
        )
    for col in used:
        if not pd.api.types.is_numeric_dtype(table[col]):
            raise ConfigError(f"column {col!r} is not numeric (dtype {table[col].dtype})")
    sub = table[used].astype(np.float64)
    keep = np.isfinite(sub.to_numpy()).all(axis=1)
    if int(keep.sum()) < MIN_ROWS:
        raise ConfigError(
            f"only {int(keep.sum())} rows have finite values in all of {used}; "
            f"at least {MIN_ROWS} are needed"
        )
    return sub[keep], int((~keep).sum())
