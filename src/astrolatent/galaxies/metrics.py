"""Point estimates and quality metrics of binned PDFs (Zhang et al. 2025 definitions).

A PDF is a row of ``K`` bin probabilities over equal bins with edges ``e_0 < ... < e_K``;
for the CDF-based quantities the mass of a bin sits at its centre ``x_k``.
With ``d = estimate - truth``: bias = mean(d); sigma_MAD = 1.4826 median|d - median(d)|;
outlier fraction = share of |d| > 3 sigma_MAD; CRPS = integral of (F(t) - 1[t >= y])^2 dt.
"""

from __future__ import annotations

import numpy as np

from astrolatent.errors import ConfigError

MAD_TO_SIGMA = 1.4826


def bin_edges(low: float, high: float, n_bins: int) -> np.ndarray:
    """``(n_bins + 1,)`` equal-width bin edges over ``[low, high]``."""
    if not high > low or n_bins < 1:
        raise ConfigError(
            f"bins need high > low and n_bins >= 1 (got low={low}, high={high}, n_bins={n_bins})"
        )
    return np.linspace(low, high, n_bins + 1)


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value ``(N,)`` (values on the top edge fall in the last bin)."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def point_estimates(probs: np.ndarray, edges: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, median and mode ``(N,)`` of PDFs ``probs`` ``(N, K)`` over bins ``edges``.

    The median interpolates linearly within the bin where the CDF (uniform density within
    each bin) reaches 1/2; the mode is the centre of the most probable bin.
    """
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    centres = 0.5 * (edges[1:] + edges[:-1])
    cdf = np.cumsum(probs, axis=1)
    k = np.clip((cdf < 0.5).sum(axis=1), 0, probs.shape[1] - 1)
    rows = np.arange(len(probs))
    below = np.where(k > 0, cdf[rows, k - 1], 0.0)
    inside = np.clip((0.5 - below) / np.maximum(probs[rows, k], 1e-300), 0.0, 1.0)
    median = edges[k] + inside * (edges[k + 1] - edges[k])
    return {
        "mean": probs @ centres,
        "median": median,
        "mode": centres[np.argmax(probs, axis=1)],
    }


def crps(
    probs: np.ndarray, edges: np.ndarray, truth: np.ndarray, *, chunk: int = 4096
) -> np.ndarray:
    """CRPS ``(N,)`` (target units) of PDFs ``(N, K)`` whose bin masses sit at the centres.

    Exact for that discrete distribution: the CDF is a step function at the centres, so a
    PDF with all its mass in the bin centred on x gives |truth - x|.
    """
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    left, right = centres[:-1], centres[1:]
    out = np.empty(len(truth))
    for start in range(0, len(truth), chunk):
        p = probs[start : start + chunk]
        y = truth[start : start + chunk, None]
        cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)[:, :-1]  # on [x_k, x_k+1)
        below = np.clip(y - left, 0.0, right - left)  # part of the interval below y
        above = (right - left) - below
        inner = (cdf**2 * below + (cdf - 1) ** 2 * above).sum(axis=1)
        tails = np.clip(centres[0] - y[:, 0], 0, None) + np.clip(y[:, 0] - centres[-1], 0, None)
        out[start : start + chunk] = inner + tails
    return out


def summary_metrics(estimate: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """bias, sigma_mad, outlier_fraction (|d| > 3 sigma_MAD) and n of d = estimate - truth."""
    d = np.asarray(estimate, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(d - np.median(d))))
    return {
        "bias": float(np.mean(d)),
        "sigma_mad": sigma,
        "outlier_fraction": float(np.mean(np.abs(d) > 3 * sigma)),
        "n": len(d),
    }


def prior_probabilities(labels: np.ndarray, edges: np.ndarray, *, pseudocount: float) -> np.ndarray:
    """``(K,)`` label histogram over ``edges`` plus ``pseudocount`` per bin, normalised."""
    counts = np.bincount(bin_index(labels, edges), minlength=len(edges) - 1).astype(np.float64)
    counts += pseudocount
    return counts / counts.sum()


def cross_entropies(probs: np.ndarray, truth: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``-ln q(bin of truth)`` ``(N,)`` in nats for PDFs ``probs`` ``(N, K)``."""
    k = bin_index(truth, edges)
    picked = np.asarray(probs, dtype=np.float64)[np.arange(len(k)), k]
    return -np.log(np.maximum(picked, 1e-300))


def evaluate(
    probs: np.ndarray, truth: np.ndarray, edges: np.ndarray, *, prior_ce: np.ndarray
) -> dict:
    """All metrics of PDFs ``(N, K)`` against the truth ``(N,)``.

    Args:
        probs, truth, edges: the PDFs, the true values and the bin edges.
        prior_ce: ``(N,)`` -ln p(bin of truth) under the label histogram (nats).

    Returns:
        Per point estimate (``mean``, ``median``, ``mode``) the :func:`summary_metrics`;
        means of ``crps``, ``ce`` (nats), ``prior_ce`` and ``mi`` = prior_ce - ce (the mean
        pointwise mutual information, nats); ``truth_std`` and ``n``.
    """
    ce = cross_entropies(probs, truth, edges)
    estimates = point_estimates(probs, edges)
    return {
        **{name: summary_metrics(value, truth) for name, value in estimates.items()},
        "crps": float(np.mean(crps(probs, edges, truth))),
        "ce": float(np.mean(ce)),
        "prior_ce": float(np.mean(prior_ce)),
        "mi": float(np.mean(np.asarray(prior_ce) - ce)),
        "truth_std": float(np.std(truth)),
        "n": len(truth),
    }


__all__ = [
    "MAD_TO_SIGMA",
    "bin_edges",
    "bin_index",
    "cross_entropies",
    "crps",
    "evaluate",
    "point_estimates",
    "prior_probabilities",
    "summary_metrics",
]
