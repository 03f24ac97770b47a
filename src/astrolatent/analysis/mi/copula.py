"""Copula-based estimators of mutual information, and the ``auto`` choice, in nats.

MI does not change under a monotone map of each column, so both estimators here first map
every column to normal scores, Phi^-1(rank / (n + 1)) (the copula transform): skewed,
heavy-tailed or bounded marginals become standard normal.

- ``"gaussian_copula"``: the MI of a Gaussian with the normal scores' correlation matrix,
  I = 1/2 ln(det C_xx det C_yy / det C), and I(X;Y|Z) = 1/2 ln(det C_xz det C_yz /
  (det C_z det C_xyz)). Exact (up to sampling) when the normal scores are jointly
  Gaussian (Gaussian copula: any monotone transform of a multivariate normal) in any
  dimension; a lower bound for one-dimensional X and Y otherwise, and blind to dependence
  without correlation (e.g. a Student-t with identity dispersion).
- ``"t_copula"`` (:mod:`~astrolatent.analysis.mi.tcopula`): the closed-form MI of a
  Student-t copula fitted to the ranks (Kendall dispersion, maximum-likelihood nu). Exact
  (up to sampling) for any monotone map of a multivariate t; the Gaussian copula is its
  nu -> infinity limit.
- ``"auto"``: chosen from the data alone. One-dimensional X and Y: KSG on the normal
  scores (right on one-dimensional tasks). Several dimensions: the Mardia kurtosis of the
  joint normal scores, z = (b2 - d(d + 2)) / sqrt(8 d(d + 2) / n), tests joint
  Gaussianity; |z| < ``gaussian_z`` gives the Gaussian copula (KSG is biased low in many
  dimensions). Joint heavy tails: a t copula is fitted to all columns and, with the same
  dispersion, its nu to every pair of columns; a t copula has one nu for every
  sub-vector, so when no pair's nu is more than a factor ``dof_ratio`` below the joint one
  (a pair's nu is capped at the joint nu, itself capped at 30: a pair with lighter tails
  than the whole does not reject) the t-copula MI is used (KSG in six dimensions is ~0.1 nats low on
  nu = 2 tails), otherwise (independent heavy-tailed pieces, several nu, non-elliptical
  dependence) KSG on the normal scores. Replicates for errors and p-values reuse the
  choice of the full sample.
"""

from __future__ import annotations

import itertools
import logging
from typing import Literal

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from astrolatent.analysis.mi.base import MIEstimator, register_estimator
from astrolatent.analysis.mi.ksg import KSGEstimator
from astrolatent.analysis.mi.tcopula import (
    fit_t_copula,
    fit_t_copula_dof,
    t_copula_mi,
    t_copula_mi_from_fit,
)
from astrolatent.errors import ConfigError

logger = logging.getLogger(__name__)

#: |Mardia z| below which ``auto`` treats the normal scores as jointly Gaussian.
GAUSSIAN_Z = 4.0
#: Largest ratio between a column pair's and the joint t-copula nu for ``auto`` to use it ...
DOF_RATIO = 2.0
#: ... both capped at this nu.
DOF_COMPARE_CAP = 30.0
CHOICES = ("ksg", "gaussian_copula", "t_copula")


def normal_scores(a: np.ndarray) -> np.ndarray:
    """Phi^-1(rank / (n + 1)) of every column of ``a`` (n, d); ties get their mean rank."""
    return ndtri(rankdata(a, axis=0) / (a.shape[0] + 1.0))


def _logdet(corr: np.ndarray, idx: list[int]) -> float:
    if not idx:
        return 0.0
    sign, value = np.linalg.slogdet(corr[np.ix_(idx, idx)])
    if not (sign > 0 and np.isfinite(value)):
        raise ConfigError(
            "the normal scores are linearly dependent (a constant column or a duplicated "
            "variable); drop it or use estimator='ksg'"
        )
    return float(value)


def gaussian_copula_mi(x: np.ndarray, y: np.ndarray, z: np.ndarray | None = None) -> float:
    """Gaussian-copula I(X;Y) or I(X;Y|Z) in nats for arrays (n, dx), (n, dy), (n, dz)."""
    blocks = [x, y] if z is None else [x, y, z]
    corr = np.corrcoef(normal_scores(np.hstack(blocks)), rowvar=False).reshape(
        sum(b.shape[1] for b in blocks), -1
    )
    edges = np.cumsum([0] + [b.shape[1] for b in blocks])
    ix, iy = list(range(edges[0], edges[1])), list(range(edges[1], edges[2]))
    iz = [] if z is None else list(range(edges[2], edges[3]))
    return 0.5 * (
        _logdet(corr, ix + iz)
        + _logdet(corr, iy + iz)
        - _logdet(corr, iz)
        - _logdet(corr, ix + iy + iz)
    )


def mardia_kurtosis_z(a: np.ndarray) -> float:
    """Mardia's multivariate kurtosis of ``a`` (n, d) as a z-score under joint normality."""
    n, d = a.shape
    centred = a - a.mean(axis=0)
    cov = np.atleast_2d(np.cov(centred, rowvar=False))
    dist = np.einsum("ij,jk,ik->i", centred, np.linalg.pinv(cov), centred)
    return float((np.mean(dist**2) - d * (d + 2)) / np.sqrt(8.0 * d * (d + 2) / n))


@register_estimator
class GaussianCopulaEstimator(MIEstimator):
    """MI of the Gaussian with the correlation of the columns' normal scores, in nats."""

    name = "gaussian_copula"

    def _estimate(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> float:
        return gaussian_copula_mi(x, y, z)


@register_estimator
class TCopulaEstimator(MIEstimator):
    """MI of the Student-t copula fitted to the columns' ranks, in nats."""

    name = "t_copula"

    def _estimate(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> float:
        return t_copula_mi(x, y, z)


@register_estimator
class AutoEstimator(MIEstimator):
    """MI with the estimator chosen from the data's dimension and joint tails, in nats.

    Parameters
    ----------
    n_neighbors : int
        k of KSG when it is chosen.
    gaussian_z : float
        |Mardia kurtosis z| of the joint normal scores below which the Gaussian copula is
        used for multivariate data.
    dof_ratio : float
        Largest factor by which the t-copula nu of a pair of columns may fall below that of
        all columns for the t copula to be used; a pair's nu is capped at the joint nu
        (itself capped at :data:`DOF_COMPARE_CAP`), so only heavier-tailed pairs reject it.
    choice : "ksg", "gaussian_copula", "t_copula" or None
        Fix the choice (None: choose on each call).
    random_state : int or None
        Seed of KSG's tie-breaking jitter.

    Attributes
    ----------
    choice_ : str
        The estimator used by the last call; ``kurtosis_z_`` the statistic it was based on
        (NaN for one-dimensional X and Y); ``dof_`` the joint t-copula nu and
        ``dof_spread_`` the largest |ln(pair nu / joint nu)| (NaN when not fitted).
    """

    name = "auto"
    shared_options = ("n_neighbors", "random_state")

    def __init__(
        self,
        *,
        n_neighbors: int = 3,
        gaussian_z: float = GAUSSIAN_Z,
        dof_ratio: float = DOF_RATIO,
        choice: Literal["ksg", "gaussian_copula", "t_copula"] | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.gaussian_z = gaussian_z
        self.dof_ratio = dof_ratio
        self.choice = choice
        self.random_state = random_state

    def for_resampling(self) -> AutoEstimator:
        """A copy with the last choice fixed."""
        return AutoEstimator(
            n_neighbors=self.n_neighbors,
            gaussian_z=self.gaussian_z,
            dof_ratio=self.dof_ratio,
            choice=self.choice_,
            random_state=self.random_state,
        )

    def _t_copula_agrees(self, blocks: list[np.ndarray]) -> bool:
        """Fit the t copula to all columns; True when every pair's nu agrees with it.

        A t copula has one nu for every sub-vector; a bivariate t copula (with the joint
        dispersion) is fitted to each pair of columns; a pair's nu is capped at the joint nu,
        itself capped at :data:`DOF_COMPARE_CAP` (beyond it the t copula is near-Gaussian),
        so the test is one-sided: only a pair with heavier tails than the whole rejects.
        """
        joint = np.hstack(blocks)
        self._fit = fit_t_copula(joint)
        corr, self.dof_ = self._fit
        u = rankdata(joint, axis=0) / (joint.shape[0] + 1.0)
        cap = min(self.dof_, DOF_COMPARE_CAP)
        self.dof_spread_ = max(
            abs(
                np.log(min(fit_t_copula_dof(u[:, [i, j]], corr[np.ix_([i, j], [i, j])]), cap) / cap)
            )
            for i, j in itertools.combinations(range(joint.shape[1]), 2)
        )
        return self.dof_spread_ <= np.log(self.dof_ratio)

    def _choose(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> str:
        self.kurtosis_z_ = self.dof_ = self.dof_spread_ = float("nan")
        self._fit = None
        if self.choice is not None:
            if self.choice not in CHOICES:
                raise ConfigError(
                    f"choice={self.choice!r} must be one of {', '.join(CHOICES)} or None"
                )
            return self.choice
        if x.shape[1] == 1 and y.shape[1] == 1:
            return "ksg"
        blocks = [x, y] if z is None else [x, y, z]
        self.kurtosis_z_ = mardia_kurtosis_z(normal_scores(np.hstack(blocks)))
        if abs(self.kurtosis_z_) < self.gaussian_z:
            return "gaussian_copula"
        return "t_copula" if self._t_copula_agrees(blocks) else "ksg"

    def _estimate(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> float:
        self.choice_ = self._choose(x, y, z)
        if self.choice_ == "gaussian_copula":
            return gaussian_copula_mi(x, y, z)
        if self.choice_ == "t_copula":
            if self._fit is None:
                return t_copula_mi(x, y, z)
            dims = tuple(b.shape[1] for b in ([x, y] if z is None else [x, y, z]))
            return t_copula_mi_from_fit(*self._fit, dims)
        logger.debug(
            "auto MI: KSG on normal scores (Mardia z %.3g, t-copula nu spread %.3g)",
            self.kurtosis_z_,
            self.dof_spread_,
        )
        ksg = KSGEstimator(n_neighbors=self.n_neighbors, random_state=self.random_state)
        return ksg.estimate(
            normal_scores(x), normal_scores(y), z=None if z is None else normal_scores(z)
        )
