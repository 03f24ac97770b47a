"""Galaxy catalogues, simulation, metrics and models: analytic truth and hand values."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from astrolatent.errors import ConfigError, InputFileError
from astrolatent.galaxies import metrics
from astrolatent.galaxies.catalog import (
    POGSON,
    available_groups,
    clean_rows,
    flux_to_mag,
    load_groups,
    require_rows,
    resolve_inputs,
)
from astrolatent.galaxies.config import EncoderConfig, GalaxySimulationConfig
from astrolatent.galaxies.models import (
    GalaxyEstimator,
    info_nce,
    random_dihedral,
    soft_labels,
    symmetric_kl,
)
from astrolatent.galaxies.simulate import (
    render_images,
    sersic_radius_ratio,
    simulate_catalog,
    write_galaxies,
)

# ---------------------------------------------------------------------------------------
# catalogue reading
# ---------------------------------------------------------------------------------------


def test_flux_to_mag_matches_hand_values():
    flux = np.array([1.0, 100.0, 1e9, -2.0, 0.0])  # 1e9 nanomaggies = 3631 Jy
    ivar = np.array([1.0, 0.25, 1.0, 1.0, 1.0])
    mag, err = flux_to_mag(flux, ivar)
    assert mag[0] == pytest.approx(22.5)
    assert mag[1] == pytest.approx(17.5)
    assert mag[2] == pytest.approx(0.0)  # the AB zero point
    assert err[0] == pytest.approx(1.0857, abs=1e-4)
    assert err[1] == pytest.approx(POGSON * 2.0 / 100.0)  # sigma_f = 2 at f = 100
    assert np.isnan(mag[3:]).all() and np.isnan(err[3:]).all()
    mag_only, none = flux_to_mag(np.array([10.0]))
    assert none is None and mag_only[0] == pytest.approx(20.0)
    _, err_bad = flux_to_mag(np.array([10.0]), np.array([0.0]))
    assert np.isnan(err_bad[0])


def test_clean_rows_reports_every_reason_per_column():
    frame = pd.DataFrame(
        {
            "mag_r": [17.0, 99.0, 18.0, np.nan, 16.0, 17.5],
            "err_r": [0.01, 0.02, -9999.0, 0.01, 0.01, 0.02],
            "logmass": [10.0, 10.5, 11.0, 9.0, 13.0, 10.2],
        }
    )
    values, keep, report = clean_rows(
        frame,
        ["mag_r", "err_r", "logmass"],
        sentinels=[-9999.0, 99.0],
        ranges={"logmass": (6.0, 12.5)},
        source="t.csv",
    )
    assert keep.tolist() == [True, False, False, False, False, True]
    assert values.shape == (2, 3) and values[:, 2].tolist() == [10.0, 10.2]
    assert report.n_rows == 6 and report.n_kept == 2 and report.n_dropped == 4
    assert report.per_column == {
        "mag_r": {"nan": 1, "sentinel": 1},
        "err_r": {"nan": 0, "sentinel": 1},
        "logmass": {"nan": 0, "sentinel": 0, "out_of_range": 1},
    }
    assert any("1 out of range" in line for line in report.lines())
    assert report.to_dict()["n_dropped"] == 4
    with pytest.raises(InputFileError, match="only 2 of 6 rows"):
        require_rows(report, 20, source="t.csv")


def test_column_groups_defaults_patterns_and_files(tmp_path: Path):
    columns = ["id", *(f"mag_{b}" for b in "ugriz"), *(f"err_{b}" for b in "ugriz")]
    columns += ["mag_W1", "err_W1", "morph_n", "morph_q", "z", "ebv", "logmass"]
    optical = resolve_inputs(["optical"], columns)
    assert optical == [f"mag_{b}" for b in "ugriz"] + [f"err_{b}" for b in "ugriz"]
    assert resolve_inputs(["ir", "ebv", "morph"], columns) == [
        "mag_W1",
        "err_W1",
        "ebv",
        "morph_n",
        "morph_q",
    ]
    assert resolve_inputs(["band_g", "mag_g", "z"], columns) == ["mag_g", "err_g", "z"]
    assert resolve_inputs(["morph_*"], columns) == ["morph_n", "morph_q"]
    path = tmp_path / "groups.yaml"
    path.write_text("groups:\n  blue: [mag_u, mag_g]\n  shape: ['morph_*']\n")
    groups = load_groups(path)
    assert resolve_inputs(["blue", "shape"], columns, groups=groups) == [
        "mag_u",
        "mag_g",
        "morph_n",
        "morph_q",
    ]
    assert "colours" not in available_groups(columns)
    assert available_groups(columns, groups=groups)["blue"] == ["mag_u", "mag_g"]
    with pytest.raises(ConfigError, match="neither a column group"):
        resolve_inputs(["nonsense"], columns)
    with pytest.raises(ConfigError, match="needs column 'u_g'"):
        resolve_inputs(["colours"], columns)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"blue": "mag_u"}))
    with pytest.raises(ConfigError, match="lists of column names"):
        load_groups(bad)


# ---------------------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    """3,000 simulated galaxies without selection (relations hold for the whole population)."""
    catalog, _ = simulate_catalog(GalaxySimulationConfig(n=3000, r_limit=None, random_state=3))
    return catalog


def _slopes(y: np.ndarray, *columns: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(y)), *columns])
    return np.linalg.lstsq(design, y, rcond=None)[0][1:]


def test_planted_relations_recover_their_slopes(population: pd.DataFrame):
    cat = population
    mass = cat["true_logmass"] - 10
    colour_slope, passive_offset = _slopes(cat["colour_gr"].to_numpy(), mass, cat["passive"])
    assert colour_slope == pytest.approx(0.12, abs=0.01)
    assert passive_offset == pytest.approx(0.25, abs=0.01)
    size_slope, _ = _slopes(np.log10(cat["true_re_kpc"].to_numpy()), mass, cat["passive"])
    assert size_slope == pytest.approx(0.22, abs=0.02)
    # the target carries the inclination bias exactly, outside the photometry
    assert np.allclose(cat["logmass"] - cat["true_logmass"], 0.1 * (cat["cos_i"] - 0.5))
    # R90/R50 of the measured radii follows the Sersic index
    ratio = np.median(cat["morph_r90"] / cat["morph_r50"] / sersic_radius_ratio(cat["true_n"], 0.9))
    assert ratio == pytest.approx(1.0, abs=0.02)
    assert sersic_radius_ratio(np.array([1.0]), 0.9)[0] == pytest.approx(2.3, abs=0.05)


def test_dust_reddening_grows_with_inclination(population: pd.DataFrame):
    sf = population[population["passive"] == 0]
    edge_on, face_on = sf[sf["cos_i"] < 0.3], sf[sf["cos_i"] > 0.7]
    assert edge_on["egr_dust"].mean() > 1.5 * face_on["egr_dust"].mean()
    assert edge_on["axis_ratio"].mean() < face_on["axis_ratio"].mean()
    # and it shows in the observed colours at fixed mass, redshift and Galactic extinction
    ok = (sf["mag_g"] < 90) & (sf["mag_r"] < 90)
    sf = sf[ok]
    slopes = _slopes(
        (sf["mag_g"] - sf["mag_r"]).to_numpy(),
        sf["true_logmass"],
        sf["z"],
        sf["ebv"],
        1 - sf["cos_i"],
    )
    assert slopes[-1] > 0.05


def test_negative_control_and_sentinels(population: pd.DataFrame):
    cat = population
    for col in ("mag_r", "morph_n", "logmass", "z", "morph_q"):
        assert abs(np.corrcoef(cat["control"], cat[col])[0, 1]) < 0.06
    undetected = cat["mag_u"] == 99.0
    assert (cat.loc[undetected, "err_u"] == -9999.0).all()
    assert set(cat["class"]) == {"passive", "star-forming"}


def test_selection_images_and_files(tmp_path: Path):
    config = GalaxySimulationConfig(n=40, image_size=32, random_state=1)
    catalog, render = simulate_catalog(config)
    assert len(catalog) == 40 and (catalog["mag_r"] < 17.77).all()
    images = render_images(render, config)
    assert images.shape == (40, 5, 32, 32) and images.dtype == np.float32
    # the stamp holds the band's flux (up to pixel noise)
    total = images.sum(axis=(2, 3))
    bright = render["flux"][:, 2] > 50
    assert np.allclose(total[bright, 2], render["flux"][bright, 2], rtol=0.05)
    output = write_galaxies(tmp_path / "sim", config)
    stored = np.load(output.images)
    assert np.array_equal(stored, images)  # same seed, same pixels
    truth = pd.read_parquet(output.truth)
    assert {"inclination", "axis_ratio", "z", "control", "logmass"} <= set(truth.columns)
    assert pd.read_parquet(output.catalog).shape[0] == 40
    with pytest.raises(ConfigError, match="accepts only"):
        simulate_catalog(GalaxySimulationConfig(n=10, r_limit=5.0))
    with pytest.raises(ConfigError, match="bands"):
        GalaxySimulationConfig.from_dict({"bands": "ugx"})


# ---------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------


def test_point_estimates_and_crps_of_simple_pdfs():
    edges = metrics.bin_edges(0.0, 1.0, 10)
    delta = np.zeros((1, 10))
    delta[0, 3] = 1.0  # all mass in the bin centred on 0.35
    est = metrics.point_estimates(delta, edges)
    assert est["mean"][0] == pytest.approx(0.35)
    assert est["mode"][0] == pytest.approx(0.35)
    assert est["median"][0] == pytest.approx(0.35)  # half-way through the bin
    for y in (0.35, 0.9, -0.5, 2.0):
        assert metrics.crps(delta, edges, np.array([y]))[0] == pytest.approx(abs(y - 0.35))
    uniform = np.full((1, 10), 0.1)
    assert metrics.point_estimates(uniform, edges)["median"][0] == pytest.approx(0.5)
    two = np.zeros((1, 10))
    two[0, [1, 7]] = [0.25, 0.75]
    x = np.array([0.15, 0.75])
    p = np.array([0.25, 0.75])
    y = 0.6
    expected = np.sum(p * np.abs(x - y)) - 0.5 * np.sum(
        p[:, None] * p[None] * np.abs(x[:, None] - x)
    )
    assert metrics.crps(two, edges, np.array([y]))[0] == pytest.approx(expected)
    assert metrics.point_estimates(two, edges)["mean"][0] == pytest.approx(
        0.25 * 0.15 + 0.75 * 0.75
    )


def test_summary_metrics_hand_values():
    truth = np.zeros(5)
    estimate = np.array([0.0, 0.1, -0.1, 0.2, 5.0])
    out = metrics.summary_metrics(estimate, truth)
    assert out["bias"] == pytest.approx(1.04)
    assert out["sigma_mad"] == pytest.approx(1.4826 * 0.1)
    assert out["outlier_fraction"] == pytest.approx(0.2)
    assert out["n"] == 5


def test_prior_cross_entropy_and_evaluate():
    edges = metrics.bin_edges(0.0, 4.0, 4)
    prior = metrics.prior_probabilities(np.array([0.5, 0.5, 1.5, 3.9]), edges, pseudocount=0.5)
    assert prior == pytest.approx(np.array([2.5, 1.5, 0.5, 1.5]) / 6.0)
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    truth = np.array([0.2, 3.0])
    ce = metrics.cross_entropies(probs, truth, edges)
    assert ce == pytest.approx([-np.log(0.7), -np.log(0.25)])
    prior_ce = -np.log(prior[metrics.bin_index(truth, edges)])
    out = metrics.evaluate(probs, truth, edges, prior_ce=prior_ce)
    assert out["mi"] == pytest.approx(np.mean(prior_ce - ce))
    assert out["n"] == 2 and set(out) >= {"mean", "median", "mode", "crps", "ce", "prior_ce"}
    with pytest.raises(ConfigError, match="high > low"):
        metrics.bin_edges(1.0, 1.0, 5)


# ---------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------


def test_pdf_head_gives_normalised_probabilities_over_520_bins():
    torch.manual_seed(0)
    model = GalaxyEstimator(n_tabular=12, image_shape=None, n_bins=520, latent_dim=8)
    latent, logits = model(torch.randn(7, 12))
    probs = torch.softmax(logits, dim=1)
    assert latent.shape == (7, 8) and probs.shape == (7, 520)
    assert torch.allclose(probs.sum(dim=1), torch.ones(7, dtype=probs.dtype))
    assert (probs > 0).all()
    prior = torch.full((520,), 1 / 520)
    prior[:10] = 0.5 / 10
    prior /= prior.sum()
    model.set_prior(prior)
    model.head.net[-1].weight.data.zero_()
    assert torch.allclose(torch.softmax(model(torch.randn(3, 12))[1], dim=1)[0], prior, atol=1e-6)


def test_cnn_estimator_shapes_with_extra_inputs_and_decoder():
    torch.manual_seed(0)
    model = GalaxyEstimator(
        n_tabular=1,
        image_shape=(5, 16, 16),
        n_bins=50,
        latent_dim=16,
        encoder=EncoderConfig(channels=[8, 16], inception=True),
        decoder=True,
    )
    latent, logits = model(torch.randn(4, 1), torch.randn(4, 5, 16, 16))
    assert latent.shape == (4, 16) and logits.shape == (4, 50)
    assert model.decode(latent).shape == (4, 5, 16, 16)
    with pytest.raises(ValueError, match="needs at least one input"):
        GalaxyEstimator(n_tabular=0, image_shape=None, n_bins=10, latent_dim=2)


def test_loss_terms():
    centres = torch.linspace(0.05, 0.95, 10)
    hard = soft_labels(torch.tensor([0.31, 0.99]), centres, 0.0)
    assert hard.argmax(dim=1).tolist() == [3, 9] and torch.allclose(hard.sum(dim=1), torch.ones(2))
    soft = soft_labels(torch.tensor([0.5]), centres, 0.1)
    assert torch.allclose(soft.sum(), torch.tensor(1.0)) and soft[0, 4] == soft[0, 5]
    a = torch.randn(6, 4)
    assert symmetric_kl(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert info_nce(a, a, temperature=0.1) < info_nce(a, torch.randn(6, 4), temperature=0.1)
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    turned = random_dihedral(images, torch.Generator().manual_seed(1))
    assert turned.shape == images.shape
    assert torch.equal(turned.flatten(1).sort().values, images.flatten(1).sort().values)


# ---------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------


def _mlz_rows(n: int, z0: float) -> str:
    header = "#zs u g r i z u-g g-r r-i i-z eg er ei ez eu-g eg-r er-i ei-z\n"
    rows = [" ".join(f"{z0 + k * 0.01 + j:.3f}" for j in range(19)) for k in range(n)]
    return header + "\n".join(rows) + "\n"


def test_mlz_reader_from_sdist_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from astrolatent.galaxies import real

    sdist = tmp_path / "MLZ-1.2.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, n in (("SDSS_MGS.train", 3), ("SDSS_MGS.test", 2)):
            data = _mlz_rows(n, 0.1).encode()
            info = tarfile.TarInfo(f"MLZ-1.2/mlz/test/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    frame = real.load_mlz(sdist)
    assert len(frame) == 5 and frame["split"].tolist() == ["train"] * 3 + ["test"] * 2
    assert frame["id"].tolist() == list(range(5))
    assert frame.loc[0, "z"] == pytest.approx(0.1) and frame.loc[0, "err_u"] == pytest.approx(10.1)
    assert frame.loc[0, "err_i_z"] == pytest.approx(18.1)
    assert resolve_inputs(["optical", "colours"], list(frame.columns))[-1] == "i_z"
    monkeypatch.setattr(real, "package_dir", lambda name: None)
    monkeypatch.setattr(real, "DATA_DIR", tmp_path)
    assert real.mlz_source() == sdist
    monkeypatch.setattr(real, "DATA_DIR", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="pip download"):
        real.mlz_source()


def test_mlz_packaged_sample_if_downloaded():
    from astrolatent.galaxies import real

    try:
        real.mlz_source()
    except ConfigError:
        pytest.skip("the MLZ sdist is not downloaded (see the Makefile)")
    frame = real.load_mlz()
    assert len(frame) == 10_000 and (frame["split"] == "train").sum() == 5000
    assert 0.0 < frame["z"].median() < 0.3
    assert np.allclose(frame["u_g"], frame["mag_u"] - frame["mag_g"], atol=1e-3)


def _kcorrect_or_skip():
    from astrolatent.galaxies import real

    if real.package_dir("kcorrect") is None:
        pytest.skip("kcorrect==5.1.9 is not installed")
    return real


def test_kcorrect_loader_photometry_and_masses():
    real = _kcorrect_or_skip()
    frame = real.load_kcorrect(max_rows=200)
    assert len(frame) == 200
    raw = real._read_kcorrect_fits(real.kcorrect_path())
    mag, _ = flux_to_mag(raw["PETROFLUX"][:200, 2], raw["PETROFLUX_IVAR"][:200, 2])
    assert np.allclose(frame["mag_r"], mag, equal_nan=True)
    assert 14 < frame["mag_r"].median() < 18
    assert frame["ebv"].between(0, 1).all()
    assert np.mean(frame["logmass"].between(8.0, 12.5)) > 0.95
    assert 10.0 < frame["logmass"].median() < 11.5


@pytest.mark.slow
def test_kcorrect_full_set_masses():
    real = _kcorrect_or_skip()
    frame = real.load_kcorrect()
    assert len(frame) == 10_000
    assert np.mean(frame["logmass"].between(8.0, 12.5)) > 0.95
    assert frame["mag_J"].notna().mean() > 0.9
