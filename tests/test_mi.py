"""Mutual-information estimators against analytic truth, and the ``mi`` command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from astropy.table import Table
from sklearn.feature_selection import mutual_info_regression
from typer.testing import CliRunner

from astrolatent.analysis.mi import (
    ESTIMATORS,
    GMMEstimator,
    HistogramEstimator,
    KSGEstimator,
    MIEstimator,
    clean_labels,
    get_estimator,
    histogram_mi,
    histogram_mi_table,
    informational_correlation,
    ksg_mi_columns,
    ksg_total_correlation,
    mutual_information,
    normalise_rows,
    register_estimator,
)
from astrolatent.cli.analysis import register
from astrolatent.errors import ConfigError, InputFileError


def gaussian_pair(rho: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return x, rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)


def gaussian_mi(rho: float) -> float:
    return -0.5 * np.log(1 - rho**2)


# --- KSG -------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_ksg_correlated_gaussians(rho):
    x, y = gaussian_pair(rho, 4000, seed=1)
    assert KSGEstimator(random_state=0).estimate(x, y) == pytest.approx(gaussian_mi(rho), abs=0.03)


def test_ksg_multivariate_gaussian_from_covariance():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + 0.5 * np.eye(4)
    xy = rng.multivariate_normal(np.zeros(4), cov, size=4000)
    truth = 0.5 * np.log(
        np.linalg.det(cov[:2, :2]) * np.linalg.det(cov[2:, 2:]) / np.linalg.det(cov)
    )
    estimate = KSGEstimator(random_state=0).estimate(xy[:, :2], xy[:, 2:])
    assert estimate == pytest.approx(truth, abs=0.06)
    assert GMMEstimator(random_state=0).estimate(xy[:, :2], xy[:, 2:]) == pytest.approx(
        truth, abs=0.04
    )


def test_ksg_invariant_to_monotone_transforms():
    x, y = gaussian_pair(0.6, 4000, seed=2)
    est = KSGEstimator(random_state=0)
    reference = est.estimate(x, y)
    assert est.estimate(np.exp(x), y) == pytest.approx(reference, abs=0.02)
    assert est.estimate(x, y**3) == pytest.approx(reference, abs=0.02)
    assert est.estimate(np.exp(x), y**3) == pytest.approx(gaussian_mi(0.6), abs=0.03)


def test_independent_pair_is_zero_and_not_significant():
    rng = np.random.default_rng(4)
    result = mutual_information(
        rng.standard_normal(3000),
        rng.standard_normal(3000),
        n_bootstrap=5,
        n_permutations=40,
        random_state=0,
    )
    assert abs(result.mi) < 0.02
    assert result.p_value > 0.05
    assert result.r_info < 0.2


@pytest.mark.parametrize("shape", ["parabola", "tent"])
def test_non_monotonic_relation_is_found_where_pearson_fails(shape):
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, 3000)
    y = x**2 if shape == "parabola" else 1 - np.abs(x)
    y = y + 0.05 * rng.standard_normal(x.size)
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.05
    result = mutual_information(x, y, n_bootstrap=5, n_permutations=30, random_state=0)
    assert result.mi > 0.8
    assert result.r_info > 0.8
    assert result.p_value == pytest.approx(1 / 31)
    assert 0 < result.mi_err < 0.1


def test_conditional_mi_markov_chain_and_collider():
    rng = np.random.default_rng(6)
    n = 2000
    x = rng.standard_normal(n)
    z = x + 0.5 * rng.standard_normal(n)
    y = z + 0.5 * rng.standard_normal(n)
    chain = mutual_information(
        x, y, conditional=z, n_bootstrap=0, n_permutations=20, random_state=0
    )
    assert abs(chain.mi) < 0.03
    assert chain.p_value > 0.05
    assert np.isnan(chain.mi_err)

    a, b = rng.standard_normal(n), rng.standard_normal(n)
    collider = mutual_information(
        a,
        b,
        conditional=a + b + 0.3 * rng.standard_normal(n),
        n_bootstrap=0,
        n_permutations=20,
        random_state=0,
    )
    assert collider.mi > 0.5
    assert collider.p_value == pytest.approx(1 / 21)


def test_ksg_columns_match_per_column_estimates_and_sklearn():
    rng = np.random.default_rng(7)
    n = 2000
    y = rng.standard_normal(n)
    rhos = np.array([0.0, 0.3, 0.7, 0.95])
    X = rhos * y[:, None] + np.sqrt(1 - rhos**2) * rng.standard_normal((n, rhos.size))
    X[:, 1] = np.exp(X[:, 1])

    columns = ksg_mi_columns(X, y, jitter=0.0)
    exact = KSGEstimator(jitter=0.0)
    per_column = [
        mutual_information(X[:, j], y, estimator=exact, n_bootstrap=0, n_permutations=0).mi
        for j in range(4)
    ]
    np.testing.assert_allclose(columns, per_column, atol=1e-12)
    sklearn_values = mutual_info_regression(X, y, n_neighbors=3, random_state=0)
    np.testing.assert_allclose(np.maximum(columns, 0), sklearn_values, atol=1e-6)
    jittered = ksg_mi_columns(X, y, random_state=0)
    np.testing.assert_allclose(jittered, columns, atol=1e-6)
    np.testing.assert_array_equal(ksg_mi_columns(X, y, random_state=0, n_jobs=1), jittered)


def test_ksg_total_correlation_of_gaussians():
    rng = np.random.default_rng(8)
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, size=4000)
    truth = -0.5 * np.log(np.linalg.det(cov))
    assert ksg_total_correlation(X, random_state=0) == pytest.approx(truth, abs=0.04)


# --- Gaussian mixture --------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_gmm_correlated_gaussians(rho):
    x, y = gaussian_pair(rho, 4000, seed=9)
    est = GMMEstimator(random_state=0)
    assert est.estimate(x, y) == pytest.approx(gaussian_mi(rho), abs=0.03)
    assert est.n_components_ >= 1


def test_gmm_error_bar_and_significance():
    x, y = gaussian_pair(0.6, 2000, seed=10)
    result = mutual_information(
        x, y, estimator="gmm", n_bootstrap=5, n_permutations=5, random_state=0
    )
    assert result.estimator == "gmm"
    assert result.mi == pytest.approx(gaussian_mi(0.6), abs=0.04)
    assert 0 < result.mi_err < 0.05
    assert result.p_value == pytest.approx(1 / 6)


def test_gmm_conditional_markov_chain():
    rng = np.random.default_rng(11)
    x = rng.standard_normal(2000)
    z = x + 0.5 * rng.standard_normal(2000)
    y = z + 0.5 * rng.standard_normal(2000)
    assert abs(GMMEstimator(n_components=1, random_state=0).estimate(x, y, z=z)) < 0.02


# --- Histogram ---------------------------------------------------------------------------


def test_histogram_known_discrete_case():
    rng = np.random.default_rng(12)
    x = rng.integers(0, 4, 4000).astype(float)
    assert histogram_mi(x, x, bins=4) == pytest.approx(np.log(4), abs=0.01)
    # y = x mod 2 carries exactly one bit of the 4-level uniform x
    assert histogram_mi(x, x % 2, bins=4) == pytest.approx(np.log(2), abs=0.01)
    independent = histogram_mi(x, rng.integers(0, 4, 4000).astype(float), bins=4)
    assert 0 <= independent < 9 / (2 * 4000) * 3


def test_histogram_table_matches_numpy_histogram2d_and_normalises():
    rng = np.random.default_rng(13)
    y = rng.standard_normal(1500)
    X = np.column_stack([y + 0.3 * rng.standard_normal(1500), rng.standard_normal(1500)])
    table = histogram_mi_table(X, y)
    assert table.shape == (6, 2)
    for row, bins in enumerate((5, 10, 20, 40, 80, 160)):
        counts, _, _ = np.histogram2d(X[:, 0], y, bins=bins)
        p = counts / counts.sum()
        outer = p.sum(axis=1, keepdims=True) * p.sum(axis=0, keepdims=True)
        nz = p > 0
        assert table[row, 0] == pytest.approx(np.sum(p[nz] * np.log(p[nz] / outer[nz])), rel=1e-12)
    # no bias correction: the independent column's plug-in MI grows with the bin count
    assert np.all(np.diff(table[:, 1]) > 0)
    normalised = normalise_rows(table)
    np.testing.assert_allclose(normalised.max(axis=1), 1.0)
    assert HistogramEstimator(bins=20).estimate(X[:, 0], y) == pytest.approx(table[2, 0])


def test_histogram_rejects_multivariate_and_conditional():
    rng = np.random.default_rng(14)
    with pytest.raises(ConfigError, match="ksg"):
        HistogramEstimator().estimate(rng.standard_normal((50, 2)), rng.standard_normal(50))
    with pytest.raises(ConfigError, match="cannot condition"):
        mutual_information(
            rng.standard_normal(50),
            rng.standard_normal(50),
            estimator="hist",
            conditional=np.ones(50),
        )


# --- Shared interface, results, validation -------------------------------------------------


def test_registry_and_result_dict():
    assert set(ESTIMATORS) >= {"ksg", "gmm", "hist"}
    assert isinstance(get_estimator("ksg", n_neighbors=5), KSGEstimator)
    assert get_estimator("ksg", n_neighbors=5).n_neighbors == 5
    with pytest.raises(ConfigError, match="not known"):
        get_estimator("nope")
    with pytest.raises(TypeError):
        register_estimator(dict)
    with pytest.raises(ConfigError, match="already registered"):
        register_estimator(type("Again", (KSGEstimator,), {"name": "ksg"}))

    x, y = gaussian_pair(0.5, 500, seed=15)
    result = mutual_information(x, y, estimator="hist", n_bootstrap=0, n_permutations=0)
    payload = result.to_dict()
    assert set(payload) == {"mi", "mi_err", "p_value", "r_info", "n", "estimator"}
    assert payload["mi_err"] is None and payload["p_value"] is None
    json.dumps(payload, allow_nan=False)


def test_custom_estimator_plugs_in():
    class Pearson(MIEstimator):
        name = "pearson-test"

        def _estimate(self, x, y, z):
            return gaussian_mi(np.corrcoef(x[:, 0], y[:, 0])[0, 1])

    x, y = gaussian_pair(0.8, 1000, seed=16)
    result = mutual_information(
        x, y, estimator=Pearson(), n_bootstrap=4, n_permutations=9, random_state=0
    )
    assert result.estimator == "pearson-test"
    assert result.mi == pytest.approx(gaussian_mi(0.8), abs=0.05)
    assert result.p_value == pytest.approx(0.1)


def test_informational_correlation():
    assert informational_correlation(gaussian_mi(0.7)) == pytest.approx(0.7)
    assert informational_correlation(-0.01) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": np.zeros(99)}, "rows"),
        ({"x": np.r_[np.nan, np.zeros(99)]}, "non-finite"),
        ({"estimator": "nope"}, "not known"),
        ({"n_neighbors": 0}, "n_neighbors=0"),
        ({"n_bootstrap": 1}, "n_bootstrap=1"),
        ({"n_permutations": -1}, "n_permutations=-1"),
    ],
)
def test_validation_errors(kwargs, match):
    rng = np.random.default_rng(17)
    args = {
        "x": rng.standard_normal(100),
        "y": rng.standard_normal(100),
        "n_bootstrap": 0,
        "n_permutations": 0,
    }
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        mutual_information(args.pop("x"), args.pop("y"), **args)


# --- Label hygiene -----------------------------------------------------------------------


def test_clean_labels_drops_nan_sentinels_and_outliers():
    rng = np.random.default_rng(18)
    label = rng.standard_normal(1000)
    label[:3] = [np.nan, np.inf, -9999.0]
    label[3] = 9999.0
    label[4] = 60.0
    cleaned = clean_labels(label)
    assert cleaned.n_nonfinite == 2 and cleaned.n_sentinel == 2 and cleaned.n_clipped == 1
    assert cleaned.n_used == 995 and not cleaned.mask[:5].any() and cleaned.mask[5:].all()
    assert clean_labels(label, sigma=None).n_used == 996
    assert clean_labels(label, sentinels=()).n_sentinel == 0
    with pytest.raises(ConfigError, match="sigma=0"):
        clean_labels(label, sigma=0)


# --- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(
        lambda: None
    )  # a group, so that the command is invoked as "mi" as in astrolatent
    register(app)
    return app


@pytest.fixture
def frame() -> pd.DataFrame:
    x, y = gaussian_pair(0.6, 1500, seed=19)
    rng = np.random.default_rng(20)
    y[:5] = -9999.0
    return pd.DataFrame(
        {"z0": x, "z1": rng.standard_normal(x.size), "teff": y, "name": ["star"] * x.size}
    )


def invoke(app: typer.Typer, *args: str):
    return CliRunner().invoke(app, ["mi", *args, "--n-bootstrap", "3", "--n-permutations", "5"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits"])
def test_cli_json_on_each_format(cli, frame, tmp_path, suffix):
    path = tmp_path / f"table{suffix}"
    numeric = frame.drop(columns="name")
    if suffix == ".csv":
        numeric.to_csv(path, index=False)
    elif suffix == ".parquet":
        numeric.to_parquet(path)
    else:
        Table.from_pandas(numeric).write(path)
    result = invoke(cli, str(path), "--x", "z0", "--y", "teff", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert set(payload) == {"mi", "mi_err", "p_value", "r_info", "n", "estimator"}
    assert payload["n"] == 1495  # the five sentinel labels are dropped
    assert payload["mi"] == pytest.approx(gaussian_mi(0.6), abs=0.06)
    assert payload["estimator"] == "auto"  # the default


def test_cli_table_multivariate_and_conditional(cli, frame, tmp_path):
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    result = invoke(
        cli, str(path), "--x", "z0,z1", "--y", "teff", "--estimator", "gmm", "--seed", "1"
    )
    assert result.exit_code == 0, result.output
    assert "r_I" in result.output and "gmm" in result.output
    result = invoke(cli, str(path), "--x", "z1", "--y", "teff", "--conditional", "z0", "--json")
    assert result.exit_code == 0, result.output
    assert abs(json.loads(result.output)["mi"]) < 0.05


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--x", "z9", "--y", "teff"], r"table\.csv: missing column\(s\) z9 \(columns: "),
        (["--x", "name", "--y", "teff"], r"table\.csv: column 'name' is not numeric"),
    ],
)
def test_cli_column_errors(cli, frame, tmp_path, args, match):
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    result = invoke(cli, str(path), *args)
    assert isinstance(result.exception, InputFileError)
    assert re.search(match, str(result.exception))


def test_cli_file_errors(cli, frame, tmp_path):
    result = invoke(cli, str(tmp_path / "missing.csv"), "--x", "a", "--y", "b")
    assert isinstance(result.exception, InputFileError)
    assert "missing.csv: file not found" in str(result.exception)

    odd = tmp_path / "table.xlsx"
    odd.write_text("a,b\n")
    result = invoke(cli, str(odd), "--x", "a", "--y", "b")
    assert isinstance(result.exception, InputFileError)
    assert "unknown table format '.xlsx'" in str(result.exception)

    few = tmp_path / "few.csv"
    frame.head(12).to_csv(few, index=False)
    result = invoke(cli, str(few), "--x", "z0", "--y", "teff")
    assert isinstance(result.exception, InputFileError)
    assert "few.csv: only 7 of 12 rows are usable" in str(result.exception)


def test_cli_reads_fits_with_masked_values(cli, tmp_path: Path):
    x, y = gaussian_pair(0.6, 400, seed=21)
    table = Table({"z0": x, "teff": y}, masked=True)
    table["teff"].mask[:10] = True
    path = tmp_path / "cat.fits"
    table.write(path)
    result = invoke(cli, str(path), "--x", "z0", "--y", "teff", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n"] == 390
