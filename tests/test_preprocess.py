"""Preprocessing: the HARPS layout, masks, masked-median normalisation, resampling, rejection."""

from __future__ import annotations

import numpy as np
import pytest

from astrolatent.data import presets
from astrolatent.data.ingest import IngestConfig, ingest
from astrolatent.data.preprocess import (
    GridConfig,
    PreprocessConfig,
    Processed,
    Rejected,
    preprocess,
)
from astrolatent.data.readers.eso1d import write_eso1d
from astrolatent.data.spectrum import Spectrum
from astrolatent.data.store import SpectrumStore
from astrolatent.errors import ConfigError, InputFileError


def test_harps_preset_reproduces_the_published_layout():
    cfg = presets.get("harps").preprocess
    assert cfg.grid.size == 312_501
    assert cfg.length == 327_680
    assert cfg.padding == (7_589, 7_590)
    wave = cfg.wavelengths()
    assert wave[7_589] == pytest.approx(3785.0) and wave[7_589 + 312_500] == pytest.approx(6910.0)
    valid = cfg.static_mask()
    assert (~valid).sum() == 18_620
    gap = np.flatnonzero(~valid[7_589 : 7_589 + 312_501]) + 7_589
    assert gap[0] == 159_453 and gap[-1] == 162_893 and gap.size == 162_893 - 159_453 + 1
    assert not valid[:7_589].any() and not valid[-7_590:].any()


def test_harps_full_resolution_file_through_ingest(tmp_path):
    """A synthetic HARPS file at full resolution, wider than the window, lands on the exact grid."""
    wave = np.round(3780.0 + 0.01 * np.arange(313_200), 2)
    rng = np.random.default_rng(3)
    flux = 2000.0 + rng.normal(0, 20, wave.size)
    flux[(wave > 5305) & (wave < 5337)] = 0.0  # the CCD gap holds no signal
    folder = tmp_path / "in"
    folder.mkdir()
    write_eso1d(
        folder / "ADP.1.fits",
        wave,
        flux,
        np.full(wave.size, 20.0),
        arcfile="ADP.1.fits",
        object_name="HD 1",
    )
    store_dir = tmp_path / "store"
    ingest([folder], store_dir, IngestConfig.from_preset("harps"))
    store = SpectrumStore(store_dir)
    assert store.length == 327_680
    f, v = store.read([0])
    expected_valid = presets.get("harps").preprocess.static_mask()
    np.testing.assert_array_equal(v[0], expected_valid)
    # pixel 7589 is 3785.00 A: the copy is exact (no interpolation), normalised by the valid median
    scale = store.metadata.loc[0, "scale"]
    in_window = (wave >= 3785.0 - 1e-6) & (wave <= 6910.0 + 1e-6)
    assert scale == pytest.approx(np.median(flux[in_window][expected_valid[7_589:-7_590]]))
    np.testing.assert_allclose(
        f[0, 7_589:-7_590][expected_valid[7_589:-7_590]],
        (flux[in_window] / scale)[expected_valid[7_589:-7_590]],
        rtol=1e-6,
    )
    assert f[0, ~expected_valid].max() == 0.0
    assert 95 < store.metadata.loc[0, "snr"] < 105


def _spec(wave, flux, err=None, bad=None):
    return Spectrum(
        id="s",
        wave=np.asarray(wave, float),
        flux=np.asarray(flux, float),
        err=err,
        bad=bad,
        source="mem.fits",
    )


def test_median_is_taken_over_valid_pixels_only():
    grid = GridConfig(start=1000.0, stop=1099.0, step=1.0)
    flux = np.full(100, 10.0)
    flux[:40] = np.nan  # masked (non-finite) pixels must not enter the median
    cfg = PreprocessConfig(grid=grid, pad_to=160, min_valid_fraction=0.5)
    out = preprocess(_spec(grid.wavelengths(), flux), cfg)
    assert isinstance(out, Processed)
    assert out.scale == pytest.approx(10.0)  # including the 60 zero-padded pixels would give 0
    assert out.valid.sum() == 60 and out.n_valid == 60
    np.testing.assert_allclose(out.flux[out.valid], 1.0)
    assert np.all(out.flux[~out.valid] == 0)


def test_rejections_have_reasons():
    grid = GridConfig(start=1000.0, stop=1099.0, step=1.0)
    wave = grid.wavelengths()
    low = preprocess(_spec(wave, np.full(100, 30.0)), PreprocessConfig(grid=grid, min_median=50))
    assert isinstance(low, Rejected) and "median flux 30 <= threshold 50" in low.reason
    skew = np.full(100, 1.0)
    skew[:10] = -100.0
    neg = preprocess(_spec(wave, skew), PreprocessConfig(grid=grid))
    assert isinstance(neg, Rejected) and "non-positive mean" in neg.reason
    sparse = np.full(100, np.nan)
    sparse[:10] = 5.0
    few = preprocess(_spec(wave, sparse), PreprocessConfig(grid=grid, min_valid_fraction=0.5))
    assert isinstance(few, Rejected) and "only 10 of 100 pixels valid" in few.reason


def test_masks_for_errors_file_flags_and_ranges():
    grid = GridConfig(start=1000.0, stop=1099.0, step=1.0)
    wave = grid.wavelengths()
    err = np.ones(100)
    err[5] = 0.0
    err[6] = np.nan
    bad = np.zeros(100, bool)
    bad[7] = True
    cfg = PreprocessConfig(grid=grid, mask_ranges=[(1050.0, 1054.0)])
    out = preprocess(_spec(wave, np.ones(100), err=err, bad=bad), cfg)
    assert set(np.flatnonzero(~out.valid)) == {5, 6, 7, 50, 51, 52, 53, 54}


def test_resampling_interp_and_flux_conserving():
    src = np.linspace(4000, 5000, 2001)
    flux = 1.0 + 0.001 * (src - 4000)
    grid = GridConfig(start=4100.0, stop=4900.0, step=2.0)
    for mode in ("auto", "interp", "flux-conserving"):
        out = preprocess(
            _spec(src, flux), PreprocessConfig(grid=grid, normalise="none", resample=mode)
        )
        np.testing.assert_allclose(out.flux, 1.0 + 0.001 * (grid.wavelengths() - 4000), rtol=1e-5)
    # flux-conserving keeps the integral of a narrow line that linear interpolation would alias
    line = 1.0 + 50 * np.exp(-0.5 * ((src - 4500.3) / 0.6) ** 2)
    coarse = GridConfig(start=4400.0, stop=4600.0, step=5.0)
    fc = preprocess(
        _spec(src, line),
        PreprocessConfig(grid=coarse, normalise="none", resample="flux-conserving"),
    )
    true_area = np.trapezoid(line - 1, src)
    assert np.sum((fc.flux - 1) * 5.0) == pytest.approx(true_area, rel=0.02)


def test_log_grid_and_partial_coverage_masked():
    grid = GridConfig(start=4000.0, stop=6000.0, step=1e-4, scale="log")
    src = 10 ** (np.log10(4500.0) + 1e-4 * np.arange(2000))
    out = preprocess(
        _spec(src, np.ones(src.size)), PreprocessConfig(grid=grid, min_valid_fraction=0.1)
    )
    wave = grid.wavelengths()
    inside = (wave >= src[0] - 1e-6) & (wave <= src[-1] + 1e-6)
    np.testing.assert_array_equal(out.valid, inside)


def test_wrong_units_give_a_coverage_error():
    grid = GridConfig(start=3785.0, stop=6910.0, step=0.5)
    nm = np.linspace(378.5, 691.0, 500)  # nanometres mistaken for Angstrom
    with pytest.raises(
        InputFileError,
        match=r"mem.fits: wavelength coverage 378.5-691 A does not overlap the grid 3785-6910 A \(wrong units",
    ):
        preprocess(_spec(nm, np.ones(500)), PreprocessConfig(grid=grid))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"grid": {"start": 10, "stop": 5, "step": 1}}, "must be greater than start"),
        ({"grid": {"start": 1, "stop": 5, "step": 1}, "pad_to": 3}, "shorter than the grid"),
        ({"mask_ranges": [[5, 4]]}, "reversed"),
        ({"min_valid_fraction": 2}, "less than or equal to 1"),
    ],
)
def test_impossible_options(options, message):
    with pytest.raises(ConfigError, match=message):
        PreprocessConfig.from_dict(options)
