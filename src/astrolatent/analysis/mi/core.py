"""One call for an MI estimate with its error bar, significance and informational correlation.

Uncertainty: half-sampling. Each of ``n_bootstrap`` replicates draws n // 2 rows WITHOUT
replacement and re-estimates; the standard deviation of the replicates is the error of the
full-sample estimate (for an estimator whose variance falls as 1/n, the spread of half
samples drawn from the sample equals the sampling spread at n: sigma^2/(n/2) x (1 - 1/2)).
Half-sampling is used rather than the classical bootstrap because resampling WITH
replacement duplicates rows, and duplicated points sit at distance 0 from each other, which
biases k-nearest-neighbour estimators upwards; it also halves the cost of each replicate,
which matters for large n.

Significance: a permutation null. For I(X;Y) the rows of y are shuffled; for I(X;Y|Z) x is
shuffled only among rows with similar z (local permutation, Runge 2018, AISTATS), which
keeps the X-Z and Y-Z dependence and breaks only X-Y given Z. The p-value is
(1 + #{null >= observed}) / (1 + n_permutations).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from pydantic import Field, field_validator
from scipy.spatial import cKDTree

from astrolatent.analysis.mi.base import (
    MIEstimator,
    MIResult,
    as_samples,
    get_estimator,
    informational_correlation,
)
from astrolatent.analysis.mi.ksg import standardise
from astrolatent.config import Columns, Config
from astrolatent.errors import ConfigError

logger = logging.getLogger(__name__)

LOCAL_PERMUTATION_NEIGHBORS = 5


class MIConfig(Config):
    """Options of ``astrolatent mi`` (:func:`astrolatent.api.mi`): I(x; y) or I(x; y |
    conditional) between columns of a table, estimated with :func:`mutual_information`.
    ``sigma``: labels (y, conditional) beyond this many standard deviations are dropped
    (0: no clipping)."""

    x: Columns = Field(min_length=1)
    y: Columns = Field(min_length=1)
    conditional: Columns = Field(default_factory=list)
    estimator: Literal["auto", "gaussian_copula", "t_copula", "ksg", "gmm", "hist"] = "auto"
    n_neighbors: int = Field(3, ge=1)
    n_bootstrap: int = Field(30, ge=0)
    n_permutations: int = Field(100, ge=0)
    sigma: float = 5.0
    random_state: int = 0

    @field_validator("sigma")
    @classmethod
    def _sigma(cls, sigma: float) -> float:
        if not sigma >= 0:  # also NaN
            raise ValueError(f"sigma {sigma}: must be 0 (no clipping) or positive")
        return sigma


def _local_permutation(neighbours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation that moves each row to one of its z-neighbours, avoiding repeats (Runge 2018).

    neighbours: (n, m) indices of each row's m nearest rows in z (itself included).
    Rows are visited in random order; each takes its first not-yet-used neighbour in a
    random order, or a random neighbour when all are used.
    """
    n = neighbours.shape[0]
    candidates = rng.permuted(neighbours, axis=1).tolist()
    used = [False] * n
    perm = np.empty(n, dtype=np.intp)
    for i in rng.permutation(n).tolist():
        row = candidates[i]
        choice = next((j for j in row if not used[j]), row[0])
        used[choice] = True
        perm[i] = choice
    return perm


def mutual_information(
    x: object,
    y: object,
    *,
    estimator: str | MIEstimator = "auto",
    n_neighbors: int = 3,
    n_bootstrap: int = 30,
    n_permutations: int = 100,
    random_state: int | np.random.Generator | None = None,
    conditional: object = None,
) -> MIResult:
    """Mutual information I(X;Y) (or I(X;Y|Z) with ``conditional=z``) in nats, with error and p-value.

    Parameters
    ----------
    x : array of shape (n,) or (n, dx)
    y : array of shape (n,) or (n, dy)
    estimator : "auto" (default), "gaussian_copula", "t_copula", "ksg", "gmm", "hist"
        (see :data:`ESTIMATORS`) or an :class:`MIEstimator`. ``"auto"`` uses KSG on normal
        scores for one-dimensional x and y, and for multivariate ones the Gaussian copula
        when their normal scores look jointly Gaussian (Mardia kurtosis), else the fitted
        Student-t copula when every column pair agrees on its nu, else KSG on normal
        scores.
    n_neighbors : int
        k of the KSG estimator, also inside ``"auto"`` (ignored by the others).
    n_bootstrap : int
        Half-sampling replicates for the standard error (0: no error, ``mi_err`` is NaN).
    n_permutations : int
        Permutation-null replicates for the p-value (0: no test, ``p_value`` is NaN).
    random_state : int, Generator or None
        Seeds the estimator, the half samples and the permutations.
    conditional : array of shape (n,) or (n, dz), optional
        Z for the conditional mutual information.

    Returns
    -------
    MIResult
        ``mi`` (not clipped), ``mi_err``, ``p_value``, ``r_info`` = sqrt(1 - exp(-2 max(mi, 0))),
        ``n`` and the estimator's name.
    """
    rng = np.random.default_rng(random_state)
    estimator = _resolve_estimator(estimator, n_neighbors, rng)
    if n_bootstrap < 0 or n_bootstrap == 1:
        raise ConfigError(
            f"n_bootstrap={n_bootstrap} must be 0 (no error bar) or at least 2 (30 is usual)"
        )
    if n_permutations < 0:
        raise ConfigError(
            f"n_permutations={n_permutations} must be 0 (no test) or positive (100 is usual)"
        )
    xs, ys = as_samples(x, "x"), as_samples(y, "y")
    zs = None if conditional is None else as_samples(conditional, "conditional")

    mi = estimator.estimate(xs, ys, z=zs)
    n = xs.shape[0]
    if n_bootstrap and n // 2 < estimator.min_samples:
        raise ConfigError(
            f"{n} samples give half samples of {n // 2}, fewer than the {estimator.min_samples} "
            f"that estimator={estimator.name!r} needs; pass n_bootstrap=0"
        )
    replicate = estimator.for_resampling()
    mi_err = _half_sample_error(replicate, xs, ys, zs, n_bootstrap, rng)
    p_value = _permutation_p_value(replicate, mi, xs, ys, zs, n_permutations, rng)
    logger.debug(
        "MI %s: %.4g +- %.2g nats, p = %.3g, n = %d", estimator.name, mi, mi_err, p_value, n
    )
    return MIResult(
        mi=mi,
        mi_err=mi_err,
        p_value=p_value,
        r_info=informational_correlation(mi),
        n=n,
        estimator=estimator.name,
    )


def _resolve_estimator(
    estimator: str | MIEstimator, n_neighbors: int, rng: np.random.Generator
) -> MIEstimator:
    """The estimator of a name (seeded from ``rng``) or the one given."""
    if isinstance(estimator, str):
        return get_estimator(
            estimator, n_neighbors=n_neighbors, random_state=int(rng.integers(2**32))
        )
    if not isinstance(estimator, MIEstimator):
        raise ConfigError(f"estimator={estimator!r} must be a name such as 'ksg' or an MIEstimator")
    return estimator


def _half_sample_error(
    replicate: MIEstimator,
    xs: np.ndarray,
    ys: np.ndarray,
    zs: np.ndarray | None,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> float:
    """Standard deviation (nats) of the estimate over ``n_bootstrap`` half samples drawn
    without replacement (NaN for none)."""
    if not n_bootstrap:
        return float("nan")
    n = xs.shape[0]
    half = n // 2
    values = []
    for _ in range(n_bootstrap):
        rows = rng.choice(n, size=half, replace=False)
        values.append(replicate.estimate(xs[rows], ys[rows], z=None if zs is None else zs[rows]))
    return float(np.std(values, ddof=1))


def _permutation_p_value(
    replicate: MIEstimator,
    mi: float,
    xs: np.ndarray,
    ys: np.ndarray,
    zs: np.ndarray | None,
    n_permutations: int,
    rng: np.random.Generator,
) -> float:
    """The permutation p-value of ``mi`` (NaN for no permutations): Y permuted, or X
    permuted within neighbourhoods of Z for a conditional MI."""
    if not n_permutations:
        return float("nan")
    n = xs.shape[0]
    if zs is None:
        null = [replicate.estimate(xs, ys[rng.permutation(n)]) for _ in range(n_permutations)]
    else:
        m = min(LOCAL_PERMUTATION_NEIGHBORS, n)
        z_scaled = standardise(zs)
        _, neighbours = cKDTree(z_scaled).query(z_scaled, k=m, p=np.inf, workers=-1)
        neighbours = neighbours.reshape(n, m)
        null = [
            replicate.estimate(xs[_local_permutation(neighbours, rng)], ys, z=zs)
            for _ in range(n_permutations)
        ]
    return (1 + int(np.count_nonzero(np.asarray(null) >= mi))) / (1 + n_permutations)
