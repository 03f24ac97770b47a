"""``analyze`` on latents with planted factors: counts, best latents, significance, outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from astrolatent.errors import ConfigError, InputFileError, RunError
from astrolatent.outputs.summaries import load_summary
from astrolatent.workflows.analyze import AnalyzeConfig, analyze_latents


def _planted(n=1500, d=8, seed=0):
    rng = np.random.default_rng(seed)
    teff = rng.uniform(4000, 7000, n)
    rv = rng.uniform(-100, 100, n)
    hidden = rng.normal(size=n)
    mu = rng.normal(0, 0.004, (n, d))  # collapsed dims sit at the prior's centre
    logvar = np.full((n, d), -0.002) + rng.normal(0, 0.001, (n, d))
    mu[:, 2] = (teff - 5500) / 900 + rng.normal(0, 0.2, n)
    mu[:, 5] = np.abs(rv) / 60 + rng.normal(0, 0.1, n)  # non-monotonic: Pearson misses the sign
    mu[:, 6] = hidden
    logvar[:, [2, 5, 6]] = -4.0
    table = pd.DataFrame(
        {f"mu_{j}": mu[:, j] for j in range(d)} | {f"logvar_{j}": logvar[:, j] for j in range(d)}
    )
    table["id"] = [f"s{i}" for i in range(n)]
    table["teff"], table["rv"], table["control"] = teff, rv, rng.uniform(0, 1, n)
    return table, mu


def test_planted_factors_are_found_and_the_control_is_not(tmp_path):
    table, mu = _planted()
    wave = np.linspace(4000, 5000, 200)
    basis = np.random.default_rng(1).normal(size=(8, 200))
    spectra = mu @ basis + np.random.default_rng(2).normal(0, 0.01, (len(mu), 200))

    def scores(rows, k):
        centred = spectra[rows] - spectra[rows].mean(0)
        u, s, _vt = np.linalg.svd(centred, full_matrices=False)
        return (u * s)[:, :k], (s**2 / np.sum(s**2))[:k]

    config = AnalyzeConfig(n_bootstrap=6, n_permutations=40, ceiling_components=8)
    summary = analyze_latents(
        table, config, tmp_path, spectra_scores=scores, decode=lambda z: z @ basis, wave=wave
    )
    assert summary["informative"]["dispersion"]["dims"] == [2, 5, 6]
    assert summary["informative"]["kl"]["dims"] == [2, 5, 6]
    assert summary["informative"]["agreed"] == [2, 5, 6]
    labels = summary["labels"]
    assert (
        labels["teff"]["best_dim"] == 2
        and labels["teff"]["r_info"] >= 0.8
        and labels["teff"]["significant"]
    )
    assert labels["rv"]["best_dim"] == 5 and labels["rv"]["r_info"] >= 0.8
    assert abs(np.corrcoef(mu[:, 5], table["rv"])[0, 1]) < 0.1  # what Pearson would have said
    assert labels["control"]["significant_dims"] == []
    assert labels["teff"]["mi_err"] > 0 and 0 < labels["teff"]["p_value"] < 0.05
    assert set(summary["baseline_pca"]["labels"]) == {"teff", "rv", "control"}
    assert summary["ceiling"]["teff"]["r"] > 0.9
    assert summary["all_latents"]["teff"]["r"] > 0.9
    assert summary["disentanglement"]["mig"] > summary["baseline_pca"]["disentanglement"]["mig"]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["labels"]["teff"]["per_dim"][2]["dim"] == 2
    for name in (
        "informative_dims.png",
        "latent_mi_ksg.png",
        "latent_mi_hist_teff.png",
        "scatter_rv.png",
        "traversal_dim2.png",
        "mi_per_dim.csv",
    ):
        assert (tmp_path / name).is_file(), name


def test_a_label_spread_over_two_latents_is_told_apart_from_a_missing_one(tmp_path):
    """Two factors mixed at 45 degrees over two latents: each factor's best single latent is
    weak (r_I ~ 0.7), but all latents together predict it; the control stays near 0."""
    rng = np.random.default_rng(3)
    n, d = 1500, 6
    a, b = rng.uniform(-1.7, 1.7, (2, n))
    mu = rng.normal(0, 0.004, (n, d))
    mu[:, 1], mu[:, 4] = (a + b) / np.sqrt(2), (a - b) / np.sqrt(2)
    logvar = np.full((n, d), -0.002)
    logvar[:, [1, 4]] = -4.0
    table = pd.DataFrame(
        {f"mu_{j}": mu[:, j] for j in range(d)} | {f"logvar_{j}": logvar[:, j] for j in range(d)}
    )
    table["a"], table["control"] = a, rng.uniform(0, 1, n)
    config = AnalyzeConfig(n_bootstrap=4, n_permutations=20)
    summary = analyze_latents(table, config, tmp_path)
    assert summary["labels"]["a"]["r_info"] < 0.8
    assert summary["all_latents"]["a"]["r"] > 0.95
    assert summary["all_latents"]["a"]["n"] == n
    assert abs(summary["all_latents"]["control"]["r"]) < 0.15


def test_repeat_spectra_of_one_star_do_not_make_a_per_star_control_significant(tmp_path):
    """Five near-duplicate spectra per star and a control drawn per star: on all spectra
    KSG pairs each spectrum with its star's others (distance ~0 in both), so the control
    looks informative; on one spectrum per star it is not, and the planted factor stays."""
    rng = np.random.default_rng(7)
    stars, repeats, d = 300, 5, 4
    teff, control = rng.uniform(4000, 7000, stars), rng.uniform(0, 1, stars)
    star = np.repeat(np.arange(stars), repeats)
    n = star.size
    mu = rng.normal(0, 0.5, (stars, d))[star] + rng.normal(0, 0.01, (n, d))  # repeats agree
    mu[:, 1] = (teff[star] - 5500) / 900 + rng.normal(0, 0.05, n)
    logvar = np.full((n, d), -4.0)
    table = pd.DataFrame(
        {f"mu_{j}": mu[:, j] for j in range(d)} | {f"logvar_{j}": logvar[:, j] for j in range(d)}
    )
    table["object"] = [f"star{k}" for k in star]
    table["teff"], table["control"] = teff[star], control[star]
    config = AnalyzeConfig(labels=["teff", "control"], n_bootstrap=4, n_permutations=50)
    every = analyze_latents(
        table, config.model_copy(update={"one_per_object": False}), tmp_path / "a"
    )
    assert every["labels"]["control"]["significant_dims"] != []  # the artefact
    summary = analyze_latents(table, config, tmp_path / "b")
    labels = summary["labels"]
    assert labels["control"]["significant_dims"] == []
    assert labels["teff"]["best_dim"] == 1 and labels["teff"]["significant"]
    assert labels["teff"]["n"] == stars
    assert labels["teff"]["hygiene"]["repeat_spectra_left_out"] == n - stars
    assert summary["all_latents"]["control"]["n"] == stars


def test_constant_and_empty_labels_are_skipped_and_the_rest_analysed(tmp_path, caplog):
    table, _ = _planted(n=300)
    table["constant"] = 1.0
    table["empty"] = np.nan
    config = AnalyzeConfig(
        labels=["teff", "constant", "empty"], n_bootstrap=2, n_permutations=5, pca_baseline=False
    )
    summary = analyze_latents(table, config, tmp_path)
    assert list(summary["labels"]) == ["teff"] and list(summary["all_latents"]) == ["teff"]
    assert "label constant: constant" in caplog.text and "label empty: only 0" in caplog.text


def test_unknown_label_is_a_clear_error(tmp_path):
    table, _ = _planted(n=200)
    with pytest.raises(ConfigError, match="label\\(s\\) logg not in the latents table"):
        analyze_latents(table, AnalyzeConfig(labels=["logg"]), tmp_path)


def test_load_summary_names_the_file_and_what_is_wrong(tmp_path):
    with pytest.raises(RunError, match=r"summary\.json: not found; run `astrolatent analyze"):
        load_summary(tmp_path)
    path = tmp_path / "analysis" / "summary.json"
    path.parent.mkdir()
    path.write_text('{"n_latent": 4, "informative"')
    with pytest.raises(InputFileError, match=r"summary\.json: not valid JSON"):
        load_summary(tmp_path)
    path.write_text('{"n_latent": 4, "informative": {"kl": {}}}')
    with pytest.raises(
        InputFileError, match=r"lacks informative\.dispersion, informative\.agreed, labels"
    ):
        load_summary(tmp_path)
    path.unlink()  # a hand-written file: analyze refuses to write beside it
    table, _ = _planted(n=300)
    analyze_latents(table, AnalyzeConfig(n_bootstrap=2, n_permutations=5), tmp_path / "analysis")
    assert load_summary(tmp_path)["informative"]["agreed"] == [2, 5, 6]


def test_one_per_object_keeps_one_row_of_each_named_object_and_every_unnamed_row():
    from astrolatent.workflows.analyze import one_per_object

    table = pd.DataFrame({"object": [1, 1, "a", None, np.nan, "", "a", 2]})  # names of any type
    for seed in range(5):
        kept = one_per_object(np.arange(8), table, AnalyzeConfig(), np.random.default_rng(seed))
        assert {3, 4, 5, 7} <= set(kept) and len(kept) == 6  # unnamed rows and object 2 kept
        assert len(set(kept) & {0, 1}) == 1 and len(set(kept) & {2, 6}) == 1
    rows = np.array([0, 2, 7])  # no repeats among these: as they are, no draw
    assert one_per_object(rows, table, AnalyzeConfig(), None) is rows
    off = AnalyzeConfig(one_per_object=False)
    assert one_per_object(np.arange(8), table, off, None).size == 8
