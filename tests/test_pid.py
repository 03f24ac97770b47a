"""Partial information decomposition: canonical gates, analytic Gaussian truth, planted
structure for the classifier (mmi, pointwise) and Gaussian methods, and the pointwise
helpers. The canonical Gaussian cases are in test_pid_canonical.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

from astrolatent.analysis.pid import (
    ATOMS,
    MEASURES,
    MinimumMIPID,
    PIDResult,
    PointwisePID,
    decompose,
    get_measure,
    pid_from_covariance,
    pid_from_distribution,
    pointwise_decomposition,
    pointwise_mi,
    select_columns,
    summarise,
)
from astrolatent.errors import ConfigError

LN2 = math.log(2.0)
H_QUARTER = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # entropy of AND's output


def gate(outputs: dict[tuple[int, int], int]) -> np.ndarray:
    """Joint distribution (x1, x2, y) of two uniform input bits and y = f(x1, x2)."""
    p = np.zeros((2, 2, max(outputs.values()) + 1))
    for (a, b), y in outputs.items():
        p[a, b, y] = 0.25
    return p


XOR = gate({(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 0})
AND = gate({(0, 0): 0, (0, 1): 0, (1, 0): 0, (1, 1): 1})
COPY = gate({(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3})
UNQ = gate({(0, 0): 0, (0, 1): 0, (1, 0): 1, (1, 1): 1})
RDN = np.zeros((2, 2, 2))
RDN[0, 0, 0] = RDN[1, 1, 1] = 0.5

AND_MI1 = H_QUARTER - 0.5 * LN2  # I(Y; X1) = H(Y) - H(Y | X1)
AND_CCS_R = 0.25 * math.log(4 / 3)  # only the event (0, 0, 0) has agreeing signs


def atoms_from(redundancy: float, mi1: float, mi2: float, mi12: float) -> tuple[float, ...]:
    return redundancy, mi1 - redundancy, mi2 - redundancy, mi12 - mi1 - mi2 + redundancy


GATE_TRUTH = {("xor", m): (XOR, (0.0, 0.0, 0.0, LN2)) for m in ("imin", "broja", "ccs")} | {
    ("and", "imin"): (AND, atoms_from(AND_MI1, AND_MI1, AND_MI1, H_QUARTER)),
    ("and", "broja"): (AND, atoms_from(AND_MI1, AND_MI1, AND_MI1, H_QUARTER)),
    ("and", "ccs"): (AND, atoms_from(AND_CCS_R, AND_MI1, AND_MI1, H_QUARTER)),
    ("copy", "imin"): (COPY, (LN2, 0.0, 0.0, LN2)),
    ("copy", "broja"): (COPY, (0.0, LN2, LN2, 0.0)),
    ("copy", "ccs"): (COPY, (0.0, LN2, LN2, 0.0)),
    **{("rdn", m): (RDN, (LN2, 0.0, 0.0, 0.0)) for m in ("imin", "broja", "ccs")},
    **{("unq", m): (UNQ, (0.0, LN2, 0.0, 0.0)) for m in ("imin", "broja", "ccs")},
}


@pytest.mark.parametrize(("name", "measure"), sorted(GATE_TRUTH))
def test_canonical_gates(name: str, measure: str) -> None:
    p, truth = GATE_TRUTH[(name, measure)]
    result = pid_from_distribution(p, measure=measure)
    assert [getattr(result, a) for a in ATOMS] == pytest.approx(truth, abs=1e-6)
    assert result.method == measure


def test_broja_is_the_minimum_over_the_marginal_polytope() -> None:
    """Brute force on a random 2x2x2 distribution: for each y the distributions with the
    same (X1,Y) and (X2,Y) marginals form a segment, so a grid covers them all."""
    p = np.random.default_rng(3).dirichlet(np.ones(8)).reshape(2, 2, 2)
    p1y, p2y, py = p.sum(1), p.sum(0), p.sum((0, 1))
    grids = []
    for k in range(2):
        a0, a1, b0 = p1y[0, k], p1y[1, k], p2y[0, k]
        grids.append(np.linspace(max(0.0, b0 - a1), min(a0, b0), 801))
    t0, t1 = np.meshgrid(*grids, indexing="ij")
    q = np.zeros((*t0.shape, 2, 2, 2))
    for k, t in enumerate((t0, t1)):
        a0, a1, b0 = p1y[0, k], p1y[1, k], p2y[0, k]
        q[..., 0, 0, k], q[..., 0, 1, k] = t, a0 - t
        q[..., 1, 0, k], q[..., 1, 1, k] = b0 - t, a1 - b0 + t
    q12 = q.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * np.log(q / (q12 * py)), 0.0)
    min_mi = terms.sum((-3, -2, -1)).min()
    result = pid_from_distribution(p, measure="broja")
    mi12_min = result.redundancy + result.unique1 + result.unique2
    assert mi12_min == pytest.approx(min_mi, abs=2e-6)
    assert mi12_min <= min_mi + 1e-9


def test_discrete_measures_agree_with_dit_on_a_random_distribution() -> None:
    dit = pytest.importorskip("dit")
    from dit.pid import PID_CCS, PID_WB

    p = np.random.default_rng(0).dirichlet(np.full(27, 0.5)).reshape(3, 3, 3)
    outcomes = [(a, b, c) for a in range(3) for b in range(3) for c in range(3)]
    d = dit.Distribution(outcomes, p.ravel().tolist())
    nodes = (((0,), (1,)), ((0,),), ((1,),), ((0, 1),))
    for measure, reference in (("imin", PID_WB), ("ccs", PID_CCS)):
        ref = reference(d, [[0], [1]], [2])
        result = pid_from_distribution(p, measure=measure)
        expected = [float(ref.get_pi(node)) * LN2 for node in nodes]  # dit reports bits
        assert [getattr(result, a) for a in ATOMS] == pytest.approx(expected, abs=1e-6)


def test_discrete_measures_on_table_columns_match_the_gate() -> None:
    """decompose() on 0/1 columns keeps the values as categories (n_bins irrelevant)."""
    a, b = np.meshgrid([0, 1], [0, 1], indexing="ij")
    table = pd.DataFrame({"a": np.tile(a.ravel(), 25), "b": np.tile(b.ravel(), 25)})
    table["y"] = table.a ^ table.b
    result = decompose(table, target="y", x1=["a"], x2=["b"], method="broja", n_bootstrap=0)
    assert result.synergy == pytest.approx(LN2, abs=1e-6)
    assert result.n == 100
    assert math.isnan(result.synergy_err)


def gaussian_covariance(kind: str) -> tuple[np.ndarray, tuple[float, ...], tuple[float, ...]]:
    """Covariance of (Y, X1, X2) and the analytic (MMI, I_dep) atoms for planted cases.

    rdn: X_k = Y + 0.5 e_k; unq: X1 = Y + 0.5 e, X2 independent; syn: Y = X1 + X2 + 0.5 e.
    """
    s2 = 0.25
    if kind == "rdn":
        cov = np.array([[1, 1, 1], [1, 1 + s2, 1], [1, 1, 1 + s2]], dtype=float)
        mi1 = 0.5 * math.log(1 + 1 / s2)
        mi12 = 0.5 * math.log(1 + 2 / s2)
        # X1 and X2 are independent given Y: I_dep redundancy = I1 + I2 - I12.
        return cov, atoms_from(mi1, mi1, mi1, mi12), atoms_from(2 * mi1 - mi12, mi1, mi1, mi12)
    if kind == "unq":
        cov = np.array([[1, 1, 0], [1, 1 + s2, 0], [0, 0, 1]], dtype=float)
        mi1 = 0.5 * math.log(1 + 1 / s2)
        return cov, (0.0, mi1, 0.0, 0.0), (0.0, mi1, 0.0, 0.0)
    cov = np.array([[2 + s2, 1, 1], [1, 1, 0], [1, 0, 1]], dtype=float)
    mi1 = 0.5 * math.log((2 + s2) / (1 + s2))
    mi12 = 0.5 * math.log((2 + s2) / s2)

    # I_dep's model with only the (X1,Y) and (X2,Y) marginals: the maximum-entropy choice
    # of the free entry cov(X1, X2), found numerically.
    def with_c(c: float) -> np.ndarray:
        m = cov.copy()
        m[1, 2] = m[2, 1] = c
        return m

    best = minimize_scalar(
        lambda c: -np.linalg.det(with_c(c)), bounds=(-0.9, 0.9), method="bounded",
        options={"xatol": 1e-10},
    )  # fmt: skip
    ci = with_c(best.x)
    mi12_ci = 0.5 * math.log(np.linalg.det(ci[1:, 1:]) * ci[0, 0] / np.linalg.det(ci))
    dep_r = max(0.0, 2 * mi1 - mi12, 2 * mi1 - mi12_ci)
    return cov, atoms_from(mi1, mi1, mi1, mi12), atoms_from(dep_r, mi1, mi1, mi12)


DOMINANT = {"rdn": "redundancy", "unq": "unique1", "syn": "synergy"}


@pytest.mark.parametrize("kind", sorted(DOMINANT))
def test_gaussian_pid_from_covariance_is_analytic(kind: str) -> None:
    cov, mmi, dep = gaussian_covariance(kind)
    for measure, truth in (("mmi", mmi), ("dep", dep)):
        result = pid_from_covariance(cov, n_x1=1, measure=measure)
        assert [getattr(result, a) for a in ATOMS] == pytest.approx(truth, abs=1e-7)


def test_gaussian_dep_atoms_are_non_negative_and_add_up() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.normal(size=(5, 5))
        cov = a @ a.T + 0.1 * np.eye(5)
        mmi = pid_from_covariance(cov, n_x1=2, measure="mmi")
        dep = pid_from_covariance(cov, n_x1=2, measure="dep")
        assert min(getattr(dep, a) for a in ATOMS) >= -1e-12
        for attr in ("mi1", "mi2", "mi12"):
            assert getattr(dep, attr) == pytest.approx(getattr(mmi, attr))


def test_gaussian_multivariate_source() -> None:
    """Y = A + B + noise with X1 = (A, B): I(Y; X1) = 1/2 ln(var Y / var noise)."""
    rng = np.random.default_rng(2)
    n = 4000
    a, b, c = rng.normal(size=(3, n))
    y = a + b + 0.5 * rng.normal(size=n)
    result = get_measure("gaussian").decompose(y, np.column_stack([a, b]), c)
    assert result.mi1 == pytest.approx(0.5 * math.log(2.25 / 0.25), abs=0.05)
    assert result.unique1 == pytest.approx(result.mi1, abs=0.01)


def planted_table(kind: str, n: int, seed: int) -> pd.DataFrame:
    """rdn: two noisy copies of y; unq: x1 a noisy copy, x2 noise; syn: y = x1 + x2 + noise
    (synergy for the Gaussian measures); xor: y = sign(x1) sign(x2) + noise (synergy that
    no linear measure sees)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(3, n))
    if kind in ("rdn", "unq"):
        y = e[0]
        x2 = y + 0.5 * e[2] if kind == "rdn" else e[2]
        return pd.DataFrame({"y": y, "x1": y + 0.5 * e[1], "x2": x2})
    x1, x2 = e[0], e[1]
    y = x1 + x2 if kind == "syn" else np.sign(x1) * np.sign(x2)
    return pd.DataFrame({"y": y + 0.5 * e[2], "x1": x1, "x2": x2})


@pytest.mark.parametrize("kind", sorted(DOMINANT))
@pytest.mark.parametrize("method", ["gaussian", "gaussian_dep"])
def test_gaussian_planted_structure(kind: str, method: str) -> None:
    table = planted_table(kind, 3000, seed=10)
    result = decompose(
        table, target="y", x1=["x1"], x2=["x2"], method=method, n_bootstrap=30, random_state=0
    )
    values = {a: getattr(result, a) for a in ATOMS}
    assert max(values, key=values.get) == DOMINANT[kind]
    _, mmi, dep = gaussian_covariance(kind)
    truth = mmi if method == "gaussian" else dep
    for atom, expected in zip(ATOMS, truth, strict=True):
        err = getattr(result, f"{atom}_err")
        assert np.isfinite(err)
        assert abs(values[atom] - expected) < 5 * err + 0.01


FAST_VARIATIONAL = {
    "n_bins": 16,
    "n_folds": 3,
    "hidden": (32, 32),
    "max_epochs": 40,
    "patience": 5,
    "batch_size": 512,
    "learning_rate": 1e-2,
}


@pytest.mark.parametrize("kind", ["rdn", "unq", "xor"])
def test_pointwise_planted_structure(kind: str) -> None:
    table = planted_table(kind, 3000, seed=20)
    result = decompose(
        table,
        target="y",
        x1=["x1"],
        x2=["x2"],
        method=PointwisePID(**FAST_VARIATIONAL),
        n_bootstrap=50,
        random_state=0,
    )
    values = {a: getattr(result, a) for a in ATOMS}
    dominant = DOMINANT.get(kind, "synergy")
    assert max(values, key=values.get) == dominant
    assert values[dominant] > 0.3
    assert 0 < result.redundancy_err < 0.05
    pointwise = result.pointwise
    assert pointwise is not None and len(pointwise) == 3000
    assert (pointwise.index == table.index).all()
    total = pointwise[list(ATOMS)].sum(axis=1)
    assert np.allclose(total, pointwise.m12)


def test_classifier_pid_is_reproducible_and_drops_nan_rows() -> None:
    table = planted_table("unq", 400, seed=5)
    table.loc[[3, 7], "x2"] = np.nan
    measure = MinimumMIPID(**{**FAST_VARIATIONAL, "max_epochs": 3})
    first, second = (
        decompose(table, target="y", x1=["x1"], x2=["x2"], method=measure, random_state=1)
        for _ in range(2)
    )
    assert first.n == 398
    assert first.to_dict() == second.to_dict()
    assert 3 not in first.pointwise.index


def test_pointwise_mi_and_decomposition() -> None:
    m = pointwise_mi([0.5, 0.1, 1.0], [0.25, 0.2, 0.5])
    assert m == pytest.approx([math.log(2), math.log(0.5), math.log(2)])
    decomp = pointwise_decomposition(pd.Series([1.0, 0.2], index=[10, 11]), [0.5, 0.4], [2.0, 0.1])
    assert list(decomp.index) == [10, 11]
    assert decomp.redundancy.tolist() == [0.5, 0.2]
    assert decomp.unique1.tolist() == pytest.approx([0.5, 0.0])
    assert decomp.unique2.tolist() == pytest.approx([0.0, 0.2])
    assert decomp.synergy.tolist() == pytest.approx([1.0, -0.3])  # misinformation
    with pytest.raises(ConfigError, match="outside"):
        pointwise_mi([0.0], [0.5])
    with pytest.raises(ConfigError, match="m2"):
        pointwise_decomposition([1.0, 2.0], [1.0], [1.0, 2.0])


def test_summarise_overall_by_class_and_in_bins() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    m1, m2 = rng.normal(1.0, 1.0, n), rng.normal(0.5, 1.0, n)
    decomp = pointwise_decomposition(m1, m2, np.maximum(m1, m2) + 0.2)
    decomp["cls"] = np.where(np.arange(n) % 2, "passive", "star-forming")
    decomp["mass"] = np.linspace(9.0, 12.0, n)

    overall = summarise(decomp, n_bootstrap=200, random_state=0)
    assert list(overall.index) == ["all"]
    assert overall.loc["all", "synergy"] == pytest.approx(0.2)
    expected_err = decomp.redundancy.std() / math.sqrt(n)
    assert overall.loc["all", "redundancy_err"] == pytest.approx(expected_err, rel=0.25)

    by_class = summarise(decomp, by="cls", n_bootstrap=0)
    assert list(by_class.index) == ["passive", "star-forming"]
    assert by_class.n.tolist() == [1000, 1000]
    assert by_class.redundancy_err.isna().all()

    binned = summarise(decomp, by="mass", bins=[9.0, 10.0, 11.0, 12.0], n_bootstrap=20)
    assert binned.n.sum() == n
    assert len(binned) == 3
    with pytest.raises(ConfigError, match="by=COLUMN"):
        summarise(decomp, bins=3)


def test_summarise_mmi_takes_the_minimum_of_the_means() -> None:
    rng = np.random.default_rng(8)
    n = 4000
    # two equally informative, noisy sources: pointwise min is biased low, min of means not
    m1, m2 = rng.normal(0.4, 1.0, n), rng.normal(0.4, 1.0, n)
    decomp = pointwise_decomposition(m1, m2, m1 + m2)
    decomp["half"] = np.arange(n) < n // 4
    mmi = summarise(decomp, method="mmi", n_bootstrap=100, random_state=0).loc["all"]
    point = summarise(decomp, n_bootstrap=0).loc["all"]
    assert mmi.redundancy == pytest.approx(min(m1.mean(), m2.mean()))
    assert mmi.synergy == pytest.approx((m1 + m2).mean() - max(m1.mean(), m2.mean()))
    assert point.redundancy < mmi.redundancy - 0.4  # E min(m1, m2) = 0.4 - 1/sqrt(pi)
    assert mmi.redundancy_err == pytest.approx(1.0 / math.sqrt(n), rel=0.3)
    # per-group atoms of the averaged measure do not average to the overall ones
    groups = summarise(decomp, by="half", method="mmi", n_bootstrap=0)
    assert groups.n.sum() == n
    weighted = (groups.redundancy * groups.n).sum() / n
    assert weighted != pytest.approx(mmi.redundancy, abs=1e-3)
    with pytest.raises(ConfigError, match="method="):
        summarise(decomp, method="mean")
    with pytest.raises(ConfigError, match="m1"):
        summarise(decomp[list(ATOMS)], method="mmi")


def test_result_to_dict_is_json_safe() -> None:
    result = PIDResult(0.1, 0.2, 0.3, 0.4, method="gaussian", n=10)
    payload = result.to_dict()
    json.dumps(payload, allow_nan=False)
    for atom in ATOMS:
        assert payload[f"{atom}_err"] is None
    assert payload["mi12"] == pytest.approx(1.0)
    assert payload["units"] == "nats"


def test_registry_and_option_errors(caplog) -> None:
    assert {"mmi", "pointwise", "gaussian", "gaussian_dep", "imin", "broja", "ccs"} <= set(MEASURES)
    with pytest.raises(ConfigError, match="choose one of"):
        get_measure("nope")
    # the old name of the pointwise measure still works, with a one-line deprecation warning
    assert get_measure("variational").name == "pointwise"
    assert "method='variational' is deprecated: it is now 'pointwise'" in caplog.text
    with pytest.raises(ConfigError, match="n_bins=8 does not apply"):
        get_measure("gaussian", n_bins=8)
    assert get_measure("imin", n_bins=8).n_bins == 8
    table = planted_table("rdn", 100, seed=0)
    with pytest.raises(ConfigError, match="conflicts"):
        decompose(table, target="y", x1=["x1"], x2=["x2"], method=MinimumMIPID(), n_bins=4)
    with pytest.raises(ConfigError, match="n_folds=50"):
        decompose(table, target="y", x1=["x1"], x2=["x2"], method=MinimumMIPID(n_folds=50))


def test_select_columns_errors_name_the_column() -> None:
    table = planted_table("rdn", 30, seed=0).assign(name="a")
    with pytest.raises(ConfigError, match="'zz'"):
        select_columns(table, target="zz", x1=["x1"], x2=["x2"])
    with pytest.raises(ConfigError, match="'name' is not numeric"):
        select_columns(table, target="y", x1=["name"], x2=["x2"])
    with pytest.raises(ConfigError, match="more than once"):
        select_columns(table, target="y", x1=["x1"], x2=["x1", "x2"])
    table.loc[:15, "x1"] = np.nan
    with pytest.raises(ConfigError, match="only 14 rows"):
        select_columns(table, target="y", x1=["x1"], x2=["x2"])
