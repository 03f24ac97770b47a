"""The estimator interface, the registry of estimators by name, and the result type.

Every estimator is a small subclass of :class:`MIEstimator` registered with
:func:`register_estimator`; :func:`get_estimator` builds one from its name. All values are
in nats.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from astrolatent.errors import ConfigError
from astrolatent.registry import Registry


def register_estimator(cls: type[MIEstimator]) -> type[MIEstimator]:
    """Class decorator: make an estimator available by its ``name``."""
    return ESTIMATORS.register(cls)


def get_estimator(
    name: str, *, n_neighbors: int = 3, random_state: int | None = None
) -> MIEstimator:
    """Build the registered estimator ``name`` with the options shared by all estimators.

    ``n_neighbors`` is the k of the KSG estimator; estimators that do not use an option
    ignore it.
    """
    return ESTIMATORS.lookup(name).from_options(n_neighbors=n_neighbors, random_state=random_state)


def as_samples(a: object, name: str) -> np.ndarray:
    """Return ``a`` as a finite float array of shape (n, d); 1D input becomes (n, 1)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ConfigError(f"{name} has shape {np.shape(a)}; expected (n,) or (n, d) with d >= 1")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ConfigError(
            f"{name} has {bad} non-finite values; drop those rows first "
            "(astrolatent.analysis.mi.clean_labels gives a mask)"
        )
    return arr


class MIEstimator(ABC):
    """Estimate the mutual information I(X;Y), or I(X;Y|Z), in nats from paired samples.

    Subclasses set ``name``, implement :meth:`_estimate` and name the shared options their
    ``__init__`` takes in ``shared_options``. ``__init__`` only stores parameters.
    """

    name: ClassVar[str]
    min_samples: ClassVar[int] = 10
    #: which of the options shared by all estimators (``n_neighbors``, ``random_state``)
    #: this one takes
    shared_options: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_options(cls, *, n_neighbors: int, random_state: int | None) -> Self:
        """Build the estimator from the options shared by all estimators (those it takes)."""
        shared = {"n_neighbors": n_neighbors, "random_state": random_state}
        return cls(**{k: shared[k] for k in cls.shared_options})

    def estimate(self, x: object, y: object, *, z: object = None) -> float:
        """I(X;Y) in nats, or I(X;Y|Z) when ``z`` is given.

        x: (n,) or (n, dx); y: (n,) or (n, dy); z: (n,) or (n, dz). Rows are samples.
        The value is not clipped at 0: small negative values mean "no information".
        """
        xs, ys = as_samples(x, "x"), as_samples(y, "y")
        zs = None if z is None else as_samples(z, "z")
        n = xs.shape[0]
        for other, label in ((ys, "y"), (zs, "z")):
            if other is not None and other.shape[0] != n:
                raise ConfigError(
                    f"{label} has {other.shape[0]} rows but x has {n}; pass paired samples"
                )
        if n < self.min_samples:
            raise ConfigError(
                f"{n} samples are too few for estimator={self.name!r}; it needs at least {self.min_samples}"
            )
        return float(self._estimate(xs, ys, zs))

    @abstractmethod
    def _estimate(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> float:
        """The estimate for validated arrays of shape (n, dx), (n, dy) and (n, dz) or None."""

    def for_resampling(self) -> MIEstimator:
        """The estimator to use on bootstrap and permutation replicates (default: itself).

        Estimators that select a model on the data (e.g. the number of mixture components)
        return a copy with that choice fixed, which keeps replicates cheap and comparable.
        """
        return self


ESTIMATORS: Registry[type[MIEstimator]] = Registry(MIEstimator, "estimator")


def informational_correlation(mi: float) -> float:
    """Linfoot's informational coefficient of correlation r_I = sqrt(1 - exp(-2 I)).

    ``mi`` in nats, clipped at 0. Equals |Pearson r| for a bivariate Gaussian.
    """
    return math.sqrt(-math.expm1(-2.0 * max(float(mi), 0.0)))


def json_float(value: float | None) -> float | None:
    """A plain float for JSON output; NaN and None become None."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class MIResult:
    """A mutual-information estimate with its uncertainty and significance.

    mi: the estimate in nats (not clipped). mi_err: its standard error in nats (NaN when no
    resampling was asked for). p_value: permutation-null p-value (NaN when no permutations).
    r_info: the informational correlation sqrt(1 - exp(-2 max(mi, 0))). n: samples used.
    estimator: the estimator's name.
    """

    mi: float
    mi_err: float
    p_value: float
    r_info: float
    n: int
    estimator: str

    def to_dict(self) -> dict[str, float | int | str | None]:
        """JSON-safe dict with exactly the keys mi, mi_err, p_value, r_info, n, estimator."""
        return {
            "mi": json_float(self.mi),
            "mi_err": json_float(self.mi_err),
            "p_value": json_float(self.p_value),
            "r_info": json_float(self.r_info),
            "n": int(self.n),
            "estimator": self.estimator,
        }
