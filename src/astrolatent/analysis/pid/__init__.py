"""Partial information decomposition (PID): redundancy, unique and synergistic information
two sources carry about a target, in nats.

Measures are registered by name (:data:`MEASURES`, :func:`get_measure`):

- ``"mmi"`` (the default): the minimum-MI decomposition of the averaged MIs of three
  cross-fitted classifiers of the binned target, redundancy = min(I(Y;X1), I(Y;X2)).
- ``"pointwise"``: the pointwise minimum-MI decomposition of the same classifiers
  (Zhang et al. 2025), per-object terms, signed; biased (redundancy low, unique high,
  synergy negative), kept to reproduce the study and for per-object maps.
- ``"gaussian"``: minimum-MI PID of jointly Gaussian variables (Barrett 2015).
- ``"gaussian_dep"``: dependency-constraint PID I_dep of jointly Gaussian variables
  (Kay & Ince 2018).
- ``"imin"``, ``"broja"``, ``"ccs"``: discrete measures I_min (Williams & Beer 2010),
  I_BROJA (Bertschinger et al. 2014) and I_ccs (Ince 2017) on binned columns.

:func:`decompose` runs one on columns of a table; :func:`pid_from_distribution` and
:func:`pid_from_covariance` decompose a known distribution or covariance;
:func:`pointwise_decomposition` and :func:`summarise` work on per-object pointwise MI.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pydantic import Field

from astrolatent.analysis.pid.base import (
    ATOMS,
    MEASURES,
    MIN_ROWS,
    PIDMeasure,
    PIDResult,
    ResamplingPIDMeasure,
    get_measure,
    register_measure,
    select_columns,
)
from astrolatent.analysis.pid.discrete import (
    IBroja,
    ICcs,
    IMin,
    discretise,
    joint_distribution,
    pid_from_distribution,
)
from astrolatent.analysis.pid.gaussian import (
    GaussianDep,
    GaussianMMI,
    gaussian_mi,
    pid_from_covariance,
)
from astrolatent.analysis.pid.pointwise import (
    SUMMARIES,
    pointwise_decomposition,
    pointwise_mi,
    summarise,
)
from astrolatent.analysis.pid.variational import (
    ClassifierPID,
    MinimumMIPID,
    PointwisePID,
    bin_target,
)
from astrolatent.config import Columns, Config
from astrolatent.errors import ConfigError

log = logging.getLogger(__name__)

#: The default measure of :func:`decompose`, ``astrolatent decompose`` and
#: ``astrolatent galaxy decompose``.
DEFAULT_METHOD = "mmi"


class PIDConfig(Config):
    """Options of ``astrolatent decompose`` (:func:`astrolatent.api.decompose`): the
    target column, the columns of the two sources and the settings of :func:`decompose`
    (``n_bins`` None: the measure's default; ``random_state`` None: unseeded)."""

    target: str
    x1: Columns = Field(min_length=1)
    x2: Columns = Field(min_length=1)
    method: str = DEFAULT_METHOD
    n_bins: int | None = None
    n_bootstrap: int = Field(100, ge=0)
    random_state: int | None = None


__all__ = [
    "ATOMS",
    "DEFAULT_METHOD",
    "MEASURES",
    "MIN_ROWS",
    "SUMMARIES",
    "ClassifierPID",
    "GaussianDep",
    "GaussianMMI",
    "IBroja",
    "ICcs",
    "IMin",
    "MinimumMIPID",
    "PIDConfig",
    "PIDMeasure",
    "PIDResult",
    "PointwisePID",
    "ResamplingPIDMeasure",
    "bin_target",
    "decompose",
    "discretise",
    "gaussian_mi",
    "get_measure",
    "joint_distribution",
    "pid_from_covariance",
    "pid_from_distribution",
    "pointwise_decomposition",
    "pointwise_mi",
    "register_measure",
    "select_columns",
    "summarise",
]


def decompose(
    table: pd.DataFrame,
    *,
    target: str,
    x1: list[str],
    x2: list[str],
    method: str | PIDMeasure = DEFAULT_METHOD,
    n_bins: int | None = None,
    n_bootstrap: int = 100,
    random_state: int | np.random.Generator | None = None,
) -> PIDResult:
    """PID of I(target; x1, x2) over the rows of ``table``, in nats.

    target: one numeric column; x1, x2: disjoint lists of numeric columns (the two
    sources). Rows with NaN or infinite values in any of them are dropped (logged).
    method: a registered name (see :data:`MEASURES`) or a configured measure instance,
    e.g. ``PointwisePID(binning="uniform", n_bins=520, bin_range=(6.0, 12.5))``. n_bins:
    target bins (``"mmi"``, ``"pointwise"``) or bins per column (discrete measures); None for the measure's
    default; not allowed for the Gaussian measures or with a measure instance.
    n_bootstrap: bootstrap resamples for the ``*_err`` (0: none). For pointwise methods the
    result's ``pointwise`` DataFrame keeps the index of ``table``. With ``"mmi"`` the
    per-object terms there are those of the pointwise measure; the atoms are not their
    means.
    """
    if isinstance(method, PIDMeasure):
        if n_bins is not None:
            raise ConfigError(
                f"n_bins={n_bins} conflicts with the measure instance {method.name!r}; "
                "set the bins on the instance"
            )
        measure = method
    else:
        measure = get_measure(method, n_bins=n_bins)
    rows, dropped = select_columns(table, target=target, x1=x1, x2=x2)
    if dropped:
        log.info("dropped %d of %d rows with NaN or inf in the used columns", dropped, len(table))
    result = measure.decompose(
        rows[target].to_numpy(),
        rows[x1].to_numpy(),
        rows[x2].to_numpy(),
        n_bootstrap=n_bootstrap,
        random_state=random_state,
    )
    if result.pointwise is not None:
        result.pointwise.index = rows.index
    return result
