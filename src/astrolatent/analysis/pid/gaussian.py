"""PID of jointly Gaussian variables, from the covariance matrix.

Mutual informations of Gaussians follow from determinants:
I(A; B) = 1/2 ln(det S_AA det S_BB / det S), in nats. Two redundancy measures:

- ``"gaussian"``: the minimum mutual information (MMI) PID, redundancy =
  min(I(Y;X1), I(Y;X2)) (Barrett 2015, Phys. Rev. E 91, 052802). Barrett showed that for
  a scalar target every PID whose unique information depends only on the (Y,X1) and
  (Y,X2) marginals, I_BROJA among them, reduces to it.
- ``"gaussian_dep"``: the dependency-constraint PID I_dep (James, Emenheiser & Crutchfield
  2018) in its Gaussian form (Kay & Ince 2018, Entropy 20, 240). Unique information of X1
  is the smallest gain in I(Y; X1, X2) over the edges of the lattice of maximum-entropy
  models that add the (X1, Y) dependency. For Gaussians the models with all pairwise
  marginals equal the full joint distribution, and the model with only the (X1,Y) and
  (X2,Y) marginals has X1 and X2 conditionally independent given Y, so
  redundancy = max(0, I1 + I2 - I12, I1 + I2 - I12_ci) with I12_ci = I(Y; X1, X2) under
  that model. All its atoms are non-negative.

Sources may be multivariate; the target is one variable. Estimates from samples use the
sample covariance, so they assume the data are jointly Gaussian (a monotonic transform of
each column towards normality is advisable for skewed catalogue quantities).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from astrolatent.analysis.pid.base import (
    PIDResult,
    ResamplingPIDMeasure,
    atoms_from_mi,
    register_measure,
)
from astrolatent.errors import ConfigError


def _logdet(cov: np.ndarray, what: str) -> float:
    sign, value = np.linalg.slogdet(cov)
    if sign <= 0 or not np.isfinite(value):
        raise ConfigError(
            f"the covariance of {what} is singular (a column is constant or a linear "
            "combination of others, or the target is a deterministic function of the "
            "sources); drop redundant columns or add noise"
        )
    return float(value)


def gaussian_mi(cov: np.ndarray, a: list[int], b: list[int]) -> float:
    """I(A; B) in nats for jointly Gaussian variables with covariance ``cov`` (d, d);
    ``a`` and ``b`` are disjoint lists of variable indices."""
    cov = np.asarray(cov, dtype=np.float64)
    ab = a + b
    return 0.5 * (
        _logdet(cov[np.ix_(a, a)], f"variables {a}")
        + _logdet(cov[np.ix_(b, b)], f"variables {b}")
        - _logdet(cov[np.ix_(ab, ab)], f"variables {ab}")
    )


def _mutual_informations(cov: np.ndarray, n_x1: int) -> tuple[float, float, float]:
    d = cov.shape[0]
    i1, i2 = list(range(1, 1 + n_x1)), list(range(1 + n_x1, d))
    return gaussian_mi(cov, [0], i1), gaussian_mi(cov, [0], i2), gaussian_mi(cov, [0], i1 + i2)


def _atoms_from_cov(cov: np.ndarray, n_x1: int, measure: Literal["mmi", "dep"]) -> np.ndarray:
    mi1, mi2, mi12 = _mutual_informations(cov, n_x1)
    if measure == "mmi":
        return atoms_from_mi(min(mi1, mi2), mi1, mi2, mi12)
    # Model {X1 Y}{X2 Y}: X1 and X2 independent given Y, so S_12 = S_1y S_yy^-1 S_y2.
    ci = cov.copy()
    s1, s2 = slice(1, 1 + n_x1), slice(1 + n_x1, None)
    ci[s1, s2] = np.outer(cov[s1, 0], cov[0, s2]) / cov[0, 0]
    ci[s2, s1] = ci[s1, s2].T
    mi12_ci = _mutual_informations(ci, n_x1)[2]
    return atoms_from_mi(max(0.0, mi1 + mi2 - mi12, mi1 + mi2 - mi12_ci), mi1, mi2, mi12)


def pid_from_covariance(
    cov: object, *, n_x1: int, measure: Literal["mmi", "dep"] = "mmi"
) -> PIDResult:
    """Gaussian PID (nats) from the covariance of (Y, X1, X2).

    cov: (1 + d1 + d2, 1 + d1 + d2), variables ordered target first, then the ``n_x1``
    = d1 columns of X1, then those of X2. ``measure``: "mmi" (Barrett 2015) or "dep"
    (Kay & Ince 2018).
    """
    arr = np.asarray(cov, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or not np.allclose(arr, arr.T):
        raise ConfigError(f"cov has shape {arr.shape}; expected a symmetric square matrix")
    if not 1 <= n_x1 <= arr.shape[0] - 2:
        raise ConfigError(
            f"n_x1={n_x1} must be between 1 and {arr.shape[0] - 2} for a {arr.shape[0]}x"
            f"{arr.shape[0]} covariance (target first, then X1, then at least one X2 column)"
        )
    if measure not in ("mmi", "dep"):
        raise ConfigError(f"measure={measure!r} is not known; choose 'mmi' or 'dep'")
    atoms = _atoms_from_cov(arr, n_x1, measure)
    name = GaussianMMI.name if measure == "mmi" else GaussianDep.name
    return PIDResult(*(float(a) for a in atoms), method=name, n=None)


class _GaussianPID(ResamplingPIDMeasure):
    measure: Literal["mmi", "dep"]

    def _atoms(self, y: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        cov = np.cov(np.column_stack([y, x1, x2]), rowvar=False)
        return _atoms_from_cov(cov, x1.shape[1], self.measure)


@register_measure
class GaussianMMI(_GaussianPID):
    """Minimum-mutual-information PID of jointly Gaussian variables (Barrett 2015)."""

    name = "gaussian"
    measure = "mmi"


@register_measure
class GaussianDep(_GaussianPID):
    """Dependency-constraint PID I_dep of jointly Gaussian variables (Kay & Ince 2018)."""

    name = "gaussian_dep"
    measure = "dep"
