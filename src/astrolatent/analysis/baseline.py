"""What the spectra hold without the network: a PCA baseline and a supervised ceiling.

The PCA baseline projects the same spectra onto their first principal components (fitted
incrementally from the store, so the data never sit in memory at once); its scores are then
analysed exactly like the latents. The ceiling says how much of each label is recoverable
at all: a cross-validated gradient-boosting regressor on many principal components. A weak
latent-label relation next to a high ceiling means the network missed it; next to a low
ceiling, the spectra barely contain the label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import IncrementalPCA
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from astrolatent.data.store import SpectrumStore
from astrolatent.errors import ConfigError

log = logging.getLogger(__name__)


def _filled(flux: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Invalid pixels at the continuum level (1 after median normalisation), not at 0."""
    return np.where(valid, flux, 1.0).astype(np.float64)


@dataclass
class PCABaseline:
    """Principal-component scores of stored spectra."""

    scores: np.ndarray  # (n, n_components)
    explained_variance_ratio: np.ndarray  # (n_components,)


def pca_scores(
    store: SpectrumStore, rows: np.ndarray, *, n_components: int, batch_size: int = 512
) -> PCABaseline:
    """Fit an incremental PCA on ``rows`` of the store and return their scores.

    Reads ``batch_size`` spectra at a time (memory: one batch plus the components).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if n_components < 1 or n_components > min(rows.size, store.length):
        raise ConfigError(
            f"n_components={n_components} must be between 1 and {min(rows.size, store.length)}"
        )
    batch_size = max(batch_size, n_components)
    pca = IncrementalPCA(n_components=n_components)
    batches = [rows[i : i + batch_size] for i in range(0, rows.size, batch_size)]
    if (
        len(batches) > 1 and batches[-1].size < n_components
    ):  # the last batch must not be smaller than k
        batches[-2] = np.concatenate([batches[-2], batches.pop()])
    for batch in batches:
        pca.partial_fit(_filled(*store.read(batch)))
    scores = np.concatenate([pca.transform(_filled(*store.read(b))) for b in batches])
    return PCABaseline(scores=scores, explained_variance_ratio=pca.explained_variance_ratio_)


def cross_validated_prediction(
    features: np.ndarray, y: np.ndarray, *, n_splits: int = 5, random_state: int = 0
) -> np.ndarray:
    """Out-of-fold predictions ``(n,)`` of a label ``y (n,)`` from ``features (n, k)`` by a
    gradient-boosted regressor (``n_splits``-fold, seeded)."""
    if len(y) < 2 * n_splits:
        raise ConfigError(
            f"{len(y)} labelled spectra are too few for {n_splits}-fold cross-validation"
        )
    pred = np.empty(len(y))
    # One OpenMP thread, set here rather than through cross_val_predict (whose joblib
    # layer resets it): on a small busy machine the thread pool is 20-40x slower.
    with threadpool_limits(limits=1):
        for train, test in KFold(n_splits, shuffle=True, random_state=random_state).split(features):
            model = HistGradientBoostingRegressor(
                max_iter=200, learning_rate=0.1, random_state=random_state
            )
            pred[test] = model.fit(features[train], y[train]).predict(features[test])
    return pred


def label_ceiling(
    features: np.ndarray, y: np.ndarray, *, n_splits: int = 5, random_state: int = 0
) -> float:
    """Pearson r between a label and its cross-validated prediction from ``features``.

    features: (n, k), e.g. 40 principal components; y: (n,) finite label values.
    """
    pred = cross_validated_prediction(features, y, n_splits=n_splits, random_state=random_state)
    return float(np.corrcoef(pred, y)[0, 1])


def cross_validated_r2(
    features: np.ndarray, y: np.ndarray, *, n_splits: int = 5, random_state: int = 0
) -> float:
    """Cross-validated R^2 = 1 - sum (y - pred)^2 / sum (y - mean y)^2 of the regressor of
    :func:`cross_validated_prediction` (<= 0 when ``features`` say nothing about ``y``)."""
    pred = cross_validated_prediction(features, y, n_splits=n_splits, random_state=random_state)
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - np.mean(y)) ** 2))
