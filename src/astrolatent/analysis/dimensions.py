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

Each method can also split without a threshold (``split="groups"``): the scores fall into two
groups in log10 score, cut where the between-group variance of the log scores is largest
(Otsu's criterion on the sorted scores); the split is used when the geometric means of the
two groups differ by at least ``min_ratio`` (default 3), and the cut is the geometric mean
of the two scores on either side of it. When the groups are closer than that (all
dimensions informative, or none) the split falls back to the method's fixed threshold.
Scores are floored at 1e-12 before the log. Why groups rather than the largest single gap:
with a weak KL weight the collapsed dimensions do not sit exactly at the prior but keep a
small jitter (MAD ~0.05-0.15, rate ~0.05-0.3 nats), so the fixed thresholds count every
dimension and no single gap between neighbours is large, while the two groups are still a
factor 5-15 apart (docs/results.md, planted-factor runs). The split always finds a cut
when the scores span more than ``min_ratio``, even in a smooth spread with no groups; each
cut therefore comes with its separation (:func:`group_separation`; 0.75 for an even spread
in log, near 1 for two tight groups), and a warning below 0.8: such a count is uncertain.

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
SplitMethod = Literal["threshold", "groups"]

DISPERSION_THRESHOLDS: dict[str, float] = {"mad": 0.02, "meanad": 0.2}
KL_THRESHOLD = 0.01
#: below this group separation a two-group cut is flagged: scores spread evenly in log give 0.75
SMOOTH_SEPARATION = 0.8
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


def channel_information(mu: object, logvar: object) -> np.ndarray:
    """Per dimension, what a latent ``z = mu(x) + sigma(x) eps`` can tell about the data:
    ``0.5 log(1 + Var(mu) / E[sigma^2])`` nats, the capacity of a Gaussian channel with the
    means' variance as signal and the mean posterior variance as noise (exact for Gaussian
    means and a constant sigma): (n, D), (n, D) -> (D,). Unlike :func:`kl_rate` it is 0
    for a posterior narrower than the prior around a mean that does not move."""
    mu = as_samples(mu, "mu")
    logvar = as_samples(logvar, "logvar")
    if logvar.shape != mu.shape:
        raise ConfigError(f"logvar has shape {logvar.shape} but mu has {mu.shape}; they must match")
    return 0.5 * np.log1p(mu.var(axis=0) / np.exp(logvar).mean(axis=0))


def _otsu(scores: object) -> tuple[float, float, float] | None:
    """Otsu's two groups of log10(scores): (cut, log10 ratio of the group means,
    separation = between-group / total variance of the log scores), or None for < 2 scores
    or scores all alike."""
    logs = np.sort(np.log10(np.maximum(np.asarray(scores, dtype=np.float64), _SCORE_FLOOR)))
    if logs.size < 2 or logs[-1] == logs[0]:
        return None
    k = np.arange(1, logs.size)  # size of the low group
    low_mean = np.cumsum(logs)[:-1] / k
    high_mean = (logs.sum() - np.cumsum(logs)[:-1]) / (logs.size - k)
    between = k * (logs.size - k) * (high_mean - low_mean) ** 2 / logs.size**2
    best = int(np.argmax(between))
    cut = float(10 ** (0.5 * (logs[best] + logs[best + 1])))
    return cut, float(high_mean[best] - low_mean[best]), float(between[best] / logs.var())


def two_group_cut(scores: object, *, min_ratio: float = 3.0) -> float | None:
    """Cut between the two groups of log10(scores), or None when they are closer than ``min_ratio``.

    The cut maximises the between-group variance of the log scores; it is returned as the
    geometric mean of the two scores on either side. Dimensions above it are informative.
    """
    if not min_ratio > 1:
        raise ConfigError(f"min_ratio={min_ratio} must exceed 1 (3 is usual)")
    groups = _otsu(scores)
    if groups is None or groups[1] < np.log10(min_ratio):
        return None
    return groups[0]


def group_separation(scores: object) -> float | None:
    """How cleanly the scores fall into two groups: the between-group share of the variance
    of log10(scores) at Otsu's cut, in [0, 1]. About 0.75 for scores spread evenly in log
    (no groups; any cut is arbitrary), near 1 for two tight groups; None for < 2 scores."""
    groups = _otsu(scores)
    return None if groups is None else groups[2]


@dataclass(frozen=True)
class DimSelection:
    """One method's choice. dims: selected dimension indices; scores: (D,) score of every
    dimension; threshold: the cut applied (dims have score > threshold); split: how the
    cut was set ("groups", or "threshold" when fixed or when the groups fell back to it);
    separation: for a "groups" cut, :func:`group_separation` of the scores."""

    dims: list[int]
    scores: np.ndarray
    threshold: float
    split: str = "threshold"
    separation: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "dims": list(self.dims),
            "scores": [json_float(s) for s in self.scores],
            "threshold": json_float(self.threshold),
            "split": self.split,
            "separation": json_float(self.separation),
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
    scores: np.ndarray, *, split: SplitMethod, threshold: float, min_ratio: float
) -> DimSelection:
    if split == "groups":
        cut = two_group_cut(scores, min_ratio=min_ratio)
        if cut is None:
            logger.info(
                "the scores form no two groups a factor %.3g apart; using the threshold %.3g",
                min_ratio,
                threshold,
            )
        else:
            separation = group_separation(scores)
            if separation < SMOOTH_SEPARATION:
                logger.warning(
                    "the scores spread smoothly rather than in two groups (separation %.2f; "
                    "0.75 for an even spread): the cut at %.3g is uncertain, compare --split threshold",
                    separation,
                    cut,
                )
            return DimSelection(
                dims=[int(d) for d in np.flatnonzero(scores > cut)],
                scores=scores,
                threshold=cut,
                split="groups",
                separation=separation,
            )
    elif split != "threshold":
        raise ConfigError(f"split={split!r} is not known; choose 'threshold' or 'groups'")
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
    min_ratio: float = 3.0,
) -> InformativeDims:
    """Informative dimensions of latent means ``mu`` and log-variances ``logvar`` (each (n, D)).

    Parameters
    ----------
    method : "mad" or "meanad"
        Dispersion score (see :func:`dispersion`).
    split : "threshold" or "groups"
        Fixed thresholds, or the two-group split of each score (falling back to the
        thresholds when the groups are less than ``min_ratio`` apart).
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
        min_ratio=min_ratio,
    )
    by_kl = _select(kl_rate(mu, logvar), split=split, threshold=kl_threshold, min_ratio=min_ratio)
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
