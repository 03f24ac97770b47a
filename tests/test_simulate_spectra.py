"""Synthetic stellar spectra: physics checked against the planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from astrolatent.errors import ConfigError
from astrolatent.outputs.marks import MARK_FILE
from astrolatent.simulate import (
    SpectrumSimulationConfig,
    draw_truth,
    simulate_spectra,
    write_spectra,
)
from astrolatent.simulate.lines import C_KMS

#: A star with every factor fixed and (almost) no noise.
QUIET = dict(
    n=1,
    teff=5772.0,
    logg=4.44,
    feh=0.0,
    rv=0.0,
    vsini=2.0,
    ebv=0.0,
    snr=10000.0,
    airmass=1.0,
    tellurics=False,
)


def star(**factors) -> tuple[np.ndarray, np.ndarray]:
    """Wavelength and flux (float64) of one quiet star with some factors changed."""
    sim = simulate_spectra(SpectrumSimulationConfig(**{**QUIET, **factors}))
    return sim.wave, sim.flux[0].astype(np.float64)


def window(wave: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (wave >= lo) & (wave <= hi)


def equivalent_width(wave, flux, centre, half=1.5, side=(3.0, 6.0)) -> float:
    """Equivalent width (A) of the line at ``centre``, continuum from both sides."""
    near = window(wave, centre - side[1], centre - side[0]) | window(
        wave, centre + side[0], centre + side[1]
    )
    continuum = np.median(flux[near])
    inside = window(wave, centre - half, centre + half)
    return float(np.sum(1.0 - flux[inside] / continuum) * (wave[1] - wave[0]))


def line_minimum(wave, flux, guess, half=3.0) -> float:
    """Wavelength of the flux minimum near ``guess``, refined by a parabola."""
    idx = np.flatnonzero(window(wave, guess - half, guess + half))
    k = idx[np.argmin(flux[idx])]
    y0, y1, y2 = flux[k - 1 : k + 2]
    return float(wave[k] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) * (wave[1] - wave[0]))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# --- grids -------------------------------------------------------------------------------


def test_low_resolution_grid_is_exact():
    sim = simulate_spectra(SpectrumSimulationConfig(n=2))
    assert sim.wave.shape == (6251,) and sim.wave.dtype == np.float64
    assert sim.wave[0] == 3785.0 and sim.wave[-1] == 6910.0
    assert np.allclose(np.diff(sim.wave), 0.5)
    assert sim.flux.shape == sim.err.shape == (2, 6251)
    assert sim.flux.dtype == sim.err.dtype == np.float32


def test_harps_grid_and_ccd_gap():
    sim = simulate_spectra(SpectrumSimulationConfig(n=1, resolution="harps", ccd_gap=True))
    assert sim.wave.shape == (312_501,)
    assert sim.wave[0] == 3785.0 and sim.wave[-1] == 6910.0
    gap = np.flatnonzero(sim.flux[0] == 0)
    # the HARPS gap: pixels 159,453-162,893 of the padded grid = 151,864-155,304 here
    assert gap[0] == 151_864 and gap[-1] == 155_304 and gap.size == 3441
    assert np.all(sim.err[0, gap] == 0)
    assert np.median(sim.flux[0]) > 50  # well above the HARPS rejection threshold


# --- determinism -------------------------------------------------------------------------


def test_same_spectrum_whatever_the_batch():
    config = SpectrumSimulationConfig(n=12, n_objects=5, random_state=3)
    full = simulate_spectra(config)
    again = simulate_spectra(config)
    part = simulate_spectra(config, start=4, stop=9)
    assert np.array_equal(full.flux, again.flux)
    assert np.array_equal(full.flux[4:9], part.flux)
    assert np.array_equal(full.err[4:9], part.err)
    pd.testing.assert_frame_equal(full.truth.iloc[4:9].reset_index(drop=True), part.truth)
    assert simulate_spectra(config, start=5, stop=5).flux.shape == (0, 6251)
    other = simulate_spectra(config.model_copy(update={"random_state": 4}), stop=2)
    assert not np.array_equal(other.flux, full.flux[:2])


def test_spectra_of_given_factors_change_only_with_the_factor_changed():
    config = SpectrumSimulationConfig(n=4, random_state=3)
    drawn = simulate_spectra(config)
    assert np.array_equal(simulate_spectra(config, truth=drawn.truth).flux, drawn.flux)
    slow = drawn.truth.assign(vsini=0.0)
    changed = simulate_spectra(config, truth=slow)
    assert not np.array_equal(changed.flux, drawn.flux)
    # the same noise draw: the continuum level (line-free median) barely moves
    assert np.allclose(np.median(changed.flux, axis=1), np.median(drawn.flux, axis=1), rtol=0.01)
    with pytest.raises(ConfigError, match="truth has 3 rows"):
        simulate_spectra(config, truth=drawn.truth.head(3))
    with pytest.raises(ConfigError, match="no column vsini"):
        simulate_spectra(config, truth=drawn.truth.drop(columns="vsini"))


def test_fixing_one_factor_keeps_the_others():
    varied = draw_truth(SpectrumSimulationConfig(n=50))
    fixed = draw_truth(SpectrumSimulationConfig(n=50, vsini=0.0))
    assert np.all(fixed["vsini"] == 0.0)
    for name in ("teff", "logg", "feh", "rv", "ebv", "snr", "airmass", "control"):
        assert np.array_equal(varied[name], fixed[name])


# --- physics -----------------------------------------------------------------------------


@pytest.mark.parametrize("rv", [-80.0, 45.0])
def test_radial_velocity_shifts_lines(rv):
    wave, rest = star(teff=6500.0)
    _, moved = star(teff=6500.0, rv=rv)
    for line in (6562.80, 4861.33):  # H-alpha, H-beta
        shift = line_minimum(wave, moved, line * (1 + rv / C_KMS)) - line_minimum(wave, rest, line)
        assert shift == pytest.approx(line * rv / C_KMS, abs=0.1)  # 0.2 px


def test_hotter_stars_are_bluer():
    colours = []
    for teff in (4000.0, 5000.0, 6000.0, 7000.0):
        wave, flux = star(teff=teff)
        blue = np.median(flux[window(wave, 4400, 4700)])
        red = np.median(flux[window(wave, 6000, 6300)])
        colours.append(blue / red)
    assert np.all(np.diff(colours) > 0)


def test_reddening_dims_the_blue():
    wave, clear = star()
    _, red = star(ebv=0.3)
    ratio = red / clear
    # relative to the median, A_lambda(4000 A) - A_lambda(6500 A) = 0.3 * (4.4 - 2.5) mag
    blue, far_red = (
        np.median(ratio[window(wave, 3990, 4010)]),
        np.median(ratio[window(wave, 6490, 6510)]),
    )
    assert -2.5 * np.log10(blue / far_red) == pytest.approx(0.3 * 1.9, abs=0.1)


def test_metallicity_deepens_metal_lines_not_hydrogen():
    wave, poor = star(feh=-1.0)
    _, rich = star(feh=0.4)
    for line in (5371.49, 5405.77, 6494.98, 5889.95):  # Fe I, Fe I, Fe I, Na I D2
        assert equivalent_width(wave, rich, line) > 1.5 * equivalent_width(wave, poor, line)
    halpha = window(wave, 6545, 6580)  # no metal line there: unchanged
    assert np.allclose(rich[halpha] / poor[halpha], 1.0, atol=2e-3)
    assert equivalent_width(wave, rich, 6562.80, half=8, side=(12, 18)) == pytest.approx(
        equivalent_width(wave, poor, 6562.80, half=8, side=(12, 18)), rel=0.01
    )


def test_gravity_widens_strong_line_wings_and_weakens_ion_lines():
    wave, giantish = star(logg=3.5)
    _, dwarf = star(logg=5.0)
    ratio = dwarf / giantish
    for centre, offsets in ((5183.60, (1.0, 2.0)), (6562.80, (3.0, 6.0))):  # Mg b, H-alpha
        wings = window(wave, centre + offsets[0], centre + offsets[1]) | window(
            wave, centre - offsets[1], centre - offsets[0]
        )
        assert np.mean(ratio[wings]) < 0.97
    # Fe II (ionised) weakens with gravity, Fe I (neutral) does not: a gravity index
    index = [
        equivalent_width(wave, f, 6516.08) / equivalent_width(wave, f, 6494.98)
        for f in (giantish, dwarf)
    ]
    assert index[1] < 0.8 * index[0]


def test_temperature_gravity_and_metallicity_leave_distinct_signatures():
    reference = {"teff": 5500.0, "logg": 4.3, "feh": -0.3}
    wave, base = star(**reference)
    change = {
        name: np.log(star(**{**reference, name: value})[1] / base)
        for name, value in (("teff", 5600.0), ("logg", 4.5), ("feh", -0.1))
    }
    red = window(wave, 6000, 6900)
    assert cosine(change["logg"], change["feh"]) < 0.95
    assert abs(cosine(change["logg"][red], change["feh"][red])) < 0.5
    assert abs(cosine(change["teff"], change["feh"])) < 0.95


def test_solar_equivalent_widths_are_reproduced():
    wave, sun = star(resolution="harps")
    # isolated weak lines of the solar calibration (mA): Fe I, Ni I, Fe I, Si I
    for line, ew in ((6173.34, 68.0), (6643.63, 95.0), (6750.15, 80.0), (5708.40, 79.0)):
        assert 1000 * equivalent_width(wave, sun, line) == pytest.approx(ew, rel=0.1)


def test_equivalent_width_does_not_depend_on_resolution():
    low = star(vsini=10.0)
    harps = star(vsini=10.0, resolution="harps")
    for line in (5183.60, 5371.49, 6122.22):
        assert equivalent_width(*harps, line, half=3.0, side=(4.0, 7.0)) == pytest.approx(
            equivalent_width(*low, line, half=3.0, side=(4.0, 7.0)), rel=0.05
        )


def test_rotation_broadens_lines_and_keeps_their_strength():
    wave, slow = star(vsini=0.0, resolution="harps")
    _, fast = star(vsini=30.0, resolution="harps")
    line = 6122.22  # Ca I
    around = window(wave, line - 0.05, line + 0.05)
    assert fast[around].min() > slow[around].min() + 0.05 * np.median(slow)  # shallower core
    assert equivalent_width(wave, fast, line) == pytest.approx(
        equivalent_width(wave, slow, line), rel=0.05
    )


def test_noise_matches_the_signal_to_noise_ratio():
    snr = 100.0
    config = SpectrumSimulationConfig(**{**QUIET, "n": 200, "snr": snr, "teff": 5500.0})
    sim = simulate_spectra(config)
    mean, std = sim.flux.mean(axis=0), sim.flux.std(axis=0)
    assert np.median(std / sim.err[0]) == pytest.approx(1.0, abs=0.03)
    assert np.all(sim.err == sim.err[0])  # identical stars: identical noise level
    # pixels at the median continuum level (snr**2 counts) have S/N = snr
    level = np.abs(mean / snr**2 - 1) < 0.03
    assert level.sum() > 100
    assert np.median(std[level] / mean[level]) == pytest.approx(1 / snr, rel=0.1)


def test_tellurics_stay_put_and_scale_with_airmass():
    wave, off = star(rv=-50.0)
    _, blue = star(rv=-50.0, tellurics=True, airmass=1.0)
    _, red = star(rv=50.0, tellurics=True, airmass=1.0)
    _, thick = star(rv=50.0, tellurics=True, airmass=2.5)
    band = window(wave, 6860, 6910)  # O2 B band, no stellar line there
    assert np.min(blue[band] / off[band]) < 0.97
    assert np.allclose(red[band], blue[band], rtol=1e-3)  # does not move with the star
    assert np.sum(1 - thick[band] / red[band]) > 0.5 * np.sum(1 - red[band] / off[band])


# --- truth table ---------------------------------------------------------------------------


def test_repeat_spectra_share_the_star():
    truth = draw_truth(SpectrumSimulationConfig(n=60, n_objects=10))
    assert truth["object"].nunique() == 10
    assert truth["id"].is_unique
    groups = truth.groupby("object")
    for name in ("teff", "logg", "feh", "vsini", "ebv"):
        assert (groups[name].nunique() == 1).all()
    spread = groups["rv"].agg(lambda v: v.max() - v.min())
    assert spread.max() > 0 and spread.max() <= 10.0  # barycentric offsets of <= 5 km/s
    assert (groups["snr"].nunique() > 1).any() and (groups["control"].nunique() > 1).any()


def test_control_is_independent_of_everything():
    truth = draw_truth(SpectrumSimulationConfig(n=3000, n_objects=1000))
    assert truth["control"].between(0, 1).all()
    for name in ("teff", "logg", "feh", "rv", "vsini", "ebv", "snr", "airmass"):
        assert abs(np.corrcoef(truth["control"], truth[name])[0, 1]) < 0.08


def test_factors_stay_in_their_ranges():
    config = SpectrumSimulationConfig(n=500, teff=(4500.0, 6000.0), snr=(50.0, 60.0))
    truth = draw_truth(config)
    assert truth["teff"].between(4500, 6000).all() and truth["teff"].std() > 300
    assert truth["snr"].between(50, 60).all()
    assert truth["airmass"].between(1.0, 2.5).all()


# --- files -----------------------------------------------------------------------------------


def test_written_files_round_trip(tmp_path):
    config = SpectrumSimulationConfig(n=6, n_objects=3, random_state=7)
    calls = []
    out = write_spectra(tmp_path / "sim", config, batch_size=4, progress=calls.append)
    assert calls == [4, 2]
    sim = simulate_spectra(config)
    assert [p.name for p in out.files] == [f"{i}.fits" for i in sim.truth["id"]]
    assert sorted(p.name for p in out.out_dir.iterdir()) == sorted(
        [p.name for p in out.files] + ["labels.csv", "truth.csv", "simulation.yaml", MARK_FILE]
    )
    with fits.open(out.files[2]) as hdul:
        assert hdul[0].data is None
        header, table = hdul[0].header, hdul[1]
        assert header["ARCFILE"] == out.files[2].name
        assert header["OBJECT"] == sim.truth["object"][2]
        assert header["ORIGIN"] == "astrolatent simulate"
        assert len(table.data) == 1
        assert table.columns["WAVE"].format == "6251D" and table.columns["WAVE"].unit == "Angstrom"
        assert table.columns["FLUX"].format == "6251E" and table.columns["ERR"].format == "6251E"
        assert np.array_equal(table.data["WAVE"][0], sim.wave)
        assert np.array_equal(table.data["FLUX"][0], sim.flux[2])
        assert np.array_equal(table.data["ERR"][0], sim.err[2])
    truth = pd.read_csv(out.truth)
    labels = pd.read_csv(out.labels)
    assert list(truth.columns) == [
        "id",
        "object",
        "teff",
        "logg",
        "feh",
        "rv",
        "vsini",
        "ebv",
        "snr",
        "airmass",
        "control",
    ]
    assert "vsini" not in labels.columns and "ebv" not in labels.columns
    assert list(labels.columns) == [c for c in truth.columns if c not in ("vsini", "ebv", "object")]
    assert np.allclose(truth["teff"], sim.truth["teff"])
    assert SpectrumSimulationConfig.load(out.out_dir / "simulation.yaml") == config


def test_the_eso_reader_reads_the_files(tmp_path):
    from astrolatent.data.readers import identify
    from astrolatent.data.readers.eso1d import ESO1DReader

    out = write_spectra(tmp_path, SpectrumSimulationConfig(n=1))
    assert identify(out.files[0]) == "eso-1d"
    (spectrum,) = ESO1DReader().read(out.files[0])
    assert spectrum.id == pd.read_csv(out.labels)["id"][0]
    assert spectrum.object == "SIM-00000"


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n": 0}, "n=0 must be at least 1"),
        ({"n": 5, "n_objects": 6}, "n_objects=6 must be between 1 and n=5"),
        ({"teff": (7000.0, 4000.0)}, "reversed"),
        ({"snr": 0.0}, "snr=0.0"),
        ({"airmass": (0.5, 2.0)}, "airmass=0.5"),
        ({"resolution": "medium"}, "resolution"),
        ({"random_state": -1}, "random_state=-1"),
        ({"colour": 1}, "colour"),
    ],
)
def test_impossible_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        SpectrumSimulationConfig(**options)


def test_invalid_slice_is_a_config_error():
    with pytest.raises(ConfigError, match="stop=5"):
        simulate_spectra(SpectrumSimulationConfig(n=3), start=0, stop=5)
    with pytest.raises(ConfigError, match="batch_size=0"):
        write_spectra("unused", SpectrumSimulationConfig(n=3), batch_size=0)


def test_labelled_fraction_blanks_whole_stars_and_keeps_the_truth(tmp_path):
    from astrolatent.simulate.spectra import STAR_LABELS, partial_labels

    config = SpectrumSimulationConfig(n=400, n_objects=200, labelled_fraction=0.2, random_state=3)
    truth = draw_truth(config)
    labels = partial_labels(truth, config)
    blank = labels[list(STAR_LABELS)].isna()
    # a star is blanked whole: all four labels of all its spectra, or none
    assert (blank.all(axis=1) == blank.any(axis=1)).all()
    per_star = blank.all(axis=1).groupby(truth["object"]).agg(["min", "max"])
    assert (per_star["min"] == per_star["max"]).all()
    assert (~per_star["min"]).sum() == 40  # 20% of 200 stars labelled
    # the per-spectrum columns and the truth stay complete and equal where labelled
    assert labels[["id", "snr", "airmass", "control"]].notna().all().all()
    kept = ~blank.all(axis=1)
    assert np.allclose(labels.loc[kept, "teff"], truth.loc[kept, "teff"])
    assert truth.notna().all().all()
    # the draw is seeded; the full fraction blanks nothing
    assert partial_labels(truth, config).equals(labels)
    full = SpectrumSimulationConfig(n=400, n_objects=200, random_state=3)
    assert partial_labels(truth, full).notna().all().all()
    # and write_spectra writes what partial_labels gives, with a complete truth.csv
    small = SpectrumSimulationConfig(n=10, labelled_fraction=0.5, random_state=1)
    out = write_spectra(tmp_path / "sim", small)
    written = pd.read_csv(out.labels)
    assert written["teff"].isna().sum() == 5 and pd.read_csv(out.truth)["teff"].notna().all()
    with pytest.raises(ConfigError):
        SpectrumSimulationConfig.from_dict({"labelled_fraction": 1.5}, source="test")
