"""The fast KSG path (slab search in the plane, galloping counts) against brute force and
scikit-learn: the same neighbour distances, the same counts, the same MI values."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.special import digamma
from sklearn.feature_selection import mutual_info_regression

from astrolatent.analysis.mi import KSGEstimator, ksg_mi_columns
from astrolatent.analysis.mi.ksg import (
    _counts_within_sorted,
    _joint_kth_distances,
    _sorted_axis,
    standardise,
)


def planes(n: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pairs (x, y) of shape (n,): smooth, skewed, heavy-tailed, tied and duplicated data."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    return {
        "independent": (a, b),
        "correlated 0.95": (a, 0.95 * a + 0.31 * b),
        "exp, cubed": (np.exp(a), (0.6 * a + 0.8 * b) ** 3),
        "cauchy": (rng.standard_cauchy(n), rng.standard_cauchy(n)),
        "ties (2 decimals)": (np.round(a, 2), np.round(0.7 * a + 0.7 * b, 1)),
        "duplicated rows": (np.repeat(a[: n // 4], 4), np.repeat(b[: n // 4], 4)),
    }


def tree_kth_distances(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    points = np.column_stack([x, y])
    return cKDTree(points).query(points, k=[k + 1], p=np.inf)[0][:, 0]


@pytest.mark.parametrize("slab", [1, 7, 64, 10_000])
@pytest.mark.parametrize("k", [1, 3, 6])
def test_joint_kth_distances_equal_a_kd_tree(k, slab):
    for name, (x, y) in planes(1_003, seed=k + slab).items():
        x_sorted_order = np.argsort(x)
        y_sorted, y_position = _sorted_axis(y)
        eps_x, eps_y = _joint_kth_distances(
            x[x_sorted_order], y_position[x_sorted_order], y_sorted, k, slab
        )
        truth = tree_kth_distances(x, y, k)
        np.testing.assert_array_equal(eps_x, truth[x_sorted_order], err_msg=name)
        np.testing.assert_array_equal(eps_y, truth[np.argsort(y)], err_msg=name)


@pytest.mark.parametrize("n", [4, 5, 9])
def test_joint_kth_distances_on_a_handful_of_samples(n):
    x, y = planes(n, seed=n)["correlated 0.95"]
    order = np.argsort(x)
    y_sorted, y_position = _sorted_axis(y)
    eps_x, _ = _joint_kth_distances(x[order], y_position[order], y_sorted, 3, 2)
    np.testing.assert_array_equal(eps_x, tree_kth_distances(x, y, 3)[order])


def test_constant_column_equals_sklearn():
    rng = np.random.default_rng(8)
    y = rng.standard_normal(2_000)
    X = np.column_stack([np.full(y.size, 3.0), y + rng.standard_normal(y.size)])
    np.testing.assert_allclose(
        np.maximum(ksg_mi_columns(X, y, random_state=0), 0),
        mutual_info_regression(X, y, n_neighbors=3, random_state=0),
        atol=1e-6,
    )


def test_counts_within_sorted_equal_brute_force():
    rng = np.random.default_rng(4)
    for values in (
        rng.standard_normal(700),
        np.exp(2 * rng.standard_normal(700)),
        np.round(rng.standard_normal(700), 1),
    ):
        a = np.sort(values)
        # radii from zero (no neighbours, even for ties) to wider than the whole range
        for radius in (
            rng.gamma(2.0, 0.02, a.size),
            np.zeros(a.size),
            np.full(a.size, 0.1),
            rng.uniform(0, 1e3, a.size),
        ):
            brute = (np.abs(a[None, :] - a[:, None]) < radius[:, None]).sum(axis=1)
            brute -= radius > 0  # the sample itself
            np.testing.assert_array_equal(_counts_within_sorted(a, radius), brute)


def reference_ksg(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """KSG algorithm 1 written out with a k-d tree and brute-force strict counts."""
    n = x.size
    eps = tree_kth_distances(x, y, k)
    nx = (np.abs(x[None, :] - x[:, None]) < eps[:, None]).sum(axis=1) - 1
    ny = (np.abs(y[None, :] - y[:, None]) < eps[:, None]).sum(axis=1) - 1
    return digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))


def test_plane_estimate_equals_reference_ksg():
    for name, (x, y) in planes(1_200, seed=5).items():
        if name == "duplicated rows":
            continue  # eps = 0 there: the counts are 0, the estimate is not meaningful
        xs, ys = standardise(x[:, None]), standardise(y[:, None])
        ours = KSGEstimator(jitter=0.0).estimate(x, y)
        assert ours == pytest.approx(reference_ksg(xs[:, 0], ys[:, 0], 3), abs=1e-12), name


def test_columns_equal_sklearn_on_skewed_and_heavy_tailed_columns():
    rng = np.random.default_rng(6)
    n = 5_000
    y = rng.standard_normal(n)
    rhos = np.linspace(0.0, 0.95, 6)
    X = rhos * y[:, None] + np.sqrt(1 - rhos**2) * rng.standard_normal((n, rhos.size))
    X[:, 1] = np.exp(2 * X[:, 1])
    X[:, 4] = X[:, 4] ** 3
    X = np.column_stack([X, y + 0.5 * rng.standard_cauchy(n)])
    ours = ksg_mi_columns(X, y, random_state=0)
    theirs = mutual_info_regression(X, y, n_neighbors=3, random_state=0)
    np.testing.assert_allclose(np.maximum(ours, 0), theirs, atol=1e-6)
    assert theirs[-1] > 0.3  # the heavy-tailed column is informative, not a trivial 0


@pytest.mark.slow
def test_columns_are_several_times_faster_than_sklearn():
    """A loose floor (benchmarks/mi.py measures the real ratio): >= 4x on one thread."""
    rng = np.random.default_rng(7)
    n, d = 60_000, 4
    y = rng.standard_normal(n)
    X = 0.5 * y[:, None] + rng.standard_normal((n, d))
    ksg_mi_columns(X[:300], y[:300], n_jobs=1)  # compile outside the timing
    start = time.perf_counter()
    ours = ksg_mi_columns(X, y, random_state=0, n_jobs=1)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = mutual_info_regression(X, y, n_neighbors=3, random_state=0, n_jobs=1)
    t_theirs = time.perf_counter() - start
    np.testing.assert_allclose(np.maximum(ours, 0), theirs, atol=1e-6)
    assert t_theirs / t_ours >= 4


def test_columns_against_a_multivariate_label_keep_the_tree_path():
    rng = np.random.default_rng(9)
    n = 3_000
    Y = rng.standard_normal((n, 2))
    X = np.column_stack([Y[:, 0] + rng.standard_normal(n), rng.standard_normal(n)])
    columns = ksg_mi_columns(X, Y, jitter=0.0)
    per_column = [KSGEstimator(jitter=0.0).estimate(X[:, j], Y) for j in range(2)]
    np.testing.assert_allclose(columns, per_column, atol=1e-12)
    assert columns[0] == pytest.approx(0.5 * np.log(2), abs=0.05)  # I(Y1 + N; Y) = I(Y1 + N; Y1)
    assert abs(columns[1]) < 0.03
