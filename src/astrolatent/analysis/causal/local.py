"""Local conditional-dependence tests in a latent space (Zhang et al. 2025, section B3).

An estimator is read as ``X_in -> S -> Y``. Objects with nearby latents S received nearly
the same information from the input, so within a small neighbourhood of S, any remaining
dependence between the target Y and a query variable X_q is information that reaches Y
outside the S path. For each evaluated object:

1. take its ``n_neighbors`` nearest reference (training) objects in the standardised S
   (never the object itself);
2. Pearson ``r`` between Y and X_q over the neighbourhood, a permutation null (X_q shuffled
   within the neighbourhood ``n_permutations`` times) and a two-sided p-value
   ``(1 + #{|r_perm| >= |r|}) / (1 + n_permutations)``;
3. the predictive efficiency ``PE = 1 - Var(Y - quadfit(Y | X_q)) / Var(Y)`` (the share of
   the neighbourhood's Y variance a quadratic in X_q explains; unlike ``r`` it catches a
   non-monotonic dependence);
4. with conditioning variables X_c: Y and X_q are first replaced by their residuals from
   quadratic fits on X_c (within the neighbourhood), and steps 2-3 repeat on the residuals.

A dependence that survives conditioning on S says X_q carries information about Y outside
S; one that vanishes once X_c is conditioned on too is explained by X_c.

Aggregation over objects: the distributions of ``r`` and of one permutation draw per
object (the null), the fraction of objects significant at ``alpha`` (raw, and after the
Benjamini-Hochberg procedure across objects), and a global binomial test of the number of
significant objects against ``alpha``. Neighbourhoods overlap, so objects are not
independent: the binomial p-value is optimistic and is a summary, not an exact test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.neighbors import NearestNeighbors

from astrolatent.analysis.mi.base import as_samples
from astrolatent.errors import ConfigError

log = logging.getLogger(__name__)

_RIDGE = 1e-8


def quadratic_residuals(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Residuals of per-row least-squares fits of ``y`` on a quadratic in each column of ``x``.

    Args:
        y: ``(m, k)`` values, or ``(m, k, t)`` for ``t`` responses fitted at once.
        x: ``(m, k, c)`` regressors (``c`` conditioning variables; a quadratic in each, no
            cross terms). Each row (neighbourhood) is fitted separately.

    Returns:
        residuals with the shape of ``y``. A constant regressor contributes nothing (the
        fit falls back to the row mean).
    """
    squeeze = y.ndim == 2
    if squeeze:
        y = y[..., None]
    centred = x - x.mean(axis=1, keepdims=True)
    scale = centred.std(axis=1, keepdims=True)
    xs = np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0)
    design = np.concatenate([np.ones((*x.shape[:2], 1)), xs, xs**2 - 1.0], axis=2)
    gram = np.einsum("mkp,mkq->mpq", design, design)
    gram += _RIDGE * x.shape[1] * np.eye(design.shape[2])
    coef = np.linalg.solve(gram, np.einsum("mkp,mkt->mpt", design, y))
    residual = y - np.einsum("mkp,mpt->mkt", design, coef)
    return residual[..., 0] if squeeze else residual


def _neighbourhood_tests(
    y: np.ndarray, x: np.ndarray, *, n_permutations: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """r, one null draw, p-value and PE for neighbourhoods ``y``, ``x`` of shape ``(m, k)``."""
    yc = y - y.mean(axis=1, keepdims=True)
    xc = x - x.mean(axis=1, keepdims=True)
    norm = np.sqrt((yc**2).sum(axis=1) * (xc**2).sum(axis=1))
    valid = norm > 0
    safe = np.where(valid, norm, 1.0)
    r = np.where(valid, (yc * xc).sum(axis=1) / safe, 0.0)
    m, k = x.shape
    # one set of permutations shared by the objects of a call: each object's null is
    # still a uniformly random permutation of its own neighbourhood
    exceed = np.zeros(m)
    null = np.zeros(m)
    threshold = np.abs(r) - 1e-12
    for j in range(n_permutations):
        r_perm = (yc * xc[:, rng.permutation(k)]).sum(axis=1) / safe
        exceed += np.abs(r_perm) >= threshold
        if j == 0:
            null = r_perm
    p = np.where(valid, (1 + exceed) / (1 + n_permutations), 1.0)
    var_y = (yc**2).mean(axis=1)
    resid = quadratic_residuals(y, x[..., None])
    pe = np.where(var_y > 0, 1 - resid.var(axis=1) / np.where(var_y > 0, var_y, 1.0), 0.0)
    return {"r": r, "r_null": np.where(valid, null, 0.0), "p": p, "pe": pe}


def aggregate(
    r: np.ndarray, r_null: np.ndarray, p: np.ndarray, pe: np.ndarray, *, alpha: float
) -> dict:
    """Summary over objects of one test (see the module docstring)."""
    m = r.size
    q = stats.false_discovery_control(p)
    n_sig = int((p < alpha).sum())
    return {
        "n": int(m),
        "mean_r": float(r.mean()),
        "median_r": float(np.median(r)),
        "std_r": float(r.std()),
        "mean_r_null": float(r_null.mean()),
        "std_r_null": float(r_null.std()),
        "mean_abs_r": float(np.abs(r).mean()),
        "mean_abs_r_null": float(np.abs(r_null).mean()),
        "mean_pe": float(pe.mean()),
        "fraction_significant": n_sig / m,
        "fraction_significant_bh": float((q < alpha).mean()),
        "binomial_p": float(stats.binomtest(n_sig, m, alpha, alternative="greater").pvalue),
    }


@dataclass
class LocalTestResult:
    """Per-object results (``objects``) and their summaries (``summary``) of
    :func:`local_tests`.

    ``objects`` has one row per evaluated object: ``index`` (position in the evaluated
    arrays), ``y``, ``query``, and per test ``<prefix>r``, ``<prefix>r_null``,
    ``<prefix>p``, ``<prefix>q`` (Benjamini-Hochberg) and ``<prefix>pe``, with prefix
    ``""`` for the test given S alone and ``"cond_"`` for the test given S and the
    conditioning variables. ``summary`` maps ``"given_s"`` (and ``"given_s_and_condition"``)
    to :func:`aggregate`'s dictionaries.
    """

    objects: pd.DataFrame
    summary: dict[str, dict]
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.settings, "tests": self.summary}


def _paired(values: object, name: str, n: int) -> np.ndarray:
    """``values`` as finite (n, d) samples paired with the n latents."""
    arr = as_samples(values, name)
    if len(arr) != n:
        raise ConfigError(f"{name} has {len(arr)} rows but latents have {n}; pass paired samples")
    return arr


def _mask(mask: object, name: str, n: int) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype != bool or arr.shape != (n,):
        raise ConfigError(
            f"{name} must be a boolean mask of the {n} objects; got dtype {arr.dtype}, shape {arr.shape}"
        )
    return arr


def summary_rows(payload: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the tests' summaries, from :meth:`LocalTestResult.to_dict`
    (or a ``local.json``): one row per test, as the CLI and the report print them."""
    headers = ["test", "mean r", "mean null r", "mean PE", "p<alpha", "BH q<alpha", "binomial p"]
    condition = payload.get("condition") or []
    rows = []
    for name, agg in payload.get("tests", {}).items():
        label = "given S" if name == "given_s" else f"given S, {'+'.join(condition)}"
        rows.append(
            [
                label,
                f"{agg['mean_r']:+.3f}",
                f"{agg['mean_r_null']:+.3f}",
                f"{agg['mean_pe']:.3f}",
                f"{agg['fraction_significant']:.3f}",
                f"{agg['fraction_significant_bh']:.3f}",
                f"{agg['binomial_p']:.2g}",
            ]
        )
    return headers, rows


def local_tests(
    latents: np.ndarray,
    y: np.ndarray,
    query: np.ndarray,
    *,
    condition: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    evaluate: np.ndarray | None = None,
    n_neighbors: int = 100,
    n_permutations: int = 200,
    alpha: float = 0.05,
    random_state: int = 0,
    progress: Callable[[int], None] | None = None,
) -> LocalTestResult:
    """Local tests of Y against a query variable in neighbourhoods of a latent space.

    Args:
        latents: ``(n, d)`` latents S of the objects (``d`` dims), all with known ``y``,
            ``query`` and ``condition``.
        y: ``(n,)`` target values.
        query: ``(n,)`` the query variable X_q.
        condition: ``(n,)`` or ``(n, c)`` conditioning variables X_c, or None.
        reference: boolean mask ``(n,)`` of the objects that make up the neighbourhoods
            (e.g. the training objects); None: all.
        evaluate: boolean mask ``(n,)`` of the objects to test (e.g. the held-out ones);
            None: all. An evaluated object is never its own neighbour.
        n_neighbors: neighbourhood size k.
        n_permutations: permutations of the null per object.
        alpha: significance level.
        random_state: seed of the permutations.
        progress: called with the number of objects done after each chunk.

    Returns:
        a :class:`LocalTestResult`.
    """
    latents = as_samples(latents, "latents")
    n = len(latents)
    y, query = (_paired(v, name, n).ravel() for v, name in ((y, "y"), (query, "query")))
    if condition is not None:
        condition = _paired(condition, "condition", n)
    reference, targets = (
        np.arange(n) if mask is None else np.flatnonzero(_mask(mask, name, n))
        for mask, name in ((reference, "reference"), (evaluate, "evaluate"))
    )
    _check_options(n_neighbors, n_permutations, alpha, n_reference=len(reference))
    if len(targets) == 0:
        raise ConfigError("no objects to evaluate")
    out = _neighbourhoods(
        latents,
        y,
        query,
        condition,
        reference,
        targets,
        n_neighbors=n_neighbors,
        n_permutations=n_permutations,
        rng=np.random.default_rng(random_state),
        progress=progress,
    )
    summary = {}
    for prefix, name in (("", "given_s"), ("cond_", "given_s_and_condition")):
        if prefix + "r" not in out:
            continue
        summary[name] = aggregate(
            out[prefix + "r"],
            out[prefix + "r_null"],
            out[prefix + "p"],
            out[prefix + "pe"],
            alpha=alpha,
        )
        out[prefix + "q"] = stats.false_discovery_control(out[prefix + "p"])
    settings = {
        "n_neighbors": n_neighbors,
        "n_permutations": n_permutations,
        "alpha": alpha,
        "random_state": random_state,
        "n_reference": len(reference),
        "n_evaluated": len(targets),
    }
    order = ["index", "y", "query"] + [
        prefix + key
        for prefix in ("", "cond_")
        for key in ("r", "r_null", "p", "q", "pe")
        if prefix + key in out
    ]
    return LocalTestResult(pd.DataFrame(out)[order], summary, settings)


def _check_options(
    n_neighbors: int, n_permutations: int, alpha: float, *, n_reference: int
) -> None:
    if n_neighbors < 5:
        raise ConfigError(f"n_neighbors={n_neighbors} must be at least 5")
    if n_permutations < 1:
        raise ConfigError(f"n_permutations={n_permutations} must be at least 1")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha={alpha} must be between 0 and 1")
    if 1 / (1 + n_permutations) >= alpha:
        raise ConfigError(
            f"n_permutations={n_permutations} can never give p < alpha={alpha} (the smallest "
            f"p-value is 1/{1 + n_permutations}); use at least {int(np.ceil(1 / alpha))} permutations"
        )
    if n_reference < n_neighbors + 1:
        raise ConfigError(
            f"n_neighbors={n_neighbors} needs at least {n_neighbors + 1} reference objects, "
            f"have {n_reference}; lower n_neighbors"
        )


def _neighbourhoods(
    latents: np.ndarray,
    y: np.ndarray,
    query: np.ndarray,
    condition: np.ndarray | None,
    reference: np.ndarray,
    targets: np.ndarray,
    *,
    n_neighbors: int,
    n_permutations: int,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None,
) -> dict[str, np.ndarray]:
    """Per evaluated object: the tests in its neighbourhood of standardised latents, in
    chunks of objects (columns ``r``, ``r_null``, ``p``, ``pe``, and ``cond_*`` with a
    condition)."""
    mean, std = latents[reference].mean(axis=0), latents[reference].std(axis=0)
    scaled = (latents - mean) / np.where(std > 0, std, 1.0)
    index = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(scaled[reference])
    columns: dict[str, list[np.ndarray]] = {}
    chunk = 2000
    for start in range(0, len(targets), chunk):
        rows = targets[start : start + chunk]
        neighbours = _drop_self(
            reference[index.kneighbors(scaled[rows], return_distance=False)], rows
        )
        yn, xn = y[neighbours], query[neighbours]
        parts = {"": _neighbourhood_tests(yn, xn, n_permutations=n_permutations, rng=rng)}
        if condition is not None:
            both = quadratic_residuals(np.stack([yn, xn], axis=2), condition[neighbours])
            parts["cond_"] = _neighbourhood_tests(
                both[..., 0], both[..., 1], n_permutations=n_permutations, rng=rng
            )
        for prefix, values in parts.items():
            for key, value in values.items():
                columns.setdefault(prefix + key, []).append(value)
        if progress is not None:
            progress(len(rows))
    out = {"index": targets, "y": y[targets], "query": query[targets]}
    out.update({key: np.concatenate(parts) for key, parts in columns.items()})
    return out


def _drop_self(neighbours: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Remove each row's own index from its ``k + 1`` neighbours, or the farthest one when
    the object is not among them (not a reference object, or pushed out by duplicates)."""
    is_self = neighbours == rows[:, None]
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    k = neighbours.shape[1] - 1
    return neighbours[~is_self].reshape(len(rows), k)


__all__ = [
    "LocalTestResult",
    "aggregate",
    "local_tests",
    "quadratic_residuals",
    "summary_rows",
]
