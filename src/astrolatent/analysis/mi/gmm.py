"""Gaussian-mixture estimator of mutual information, in nats.

A :class:`sklearn.mixture.GaussianMixture` with full covariances is fitted to the joint,
standardised samples (x, y[, z]); the number of components is the one of lowest BIC in
1 .. ``max_components`` unless fixed. Marginals of a Gaussian mixture are Gaussian mixtures
(same weights, sub-vectors of the means, sub-blocks of the covariances), so

    I(X;Y) = E[log p(x, y) - log p(x) - log p(y)]
    I(X;Y|Z) = E[log p(x, y, z) + log p(z) - log p(x, z) - log p(y, z)]

are computed by Monte Carlo over ``n_samples`` draws from the fitted mixture. The result is
exact for a Gaussian (one component) up to the Monte Carlo error, and smooth, low-variance
but model-dependent otherwise.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from astrolatent.analysis.mi.base import MIEstimator, register_estimator
from astrolatent.analysis.mi.ksg import standardise
from astrolatent.errors import ConfigError

logger = logging.getLogger(__name__)


def _mixture_logpdf(points: np.ndarray, gmm: GaussianMixture, dims: list[int]) -> np.ndarray:
    """log density at ``points`` (n, D) of the marginal of ``gmm`` over the columns ``dims``."""
    sub = points[:, dims]
    per_component = [
        np.log(w) + multivariate_normal.logpdf(sub, mean=m[dims], cov=c[np.ix_(dims, dims)])
        for w, m, c in zip(gmm.weights_, gmm.means_, gmm.covariances_, strict=True)
    ]
    return logsumexp(np.stack(per_component, axis=1), axis=1)


@register_estimator
class GMMEstimator(MIEstimator):
    """Mutual information of a Gaussian mixture fitted to the joint samples, in nats.

    Parameters
    ----------
    n_components : int or None
        Fixed number of mixture components; None selects it by BIC in 1 .. max_components.
    max_components : int
        Largest number of components tried by the BIC selection.
    n_samples : int
        Monte Carlo draws from the fitted mixture (the MC error is about
        std(log-ratio) / sqrt(n_samples), a few 1e-3 nats at the default).
    random_state : int or None
        Seed of the mixture fit and of the Monte Carlo draws.

    Attributes
    ----------
    n_components_ : int
        Number of components of the last fit.
    """

    name = "gmm"
    shared_options = ("random_state",)

    def __init__(
        self,
        *,
        n_components: int | None = None,
        max_components: int = 6,
        n_samples: int = 20_000,
        random_state: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.max_components = max_components
        self.n_samples = n_samples
        self.random_state = random_state

    def for_resampling(self) -> GMMEstimator:
        """A copy with the number of components fixed to the last selection."""
        if self.n_components is not None:
            return self
        return GMMEstimator(
            n_components=self.n_components_,
            n_samples=self.n_samples,
            random_state=self.random_state,
        )

    def _candidates(self) -> list[int]:
        if self.n_components is not None:
            if self.n_components < 1:
                raise ConfigError(f"n_components={self.n_components} must be at least 1")
            return [self.n_components]
        if self.max_components < 1:
            raise ConfigError(f"max_components={self.max_components} must be at least 1")
        return list(range(1, self.max_components + 1))

    def _fit(self, data: np.ndarray) -> GaussianMixture:
        best, best_bic = None, np.inf
        for k in self._candidates():
            gmm = GaussianMixture(
                k, covariance_type="full", max_iter=500, random_state=self.random_state
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm.fit(data)
            if not gmm.converged_:
                logger.warning(
                    "Gaussian mixture with %d components did not converge in 500 iterations", k
                )
            bic = gmm.bic(data)
            if bic < best_bic:
                best, best_bic = gmm, bic
        return best

    def _estimate(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> float:
        if self.n_samples < 2:
            raise ConfigError(f"n_samples={self.n_samples} must be at least 2 (20000 is usual)")
        blocks = [x, y] if z is None else [x, y, z]
        data = standardise(np.hstack(blocks))
        edges = np.cumsum([0] + [b.shape[1] for b in blocks])
        ix, iy = list(range(edges[0], edges[1])), list(range(edges[1], edges[2]))
        # Small dense problems: BLAS/OpenMP threads only add contention here.
        with threadpool_limits(limits=1):
            gmm = self._fit(data)
            draws, _ = gmm.sample(self.n_samples)
        self.n_components_ = gmm.n_components
        if z is None:
            terms = (
                _mixture_logpdf(draws, gmm, ix + iy)
                - _mixture_logpdf(draws, gmm, ix)
                - _mixture_logpdf(draws, gmm, iy)
            )
        else:
            iz = list(range(edges[2], edges[3]))
            terms = (
                _mixture_logpdf(draws, gmm, ix + iy + iz)
                + _mixture_logpdf(draws, gmm, iz)
                - _mixture_logpdf(draws, gmm, ix + iz)
                - _mixture_logpdf(draws, gmm, iy + iz)
            )
        return float(np.mean(terms))
