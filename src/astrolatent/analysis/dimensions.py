"""Which latent dimensions of a VAE are informative, by two independent methods.

Inputs are the encoder's latent means ``mu`` and log-variances ``logvar``, each (n, D).

1. Dispersion (statistical): uninformative dimensions collapse to the prior, so their means
   sit near 0 for every input. Score: the median absolute deviation
   s_d = median_i |mu_id - median_j mu_jd| (scale 1, no 1.4826 factor; threshold 0.02), or
   the earlier variant, the mean absolute deviation about the mean (threshold 0.2).
2. KL rate (information-theoretical): the information each dimension carries about the
   input, R_d = mean_i KL(N(mu_id, exp(logvar_id)) || N(0, 1))
   = mean_i 0.5 (mu_id^2 + exp(logvar_id) - logvar_id - 1), in nats. Collapsed dimensions
   have R_d ~ 0; the default threshold is 0.01 nats.

Each method can also split without a threshold (``split="gap"``): sort the log10 scores and
cut at the largest gap between neighbours, provided that gap is a factor of at least
``min_gap_factor`` (default 3) in score; the cut is the geometric mean of the two scores
around the gap. When no gap is that large (all dimensions informative, or none, or a smooth
spread) the split falls back to the method's fixed threshold, which then puts all
dimensions on one side in the all/none cases. Scores are floored at 1e-12 before the log.

:func:`redundancy` checks whether the informative dimensions are independently informative:
pairwise KSG mutual information and the KSG total correlation (nats).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from astrolatent.analysis.mi.base import as_samples, json_float
from astrolatent.analysis.mi.ksg import ksg_mi_columns, ksg_total_correlation
from astrolatent.errors import ConfigError

logger = logging.getLogger(__name__)

DispersionMethod = Literal["mad", "meanad"]
SplitMethod = Literal["threshold", "gap"]

DISPERSION_THRESHOLDS: dict[str, float] = {"mad": 0.02, "meanad": 0.2}
KL_THRESHOLD = 0.01
_SCORE_FLOOR = 1e-12


def dispersion(mu: object, *, method: DispersionMethod = "mad") -> np.ndarray:
    """Spread of each latent mean over the inputs: mu (n, D) -> (D,), in latent units.

    ``"mad"``: median absolute deviation from the median (scale 1). ``"meanad"``: mean
    absolute deviation from the mean.
    """
    mu = as_samples(mu, "mu")
    if method == "mad":
        return np.median(np.abs(mu - np.median(mu, axis=0)), axis=0)
    if method == "meanad":
        return np.mean(np.abs(mu - mu.mean(axis=0)), axis=0)
    raise ConfigError(f"method={method!r} is not a dispersion method; choose 'mad' or 'meanad'")


def kl_rate(mu: object, logvar: object) -> np.ndarray:
    """Per-dimension rate mean_x KL(q(z_d|x) || N(0, 1)) in nats: (n, D), (n, D) -> (D,)."""
    mu = as_samples(mu, "mu")
    logvar = as_samples(logvar, "logvar")
    if logvar.shape != mu.shape:
        raise ConfigError(f"logvar has shape {logvar.shape} but mu has {mu.shape}; they must match")
    return np.mean(0.5 * (mu**2 + np.exp(logvar) - logvar - 1.0), axis=0)


def gap_cut(scores: object, *, min_gap_factor: float = 3.0) -> float | None:
    """Cut at the largest gap in log10(scores), or None when no gap reaches ``min_gap_factor``.

    Returns the geometric mean of the two scores around the largest gap; dimensions above
    it are informative.
    """
    if not min_gap_factor > 1:
        raise ConfigError(f"min_gap_factor={min_gap_factor} must exceed 1 (3 is usual)")
    logs = np.sort(np.log10(np.maximum(np.asarray(scores, dtype=np.float64), _SCORE_FLOOR)))
    if logs.size < 2:
        return None
    gaps = np.diff(logs)
    best = int(np.argmax(gaps))
    if gaps[best] < np.log10(min_gap_factor):
        return None
    return float(10 ** (0.5 * (logs[best] + logs[best + 1])))


@dataclass(frozen=True)
class DimSelection:
    """One method's choice. dims: selected dimension indices; scores: (D,) score of every
    dimension; threshold: the cut applied (dims have score > threshold)."""

    dims: list[int]
    scores: np.ndarray
    threshold: float

    def to_dict(self) -> dict[str, object]:
        return {
            "dims": list(self.dims),
            "scores": [json_float(s) for s in self.scores],
            "threshold": json_float(self.threshold),
        }


@dataclass(frozen=True)
class InformativeDims:
    """Informative latent dimensions by dispersion and by KL rate, and where both agree."""

    dispersion: DimSelection
    kl: DimSelection
    agreed: list[int]

    def to_dict(self) -> dict[str, object]:
        return {
            "dispersion": self.dispersion.to_dict(),
            "kl": self.kl.to_dict(),
            "agreed": list(self.agreed),
        }


def _select(
    scores: np.ndarray, *, split: SplitMethod, threshold: float, min_gap_factor: float
) -> DimSelection:
    if split == "gap":
        cut = gap_cut(scores, min_gap_factor=min_gap_factor)
        if cut is None:
            logger.info(
                "no gap of a factor %.3g in the scores; using the threshold %.3g",
                min_gap_factor,
                threshold,
            )
        else:
            threshold = cut
    elif split != "threshold":
        raise ConfigError(f"split={split!r} is not known; choose 'threshold' or 'gap'")
    dims = [int(d) for d in np.flatnonzero(scores > threshold)]
    return DimSelection(dims=dims, scores=scores, threshold=float(threshold))


def count_informative(
    mu: object,
    logvar: object,
    *,
    method: DispersionMethod = "mad",
    split: SplitMethod = "threshold",
    threshold: float | None = None,
    kl_threshold: float = KL_THRESHOLD,
    min_gap_factor: float = 3.0,
) -> InformativeDims:
    """Informative dimensions of latent means ``mu`` and log-variances ``logvar`` (each (n, D)).

    Parameters
    ----------
    method : "mad" or "meanad"
        Dispersion score (see :func:`dispersion`).
    split : "threshold" or "gap"
        Fixed thresholds, or the largest-gap split of each score (falling back to the
        thresholds when no gap reaches ``min_gap_factor``).
    threshold : float or None
        Dispersion threshold in latent units; None uses 0.02 for "mad" and 0.2 for "meanad".
    kl_threshold : float
        KL-rate threshold in nats.
    """
    if threshold is None:
        if method not in DISPERSION_THRESHOLDS:
            raise ConfigError(
                f"method={method!r} is not a dispersion method; choose 'mad' or 'meanad'"
            )
        threshold = DISPERSION_THRESHOLDS[method]
    by_dispersion = _select(
        dispersion(mu, method=method),
        split=split,
        threshold=threshold,
        min_gap_factor=min_gap_factor,
    )
    by_kl = _select(
        kl_rate(mu, logvar), split=split, threshold=kl_threshold, min_gap_factor=min_gap_factor
    )
    agreed = sorted(set(by_dispersion.dims) & set(by_kl.dims))
    if set(by_dispersion.dims) != set(by_kl.dims):
        logger.info("dispersion selects %s, KL rate selects %s", by_dispersion.dims, by_kl.dims)
    return InformativeDims(dispersion=by_dispersion, kl=by_kl, agreed=agreed)


@dataclass(frozen=True)
class Redundancy:
    """Shared information among latent dimensions, in nats.

    dims: the dimensions compared; pairwise_mi: (k, k) KSG MI between them (NaN on the
    diagonal); total_correlation: KSG estimate of sum_j H(z_j) - H(z_dims), 0 when the
    dimensions are independent. The true total correlation is at least the largest
    pairwise MI; the KSG estimate in several dimensions is biased low when the dependence
    is strong, so read it together with the pairwise matrix.
    """

    dims: list[int]
    pairwise_mi: np.ndarray
    total_correlation: float

    def to_dict(self) -> dict[str, object]:
        return {
            "dims": list(self.dims),
            "pairwise_mi": [[json_float(v) for v in row] for row in self.pairwise_mi],
            "total_correlation": json_float(self.total_correlation),
        }


def redundancy(
    mu: object,
    dims: Sequence[int],
    *,
    n_neighbors: int = 3,
    random_state: int | None = None,
) -> Redundancy:
    """Pairwise MI and total correlation (KSG, nats) among the columns ``dims`` of mu (n, D).

    Independently informative dimensions have pairwise MI and total correlation near 0; a
    redundant copy of a dimension shows up as a large pairwise MI.
    """
    mu = as_samples(mu, "mu")
    dims = [int(d) for d in dims]
    if len(dims) < 2:
        raise ConfigError(f"dims={dims} has fewer than 2 dimensions; redundancy needs a pair")
    bad = [d for d in dims if not 0 <= d < mu.shape[1]]
    if bad:
        raise ConfigError(f"dims {bad} are outside 0 .. {mu.shape[1] - 1}")
    sub = mu[:, dims]
    k = len(dims)
    pairwise = np.full((k, k), np.nan)
    for i in range(k - 1):
        row = ksg_mi_columns(
            sub[:, i + 1 :], sub[:, i], n_neighbors=n_neighbors, random_state=random_state
        )
        pairwise[i, i + 1 :] = row
        pairwise[i + 1 :, i] = row
    total = ksg_total_correlation(sub, n_neighbors=n_neighbors, random_state=random_state)
    return Redundancy(dims=dims, pairwise_mi=pairwise, total_correlation=total)
