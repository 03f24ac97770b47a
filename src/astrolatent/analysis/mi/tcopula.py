"""Student-t copula mutual information, in nats.

MI does not change under a monotone map of each column, so a joint distribution whose
copula is a Student-t copula (a multivariate t, or any monotone map of each of its
columns) has the MI of the multivariate t with the same dispersion (correlation) matrix R
and degrees of freedom nu:

    I(X;Y) = I_Gauss(R) + A(dx) + A(dy) - A(dx + dy),
    A(d) = ln Gamma(nu/2) - ln Gamma((nu+d)/2) + (nu+d)/2 [psi((nu+d)/2) - psi(nu/2)],

from the entropy of the multivariate t (I_Gauss(R) = 1/2 ln(det R_xx det R_yy / det R));
I(X;Y|Z) = I(X;YZ) - I(X;Z). The fit, on the ranks only: R_ij = sin(pi tau_ij / 2) from
Kendall's tau (exact for every elliptical copula), then nu by maximum likelihood of the
t copula on the pseudo-observations u = rank / (n + 1). Large nu is the Gaussian copula.

The truth of the Student-t tasks in :mod:`astrolatent.simulate.infotheory` is written
separately on purpose (and checked there by Monte Carlo), so that a mistake here cannot
cancel in the tests.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import digamma, gammaln, stdtrit
from scipy.stats import kendalltau, rankdata

from astrolatent.errors import ConfigError

#: Search range of the degrees of freedom (nu at the upper end is a Gaussian copula).
DOF_BOUNDS = (0.3, 500.0)


def _entropy_term(dof: float, d: int) -> float:
    half, halfd = dof / 2.0, (dof + d) / 2.0
    return float(gammaln(half) - gammaln(halfd) + halfd * (digamma(halfd) - digamma(half)))


def _logdet(corr: np.ndarray, idx: list[int]) -> float:
    return float(np.linalg.slogdet(corr[np.ix_(idx, idx)])[1]) if idx else 0.0


def kendall_dispersion(a: np.ndarray) -> np.ndarray:
    """The elliptical-copula correlation sin(pi tau / 2) of the columns of ``a`` (n, d).

    Kendall's tau per pair of columns; the matrix is made positive definite (eigenvalues
    clipped at 1e-6, unit diagonal restored). Returns (d, d).
    """
    d = a.shape[1]
    corr = np.eye(d)
    for i in range(d):
        for j in range(i + 1, d):
            tau = kendalltau(a[:, i], a[:, j])[0]
            corr[i, j] = corr[j, i] = np.sin(0.5 * np.pi * np.nan_to_num(tau))
    w, v = np.linalg.eigh(corr)
    corr = (v * np.clip(w, 1e-6, None)) @ v.T
    scale = np.sqrt(np.diag(corr))
    return corr / np.outer(scale, scale)


def fit_t_copula_dof(u: np.ndarray, corr: np.ndarray) -> float:
    """Maximum-likelihood degrees of freedom of a t copula with correlation ``corr``.

    ``u`` (n, d): pseudo-observations in (0, 1); ``corr`` (d, d). Returns nu, within
    :data:`DOF_BOUNDS`.
    """
    n, d = u.shape
    inverse = np.linalg.inv(corr)
    logdet = np.linalg.slogdet(corr)[1]
    # pseudo-observations repeat across columns (rank / (n + 1)): one quantile per value
    levels, where = np.unique(u, return_inverse=True)
    where = where.reshape(u.shape)

    def negative_loglike(log_dof: float) -> float:
        nu = np.exp(log_dof)
        t = stdtrit(nu, levels)[where]
        q = np.einsum("ij,jk,ik->i", t, inverse, t)
        joint = (
            gammaln((nu + d) / 2) - gammaln(nu / 2) - 0.5 * (d * np.log(nu * np.pi) + logdet)
        ) * n - 0.5 * (nu + d) * np.log1p(q / nu).sum()
        margins = (gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)) * n * d
        margins -= 0.5 * (nu + 1) * np.log1p(t**2 / nu).sum()
        return -(joint - margins) / n

    lo, hi = np.log(DOF_BOUNDS[0]), np.log(DOF_BOUNDS[1])
    fit = minimize_scalar(
        negative_loglike, bounds=(lo, hi), method="bounded", options={"xatol": 0.005}
    )
    return float(np.exp(fit.x))


def fit_t_copula(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Correlation (d, d) and degrees of freedom of the t copula of the columns of ``a``."""
    if a.shape[1] < 2:
        raise ConfigError("a t copula needs at least two columns")
    corr = kendall_dispersion(a)
    return corr, fit_t_copula_dof(rankdata(a, axis=0) / (a.shape[0] + 1.0), corr)


def t_copula_mi_from_fit(corr: np.ndarray, dof: float, dims: tuple[int, ...]) -> float:
    """I(X;Y) (``dims`` = (dx, dy)) or I(X;Y|Z) ((dx, dy, dz)) of a t copula, in nats."""
    edges = np.cumsum((0, *dims))
    ix, iy = list(range(edges[0], edges[1])), list(range(edges[1], edges[2]))
    iz = list(range(edges[2], edges[3])) if len(dims) == 3 else []
    dx, dy, dz = len(ix), len(iy), len(iz)
    gauss = 0.5 * (
        _logdet(corr, ix + iz)
        + _logdet(corr, iy + iz)
        - _logdet(corr, iz)
        - _logdet(corr, ix + iy + iz)
    )

    def a(d: int) -> float:
        return _entropy_term(dof, d)

    return gauss + a(dx + dz) + a(dy + dz) - a(dz) - a(dx + dy + dz)


def t_copula_mi(x: np.ndarray, y: np.ndarray, z: np.ndarray | None = None) -> float:
    """t-copula I(X;Y) or I(X;Y|Z) in nats for arrays (n, dx), (n, dy), (n, dz)."""
    blocks = [x, y] if z is None else [x, y, z]
    corr, dof = fit_t_copula(np.hstack(blocks))
    return t_copula_mi_from_fit(corr, dof, tuple(b.shape[1] for b in blocks))
