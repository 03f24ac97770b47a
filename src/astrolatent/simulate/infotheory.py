"""Information-theory toys with analytic truth: MI tasks and canonical Gaussian PID cases.

MI tasks (:data:`MI_TASKS`, :func:`mi_task`) follow the families of the benchmark of
Czyz et al. 2023 ("Beyond Normal", NeurIPS), implemented here from their definitions:

- ``transformed normal``: a bivariate normal with correlation rho, each variable passed
  through the same monotone map (half-cube x|x|^(1/2), asinh, the normal CDF or the
  "wiggly" x + 0.4 sin x + 0.2 sin(1.7 x + 1)); MI = -1/2 ln(1 - rho^2), since monotone
  maps of each variable do not change it.
- ``additive uniform``: X ~ U(0, 1), Y = X + N with N ~ U(-eps, eps), eps <= 1/2;
  MI = h(Y) - h(N) = eps - ln(2 eps) (Y's density is a trapezoid with ramps of width 2 eps).
- ``Student-t``: (X, Y) multivariate Student-t with ``dof`` degrees of freedom and
  dispersion matrix Sigma (identity by default: uncorrelated, yet dependent through the
  shared scale). MI = I_Gauss(Sigma) + A(dx) + A(dy) - A(dx + dy) with
  A(d) = ln Gamma(nu/2) - ln Gamma((nu+d)/2) + (nu+d)/2 [psi((nu+d)/2) - psi(nu/2)],
  from the entropy of the multivariate t.
- ``dense`` Gaussian: all dx + dy variables equicorrelated with rho.
- ``sparse`` ("2-pair") Gaussian: X_i and Y_i correlated with rho for i < n_pairs, every
  other pair independent; MI = -n_pairs/2 ln(1 - rho^2).
- products (:class:`ProductTask`, not a family of the paper): two independent tasks side
  by side, X = (X1, X2) and Y = (Y1, Y2); MI = I(X1;Y1) + I(X2;Y2). With a Student-t
  piece they are heavy-tailed without being a multivariate t (each piece has its own
  scale), and with an additive-uniform piece non-elliptical in several dimensions.

Canonical PID cases (:data:`PID_CASES`, :func:`pid_case`): target M ~ N(0, 1) and two
sources built from it (Barrett 2015; the "canonical examples" of Venkatesh & Schamberg),
with the truth of the minimum-MI PID from the covariance
(:func:`astrolatent.analysis.pid.pid_from_covariance`). Sources may get extra columns
(independent noise, rotated together with the informative one, which keeps the truth) and
monotone non-linear transforms of the target and of every column (which keep it too).
All MIs are in nats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln, ndtr
from scipy.stats import ortho_group

from astrolatent.errors import ConfigError

#: Monotone maps of the transformed-normal tasks, by name.
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x,
    "half_cube": lambda x: x * np.sqrt(np.abs(x)),
    "asinh": np.arcsinh,
    "normal_cdf": ndtr,
    "wiggly": lambda x: x + 0.4 * np.sin(x) + 0.2 * np.sin(1.7 * x + 1.0),
}


def _gaussian_mi(cov: np.ndarray, dim_x: int) -> float:
    _, joint = np.linalg.slogdet(cov)
    _, lx = np.linalg.slogdet(cov[:dim_x, :dim_x])
    _, ly = np.linalg.slogdet(cov[dim_x:, dim_x:])
    return 0.5 * (lx + ly - joint)


def _student_entropy_term(dof: float, d: int) -> float:
    half, halfd = dof / 2.0, (dof + d) / 2.0
    return float(gammaln(half) - gammaln(halfd) + halfd * (digamma(halfd) - digamma(half)))


Family = Literal["transformed_normal", "additive_uniform", "student_t", "dense", "sparse"]
FAMILIES: tuple[str, ...] = get_args(Family)


@dataclass(frozen=True)
class MITask:
    """A distribution of (X, Y) with known I(X; Y) in nats.

    family: "transformed_normal", "additive_uniform", "student_t", "dense" or "sparse".
    dim_x, dim_y: dimensions of X and Y. Parameters: ``rho`` (correlation; for Student-t
    the correlation of the sparse pairs of the dispersion, 0 for identity), ``transform``
    (a name of :data:`TRANSFORMS`), ``epsilon`` (half-width of the uniform noise),
    ``dof`` (Student-t degrees of freedom), ``n_pairs`` (correlated pairs of ``sparse``).
    """

    family: Family
    dim_x: int = 1
    dim_y: int = 1
    rho: float = 0.0
    transform: str = "identity"
    epsilon: float = 0.1
    dof: float = 1.0
    n_pairs: int = 2

    @property
    def name(self) -> str:
        """A short label, e.g. ``student_t-2x2-dof1``."""
        dims = f"{self.dim_x}x{self.dim_y}"
        extra = {
            "transformed_normal": f"{self.transform}-rho{self.rho:g}",
            "additive_uniform": f"eps{self.epsilon:g}",
            "student_t": f"dof{self.dof:g}"
            + (f"-rho{self.rho:g}" if self.rho else "")
            + (f"-{self.transform}" if self.transform != "identity" else ""),
            "dense": f"rho{self.rho:g}",
            "sparse": f"{self.n_pairs}pair-rho{self.rho:g}",
        }[self.family]
        return f"{self.family}-{dims}-{extra}"

    def _covariance(self) -> np.ndarray:
        d = self.dim_x + self.dim_y
        if self.family == "dense":
            return np.full((d, d), self.rho) + (1.0 - self.rho) * np.eye(d)
        cov = np.eye(d)
        if self.family == "sparse" or self.family == "student_t":
            for i in range(min(self.n_pairs, self.dim_x, self.dim_y) if self.rho else 0):
                cov[i, self.dim_x + i] = cov[self.dim_x + i, i] = self.rho
        elif self.family == "transformed_normal":
            cov[0, 1] = cov[1, 0] = self.rho
        return cov

    def _check(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"family={self.family!r} is not known; choose one of {FAMILIES}")
        if self.family == "sparse" and not 1 <= self.n_pairs <= min(self.dim_x, self.dim_y):
            raise ConfigError(
                f"n_pairs={self.n_pairs} must be between 1 and min(dim_x, dim_y) = "
                f"{min(self.dim_x, self.dim_y)}"
            )
        if self.family in ("transformed_normal", "additive_uniform") and (
            self.dim_x != 1 or self.dim_y != 1
        ):
            raise ConfigError(f"family={self.family!r} is one-dimensional: dim_x = dim_y = 1")
        if self.family == "additive_uniform" and not 0 < self.epsilon <= 0.5:
            raise ConfigError(f"epsilon={self.epsilon} must be in (0, 0.5]")
        if self.family == "student_t" and self.dof <= 0:
            raise ConfigError(f"dof={self.dof} must be positive")
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"transform={self.transform!r} is not one of {sorted(TRANSFORMS)}")
        if self.family != "additive_uniform" and np.linalg.eigvalsh(self._covariance())[0] <= 0:
            raise ConfigError(f"rho={self.rho} does not give a positive-definite covariance")

    @property
    def mi(self) -> float:
        """The true I(X; Y) in nats."""
        self._check()
        if self.family == "additive_uniform":
            return self.epsilon - float(np.log(2.0 * self.epsilon))
        mi = _gaussian_mi(self._covariance(), self.dim_x)
        if self.family == "student_t":
            a = _student_entropy_term
            mi += (
                a(self.dof, self.dim_x)
                + a(self.dof, self.dim_y)
                - a(self.dof, self.dim_x + self.dim_y)
            )
        return mi

    def sample(
        self, n: int, random_state: int | np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """n draws: x of shape (n, dim_x) and y of shape (n, dim_y)."""
        self._check()
        rng = np.random.default_rng(random_state)
        if self.family == "additive_uniform":
            x = rng.uniform(0.0, 1.0, (n, 1))
            return x, x + rng.uniform(-self.epsilon, self.epsilon, (n, 1))
        cov = self._covariance()
        z = rng.multivariate_normal(np.zeros(len(cov)), cov, size=n)
        if self.family == "student_t":
            z /= np.sqrt(rng.chisquare(self.dof, size=(n, 1)) / self.dof)
        z = TRANSFORMS[self.transform](z)
        return z[:, : self.dim_x], z[:, self.dim_x :]


def mi_task(family: str, **params: float | int | str) -> MITask:
    """An :class:`MITask` of ``family`` with ``params`` (see its fields)."""
    unknown = sorted(set(params) - set(MITask.__dataclass_fields__) - {"family"})
    if unknown:
        raise ConfigError(f"{', '.join(unknown)}: not a parameter of MITask")
    task = MITask(family, **params)  # type: ignore[arg-type]
    task._check()
    return task


@dataclass(frozen=True)
class ProductTask:
    """Two independent :class:`MITask` side by side: X = (X1, X2), Y = (Y1, Y2), in nats."""

    first: MITask
    second: MITask

    @property
    def name(self) -> str:
        """e.g. ``product(student_t-1x1-dof1,transformed_normal-1x1-identity-rho0.7)``."""
        return f"product({self.first.name},{self.second.name})"

    @property
    def mi(self) -> float:
        """The true I(X; Y) in nats: the sum of the pieces' MIs."""
        return self.first.mi + self.second.mi

    def sample(
        self, n: int, random_state: int | np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """n draws: x (n, first.dim_x + second.dim_x) and y (n, first.dim_y + second.dim_y)."""
        rng = np.random.default_rng(random_state)
        (x1, y1), (x2, y2) = self.first.sample(n, rng), self.second.sample(n, rng)
        return np.hstack([x1, x2]), np.hstack([y1, y2])


#: The tasks the ``auto`` MI estimator was tuned on (n = 5,000) ...
TUNING_TASKS: tuple[MITask, ...] = (
    MITask("transformed_normal", rho=0.75, transform="half_cube"),
    MITask("transformed_normal", rho=0.75, transform="wiggly"),
    MITask("additive_uniform", epsilon=0.1),
    MITask("student_t", dim_x=2, dim_y=2, dof=1.0),
    MITask("dense", dim_x=3, dim_y=3, rho=0.5),
    MITask("sparse", dim_x=5, dim_y=5, rho=0.8),
)
#: ... and the held-out tasks and parameters it is checked on, never used to tune it.
HELD_OUT_TASKS: tuple[MITask, ...] = (
    MITask("transformed_normal", rho=0.5, transform="asinh"),
    MITask("transformed_normal", rho=0.9, transform="normal_cdf"),
    MITask("additive_uniform", epsilon=0.3),
    MITask("student_t", dim_x=1, dim_y=1, dof=1.0),
    MITask("student_t", dim_x=3, dim_y=3, dof=2.0),
    MITask("student_t", dim_x=2, dim_y=2, dof=3.0, rho=0.6, n_pairs=1),
    MITask("dense", dim_x=2, dim_y=2, rho=0.5),
    MITask("dense", dim_x=5, dim_y=5, rho=0.3),
    MITask("sparse", dim_x=3, dim_y=3, rho=0.8),
    MITask("sparse", dim_x=5, dim_y=5, rho=0.6, transform="half_cube"),
)

#: Held-out tasks added after the t-copula step of ``auto`` was chosen (on the tasks above),
#: to check it on what it was not built for: other Student-t shapes, a transformed one,
#: heavy-tailed products that are not a multivariate t, and a non-elliptical product.
#: The first seven led to a nu-agreement check between X and Y; the next three, run after
#: it, showed that check blind to products mixed inside X and Y and led to the pairwise
#: check of the final rule; the last three were run only once that rule was fixed.
NEW_HELD_OUT_TASKS: tuple[MITask | ProductTask, ...] = (
    MITask("student_t", dim_x=4, dim_y=4, dof=3.0),
    MITask("student_t", dim_x=2, dim_y=3, dof=1.5),
    MITask("student_t", dim_x=3, dim_y=3, dof=2.0, transform="half_cube"),
    ProductTask(MITask("student_t", dof=1.0), MITask("transformed_normal", rho=0.7)),
    ProductTask(MITask("student_t", dof=1.0), MITask("student_t", dof=1.0)),
    ProductTask(
        MITask("student_t", dim_x=2, dim_y=2, dof=2.0),
        MITask("student_t", dof=5.0, rho=0.5, n_pairs=1),
    ),
    ProductTask(MITask("additive_uniform", epsilon=0.3), MITask("transformed_normal", rho=0.5)),
    ProductTask(
        MITask("student_t", dim_x=2, dim_y=2, dof=1.0), MITask("dense", dim_x=2, dim_y=2, rho=0.5)
    ),
    MITask("student_t", dim_x=3, dim_y=2, dof=4.0, rho=0.5, transform="asinh"),
    ProductTask(MITask("student_t", dof=2.0), MITask("student_t", dim_x=2, dim_y=2, dof=2.0)),
    MITask("student_t", dim_x=5, dim_y=5, dof=5.0, rho=0.4, n_pairs=3),
    ProductTask(MITask("sparse", dim_x=3, dim_y=3, rho=0.7), MITask("student_t", dof=3.0, rho=0.3)),
    MITask("student_t", dim_x=2, dim_y=2, dof=0.7, transform="wiggly"),
)

# ---------------------------------------------------------------------------------------
# canonical Gaussian PID cases
# ---------------------------------------------------------------------------------------
#: Covariances of (M, X1, X2) of the canonical cases, by name.
PID_CASES: dict[str, np.ndarray] = {
    # X1 = M + N1, X2 = M + N2, independent unit noise
    "redundant": np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 1.0], [1.0, 1.0, 2.0]]),
    # the same with noise correlation 0.5
    "correlated_noise": np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 1.5], [1.0, 1.5, 2.0]]),
    # Markov chain M -> X1 -> X2: X2 = X1 + N
    "markov": np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 2.0], [1.0, 2.0, 3.0]]),
}
#: Monotone maps applied by ``transform=True``: the target, then source columns in turn.
PID_TARGET_TRANSFORM = np.exp
PID_COLUMN_TRANSFORMS = (lambda x: x**3, np.sinh, TRANSFORMS["normal_cdf"])


def pid_case(
    name: str,
    n: int,
    *,
    dim1: int = 1,
    dim2: int = 1,
    transform: bool = False,
    random_state: int | np.random.Generator | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Samples of a canonical PID case and the covariance of its Gaussian form.

    Returns a table with n rows and columns ``y``, ``a0..`` (source X1, dim1 columns) and
    ``b0..`` (X2, dim2 columns), and the (3, 3) covariance of (M, X1, X2) whose minimum-MI
    PID (``pid_from_covariance(cov, n_x1=1)``) is the truth. Extra columns: the source and
    dim - 1 independent standard normals, rotated by a random orthogonal matrix (the
    information is unchanged). ``transform``: y = exp(M) and each column through one of
    x^3, sinh, the normal CDF in turn (monotone: the atoms are unchanged).
    """
    if name not in PID_CASES:
        raise ConfigError(f"case={name!r} is not known; choose one of {sorted(PID_CASES)}")
    if dim1 < 1 or dim2 < 1:
        raise ConfigError(f"dim1={dim1} and dim2={dim2} must be at least 1")
    rng = np.random.default_rng(random_state)
    cov = PID_CASES[name]
    m, s1, s2 = rng.multivariate_normal(np.zeros(3), cov, size=n).T
    sources = []
    for source, var, dim in ((s1, cov[1, 1], dim1), (s2, cov[2, 2], dim2)):
        block = np.column_stack([source / np.sqrt(var), rng.standard_normal((n, dim - 1))])
        sources.append(block @ ortho_group.rvs(dim, random_state=rng) if dim > 1 else block)
    columns = {"y": PID_TARGET_TRANSFORM(m) if transform else m}
    k = 0
    for prefix, block in zip("ab", sources, strict=True):
        for j in range(block.shape[1]):
            col = block[:, j]
            columns[f"{prefix}{j}"] = (
                PID_COLUMN_TRANSFORMS[k % len(PID_COLUMN_TRANSFORMS)](col) if transform else col
            )
            k += 1
    return pd.DataFrame(columns), cov
