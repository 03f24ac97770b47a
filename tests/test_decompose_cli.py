"""The ``astrolatent decompose`` command on CSV, Parquet and FITS tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from astropy.table import Table
from typer.testing import CliRunner

from astrolatent.cli.pid import register
from astrolatent.errors import ConfigError, InputFileError

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep typer in multi-command mode
    return app


def redundant_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    e = rng.normal(size=(3, n))
    return pd.DataFrame(
        {"mass": y, "g": y + 0.5 * e[0], "r": y + 0.5 * e[1], "z": e[2], "kind": "galaxy"}
    )


@pytest.fixture
def csv_table(tmp_path: Path) -> Path:
    frame = redundant_frame()
    frame.loc[[1, 5, 9], "g"] = np.nan
    path = tmp_path / "cat.csv"
    frame.to_csv(path, index=False)
    return path


def run(app: typer.Typer, *args: str) -> object:
    return runner.invoke(app, ["decompose", *args])


def run_json(app: typer.Typer, *args: str) -> dict:
    """The JSON ``decompose ARGS --json`` prints (the command must succeed)."""
    result = run(app, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_json_output_reports_dropped_rows(app: typer.Typer, csv_table: Path) -> None:
    payload = run_json(
        app, str(csv_table), "--target", "mass", "--x1", "g", "--x2", "r,z",
        "--method", "gaussian", "--bootstrap", "20", "--seed", "1",
    )  # fmt: skip
    for key in ("redundancy", "unique1", "unique2", "synergy"):
        assert isinstance(payload[key], float)
        assert payload[f"{key}_err"] >= 0
    assert payload["redundancy_err"] > 0
    assert payload["method"] == "gaussian"
    assert payload["n"] == 597
    assert payload["n_dropped"] == 3
    assert payload["x2"] == ["r", "z"]
    assert payload["redundancy"] > payload["unique1"]


def test_rich_table_output(app: typer.Typer, csv_table: Path) -> None:
    result = run(
        app, str(csv_table), "--target", "mass", "--x1", "g", "--x2", "r",
        "--method", "imin", "--n-bins", "4", "--bootstrap", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "dropped 3 of 600 rows" in result.output
    assert "redundancy" in result.output
    assert "unique to g" in result.output


@pytest.mark.parametrize("suffix", [".parquet", ".fits"])
def test_parquet_and_fits_tables(app: typer.Typer, tmp_path: Path, suffix: str) -> None:
    frame = redundant_frame().drop(columns="kind")
    path = tmp_path / f"cat{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        Table.from_pandas(frame).write(path)
    payload = run_json(
        app, str(path), "--target", "mass", "--x1", "g", "--x2", "z",
        "--method", "gaussian_dep", "--bootstrap", "0",
    )  # fmt: skip
    assert payload["n"] == 600
    assert payload["unique1"] > 0.5
    assert payload["redundancy_err"] is None


def test_default_method_is_mmi(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    redundant_frame(n=200).to_csv(path, index=False)
    payload = run_json(
        app, str(path), "--target", "mass", "--x1", "g", "--x2", "z",
        "--n-bins", "6", "--bootstrap", "10", "--seed", "0",
    )  # fmt: skip
    assert payload["method"] == "mmi"
    assert payload["n"] == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "nope", "--x1", "g", "--x2", "r"], "'nope'"),
        (["--target", "mass", "--x1", "kind", "--x2", "r"], "'kind' is not numeric"),
        (["--target", "mass", "--x1", "g,r", "--x2", "r"], "more than once"),
    ],
)
def test_column_errors_name_file_and_column(
    app: typer.Typer, csv_table: Path, args: list[str], message: str
) -> None:
    result = run(app, str(csv_table), *args)
    assert isinstance(result.exception, InputFileError)
    assert str(result.exception).startswith(str(csv_table))
    assert message in str(result.exception)


def test_too_few_rows(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    redundant_frame(n=12).to_csv(path, index=False)
    result = run(app, str(path), "--target", "mass", "--x1", "g", "--x2", "r")
    assert isinstance(result.exception, InputFileError)
    assert "only 12 rows" in str(result.exception)


def test_missing_file_and_unknown_format(app: typer.Typer, tmp_path: Path) -> None:
    result = run(app, str(tmp_path / "none.csv"), "--target", "a", "--x1", "b", "--x2", "c")
    assert isinstance(result.exception, InputFileError)
    assert "none.csv: file not found" in str(result.exception)
    odd = tmp_path / "cat.xlsx"
    odd.write_text("x")
    result = run(app, str(odd), "--target", "a", "--x1", "b", "--x2", "c")
    assert isinstance(result.exception, InputFileError)
    assert "unknown table format '.xlsx'" in str(result.exception)


def test_unknown_method(app: typer.Typer, csv_table: Path) -> None:
    result = run(
        app, str(csv_table), "--target", "mass", "--x1", "g", "--x2", "r", "--method", "magic"
    )
    assert isinstance(result.exception, ConfigError)
    assert "choose one of" in str(result.exception)
