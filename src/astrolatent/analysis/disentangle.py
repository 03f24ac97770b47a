"""Disentanglement scores of a latent code against known continuous factors.

- MIG (mutual information gap, Chen et al. 2018): for each label, the gap between the two
  largest MI(z_d; label) over latent dimensions, divided by the label's entropy, averaged
  over labels. MI is the continuous KSG estimate (nats, clipped at 0). A continuous label
  has no finite entropy, so we divide by the entropy of the label discretised into
  ``n_bins`` equal-frequency bins (ln(n_bins) for a label without ties). Because the KSG MI
  is not bounded by that entropy, MIG can exceed 1 for a code that pins a label down more
  finely than 1/n_bins of its range; values are comparable between codes for the same
  ``n_bins``.
- SAP (separated attribute predictability, Kumar et al. 2018): for each label, the gap
  between the two largest R^2 of per-dimension quadratic regressions label ~ a + b z_d +
  c z_d^2 (quadratic so that non-monotonic relations count), averaged over labels.
- DCI (Eastwood & Williams 2018): one gradient-boosted regressor per label on all
  dimensions; its impurity importances R (D, K) give disentanglement (1 - entropy base K
  of each dimension's importance over labels, weighted by the dimension's share of total
  importance), completeness (1 - entropy base D of each label's importance over
  dimensions, averaged over labels) and informativeness (held-out R^2, averaged over
  labels; higher is better). Disentanglement is NaN for a single label.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import r2_score

from astrolatent.analysis.mi.base import as_samples
from astrolatent.analysis.mi.ksg import ksg_mi_columns
from astrolatent.errors import ConfigError


def _binned_entropy(label: np.ndarray, n_bins: int) -> float:
    """Entropy (nats) of ``label`` (n,) in ``n_bins`` equal-frequency bins; tied values share a bin."""
    bins = np.minimum(((rankdata(label, method="min") - 1) * n_bins) // label.size, n_bins - 1)
    p = np.bincount(bins.astype(np.intp), minlength=n_bins) / label.size
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def _top_gap(values: np.ndarray) -> np.ndarray:
    """Largest minus second-largest along axis 0 of values (D, K) -> (K,)."""
    top = np.sort(values, axis=0)
    return top[-1] - top[-2]


def _normalised_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of the distributions p (m, base) in units of log(base)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1) / np.log(base)


def mutual_information_gap(
    latents: np.ndarray,
    labels: np.ndarray,
    *,
    n_neighbors: int,
    n_bins: int,
    random_state: int | None,
) -> float:
    """MIG of latents (n, D) for labels (n, K); see the module notes."""
    mi = np.column_stack(
        [
            ksg_mi_columns(
                latents, labels[:, k], n_neighbors=n_neighbors, random_state=random_state
            )
            for k in range(labels.shape[1])
        ]
    )
    entropy = np.array([_binned_entropy(labels[:, k], n_bins) for k in range(labels.shape[1])])
    return float(np.mean(_top_gap(np.maximum(mi, 0.0)) / entropy))


def separated_attribute_predictability(latents: np.ndarray, labels: np.ndarray) -> float:
    """SAP of latents (n, D) for labels (n, K) with quadratic per-dimension fits."""
    centred = labels - labels.mean(axis=0)
    total = np.sum(centred**2, axis=0)
    r2 = np.empty((latents.shape[1], labels.shape[1]))
    for d in range(latents.shape[1]):
        z = latents[:, d]
        z = (z - z.mean()) / (z.std() or 1.0)
        design = np.column_stack([np.ones_like(z), z, z**2])
        coef, *_ = np.linalg.lstsq(design, labels, rcond=None)
        r2[d] = 1.0 - np.sum((labels - design @ coef) ** 2, axis=0) / total
    return float(np.mean(_top_gap(r2)))


def dci_scores(
    latents: np.ndarray, labels: np.ndarray, *, test_fraction: float, random_state: int | None
) -> dict[str, float]:
    """DCI disentanglement, completeness, informativeness of latents (n, D) for labels (n, K)."""
    n, n_dims = latents.shape
    n_labels = labels.shape[1]
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)
    n_test = max(1, round(test_fraction * n))
    test, train = order[:n_test], order[n_test:]
    importance = np.zeros((n_dims, n_labels))
    r2 = np.empty(n_labels)
    for k in range(n_labels):
        model = GradientBoostingRegressor(
            n_estimators=50, max_depth=3, random_state=int(rng.integers(2**32 - 1))
        ).fit(latents[train], labels[train, k])
        importance[:, k] = model.feature_importances_
        r2[k] = r2_score(labels[test, k], model.predict(latents[test]))

    per_dim = importance.sum(axis=1)
    if n_labels > 1 and per_dim.sum() > 0:
        used = per_dim > 0
        p = importance[used] / per_dim[used, None]
        weights = per_dim[used] / per_dim.sum()
        disentanglement = float(np.sum(weights * (1.0 - _normalised_entropy(p, n_labels))))
    else:
        disentanglement = float("nan")
    per_label = importance.sum(axis=0)
    has = per_label > 0
    p = (importance[:, has] / per_label[has]).T
    completeness = float(np.mean(1.0 - _normalised_entropy(p, n_dims))) if has.any() else 0.0
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness": float(np.mean(r2)),
    }


def disentanglement_scores(
    latents: object,
    labels: object,
    *,
    n_neighbors: int = 3,
    n_bins: int = 20,
    max_samples: int = 10_000,
    test_fraction: float = 1 / 3,
    random_state: int | None = None,
) -> dict[str, object]:
    """MIG, SAP and DCI of a latent code against continuous labels.

    Parameters
    ----------
    latents : array (n, D)
        Latent codes (e.g. means), D >= 2.
    labels : array (n, K) or (n,)
        Continuous ground-truth factors.
    n_neighbors : int
        k of the KSG mutual information used by MIG.
    n_bins : int
        Equal-frequency bins of the label entropy that normalises MIG.
    max_samples : int
        DCI fits its regressors on at most this many random rows (gradient boosting is slow).
    test_fraction : float
        Share of the DCI rows held out for informativeness.
    random_state : int or None
        Seeds the KSG jitter, the DCI subsample and split, and the regressors.

    Returns
    -------
    dict
        ``{"mig": float, "sap": float, "dci": {"disentanglement", "completeness",
        "informativeness"}}``; MIG in units of the label entropy, SAP and informativeness
        as R^2.
    """
    latents = as_samples(latents, "latents")
    labels = as_samples(labels, "labels")
    n, n_dims = latents.shape
    if labels.shape[0] != n:
        raise ConfigError(
            f"labels have {labels.shape[0]} rows but latents have {n}; pass paired samples"
        )
    if n_dims < 2:
        raise ConfigError(f"latents have {n_dims} dimension; the gap scores need at least 2")
    if n_bins < 2:
        raise ConfigError(f"n_bins={n_bins} must be at least 2 (20 is usual)")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction={test_fraction} must be between 0 and 1 (1/3 is usual)")
    if np.any(labels.std(axis=0) == 0):
        raise ConfigError("a label is constant; drop it before scoring disentanglement")
    rng = np.random.default_rng(random_state)
    dci_rows = rng.choice(n, size=min(n, max_samples), replace=False)
    return {
        "mig": mutual_information_gap(
            latents, labels, n_neighbors=n_neighbors, n_bins=n_bins, random_state=random_state
        ),
        "sap": separated_attribute_predictability(latents, labels),
        "dci": dci_scores(
            latents[dci_rows],
            labels[dci_rows],
            test_fraction=test_fraction,
            random_state=int(rng.integers(2**32 - 1)),
        ),
    }
