"""Galaxy estimators: short CPU trainings, run-directory contents and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from astrolatent.cli import app
from astrolatent.errors import ConfigError, InputFileError
from astrolatent.galaxies import metrics
from astrolatent.galaxies.config import EstimatorConfig, GalaxySimulationConfig
from astrolatent.galaxies.simulate import write_galaxies
from astrolatent.galaxies.train import (
    fit_estimator,
    load_data,
    load_estimator,
    make_splits,
    predict,
)

FAST = {"num_threads": 1}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    write_galaxies(out, GalaxySimulationConfig(n=1500, random_state=5), images=False)
    return out / "catalog.parquet"


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("simimg")
    write_galaxies(out, GalaxySimulationConfig(n=60, image_size=16, random_state=2))
    return out


def _config(table: Path, **sections) -> EstimatorConfig:
    data = {"table": str(table), "target": "logmass", **sections.pop("data", {})}
    trainer = {**FAST, **sections.pop("trainer", {})}
    return EstimatorConfig.from_dict({"data": data, "trainer": trainer, **sections})


def test_splits_are_seeded_and_cross_fitting_holds_out_everything_once():
    one = make_splits(100, cv_folds=0, val_fraction=0.2, test_fraction=0.1, random_state=0)
    again = make_splits(100, cv_folds=0, val_fraction=0.2, test_fraction=0.1, random_state=0)
    assert [len(one[0][r]) for r in ("train", "val", "test")] == [70, 20, 10]
    assert all(np.array_equal(one[0][r], again[0][r]) for r in one[0])
    folds = make_splits(100, cv_folds=4, val_fraction=0.1, test_fraction=0.1, random_state=1)
    tests = np.concatenate([f["test"] for f in folds])
    assert np.array_equal(np.sort(tests), np.arange(100))
    for f in folds:
        assert len(np.intersect1d(f["train"], f["val"])) == 0
        assert len(np.union1d(np.union1d(f["train"], f["val"]), f["test"])) == 100
    with pytest.raises(ConfigError, match="cv_folds=60"):
        make_splits(100, cv_folds=60, val_fraction=0.1, test_fraction=0.1, random_state=0)


def test_short_training_beats_the_prior(catalog: Path, tmp_path: Path):
    config = _config(catalog, data={"inputs": ["optical", "z", "ebv"]}, trainer={"max_epochs": 12})
    run = tmp_path / "run"
    events: list[dict] = []
    summary = fit_estimator(config, run, progress=events.append)
    m = summary.metrics
    assert m["ce"] < m["prior_ce"] - 0.5  # clearly better than the label histogram
    assert m["median"]["sigma_mad"] < 0.4 * m["truth_std"]
    assert abs(m["median"]["bias"]) < 0.1
    assert events[-1]["finished"] and events[0]["epoch"] == 1

    for name in ("config.yaml", "model.pt", "metrics.csv", "split.parquet", "train_summary.json"):
        assert (run / name).is_file()
    preds = pd.read_parquet(run / "predictions.parquet")
    assert list(preds.columns) == [
        "id", "model", "truth", "mean", "median", "mode", "ce", "prior_ce", "crps"
    ]  # fmt: skip
    split = pd.read_parquet(run / "split.parquet")
    test_ids = split.loc[split["role"] == "test", "id"]
    assert set(preds["id"]) == set(test_ids) and len(preds) == m["n"]
    latents = pd.read_parquet(run / "latents.parquet")
    assert list(latents.columns[3:]) == [f"s_{j}" for j in range(8)]
    assert len(latents) == summary.n_objects
    assert json.loads((run / "train_summary.json").read_text())["latent_dim"] == 8
    history = pd.read_csv(run / "metrics.csv")
    assert {"train/loss", "val/ce", "lr"} <= set(history["metric"])

    payload = torch.load(run / "model.pt", weights_only=True)
    assert {"format_version", "config", "state_dict", "columns"} <= set(payload)
    model, saved, columns = load_estimator(run / "model.pt")
    assert saved.encoder.latent_dim == 8 and columns == summary.columns
    data = load_data(saved)
    order = {v: i for i, v in enumerate(data.ids)}
    index = np.array([order[i] for i in preds["id"][:5]])
    probs, latent = predict(model, data, index)
    edges = metrics.bin_edges(saved.pdf.target_min, saved.pdf.target_max, saved.pdf.n_bins)
    ce = metrics.cross_entropies(probs, preds["truth"][:5].to_numpy(), edges)
    assert np.allclose(ce, preds["ce"][:5], atol=1e-4)
    assert np.allclose(
        latent, latents.set_index("id").loc[preds["id"][:5], "s_0":].to_numpy(), atol=1e-5
    )
    with pytest.raises(ConfigError, match="already holds a run"):
        fit_estimator(config, run)


def test_training_is_reproducible(catalog: Path, tmp_path: Path):
    config = _config(catalog, data={"inputs": ["band_r", "z"]}, trainer={"max_epochs": 2})
    fit_estimator(config, tmp_path / "a")
    fit_estimator(config, tmp_path / "b")
    first = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    second = pd.read_parquet(tmp_path / "b" / "predictions.parquet")
    pd.testing.assert_frame_equal(first, second)


def test_cross_fitting_with_contrastive_loss(catalog: Path, tmp_path: Path):
    config = _config(
        catalog,
        data={"inputs": ["optical"], "cv_folds": 2},
        contrastive={"enabled": True},
        pdf={"label_sigma_bins": 0.0},
        trainer={"max_epochs": 1},
    )
    summary = fit_estimator(config, tmp_path / "cv")
    preds = pd.read_parquet(tmp_path / "cv" / "predictions.parquet")
    assert sorted(preds["id"]) == sorted(pd.read_parquet(catalog)["id"])
    assert set(preds["model"]) == {0, 1}
    assert (tmp_path / "cv" / "model_fold1.pt").is_file()
    assert len(pd.read_parquet(tmp_path / "cv" / "latents.parquet")) == 2 * summary.n_objects
    history = pd.read_csv(tmp_path / "cv" / "metrics.csv")
    assert {"train/mse", "train/contrastive", "train/consistency"} <= set(history["metric"])


def test_image_model_smoke(tiny_images: Path, tmp_path: Path):
    config = _config(
        tiny_images / "catalog.parquet",
        data={"inputs": ["ebv"], "images": str(tiny_images / "images.npy")},
        encoder={"channels": [4, 8], "inception": True},
        contrastive={"enabled": True},
        optim={"batch_size": 16},
        trainer={"max_epochs": 1},
    )
    summary = fit_estimator(config, tmp_path / "img")
    assert summary.latent_dim == 16 and summary.columns == ["ebv"]
    latents = pd.read_parquet(tmp_path / "img" / "latents.parquet")
    assert latents.shape == (60, 3 + 16)
    model, _, _ = load_estimator(tmp_path / "img" / "model.pt")
    assert model.image_shape == (5, 16, 16)


def test_input_errors_are_clear(catalog: Path, tiny_images: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="also an input"):
        fit_estimator(_config(catalog, data={"inputs": ["logmass"]}), tmp_path / "a")
    with pytest.raises(ConfigError, match="neither a column group"):
        fit_estimator(_config(catalog, data={"inputs": ["wise"]}), tmp_path / "b")
    wrong = _config(catalog, data={"inputs": ["ebv"], "images": str(tiny_images / "images.npy")})
    with pytest.raises(InputFileError, match="60 images for a table of 1500 rows"):
        fit_estimator(wrong, tmp_path / "c")
    with pytest.raises(ConfigError, match="images"):
        EstimatorConfig.from_dict({"data": {"table": "t", "target": "y"}})


def test_cli_simulate_groups_train(tmp_path: Path):
    runner = CliRunner()
    sim = tmp_path / "sim"
    result = runner.invoke(
        app, ["galaxy", "simulate", str(sim), "--n", "300", "--no-images", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n"] == 300
    result = runner.invoke(app, ["galaxy", "groups", str(sim / "catalog.parquet"), "--json"])
    groups = json.loads(result.output)
    assert groups["ir"] == ["mag_W1", "mag_W2", "err_W1", "err_W2"]
    assert groups["morph"] == ["morph_n", "morph_q", "morph_r50", "morph_r90"]
    args = ["galaxy", "train", str(sim / "catalog.parquet"), "--target", "logmass"]
    args += ["--inputs", "optical,z", "--run", str(tmp_path / "run"), "--max-epochs", "2"]
    result = runner.invoke(app, [*args, "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["metrics"]["n"] == 45 and summary["models"][0]["epochs"] == 2
    result = runner.invoke(app, [*args[:-4], "--inputs", "nope", "--run", str(tmp_path / "r2")])
    assert isinstance(result.exception, ConfigError)
