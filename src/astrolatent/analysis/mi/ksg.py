"""Kraskov–Stögbauer–Grassberger k-nearest-neighbour estimators (KSG algorithm 1), in nats.

Kraskov, Stögbauer & Grassberger 2004, Phys. Rev. E 69, 066138, algorithm 1; conditional
MI after Frenzel & Pompe 2007, Phys. Rev. Lett. 99, 204101.

For each sample i, eps_i is the max-norm distance to its k-th nearest neighbour in the
joint space; n_x(i) counts the other samples strictly closer than eps_i in the x subspace
(and likewise for y), and

    I(X;Y) = psi(k) + psi(N) - < psi(n_x + 1) + psi(n_y + 1) >.

Every variable is standardised (zero mean, unit variance per column) because the max-norm
mixes the scales of the variables, and a tiny Gaussian jitter (``jitter`` times the unit
scale, drawn from ``random_state``) breaks ties as scikit-learn does. The joint k-NN radii
come from :class:`scipy.spatial.cKDTree`; counts in one-dimensional subspaces use sorted
arrays and :func:`numpy.searchsorted`, counts in several dimensions a tree.

Estimates are not clipped at 0: values slightly below 0 mean "no detectable information".
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Self

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma

from astrolatent.analysis.mi.base import MIEstimator, as_samples, register_estimator
from astrolatent.errors import ConfigError

# Margin (in units of the values' magnitude) that keeps the k-th neighbour itself out of the
# strict-inequality counts despite rounding in x_i +- eps_i; far below the jitter.
_ROUNDING_MARGIN = 4 * np.finfo(np.float64).eps


def standardise(
    a: np.ndarray, *, jitter: float = 0.0, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Zero mean, unit variance per column of ``a`` (n, d), plus ``jitter`` x N(0, 1) noise from ``rng``.

    Constant columns are only centred (they carry no information).
    """
    out = a - a.mean(axis=0)
    std = out.std(axis=0)
    out /= np.where(std > 0, std, 1.0)
    if jitter > 0:
        out += jitter * rng.standard_normal(out.shape)
    return out


def _check_neighbors(n_neighbors: int, n: int) -> None:
    if (
        isinstance(n_neighbors, bool)
        or not isinstance(n_neighbors, int | np.integer)
        or n_neighbors < 1
    ):
        raise ConfigError(
            f"n_neighbors={n_neighbors!r} must be an integer of at least 1 (3 is usual)"
        )
    if n_neighbors >= n:
        raise ConfigError(
            f"n_neighbors={n_neighbors} must be smaller than the number of samples ({n})"
        )


def _kth_neighbour_distance(points: np.ndarray, k: int, workers: int) -> np.ndarray:
    """Max-norm distance from each row of ``points`` (n, d) to its k-th nearest other row."""
    dist, _ = cKDTree(points).query(points, k=[k + 1], p=np.inf, workers=workers)
    return dist[:, 0]


def _count_strictly_within(values: np.ndarray, radius: np.ndarray, workers: int = -1) -> np.ndarray:
    """For each row i of ``values`` (n, d): how many other rows lie at max-norm distance < radius[i]."""
    n, d = values.shape
    if d > 1:
        inside = cKDTree(values).query_ball_point(
            values, np.nextafter(radius, 0), p=np.inf, return_length=True, workers=workers
        )
        return np.asarray(inside, dtype=np.intp) - 1
    v = values[:, 0]
    order = np.argsort(v)
    v_sorted = v[order]
    r = radius[order]
    r = r - _ROUNDING_MARGIN * (np.abs(v_sorted) + r)
    # Queries are sorted by value, which keeps searchsorted cache-friendly.
    inside = np.searchsorted(v_sorted, v_sorted + r, side="left") - np.searchsorted(
        v_sorted, v_sorted - r, side="right"
    )
    counts = np.empty(n, dtype=np.intp)
    counts[order] = np.maximum(inside - 1, 0)
    return counts


def _psi_of_counts_plus_one(n: int) -> np.ndarray:
    """Lookup table t with t[c] = psi(c + 1) for c = 0 .. n - 1."""
    return digamma(np.arange(1, n + 1, dtype=np.float64))


def _ksg_information(blocks: list[np.ndarray], k: int, workers: int = -1) -> float:
    """Multi-information of m standardised blocks (each (n, d_j)) by KSG algorithm 1.

    psi(k) + (m - 1) psi(N) - < sum_j psi(n_j + 1) >; m = 2 is the mutual information,
    m > 2 the total correlation.
    """
    order = np.argsort(blocks[0][:, 0])  # rows sorted along one axis make tree queries local
    blocks = [b[order] for b in blocks]
    n = blocks[0].shape[0]
    eps = _kth_neighbour_distance(np.hstack(blocks), k, workers)
    psi = _psi_of_counts_plus_one(n)
    marginal = sum(psi[_count_strictly_within(b, eps, workers)] for b in blocks)
    return float(digamma(k) + (len(blocks) - 1) * digamma(n) - np.mean(marginal))


def _ksg_conditional(x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int) -> float:
    """Frenzel–Pompe I(X;Y|Z) = psi(k) - < psi(n_xz + 1) + psi(n_yz + 1) - psi(n_z + 1) >."""
    order = np.argsort(z[:, 0])
    x, y, z = x[order], y[order], z[order]
    n = x.shape[0]
    eps = _kth_neighbour_distance(np.hstack([x, y, z]), k, workers=-1)
    psi = _psi_of_counts_plus_one(n)
    terms = (
        psi[_count_strictly_within(np.hstack([x, z]), eps)]
        + psi[_count_strictly_within(np.hstack([y, z]), eps)]
        - psi[_count_strictly_within(z, eps)]
    )
    return float(digamma(k) - np.mean(terms))


@register_estimator
class KSGEstimator(MIEstimator):
    """KSG k-nearest-neighbour estimator of I(X;Y) and (Frenzel–Pompe) I(X;Y|Z), in nats.

    Parameters
    ----------
    n_neighbors : int
        k, the number of joint-space neighbours (3 is usual; larger k lowers the variance
        and raises the bias).
    jitter : float
        Standard deviation of the tie-breaking noise in units of each variable's standard
        deviation; 0 switches it off.
    random_state : int or None
        Seed of the jitter.
    """

    name = "ksg"

    def __init__(
        self, *, n_neighbors: int = 3, jitter: float = 1e-10, random_state: int | None = None
    ) -> None:
        self.n_neighbors = n_neighbors
        self.jitter = jitter
        self.random_state = random_state

    @classmethod
    def from_options(cls, *, n_neighbors: int, random_state: int | None) -> Self:
        return cls(n_neighbors=n_neighbors, random_state=random_state)

    def _estimate(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> float:
        _check_neighbors(self.n_neighbors, x.shape[0])
        rng = np.random.default_rng(self.random_state)
        x = standardise(x, jitter=self.jitter, rng=rng)
        y = standardise(y, jitter=self.jitter, rng=rng)
        if z is None:
            return _ksg_information([x, y], self.n_neighbors)
        return _ksg_conditional(x, y, standardise(z, jitter=self.jitter, rng=rng), self.n_neighbors)


def ksg_mi_columns(
    X: object,
    y: object,
    *,
    n_neighbors: int = 3,
    jitter: float = 1e-10,
    random_state: int | None = None,
    n_jobs: int = -1,
) -> np.ndarray:
    """KSG mutual information of each column of ``X`` with ``y``, in nats.

    X: (n, d) — e.g. latent means, one column per dimension; y: (n,) or (n, dy) — one
    (possibly multivariate) label. Returns an array of shape (d,), not clipped at 0.
    Same estimator as :class:`KSGEstimator` (and as scikit-learn's
    ``mutual_info_regression``, up to its clipping of negative values at 0).

    Each column costs one k-d tree build and query in the joint space and two sorted-array
    neighbour counts. Columns run on ``n_jobs`` threads (-1: one per CPU core; the tree,
    sort and search routines release the GIL); with a single thread the tree queries use
    every core instead. The result does not depend on ``n_jobs``: the jitter of column j
    comes from its own stream spawned from ``random_state``.
    """
    X = as_samples(X, "X")
    y = as_samples(y, "y")
    n, d = X.shape
    if y.shape[0] != n:
        raise ConfigError(f"y has {y.shape[0]} rows but X has {n}; pass paired samples")
    _check_neighbors(n_neighbors, n)
    if n_jobs == 0 or n_jobs < -1:
        raise ConfigError(f"n_jobs={n_jobs} must be -1 (all cores) or a positive number of threads")
    threads = min(d, (os.cpu_count() or 1) if n_jobs == -1 else n_jobs)
    rng = np.random.default_rng(random_state)
    y = standardise(y, jitter=jitter, rng=rng)
    column_rngs = rng.spawn(d)
    workers = -1 if threads == 1 else 1

    def column(j: int) -> float:
        xj = standardise(X[:, j : j + 1], jitter=jitter, rng=column_rngs[j])
        return _ksg_information([xj, y], n_neighbors, workers)

    if threads == 1:
        return np.array([column(j) for j in range(d)])
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return np.array(list(pool.map(column, range(d))))


def ksg_total_correlation(
    X: object,
    *,
    n_neighbors: int = 3,
    jitter: float = 1e-10,
    random_state: int | None = None,
) -> float:
    """Total correlation sum_j H(X_j) - H(X_1, ..., X_m) of the columns of X (n, m), in nats.

    The m-variable generalisation of KSG algorithm 1 (Kraskov et al. 2004, eq. 9):
    psi(k) + (m - 1) psi(N) - < sum_j psi(n_j + 1) >. Zero for independent columns.
    """
    X = as_samples(X, "X")
    n, m = X.shape
    if m < 2:
        raise ConfigError(f"X has {m} column; total correlation needs at least 2")
    _check_neighbors(n_neighbors, n)
    X = standardise(X, jitter=jitter, rng=np.random.default_rng(random_state))
    return _ksg_information([X[:, j : j + 1] for j in range(m)], n_neighbors)
