"""Mutual information between latent dimensions and labels, in nats.

Estimators share one interface (:class:`MIEstimator`, ``estimate(x, y) -> float``) and are
registered by name: ``"auto"`` (the default: chosen from the data's dimension and
joint tails, see :mod:`~astrolatent.analysis.mi.copula`), ``"gaussian_copula"``
(Gaussian MI of the columns' normal scores), ``"t_copula"`` (closed-form MI of a fitted
Student-t copula), ``"ksg"`` (Kraskov k-nearest neighbours, also conditional),
``"gmm"`` (Gaussian-mixture fit) and ``"hist"`` (the plug-in 2D histogram of the reference
study). :func:`mutual_information` adds an error bar, a permutation p-value and the
informational correlation r_I; :func:`ksg_mi_columns` is the fast path for many latent
columns against one label; :func:`clean_labels` prepares catalogue labels.
"""

from astrolatent.analysis.mi.base import (
    ESTIMATORS,
    MIEstimator,
    MIResult,
    get_estimator,
    informational_correlation,
    register_estimator,
)
from astrolatent.analysis.mi.copula import (
    AutoEstimator,
    GaussianCopulaEstimator,
    TCopulaEstimator,
    gaussian_copula_mi,
    mardia_kurtosis_z,
    normal_scores,
)
from astrolatent.analysis.mi.core import mutual_information
from astrolatent.analysis.mi.gmm import GMMEstimator
from astrolatent.analysis.mi.histogram import (
    REFERENCE_BINS,
    HistogramEstimator,
    histogram_mi,
    histogram_mi_table,
    normalise_rows,
)
from astrolatent.analysis.mi.hygiene import CleanedLabels, clean_labels
from astrolatent.analysis.mi.ksg import KSGEstimator, ksg_mi_columns, ksg_total_correlation
from astrolatent.analysis.mi.tcopula import fit_t_copula, t_copula_mi

__all__ = [
    "ESTIMATORS",
    "REFERENCE_BINS",
    "AutoEstimator",
    "CleanedLabels",
    "GMMEstimator",
    "GaussianCopulaEstimator",
    "HistogramEstimator",
    "KSGEstimator",
    "MIEstimator",
    "MIResult",
    "TCopulaEstimator",
    "clean_labels",
    "fit_t_copula",
    "gaussian_copula_mi",
    "get_estimator",
    "histogram_mi",
    "histogram_mi_table",
    "informational_correlation",
    "ksg_mi_columns",
    "ksg_total_correlation",
    "mardia_kurtosis_z",
    "mutual_information",
    "normal_scores",
    "normalise_rows",
    "register_estimator",
    "t_copula_mi",
]
