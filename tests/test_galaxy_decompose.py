"""MI decomposition of trained galaxy runs: planted pointwise terms, the join's checks and
an end-to-end CLI run on a small simulated catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from astrolatent.analysis.pid import DEFAULT_METHOD
from astrolatent.cli import app
from astrolatent.errors import ConfigError, InputFileError, OutputFolderError
from astrolatent.galaxies.config import EstimatorConfig, GalaxySimulationConfig
from astrolatent.galaxies.decompose import decompose_runs, write_decomposition
from astrolatent.galaxies.simulate import write_galaxies

N = 400
# planted pointwise MI (m1, m2, m12) per class and the terms they imply
PLANTED = {
    "A": {"m": (1.0, 0.3, 1.6), "terms": (0.3, 0.7, 0.0, 0.6)},
    "B": {"m": (0.2, 0.9, 0.5), "terms": (0.2, 0.0, 0.7, -0.4)},
}
ATOMS = ("redundancy", "unique1", "unique2", "synergy")


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    cls = np.where(np.arange(N) < N // 2, "A", "B")
    frame = pd.DataFrame(
        {
            "id": np.arange(1000, 1000 + N),
            "class": cls,
            # the target separates the classes: class A below 9.5, class B above
            "y": np.where(cls == "A", 9.0, 10.0) + rng.uniform(0, 0.4, N),
            "mag_r": rng.uniform(14, 17.7, N),
            "a": rng.normal(size=N),
            "b": rng.normal(size=N),
        }
    )
    path = tmp_path / "table.parquet"
    frame.to_parquet(path, index=False)
    return path


def _write_run(
    run: Path,
    table: Path,
    inputs: list[str],
    ce: np.ndarray,
    prior_ce: np.ndarray,
    *,
    target: str = "y",
    keep: np.ndarray | None = None,
    truth_shift: float = 0.0,
    n_bins: int = 520,
) -> Path:
    """A run directory holding what the decomposition reads, in shuffled object order."""
    frame = pd.read_parquet(table)
    keep = np.arange(N) if keep is None else keep
    order = np.random.default_rng(len(inputs) + len(keep)).permutation(keep)
    EstimatorConfig.from_dict(
        {
            "data": {"table": str(table), "target": target, "inputs": inputs},
            "pdf": {"n_bins": n_bins},
        }
    ).save(run / "config.yaml")
    pd.DataFrame(
        {
            "id": frame["id"].to_numpy()[order],
            "model": 0,
            "truth": frame["y"].to_numpy()[order] + truth_shift,
            "ce": ce[order],
            "prior_ce": prior_ce[order],
        }
    ).to_parquet(run / "predictions.parquet", index=False)
    summary = {"columns": inputs, "metrics": {"mi": float(np.mean(prior_ce - ce))}}
    (run / "train_summary.json").write_text(json.dumps(summary))
    return run


def _planted_runs(tmp_path: Path, table: Path, prior_offsets=(0.0, 0.0, 0.0), **kw) -> list[Path]:
    cls = pd.read_parquet(table)["class"].to_numpy()
    h = np.random.default_rng(1).uniform(3.0, 6.0, N)
    m = np.array([PLANTED[c]["m"] for c in cls]).T  # (3, N)
    runs = []
    for k, (name, inputs) in enumerate((("r1", ["a"]), ("r2", ["b"]), ("r12", ["a", "b"]))):
        extra = kw if name == "r2" else {}
        prior = h + prior_offsets[k]
        runs.append(_write_run(tmp_path / name, table, inputs, h - m[k], prior, **extra))
    return runs


def test_default_mmi_takes_the_minimum_of_the_mean_mis(tmp_path: Path, table: Path):
    runs = _planted_runs(tmp_path, table)
    d = decompose_runs(*runs, bins=["y"], n_bins=2, n_bootstrap=20)
    r = d.result
    assert r.method == "mmi"
    m1, m2, m12 = np.mean([PLANTED[c]["m"] for c in ("A", "B")], axis=0)  # 0.6, 0.6, 1.05
    expected = (min(m1, m2), m1 - min(m1, m2), m2 - min(m1, m2), m12 - max(m1, m2))
    assert np.allclose([getattr(r, a) for a in ATOMS], expected)
    # within a class the planted terms are constant, so both methods agree there ...
    per_class = np.array([PLANTED[c]["terms"] for c in ("A", "B")])
    assert np.allclose(d.by_class.loc[["A", "B"], list(ATOMS)].to_numpy(), per_class)
    # ... and the classes' atoms do not average to the overall ones
    assert not np.allclose(per_class.mean(axis=0), expected)
    assert "do not average" in d.to_dict()["note"]
    with pytest.raises(ConfigError, match="method="):
        decompose_runs(*runs, method="mean")


def test_planted_terms_are_recovered_overall_per_class_and_in_bins(tmp_path: Path, table: Path):
    runs = _planted_runs(tmp_path, table)
    d = decompose_runs(*runs, bins=["y", "mag_r"], n_bins=2, method="pointwise", n_bootstrap=50)
    per_class = np.array([PLANTED[c]["terms"] for c in ("A", "B")])
    overall = per_class.mean(axis=0)
    r = d.result
    assert r.method == "pointwise" and r.n == N
    assert np.allclose([getattr(r, a) for a in ATOMS], overall)
    assert r.mi12 == pytest.approx(np.mean([1.6, 0.5]))
    assert all(getattr(r, f"{a}_err") > 0 for a in ("unique1", "unique2", "synergy"))
    assert d.by == "class"
    assert np.allclose(d.by_class.loc[["A", "B"], list(ATOMS)].to_numpy(), per_class)
    assert np.allclose(d.by_class[[f"{a}_err" for a in ATOMS]].to_numpy(), 0.0)
    # two equal-count bins of the target are the two classes
    assert np.allclose(d.by_bin["y"][list(ATOMS)].to_numpy(), per_class)
    assert d.by_bin["mag_r"]["n"].tolist() == [N // 2, N // 2]
    assert d.info["prior"]["shared"]

    out = write_decomposition(d, tmp_path / "out")
    payload = json.loads((tmp_path / "out" / "decomposition.json").read_text())
    for key in ("redundancy", "synergy_err", "method", "n", "x1", "x2", "target", "by_class"):
        assert key in payload
    assert payload["x1"] == ["a"] and payload["target"] == "y"
    assert payload["by_class"]["B"]["synergy"] == pytest.approx(-0.4)
    assert [b["n"] for b in payload["by_bin"]["y"]] == [N // 2, N // 2]
    assert payload["runs"]["x12"]["metrics"]["mi"] == pytest.approx(r.mi12)
    pointwise = pd.read_parquet(out["pointwise"])
    assert len(pointwise) == N and set(pointwise["id"]) == set(range(1000, 1000 + N))
    row = pointwise.set_index("id").loc[1000]
    assert row["class"] == "A" and row["synergy"] == pytest.approx(0.6)
    for name in ("stack_y", "stack_mag_r", "by_class"):
        assert out[name].is_file() and out[name].stat().st_size > 1000
    # a rerun replaces only its own figures; a user's --out folder is refused untouched
    mine = tmp_path / "out" / "my_plot.png"
    mine.write_bytes(b"mine")
    (tmp_path / "out" / "stack_g.png").write_bytes(b"an earlier run's bins")
    write_decomposition(d, tmp_path / "out")
    assert mine.read_bytes() == b"mine" and not (tmp_path / "out" / "stack_g.png").exists()
    user = tmp_path / "desk"
    user.mkdir()
    (user / "stack_thesis.png").write_bytes(b"mine")
    with pytest.raises(OutputFolderError, match="desk: --out exists, is not empty"):
        write_decomposition(d, user)
    assert [p.name for p in user.iterdir()] == ["stack_thesis.png"]


def test_different_priors_become_one_common_prior(tmp_path: Path, table: Path):
    """With h = mean of the runs' priors (+0.1 here) every m_k moves by 0.1: only the
    redundancy changes."""
    runs = _planted_runs(tmp_path, table, prior_offsets=(0.0, 0.3, 0.0))
    d = decompose_runs(*runs, by=None, bins=[], method="pointwise", n_bootstrap=0)
    expected = np.mean([PLANTED[c]["terms"] for c in ("A", "B")], axis=0) + np.array([0.1, 0, 0, 0])
    assert np.allclose([getattr(d.result, a) for a in ATOMS], expected)
    assert not d.info["prior"]["shared"]
    assert d.info["prior"]["max_abs_difference"] == pytest.approx(0.3)
    assert d.by_class is None and d.by_bin == {}


def test_the_join_rejects_mismatched_runs(tmp_path: Path, table: Path):
    fewer = _planted_runs(tmp_path / "fewer", table, keep=np.arange(50, N))
    with pytest.raises(InputFileError, match=r"r2: holds out 350 objects .* --common"):
        decompose_runs(*fewer)
    d = decompose_runs(*fewer, common=True, n_bootstrap=0)
    assert d.result.n == 350 and d.info["n_dropped"] == {"x1": 50, "x2": 0, "x12": 50}

    shifted = _planted_runs(tmp_path / "truth", table, truth_shift=0.5)
    with pytest.raises(
        InputFileError, match=r"r2: the truth of 400 objects differs .*\(e\.g\. id \d+: "
    ):
        decompose_runs(*shifted)
    bins = _planted_runs(tmp_path / "bins", table, n_bins=100)
    with pytest.raises(InputFileError, match=r"target and bins .* differ"):
        decompose_runs(*bins)
    r1, r2, r12 = _planted_runs(tmp_path / "joint", table)
    with pytest.raises(InputFileError, match=r"r1: the joint run lacks \['b'\]"):
        decompose_runs(r1, r2, r1)
    with pytest.raises(InputFileError, match=r"--runs names the same run twice"):
        decompose_runs(r1, r1, r12)
    predictions = pd.read_parquet(r2 / "predictions.parquet")
    predictions.loc[3, "ce"] = np.nan
    predictions.to_parquet(r2 / "predictions.parquet")
    with pytest.raises(
        InputFileError, match=r"r2/predictions\.parquet: non-finite values in \['ce'\]"
    ):
        decompose_runs(r1, r2, r12)
    with pytest.raises(InputFileError, match=r"lacks predictions\.parquet"):
        (r2 / "predictions.parquet").unlink()
        decompose_runs(r1, r2, r12)


def test_cli_trains_and_decomposes_a_small_simulated_catalogue(tmp_path: Path):
    write_galaxies(tmp_path / "sim", GalaxySimulationConfig(n=300, random_state=3), images=False)
    catalog = tmp_path / "sim" / "catalog.parquet"
    runner = CliRunner()
    runs = []
    for name, inputs in (
        ("opt", "optical,ebv"),
        ("morph", "morph,ebv"),
        ("both", "optical,morph,ebv"),
    ):
        run = tmp_path / name
        args = ["galaxy", "train", str(catalog), "--target", "logmass", "--inputs", inputs]
        args += ["--run", str(run), "--cv-folds", "2", "--max-epochs", "1", "--threads", "1"]
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        runs.append(str(run))
    result = runner.invoke(
        app, ["galaxy", "decompose", "--runs", ",".join(runs), "--bootstrap", "20", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["n"] == 300 and payload["method"] == DEFAULT_METHOD == "mmi"
    assert payload["x1"] == ["optical", "ebv"] and payload["x2"] == ["morph", "ebv"]
    terms = [payload[a] for a in ATOMS]
    assert payload["mi12"] == pytest.approx(sum(terms))
    for key in ("x1", "x2", "x12"):  # the joined MI is each run's own held-out MI
        assert payload[f"mi{key[1:]}"] == pytest.approx(payload["runs"][key]["metrics"]["mi"])
    assert set(payload["by_class"]) == {"passive", "star-forming"}
    assert set(payload["by_bin"]) == {"logmass", "mag_r"}
    out = Path(payload["out"])
    assert out == tmp_path / "both" / "decomposition" / "opt_vs_morph"
    for name in ("decomposition.json", "pointwise.parquet", "stack_logmass.png", "by_class.png"):
        assert (out / name).is_file()

    # the study's pointwise measure on the same runs: same MIs, other atoms
    args = ["galaxy", "decompose", "--runs", ",".join(runs), "--bootstrap", "0", "--json"]
    result = runner.invoke(app, [*args, "--method", "pointwise"])
    assert result.exit_code == 0, result.output
    pointwise = json.loads(result.output)
    assert pointwise["method"] == "pointwise"
    assert pointwise["mi12"] == pytest.approx(payload["mi12"])
    assert pointwise["redundancy"] <= payload["redundancy"] + 1e-9  # E min <= min E

    # the human-readable form, and a clear error for a wrong --runs
    result = runner.invoke(app, ["galaxy", "decompose", "--runs", ",".join(runs)])
    assert result.exit_code == 0 and "star-forming" in result.output
    assert "do not average" in result.output
    result = runner.invoke(app, ["galaxy", "decompose", "--runs", ",".join(runs[:2])])
    assert isinstance(result.exception, ConfigError) and "give three runs" in str(result.exception)
