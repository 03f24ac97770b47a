"""Kraskov–Stögbauer–Grassberger k-nearest-neighbour estimators (KSG algorithm 1), in nats.

Kraskov, Stögbauer & Grassberger 2004, Phys. Rev. E 69, 066138, algorithm 1; conditional
MI after Frenzel & Pompe 2007, Phys. Rev. Lett. 99, 204101.

For each sample i, eps_i is the max-norm distance to its k-th nearest neighbour in the
joint space; n_x(i) counts the other samples strictly closer than eps_i in the x subspace
(and likewise for y), and

    I(X;Y) = psi(k) + psi(N) - < psi(n_x + 1) + psi(n_y + 1) >.

Every variable is standardised (zero mean, unit variance per column) because the max-norm
mixes the scales of the variables, and a tiny Gaussian jitter (``jitter`` times the unit
scale, drawn from ``random_state``) breaks ties as scikit-learn does.

Two scalars (the common case: one latent against one label) take compiled (numba) kernels:
the joint k-NN radii from a slab search of the plane, the marginal counts by galloping
through sorted arrays; both are exact (the same float comparisons as a k-d tree or
scikit-learn's radius queries). Several dimensions use :class:`scipy.spatial.cKDTree`.

Estimates are not clipped at 0: values slightly below 0 mean "no detectable information".
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit
from scipy.spatial import cKDTree
from scipy.special import digamma

from astrolatent.analysis.mi.base import MIEstimator, as_samples, register_estimator
from astrolatent.errors import ConfigError


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


# Samples around a guessed edge that _find_edge counts in one branch-free loop.
_EDGE_WINDOW = 32


@njit(nogil=True, cache=True, inline="always")
def _past_edge(a, v, r, j, upper):
    """Whether a[j] is at or past the edge of (v - r, v + r) being sought, walking up in j:
    the upper edge (a[j] - v >= r) or the lower one (v - a[j] < r). Monotone in j."""
    return a[j] - v >= r if upper else v - a[j] < r


@njit(nogil=True, cache=True, inline="always")
def _find_edge(a, v, r, lo, hi, guess, upper):
    """First j in [lo, hi) that is :func:`_past_edge` (hi if none), for ``a`` ascending.

    When a window of _EDGE_WINDOW samples around ``guess`` brackets the edge, the samples
    before it are counted in one branch-free loop; otherwise the search gallops out from
    ``guess`` and bisects.
    """
    start = min(max(guess - _EDGE_WINDOW // 2, lo), max(hi - _EDGE_WINDOW, lo))
    stop = min(start + _EDGE_WINDOW, hi)
    if (start == lo or not _past_edge(a, v, r, start - 1, upper)) and (
        stop == hi or _past_edge(a, v, r, stop, upper)
    ):
        before = 0
        for j in range(start, stop):
            before += not _past_edge(a, v, r, j, upper)
        return start + before
    g = min(max(guess, lo), hi)
    if g < hi and not _past_edge(a, v, r, g, upper):
        bad, good, step = g, g + 1, 1
        while good < hi and not _past_edge(a, v, r, good, upper):
            bad, step = good, step * 2
            good = g + step
        good = min(good, hi)
    else:
        good, bad, step = g, g - 1, 1
        while bad >= lo and _past_edge(a, v, r, bad, upper):
            good, step = bad, step * 2
            bad = g - step
        bad = max(bad, lo - 1)
    while good - bad > 1:
        mid = (good + bad) // 2
        if _past_edge(a, v, r, mid, upper):
            good = mid
        else:
            bad = mid
    return good


@njit(nogil=True, cache=True)
def _counts_within_sorted(a: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """For each i: how many j != i have |a[j] - a[i]| < radius[i]; ``a`` (n,) ascending.

    The test is the float comparison itself (as in scikit-learn's radius queries), no
    rounding margin. Each edge is sought around a guess: the previous sample's count on
    that side scaled by the ratio of the radii (usually a few samples off).
    """
    n = a.shape[0]
    counts = np.empty(n, np.int64)
    above = below = 0
    r_prev = 0.0
    for i in range(n):
        v, r = a[i], radius[i]
        scale = r / r_prev if r_prev > 0 else 0.0
        up = _find_edge(a, v, r, i + 1, n, i + 1 + int(min(above * scale, n)), True)
        down = _find_edge(a, v, r, 0, i, i - int(min(below * scale, n)), False)
        above, below, r_prev = up - i - 1, i - down, r
        counts[i] = above + below
    return counts


@njit(nogil=True, cache=True, inline="always")
def _scan_slab(sx, sy, lo, hi, start, qx, qy, best, skip):
    """Offer the rows lo..hi-1 of a y-sorted slab to ``best`` (the k smallest max-norm distances
    to (qx, qy), ascending), walking out from ``start`` while |dy| < the current k-th distance."""
    k = best.shape[0]
    for step in (1, -1):
        u = start if step == 1 else start - 1
        while lo <= u < hi:
            dy = abs(sy[u] - qy)
            if dy >= best[k - 1]:
                break
            if u != skip:
                d = max(abs(sx[u] - qx), dy)
                for j in range(k):  # insert d, branch-free: min/max down the sorted list
                    b = best[j]
                    best[j] = min(b, d)
                    d = max(b, d)
            u += step


@njit(nogil=True, cache=True)
def _joint_kth_distances(xs, y_pos, ys, k, m):
    """Max-norm distance of each sample to its k-th nearest other sample in the (x, y) plane.

    xs: x (n,) ascending; ys: y (n,) ascending; y_pos[i]: where sample xs[i] sits in ys.
    Returns the distances in x order and in y order. The x order is cut into slabs of m
    samples, each sorted by y; a sample's search walks out in y through its own slab and
    then through the slabs beside it until both the y and the x gaps reach its k-th
    distance, so the result is exact. Queries run slab by slab in y order, which lets a
    cursor per neighbouring slab replace a binary search.
    """
    n = xs.shape[0]
    n_slabs = (n + m - 1) // m
    sample_at = np.empty(n, np.int64)
    sample_at[y_pos] = np.arange(n)
    fill = np.arange(n_slabs) * m
    sx, sy = np.empty(n), np.empty(n)
    si, sp = np.empty(n, np.int64), np.empty(n, np.int64)
    for p in range(n):  # a counting sort by slab in y order leaves every slab sorted by y
        i = sample_at[p]
        dst = fill[i // m]
        fill[i // m] += 1
        sx[dst], sy[dst], si[dst], sp[dst] = xs[i], ys[p], i, p
    first_x = xs[::m].copy()
    last_x = xs[np.minimum(np.arange(1, n_slabs + 1) * m, n) - 1]
    cursor = np.zeros(n_slabs, np.int64)
    cursor_slab = np.full(n_slabs, -1, np.int64)
    best = np.empty(k)
    eps_x, eps_y = np.empty(n), np.empty(n)
    for s in range(n_slabs):
        lo, hi = s * m, min(s * m + m, n)
        for e in range(lo, hi):
            qx, qy = sx[e], sy[e]
            best[:] = np.inf
            _scan_slab(sx, sy, lo, hi, e, qx, qy, best, e)
            for step in (-1, 1):
                t = s + step
                while (
                    0 <= t < n_slabs
                    and (qx - last_x[t] if step == -1 else first_x[t] - qx) < best[k - 1]
                ):
                    tlo, thi = t * m, min(t * m + m, n)
                    if cursor_slab[t] != s:
                        cursor_slab[t], cursor[t] = s, tlo
                    c = cursor[t]
                    while c < thi and sy[c] < qy:
                        c += 1
                    cursor[t] = c
                    _scan_slab(sx, sy, tlo, thi, c, qx, qy, best, -1)
                    t += step
            eps_x[si[e]] = eps_y[sp[e]] = best[k - 1]
    return eps_x, eps_y


def _count_strictly_within(values: np.ndarray, radius: np.ndarray, workers: int = -1) -> np.ndarray:
    """For each row i of ``values`` (n, d): how many other rows lie at max-norm distance < radius[i]."""
    n, d = values.shape
    if d > 1:
        inside = cKDTree(values).query_ball_point(
            values, np.nextafter(radius, 0), p=np.inf, return_length=True, workers=workers
        )
        return np.asarray(inside, dtype=np.intp) - 1
    order = np.argsort(values[:, 0])
    counts = np.empty(n, dtype=np.int64)
    counts[order] = _counts_within_sorted(values[order, 0], radius[order])
    return counts


def _psi_of_counts_plus_one(n: int) -> np.ndarray:
    """Lookup table t with t[c] = psi(c + 1) for c = 0 .. n - 1."""
    return digamma(np.arange(1, n + 1, dtype=np.float64))


def _sorted_axis(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v`` (n,) ascending, and where each sample of ``v`` sits in it."""
    order = np.argsort(v)
    position = np.empty(v.size, dtype=np.int64)
    position[order] = np.arange(v.size)
    return v[order], position


def _ksg_plane(
    x: np.ndarray, y_sorted: np.ndarray, y_position: np.ndarray, k: int, psi: np.ndarray
) -> float:
    """KSG I(X;Y) of two standardised scalars: x (n,), y given by :func:`_sorted_axis`.

    psi is :func:`_psi_of_counts_plus_one` (n); the slabs hold about sqrt(k n) samples,
    about one k-th-neighbour distance wide where the density is smooth.
    """
    n = x.size
    order = np.argsort(x)
    x_sorted = x[order]
    slab = max(k + 1, int(np.sqrt(k * n)))
    eps_x, eps_y = _joint_kth_distances(x_sorted, y_position[order], y_sorted, k, slab)
    marginal = np.mean(psi[_counts_within_sorted(x_sorted, eps_x)]) + np.mean(
        psi[_counts_within_sorted(y_sorted, eps_y)]
    )
    return float(digamma(k) + digamma(n) - marginal)


def _ksg_information(blocks: list[np.ndarray], k: int, workers: int = -1) -> float:
    """Multi-information of m standardised blocks (each (n, d_j)) by KSG algorithm 1.

    psi(k) + (m - 1) psi(N) - < sum_j psi(n_j + 1) >; m = 2 is the mutual information,
    m > 2 the total correlation. Two scalars take the slab search of the plane, anything
    else a k-d tree.
    """
    n = blocks[0].shape[0]
    psi = _psi_of_counts_plus_one(n)
    if len(blocks) == 2 and blocks[0].shape[1] == blocks[1].shape[1] == 1:
        return _ksg_plane(blocks[0][:, 0], *_sorted_axis(blocks[1][:, 0]), k, psi)
    order = np.argsort(blocks[0][:, 0])  # rows sorted along one axis make tree queries local
    blocks = [b[order] for b in blocks]
    eps = _kth_neighbour_distance(np.hstack(blocks), k, workers)
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
    shared_options = ("n_neighbors", "random_state")

    def __init__(
        self, *, n_neighbors: int = 3, jitter: float = 1e-10, random_state: int | None = None
    ) -> None:
        self.n_neighbors = n_neighbors
        self.jitter = jitter
        self.random_state = random_state

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

    With a scalar y, the label is sorted once and each column costs one sort, one slab
    search of the plane and two galloping counts (compiled kernels); a multivariate y
    takes a k-d tree per column. Columns run on ``n_jobs`` threads (-1: one per CPU core;
    the kernels, sorts and tree queries release the GIL); with a single thread the tree
    queries use every core instead. The result does not depend on ``n_jobs``: the jitter
    of column j comes from its own stream spawned from ``random_state``.
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
    if y.shape[1] == 1:
        y_sorted, y_position = _sorted_axis(y[:, 0])
        psi = _psi_of_counts_plus_one(n)

    def column(j: int) -> float:
        xj = standardise(X[:, j : j + 1], jitter=jitter, rng=column_rngs[j])
        if y.shape[1] == 1:
            return _ksg_plane(xj[:, 0], y_sorted, y_position, n_neighbors, psi)
        return _ksg_information([xj, y], n_neighbors, workers=-1 if threads == 1 else 1)

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
