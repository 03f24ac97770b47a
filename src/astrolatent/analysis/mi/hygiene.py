"""Label hygiene before an MI estimate: drop non-finite values, sentinels and far outliers.

Catalogue labels often hold NaN, inf or sentinel codes such as -9999 for "unknown"; one of
those would dominate any distance- or bin-based estimator. Clipping is ONE pass at
``sigma`` standard deviations around the mean of the values that survive the first two
steps (as in the reference study's "5-sigma clipped" labels): outliers inflate the standard
deviation, so one pass is conservative and never eats into a heavy but genuine tail the way
iterating to convergence can.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from astrolatent.errors import ConfigError

DEFAULT_SENTINELS = (-9999.0, 9999.0)


@dataclass(frozen=True)
class CleanedLabels:
    """Which rows survive label cleaning.

    mask: (n,) bool, True for rows to keep. n_used: number of kept rows. n_nonfinite,
    n_sentinel, n_clipped: rows dropped at each step (a row counts at its first failing step).
    """

    mask: np.ndarray
    n_used: int
    n_nonfinite: int
    n_sentinel: int
    n_clipped: int

    def to_dict(self) -> dict[str, int]:
        """Counts only (the mask is per row)."""
        return {
            "n_used": self.n_used,
            "n_nonfinite": self.n_nonfinite,
            "n_sentinel": self.n_sentinel,
            "n_clipped": self.n_clipped,
        }


def clean_labels(
    labels: object,
    *,
    sentinels: Sequence[float] = DEFAULT_SENTINELS,
    sigma: float | None = 5.0,
) -> CleanedLabels:
    """Mask of the rows of ``labels`` ((n,) or (n, k); all columns must pass) that are usable.

    Drops, in order: non-finite values; values equal to any of ``sentinels``; values more
    than ``sigma`` standard deviations from the column mean (one pass; ``sigma=None``
    switches clipping off).
    """
    values = np.asarray(labels, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ConfigError(f"labels have shape {np.shape(labels)}; expected (n,) or (n, k)")
    if sigma is not None and not sigma > 0:
        raise ConfigError(f"sigma={sigma} must be positive, or None to switch clipping off")

    finite = np.isfinite(values).all(axis=1)
    not_sentinel = ~np.isin(values, np.asarray(sentinels, dtype=np.float64)).any(axis=1)
    kept = finite & not_sentinel
    n_clipped = 0
    if sigma is not None and kept.any():
        centre = values[kept].mean(axis=0)
        scale = values[kept].std(axis=0)
        within = (np.abs(values - centre) <= sigma * scale).all(axis=1)
        n_clipped = int(np.count_nonzero(kept & ~within))
        kept &= within
    return CleanedLabels(
        mask=kept,
        n_used=int(kept.sum()),
        n_nonfinite=int(np.count_nonzero(~finite)),
        n_sentinel=int(np.count_nonzero(finite & ~not_sentinel)),
        n_clipped=n_clipped,
    )
