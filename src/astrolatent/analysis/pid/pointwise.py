"""Pointwise minimum-mutual-information decomposition (Zhang et al. 2025).

For object i with target bin b_i, a probabilistic estimator k (trained on source X1, on X2
or on both) gives the pointwise mutual information

    m_k,i = h_i - CE_k,i = ln q_k(b_i | x_k,i) - ln p(b_i)      (nats),

with p the label histogram (the prior) and q_k the estimator's predicted distribution over
the bins. The pointwise minimum-MI decomposition of object i is

    R = min(m1, m2),  U1 = m1 - R,  U2 = m2 - R,  S = m12 - max(m1, m2),

so R + U1 + U2 + S = m12. The terms are signed: negative values mean the estimator was
misinformed about that object. Means over objects (overall, per class, in bins of another
column) with bootstrap errors come from :func:`summarise`.

Averaging the pointwise minimum is biased by construction: E[min(m1, m2)] lies below
min(E m1, E m2) whenever the local terms are noisy, so two redundant copies of the target
come out as unique information with negative synergy. :func:`summarise` with
``method="mmi"`` gives the minimum-MI decomposition of the averaged terms instead,
R = min(mean m1, mean m2) (Barrett 2015's measure for a scalar target, exact on
jointly Gaussian variables). Its per-group atoms are minima of per-group means, so they
do NOT average to the overall atoms (only mean m1, m2, m12 do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from astrolatent.analysis.pid.base import ATOMS, atoms_from_mi
from astrolatent.errors import ConfigError

#: How :func:`summarise` turns per-object terms into atoms.
SUMMARIES = ("pointwise", "mmi")
_MI_COLUMNS = ("m1", "m2", "m12")


def _atoms(values: np.ndarray, method: str) -> np.ndarray:
    """Atoms of the rows ``values``: (n, 4) pointwise atoms, or (n, 3) m1, m2, m12."""
    means = values.mean(axis=0)
    if method == "pointwise":
        return means
    return atoms_from_mi(min(means[0], means[1]), *means)


def _probabilities(a: object, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ConfigError(f"{name} has shape {arr.shape}; expected (n,)")
    bad = ~((arr > 0) & (arr <= 1))
    if bad.any():
        raise ConfigError(
            f"{name} has {int(bad.sum())} values outside (0, 1] (e.g. {arr[bad][0]!r}); "
            "pass probabilities of the true bin, never exactly 0"
        )
    return arr


def pointwise_mi(prob_true_bin: object, prior_true_bin: object) -> np.ndarray:
    """Pointwise mutual information m_i = ln q_i - ln p_i in nats, shape (n,).

    prob_true_bin: (n,) the estimator's probability of each object's true bin, q(b_i | x_i).
    prior_true_bin: (n,) the prior (label-histogram) probability of that bin, p(b_i).
    """
    q = _probabilities(prob_true_bin, "prob_true_bin")
    p = _probabilities(prior_true_bin, "prior_true_bin")
    if q.shape != p.shape:
        raise ConfigError(f"prob_true_bin has {q.size} values but prior_true_bin has {p.size}")
    return np.log(q) - np.log(p)


def pointwise_decomposition(m1: object, m2: object, m12: object) -> pd.DataFrame:
    """Per-object minimum-MI decomposition, in nats.

    m1, m2, m12: (n,) pointwise MI from the estimators on X1, on X2 and on both. Returns a
    DataFrame with n rows and columns m1, m2, m12, redundancy, unique1, unique2, synergy
    (the index of ``m1`` when it is a pandas Series).
    """
    arrays = [np.asarray(m, dtype=np.float64) for m in (m1, m2, m12)]
    for arr, name in zip(arrays, ("m1", "m2", "m12"), strict=True):
        if arr.ndim != 1 or arr.shape != arrays[0].shape:
            raise ConfigError(f"{name} has shape {arr.shape}; m1, m2 and m12 must all be (n,)")
        if not np.all(np.isfinite(arr)):
            raise ConfigError(f"{name} has non-finite values; pointwise MI must be finite")
    a1, a2, a12 = arrays
    redundancy = np.minimum(a1, a2)
    return pd.DataFrame(
        {
            "m1": a1,
            "m2": a2,
            "m12": a12,
            "redundancy": redundancy,
            "unique1": a1 - redundancy,
            "unique2": a2 - redundancy,
            "synergy": a12 - np.maximum(a1, a2),
        },
        index=m1.index if isinstance(m1, pd.Series) else None,
    )


def summarise(
    decomp: pd.DataFrame,
    *,
    by: str | None = None,
    bins: int | Sequence[float] | None = None,
    method: Literal["pointwise", "mmi"] = "pointwise",
    n_bootstrap: int = 200,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Decomposition of a group of objects with bootstrap standard errors, overall or per
    group (nats).

    decomp: a DataFrame with the columns m1, m2, m12, redundancy, unique1, unique2,
    synergy (e.g. from :func:`pointwise_decomposition`, with extra columns assigned for
    grouping). method: ``"pointwise"``, the means of the pointwise atoms (needs the atom
    columns); ``"mmi"``, the minimum-MI atoms of the mean m1, m2, m12 (needs those; the
    groups' atoms do not average to the overall ones).
    by: None for one row "all"; else a column of ``decomp`` to group by: its values (e.g.
    galaxy class) or, when ``bins`` is given, its bins (an int for that many equal-width
    bins over its range, or a sequence of bin edges). Rows outside the edges are left out.
    n_bootstrap: resamples of the objects within each group (0: no errors). Errors cover
    the sampling of the objects, not the training of the estimators.

    Returns one row per non-empty group (index: "all", the group values, or the bin
    intervals) with columns n, and each atom and its ``*_err``.
    """
    if method not in SUMMARIES:
        raise ConfigError(f"method={method!r} is not known; choose one of {list(SUMMARIES)}")
    used = list(ATOMS if method == "pointwise" else _MI_COLUMNS)
    missing = [c for c in used if c not in decomp.columns]
    if missing:
        raise ConfigError(
            f"decomp lacks the column(s) {missing}; pass pointwise_decomposition's output"
        )
    if by is None:
        if bins is not None:
            raise ConfigError("bins needs a column to bin: pass by=COLUMN as well")
        groups = [("all", decomp)]
    elif by not in decomp.columns:
        raise ConfigError(f"by={by!r} is not a column of decomp; columns: {list(decomp.columns)}")
    elif bins is None:
        groups = list(decomp.groupby(by, sort=True))
    else:
        binned = pd.cut(decomp[by], bins=bins, include_lowest=True)
        groups = list(decomp.groupby(binned, sort=True, observed=True))
    if n_bootstrap < 0 or n_bootstrap == 1:
        raise ConfigError(f"n_bootstrap={n_bootstrap} must be 0 (no errors) or at least 2")
    rng = np.random.default_rng(random_state)
    rows = {}
    for key, group in groups:
        values = group[used].to_numpy(dtype=np.float64)
        n = values.shape[0]
        errors = np.full(len(ATOMS), np.nan)
        if n_bootstrap and n > 1:
            draws = [_atoms(values[rng.integers(0, n, n)], method) for _ in range(n_bootstrap)]
            errors = np.array(draws).std(axis=0, ddof=1)
        row: dict[str, float] = {"n": n}
        for atom, mean, err in zip(ATOMS, _atoms(values, method), errors, strict=True):
            row[atom] = mean
            row[f"{atom}_err"] = err
        rows[key] = row
    return pd.DataFrame.from_dict(rows, orient="index")
