"""Canonical Gaussian PID cases (Barrett 2015; Venkatesh & Schamberg's canonical examples)
against their analytic minimum-MI atoms: the default classifier measure ``mmi`` recovers
them within max(0.05, 15%) per atom at n = 5,000, with monotone transforms of the target
and of every source column and with multi-column sources; the pointwise measure does not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from astrolatent.analysis.pid import ATOMS, decompose, pid_from_covariance, summarise
from astrolatent.simulate.infotheory import PID_CASES, pid_case

N = 5000
HALF_LN = {k: 0.5 * math.log(k) for k in (1.5, 2.0, 3.0, 7 / 3)}
#: (R, U1, U2, S) derived by hand from the covariances of (M, X1, X2): Gaussian MIs are
#: 1/2 ln(var M / var(M | sources)).
TRUTH = {
    # I(M;Xk) = 1/2 ln 2; I(M;X1,X2) = 1/2 ln 3 (posterior variance 1/3)
    "redundant": (HALF_LN[2.0], 0.0, 0.0, HALF_LN[3.0] - HALF_LN[2.0]),
    # posterior variance 1 - (1,1) S^-1 (1,1)^T = 1 - 2/3.5 = 3/7
    "correlated_noise": (HALF_LN[2.0], 0.0, 0.0, HALF_LN[7 / 3] - HALF_LN[2.0]),
    # I(M;X2) = 1/2 ln(3/2); X2 adds nothing to X1
    "markov": (HALF_LN[1.5], HALF_LN[2.0] - HALF_LN[1.5], 0.0, 0.0),
}


def _tolerance(truth: np.ndarray) -> np.ndarray:
    return np.maximum(0.05, 0.15 * np.abs(truth))


def _run(case: str, dims: tuple[int, int], transform: bool, method: str = "mmi"):
    table, _ = pid_case(case, N, dim1=dims[0], dim2=dims[1], transform=transform, random_state=7)
    a = [c for c in table.columns if c.startswith("a")]
    b = [c for c in table.columns if c.startswith("b")]
    return decompose(table, target="y", x1=a, x2=b, method=method, n_bootstrap=20, random_state=0)


@pytest.mark.parametrize("case", sorted(PID_CASES))
def test_analytic_truth_matches_the_covariance(case: str) -> None:
    result = pid_from_covariance(PID_CASES[case], n_x1=1)
    assert [getattr(result, a) for a in ATOMS] == pytest.approx(TRUTH[case], abs=1e-12)


@pytest.mark.parametrize("case", sorted(PID_CASES))
def test_default_recovers_transformed_case(case: str) -> None:
    """Default measure on exp(M) and x^3 / sinh-transformed sources, n = 5,000."""
    result = _run(case, (1, 1), transform=True)
    assert result.method == "mmi"
    got = np.array([getattr(result, a) for a in ATOMS])
    truth = np.array(TRUTH[case])
    assert np.all(np.abs(got - truth) <= _tolerance(truth)), got - truth
    assert 0 < result.redundancy_err < 0.03
    if case == "redundant":
        # the same classifiers, summarised pointwise: the study's bias, shown on this case
        pointwise = summarise(result.pointwise, n_bootstrap=0).loc["all"]
        assert pointwise.redundancy < truth[0] - 0.15
        assert pointwise.unique1 > 0.1 and pointwise.synergy < -0.05


@pytest.mark.slow
@pytest.mark.parametrize("transform", [False, True])
@pytest.mark.parametrize("dims", [(1, 1), (2, 2), (3, 5), (5, 2)])
@pytest.mark.parametrize("case", sorted(PID_CASES))
def test_default_recovers_every_case(case: str, dims: tuple[int, int], transform: bool) -> None:
    result = _run(case, dims, transform)
    got = np.array([getattr(result, a) for a in ATOMS])
    truth = np.array(TRUTH[case])
    assert np.all(np.abs(got - truth) <= _tolerance(truth)), got - truth


def test_pointwise_measure_misreads_redundant_copies() -> None:
    result = _run("redundant", (1, 1), transform=False, method="pointwise")
    assert result.method == "pointwise"
    assert result.unique1 > 0.1 and result.unique2 > 0.1 and result.synergy < -0.05
