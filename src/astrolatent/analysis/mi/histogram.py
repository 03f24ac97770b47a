"""Plug-in mutual information from a 2D histogram, in nats: the published reference form.

Equal-width bins spanning each variable's range (the binning of :func:`numpy.histogram2d`),
empirical probabilities p_ab = count_ab / n, and

    I = sum_ab p_ab ln(p_ab / (p_a p_b)).

There is deliberately no bias correction: the plug-in estimate rises with the number of
bins even for independent variables (by about (bins - 1)^2 / (2 n) nats), which is the
point of comparison with the bias-aware estimators. The heat-map of the reference study is
:func:`histogram_mi_table` followed by :func:`normalise_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from astrolatent.analysis.mi.base import MIEstimator, as_samples, register_estimator
from astrolatent.errors import ConfigError

REFERENCE_BINS = (5, 10, 20, 40, 80, 160)


def _check_bins(bins: int) -> None:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ConfigError(f"bins={bins!r} must be a positive integer (the reference used 5 to 160)")


def _bin_index(values: np.ndarray, bins: int) -> np.ndarray:
    """Index of the equal-width bin of each value, exactly as numpy.histogram2d assigns them."""
    lo, hi = values.min(), values.max()
    if lo == hi:
        return np.zeros(values.shape, dtype=np.intp)
    edges = np.linspace(lo, hi, bins + 1)
    index = np.searchsorted(edges, values, side="right") - 1
    index[index == bins] = bins - 1  # the last edge belongs to the last bin
    return index


def _plugin_mi(ix: np.ndarray, iy: np.ndarray, bins_x: int, bins_y: int) -> float:
    joint = np.bincount(ix * bins_y + iy, minlength=bins_x * bins_y).reshape(bins_x, bins_y)
    p = joint / ix.size
    px = p.sum(axis=1, keepdims=True)
    py = p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / (px * py)[nz])))


def histogram_mi(x: object, y: object, *, bins: int = 20) -> float:
    """Plug-in MI in nats of two 1D variables x, y (each (n,)) from a bins x bins histogram."""
    _check_bins(bins)
    xs, ys = as_samples(x, "x"), as_samples(y, "y")
    if xs.shape[1] != 1 or ys.shape[1] != 1:
        raise ConfigError(
            f"the histogram estimator takes one column each (got {xs.shape[1]} and {ys.shape[1]}); "
            "use estimator='ksg' or 'gmm' for multivariate variables"
        )
    if xs.shape[0] != ys.shape[0]:
        raise ConfigError(f"y has {ys.shape[0]} rows but x has {xs.shape[0]}; pass paired samples")
    return _plugin_mi(_bin_index(xs[:, 0], bins), _bin_index(ys[:, 0], bins), bins, bins)


def histogram_mi_table(X: object, y: object, *, bins: Sequence[int] = REFERENCE_BINS) -> np.ndarray:
    """The reference study's table: plug-in MI (nats) of each column of X (n, d) with y (n,).

    Returns an array of shape (len(bins), d); row b uses bins[b] x bins[b] bins. Raw values;
    the published heat map is ``normalise_rows(histogram_mi_table(mu, label))``.
    """
    X = as_samples(X, "X")
    ys = as_samples(y, "y")
    if ys.shape[1] != 1 or ys.shape[0] != X.shape[0]:
        raise ConfigError(
            f"y has shape {np.shape(y)}; expected ({X.shape[0]},), one label paired with X"
        )
    table = np.empty((len(bins), X.shape[1]))
    for b, nb in enumerate(bins):
        _check_bins(nb)
        iy = _bin_index(ys[:, 0], nb)
        for j in range(X.shape[1]):
            table[b, j] = _plugin_mi(_bin_index(X[:, j], nb), iy, nb, nb)
    return table


def normalise_rows(table: np.ndarray) -> np.ndarray:
    """Divide each row by its maximum (rows whose maximum is <= 0 are left at 0)."""
    table = np.asarray(table, dtype=np.float64)
    peak = table.max(axis=1, keepdims=True)
    return np.divide(table, peak, out=np.zeros_like(table), where=peak > 0)


@register_estimator
class HistogramEstimator(MIEstimator):
    """Plug-in 2D-histogram MI of two 1D variables, in nats (no bias correction).

    Parameters
    ----------
    bins : int
        Number of equal-width bins per variable.
    """

    name = "hist"

    def __init__(self, *, bins: int = 20) -> None:
        self.bins = bins

    def _estimate(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> float:
        if z is not None:
            raise ConfigError(
                "estimator='hist' cannot condition on z; use estimator='ksg' or 'gmm'"
            )
        return histogram_mi(x, y, bins=self.bins)
