"""Known labels: tied latents supervised where the store has the label, free latents
audited for what they hold beyond the labels (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from astrolatent.data.ingest import IngestConfig, ingest
from astrolatent.errors import ConfigError
from astrolatent.models.vae import floored_kl, hsic, label_nll
from astrolatent.training.config import TrainConfig
from astrolatent.training.fit import fit
from tests.conftest import write_tiny_spectra

KNOWN = {
    "optim": {"batch_size": 16, "lr": 2e-3},
    "trainer": {"val_every": 20, "checkpoint_every": 10, "log_every": 5},
    "data": {"val_fraction": 0.0},
    "architecture": {"latent_dim": 6},
    "known_labels": {"names": ["rv"]},
}


@pytest.fixture(scope="module")
def half_labelled_store(tmp_path_factory):
    """96 tiny spectra (32 stars) whose rv and depth are given for half of the stars only."""
    root = tmp_path_factory.mktemp("half")
    labels_path = write_tiny_spectra(root / "fits", seed=5)
    labels = pd.read_csv(labels_path)
    star = np.arange(len(labels)) // 3
    truth = labels.copy()
    labels.loc[star % 2 == 1, ["rv", "depth"]] = np.nan
    labels.to_csv(labels_path, index=False)
    ingest([root / "fits"], root / "store", IngestConfig(workers=1, labels=str(labels_path)))
    return root / "store", truth.set_index("id"), set(labels.loc[star % 2 == 1, "id"])


def test_loss_terms_against_hand_values():
    # label NLL: 0.5 ((y - mu)^2 / (var + e^2) + log(var + e^2)), NaN labels count 0
    mu, logvar = torch.tensor([[1.0, 5.0], [0.0, 0.0]]), torch.zeros(2, 2)
    target = torch.tensor([[0.0], [float("nan")]])
    nll = label_nll(mu, logvar, target, torch.tensor([[1.0], [0.0]]))
    assert torch.allclose(nll, torch.tensor([0.5 * (1 / 2 + float(np.log(2))), 0.0]))
    # free bits: a free dim below the floor counts the floor, with no gradient
    kl = torch.tensor([[0.01, 0.01, 0.5], [0.03, 0.02, 0.7]], requires_grad=True)
    floored = floored_kl(kl, 1, 0.1)
    assert torch.allclose(floored, torch.tensor([[0.01, 0.1, 0.5], [0.03, 0.1, 0.7]]))
    floored.sum().backward()
    assert torch.equal(kl.grad, torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]))
    # HSIC: near 0 for independent samples, much larger for a copy
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 1, generator=gen), torch.randn(256, 1, generator=gen)
    assert hsic(x, y) < 0.2 * hsic(x, x + 0.1 * y)


def test_config_checks_the_known_labels(half_labelled_store, tmp_path):
    store, _, _ = half_labelled_store
    with pytest.raises(ConfigError, match=r"teff.*not a label"):
        fit(store, tmp_path / "a", {**KNOWN, "known_labels": {"names": ["teff"]}}, max_steps=2)
    with pytest.raises(ConfigError, match="free"):
        fit(
            store,
            tmp_path / "b",
            {**KNOWN, "architecture": {"latent_dim": 1}},
            max_steps=2,
        )


def test_tied_latent_tracks_its_label_on_unlabelled_spectra_and_resumes(
    half_labelled_store, tmp_path
):
    from astrolatent.training.encode import encode

    store, truth, unlabelled = half_labelled_store
    torch.set_num_threads(1)
    run = tmp_path / "run"
    fit(store, run, KNOWN, max_steps=120)
    cfg = TrainConfig.load(run / "config.yaml")
    labelled_rv = truth.loc[[i for i in truth.index if i not in unlabelled], "rv"]
    assert cfg.known_labels.names == ["rv"]
    assert cfg.known_labels.mean["rv"] == pytest.approx(labelled_rv.mean(), rel=0.3, abs=10)
    encode(run)
    latents = pd.read_parquet(run / "latents.parquet").set_index("id")
    rv_true = truth.loc[latents.index, "rv"].to_numpy()
    pred = cfg.known_labels.mean["rv"] + cfg.known_labels.std["rv"] * latents["mu_0"].to_numpy()
    hidden = latents.index.isin(list(unlabelled))
    for part in (~hidden, hidden):
        r = np.corrcoef(pred[part], rv_true[part])[0, 1]
        # chance: |r| of 48 independent pairs is below 0.37 with probability 0.99
        assert r > 0.6, r
    metrics = pd.read_csv(run / "metrics.csv")
    assert {"train/label_nll", "train/hsic"} <= set(metrics["metric"])
