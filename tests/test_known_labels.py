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
from tests.conftest import tiny_analysis, write_tiny_spectra

KNOWN = {
    "optim": {"batch_size": 16, "lr": 2e-3},
    "trainer": {"val_every": 20, "checkpoint_every": 10, "log_every": 5},
    "data": {"val_fraction": 0.0},
    "architecture": {"latent_dim": 6},
    "known_labels": {"names": ["rv"]},
}


@pytest.fixture(scope="module")
def partly_labelled_store(tmp_path_factory):
    """96 tiny spectra (32 stars) whose rv and depth are given for two stars in three."""
    root = tmp_path_factory.mktemp("half")
    labels_path = write_tiny_spectra(root / "fits", seed=5)
    labels = pd.read_csv(labels_path)
    star = np.arange(len(labels)) // 3
    truth = labels.copy()
    labels.loc[star % 3 == 0, ["rv", "depth"]] = np.nan
    labels.to_csv(labels_path, index=False)
    ingest([root / "fits"], root / "store", IngestConfig(workers=1, labels=str(labels_path)))
    return root / "store", truth.set_index("id"), set(labels.loc[star % 3 == 0, "id"])


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


def test_config_checks_the_known_labels(partly_labelled_store, tmp_path):
    store, _, _ = partly_labelled_store
    with pytest.raises(ConfigError, match=r"teff.*not a label"):
        fit(store, tmp_path / "a", {**KNOWN, "known_labels": {"names": ["teff"]}}, max_steps=2)
    with pytest.raises(ConfigError, match="free"):
        fit(
            store,
            tmp_path / "b",
            {**KNOWN, "architecture": {"latent_dim": 1}},
            max_steps=2,
        )
    # a known-label option without known labels would change nothing: refused, not ignored
    with pytest.raises(ConfigError, match=r"known_labels\.independence set, but no label is known"):
        fit(store, tmp_path / "c", {"known_labels": {"independence": 1.0}}, max_steps=2)
    assert not (tmp_path / "c").exists()
    # a whole saved section (names listed, even empty; an older format's defaults) still loads
    saved = {"names": [], "label_loss": "nll", "tied_kl": True, "independence": "1e-1"}
    fit(store, tmp_path / "d", {"known_labels": saved}, max_steps=2)
    assert (tmp_path / "d" / "config.yaml").is_file()


def test_tied_latent_tracks_its_label_on_unlabelled_spectra_and_resumes(
    partly_labelled_store, tmp_path
):
    from astrolatent.training.encode import encode

    store, truth, unlabelled = partly_labelled_store
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
        # chance: |r| of 32 (64) independent pairs is below 0.45 (0.32) with probability 0.99
        assert r > 0.6, r
    metrics = pd.read_csv(run / "metrics.csv")
    assert {"train/label_nll", "train/hsic"} <= set(metrics["metric"])
    # analyze reads the roles from the run: rv tied to dim 0, depth (not known) audited
    from astrolatent.workflows.analyze import analyze_run

    summary = analyze_run(run, tiny_analysis())
    assert [r["role"] for r in summary["roles"]] == ["tied"] + ["free"] * 5
    rv = summary["known"]["rv"]
    assert rv["dim"] == 0 and rv["n"] == summary["labels"]["rv"]["n"] and 60 <= rv["n"] <= 64
    assert rv["r_info"] > 0.6
    assert set(summary["free"]["labels"]) == {"depth"} and set(summary["free"]["leakage"]) == {"rv"}
    # the report reads the audit
    from astrolatent.report.html import build_report

    page = build_report(run).read_text()
    assert "What the spectra hold beyond your labels" in page and "Leakage of the known" in page


@pytest.mark.parametrize("extra", [{}, {"adversary": 1.0}], ids=["default", "adversary"])
def test_cli_known_labels_resume_exactly(partly_labelled_store, tmp_path, extra):
    import typer
    import yaml
    from typer.testing import CliRunner

    from astrolatent.cli.training import register

    store, _, _ = partly_labelled_store
    torch.set_num_threads(1)
    options = {k: v for k, v in KNOWN.items() if k != "known_labels"}
    options["loss"] = {"kl_start": 5, "kl_end": 20}
    reference = tmp_path / "reference"
    fit(store, reference, {**options, "known_labels": {"names": ["rv"], **extra}}, max_steps=30)
    if extra:
        options["known_labels"] = extra
    conf = tmp_path / "options.yaml"
    conf.write_text(yaml.safe_dump(options))
    app = typer.Typer()
    register(app)
    run = tmp_path / "run"
    base = ["train", str(store), "--run", str(run), "--config", str(conf)]
    res = CliRunner().invoke(app, [*base, "--known-labels", "rv", "--max-steps", "20"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        app, ["train", str(store), "--run", str(run), "--resume", "--max-steps", "30"]
    )
    assert res.exit_code == 0, res.output
    assert "resumed at step 20" in res.output
    a = torch.load(reference / "model.pt", weights_only=True)
    b = torch.load(run / "model.pt", weights_only=True)
    assert a["config"]["known_labels"] == b["config"]["known_labels"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    res = CliRunner().invoke(app, [*base, "--resume", "--known-labels", "rv"])
    assert isinstance(res.exception, ConfigError)


def _synthetic_latents(leak: bool, n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Latents of a run with teff, logg known (dims 0, 1): dim 2 free and a copy of teff
    (``leak``) or independent noise, dim 3 free and tracking the hidden ebv, dim 4 collapsed.
    teff and logg are labelled for 30% of the spectra only."""
    rng = np.random.default_rng(seed)
    teff, logg, ebv = rng.normal(size=(3, n))
    control = rng.random(n)
    mu = np.column_stack(
        [
            teff + 0.1 * rng.normal(size=n),
            logg + 0.1 * rng.normal(size=n),
            teff + 0.05 * rng.normal(size=n) if leak else rng.normal(size=n),
            ebv + 0.1 * rng.normal(size=n),
            1e-3 * rng.normal(size=n),
        ]
    )
    logvar = np.column_stack([np.full((n, 4), np.log(0.01)), np.zeros(n)])
    labelled = rng.random(n) < 0.3
    table = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "row": np.arange(n)})
    for j in range(5):
        table[f"mu_{j}"], table[f"logvar_{j}"] = mu[:, j], logvar[:, j]
    table["teff"] = np.where(labelled, 5000 + 500 * teff, np.nan)
    table["logg"] = np.where(labelled, 4 + 0.3 * logg, np.nan)
    table["ebv"], table["control"] = ebv, control
    return table


AUDIT = dict(n_bootstrap=4, n_permutations=100, max_samples=400, split="threshold")


@pytest.mark.parametrize("leak", [False, True])
def test_audit_contract_and_leakage(leak, tmp_path, capsys):
    from astrolatent.outputs.summaries import load_summary
    from astrolatent.workflows.analyze import AnalyzeConfig, analyze_latents

    latents = _synthetic_latents(leak)
    summary = analyze_latents(
        latents,
        AnalyzeConfig(labels=["ebv", "control"], **AUDIT),
        tmp_path / "analysis",
        known={"teff": 0, "logg": 1},
        kl_floor=0.05,
    )
    assert summary["format_version"] == 3 and summary["n_latent"] == 5
    assert summary["roles"] == [
        {"dim": 0, "role": "tied", "label": "teff"},
        {"dim": 1, "role": "tied", "label": "logg"},
        *({"dim": d, "role": "free", "label": None} for d in (2, 3, 4)),
    ]
    # known labels are analysed though --labels did not name them, on their labelled rows
    assert set(summary["labels"]) == {"ebv", "control", "teff", "logg"}
    n_labelled = int(latents["teff"].notna().sum())
    for name, dim in (("teff", 0), ("logg", 1)):
        k = summary["known"][name]
        assert set(k) == {"dim", "r_info", "mi", "mi_err", "n"}
        assert k["dim"] == dim and k["n"] == n_labelled and k["r_info"] > 0.9
    for entry in summary["labels"].values():
        assert len(entry["per_dim"]) == 5  # every dim, tied ones included
        assert {"best_dim", "r_info", "best_informative_dim", "r_info_informative"} <= set(entry)
    free = summary["free"]
    assert free["dims"] == [2, 3]  # dim 4 is collapsed
    assert set(free["labels"]) == {"ebv", "control"}
    ebv = free["labels"]["ebv"]
    assert {"best_dim", "r_info", "cmi_given_known", "p_value"} <= set(ebv)
    assert ebv["best_dim"] == 3 and ebv["r_info"] > 0.9
    assert ebv["cmi_given_known"] > 0.5 and ebv["p_value"] < 0.05
    # no local permutation reaches 0.5 nats: the p-value is the floor of 100 over 3 free dims
    assert ebv["p_floor"] == pytest.approx(3 / 101) and ebv["p_value"] == pytest.approx(3 / 101)
    assert free["labels"]["control"]["cmi_given_known"] < 0.05
    assert set(free["leakage"]) == {"teff", "logg"}
    teff = free["leakage"]["teff"]
    assert {"max_mi", "p_value", "r2"} <= set(teff)
    if leak:
        assert teff["max_mi"] > 1.0 and teff["p_value"] < 0.05 and teff["r2"] > 0.8
        assert teff["dim"] == 2
    else:
        assert teff["max_mi"] < 0.15 and teff["p_value"] > 0.05 and teff["r2"] < 0.1
    # not flagged: no free dim significant (max statistic over the free dims), no R^2; the
    # largest of 3 KSG estimates on ~120 labelled rows reads up to ~0.15 nats by chance
    logg = free["leakage"]["logg"]
    assert logg["max_mi"] < 0.15 and logg["p_value"] > 0.05 and logg["r2"] < 0.1
    # the CLI prints the audit
    from astrolatent.cli.analysis import _print_audit

    _print_audit(summary, 0.05)
    printed = capsys.readouterr().out
    assert "known labels: teff (dim 0" in printed and "informative free dims [2, 3]" in printed
    assert "beyond the known labels: ebv (dim 3" in printed and "p <= 0.0297" in printed
    assert "note:" not in printed  # 3 / 101 is below 0.05
    # at alpha 0.01 the floor of 100 permutations is too high, and the CLI says how many reach it
    _print_audit(summary, 0.01)
    printed = capsys.readouterr().out
    assert "cannot give a conditional p below 0.0297; --n-permutations 300 or more" in printed
    # the written summary loads with the reader
    (tmp_path / "analysis").rename(tmp_path / "analysis_")
    (tmp_path / "run" / "analysis").mkdir(parents=True)
    (tmp_path / "analysis_" / "summary.json").rename(tmp_path / "run" / "analysis" / "summary.json")
    assert load_summary(tmp_path / "run")["free"]["dims"] == free["dims"]


def test_a_p_value_at_its_floor_is_told_apart():
    from astrolatent.outputs.summaries import p_at_floor

    assert p_at_floor({"p_value": 3 / 101, "p_floor": 3 / 101})
    assert not p_at_floor({"p_value": 0.2, "p_floor": 3 / 101})
    assert not p_at_floor({"p_value": None, "p_floor": 3 / 101})  # no finite p
    assert not p_at_floor({"p_value": 0.01})  # a summary written before p_floor


def test_a_dim_held_at_the_kl_floor_is_not_informative(tmp_path):
    from astrolatent.workflows.analyze import AnalyzeConfig
    from astrolatent.workflows.audit import informative_free_dims

    rng = np.random.default_rng(1)
    n = 400
    # dim 0: KL rate about 1 nat; dim 1: spread a little (0.3) with wide posteriors, so its
    # KL rate (~0.06 nats) sits at a floor of 0.05 nats although its dispersion counts it
    mu = np.column_stack([np.zeros((n, 3)), rng.normal(size=n), 0.3 * rng.normal(size=n)])
    logvar = np.column_stack([np.zeros((n, 3)), np.full(n, np.log(0.1)), np.full(n, np.log(0.95))])
    config = AnalyzeConfig(split="threshold")
    assert informative_free_dims(mu, logvar, [3, 4], 0.0, config) == [3, 4]
    assert informative_free_dims(mu, logvar, [3, 4], 0.05, config) == [3]


def test_known_label_arrays_standardise_and_read_errors():
    from types import SimpleNamespace

    from astrolatent.training.config import KnownLabelsConfig
    from astrolatent.training.datamodule import known_label_arrays

    meta = pd.DataFrame(
        {
            "row": [2, 0, 1],  # metadata rows in any order; row 3 is not in the table
            "teff": [6000.0, 5000.0, np.nan],
            "teff_err": [100.0, np.nan, 50.0],
            "rv": [10.0, -10.0, 0.0],
        }
    )
    store = SimpleNamespace(metadata=meta, n_rows=4)
    config = KnownLabelsConfig(
        names=["teff", "rv"], mean={"teff": 5500.0, "rv": 0.0}, std={"teff": 500.0, "rv": 10.0}
    )
    values, var = known_label_arrays(store, config)
    assert values.shape == var.shape == (4, 2)
    assert np.allclose(values[:, 0], [-1.0, np.nan, 1.0, np.nan], equal_nan=True)
    assert np.allclose(values[:, 1], [-1.0, 0.0, 1.0, np.nan], equal_nan=True)
    assert np.allclose(var[:, 0], [0.0, 0.01, 0.04, 0.0]) and not var[:, 1].any()


def test_known_labels_train_in_bf16(partly_labelled_store, tmp_path):
    store, _, _ = partly_labelled_store
    torch.set_num_threads(1)
    options = {**KNOWN, "trainer": {**KNOWN["trainer"], "precision": "bf16-mixed"}}
    summary = fit(store, tmp_path / "run", options, max_steps=6)
    assert summary.steps == 6 and np.isfinite(summary.final_train_loss)


def test_conditional_prior_is_learned_and_resumes(partly_labelled_store, tmp_path):
    store, _, _ = partly_labelled_store
    torch.set_num_threads(1)
    options = {
        **KNOWN,
        "loss": {"kl_start": 0, "kl_end": 5},
        "known_labels": {"names": ["rv"], "conditional_prior": True, "independence": 0.0},
    }
    fit(store, tmp_path / "a", options, max_steps=20)
    fit(store, tmp_path / "b", options, max_steps=10)
    fit(store, tmp_path / "b", resume=True, max_steps=20)
    a, b = (
        torch.load(tmp_path / r / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for r in ("a", "b")
    )
    assert a["prior.weight"].shape == (5, 1) and a["prior.weight"].abs().sum() > 0
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_leakage_is_what_the_free_latents_hold(tmp_path):
    """A free dim whose MEAN follows teff over 2% of its posterior width passes on almost
    nothing of teff (its KL rate bounds it): the leakage, measured on draws of the latents,
    stays at the noise level, while the means' MI beside it shows the dependence."""
    from astrolatent.workflows.analyze import AnalyzeConfig, analyze_latents

    latents = _synthetic_latents(leak=False, n=1000)
    teff = (latents["mu_0"] - latents["mu_0"].mean()) / latents["mu_0"].std()
    latents["mu_2"], latents["logvar_2"] = 0.02 * teff, 0.0  # sd 1, mean spread 0.02
    summary = analyze_latents(
        latents,
        AnalyzeConfig(labels=["ebv"], **AUDIT),
        tmp_path / "analysis",
        known={"teff": 0, "logg": 1},
        kl_floor=0.05,
    )
    leak = summary["free"]["leakage"]["teff"]
    assert leak["dim_means"] == 2 and leak["max_mi_means"] > 1.0 and leak["r2_means"] > 0.8
    assert leak["max_mi"] < 0.1 and leak["p_value"] > 0.05 and leak["r2"] < 0.1


def test_a_free_dim_that_spends_its_free_kl_on_a_narrow_posterior_is_not_informative():
    """Free bits pay for a posterior narrower than the prior around a mean that barely
    moves: KL 0.32 nats, far above the floor, but nothing passes through it."""
    from astrolatent.analysis.dimensions import channel_information
    from astrolatent.workflows.analyze import AnalyzeConfig
    from astrolatent.workflows.audit import informative_free_dims

    rng = np.random.default_rng(0)
    n = 2000
    signal = rng.normal(size=n)
    mu = np.column_stack([signal, signal + 0.01 * rng.normal(size=n), 0.03 * rng.normal(size=n)])
    logvar = np.column_stack([np.full(n, -6.0), np.full(n, -6.0), np.full(n, np.log(0.25))])
    passed = channel_information(mu, logvar)
    assert passed[2] < 0.01 and passed[1] > 2.0
    config = AnalyzeConfig(split="threshold")
    assert informative_free_dims(mu, logvar, [1, 2], 0.05, config) == [1]
    assert informative_free_dims(mu, logvar, [1, 2], 0.0, config) == [1, 2]  # no floor
