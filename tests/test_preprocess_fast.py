"""The fast ingestion path (issue 17) against the float64 implementation it replaced.

The reference is a frozen copy of the old code (tests/reference_preprocess.py); flux, masks,
errors and the normalisation must agree within float32 rounding, through the library call
and through a whole ingestion of generated HARPS-format files, with and without fitsio.
"""

from __future__ import annotations

import copy
from pathlib import Path

import blake3
import numpy as np
import pytest

from astrolatent.data import presets
from astrolatent.data import readers as readers_api
from astrolatent.data.ingest import IngestConfig, ingest
from astrolatent.data.preprocess import (
    GridConfig,
    PreprocessConfig,
    Preprocessor,
    Processed,
    Rejected,
    _check_arrays,
    _median,
)
from astrolatent.data.readers import fast_fits
from astrolatent.data.readers.eso1d import write_eso1d
from astrolatent.data.spectrum import Spectrum
from astrolatent.data.store import SpectrumStore
from tests.reference_preprocess import preprocess as reference_preprocess

#: Two float32 ulps: a float32 quotient against the float64 quotient rounded to float32.
F32 = 2 * float(np.finfo(np.float32).eps)
HARPS_PX = 312_501


def _harps_files(folder: Path) -> list[Path]:
    """HARPS-format files that take every branch of the on-grid path: the exact window, a
    wider range (offset into the grid), NaN flux, zero and infinite errors, an even and an
    odd number of valid pixels, a spectrum below the median threshold, float64 columns."""
    folder.mkdir()
    rng = np.random.default_rng(17)
    cases = []
    wave = np.round(3785.0 + 0.01 * np.arange(HARPS_PX), 2)
    cases.append((wave, 3000 + rng.normal(0, 30, HARPS_PX), np.full(HARPS_PX, 30.0)))
    wide = np.round(3780.0 + 0.01 * np.arange(HARPS_PX + 900), 2)
    flux = 1500 * (1 + 0.1 * np.sin(wide / 7)) + rng.normal(0, 20, wide.size)
    flux[rng.integers(0, wide.size, 500)] = np.nan
    err = rng.uniform(10, 30, wide.size)
    err[rng.integers(0, wide.size, 300)] = 0.0
    err[rng.integers(0, wide.size, 50)] = np.inf
    cases.append((wide, flux, err))
    odd = 800 + rng.normal(0, 15, HARPS_PX)
    odd[:1] = np.nan  # one more masked pixel flips the parity of the valid count
    cases.append((wave, odd, np.full(HARPS_PX, 15.0)))
    cases.append((wave, 20 + rng.normal(0, 2, HARPS_PX), np.full(HARPS_PX, 2.0)))  # rejected
    paths = []
    for i, (w, f, e) in enumerate(cases):
        path = folder / f"ADP.2021-01-01T00:00:0{i}.000.fits"
        write_eso1d(path, w, f, e, arcfile=path.name, object_name=f"HD {i}")
        paths.append(path)
    return paths


def _reference(path: Path, config: PreprocessConfig):
    spectrum = readers_api.get("eso-1d").read(path)[0]
    spectrum.flux = np.asarray(spectrum.flux, np.float64)  # the old reader gave float64
    spectrum.err = np.asarray(spectrum.err, np.float64)
    return reference_preprocess(spectrum, config)


@pytest.fixture(scope="module")
def harps_files(tmp_path_factory) -> list[Path]:
    return _harps_files(tmp_path_factory.mktemp("harps") / "in")


@pytest.mark.parametrize("use_fitsio", [True, False])
def test_ingested_harps_store_equals_the_float64_implementation(
    harps_files, tmp_path, monkeypatch, use_fitsio
):
    if use_fitsio and not fast_fits.available():
        pytest.skip("fitsio is not installed")
    if not use_fitsio:
        monkeypatch.setattr(fast_fits, "fitsio", None)
    config = IngestConfig.from_preset("harps", rows_per_task=1)
    ingest([harps_files[0].parent], tmp_path / "store", config)
    store = SpectrumStore(tmp_path / "store")
    meta = store.metadata
    assert list(meta["status"]) == ["ok", "ok", "ok", "rejected"]
    pre = presets.get("harps").preprocess
    for row, path in enumerate(harps_files):
        ref = _reference(path, pre)
        if isinstance(ref, Rejected):
            # one-row tasks reuse the previous task's blocks: a rejected row must still be zero
            assert meta.loc[row, "reason"] == ref.reason
            flux, valid = store.read([row])
            assert not flux.any() and not valid.any() and not store.err[row].any()
            continue
        flux, valid = store.read([row])
        np.testing.assert_array_equal(valid[0], ref.valid)
        np.testing.assert_allclose(flux[0], ref.flux, rtol=F32, atol=0)
        np.testing.assert_allclose(store.err[row], ref.err, rtol=F32, atol=0)
        assert meta.loc[row, "scale"] == pytest.approx(ref.scale, rel=1e-12)
        assert meta.loc[row, "snr"] == pytest.approx(ref.snr, rel=F32)
        assert meta.loc[row, "n_valid"] == ref.n_valid
    assert meta.loc[0, "n_valid"] % 2 != meta.loc[2, "n_valid"] % 2  # both median branches ran


def test_checksum_is_blake3_of_the_file_and_recorded_in_the_store(harps_files, tmp_path):
    ingest(harps_files[:2], tmp_path / "on", IngestConfig.from_preset("harps"))
    store = SpectrumStore(tmp_path / "on")
    assert store.attrs["checksum_algorithm"] == "blake3"
    expected = [blake3.blake3(p.read_bytes()).hexdigest() for p in harps_files[:2]]
    assert list(store.metadata["checksum"]) == expected
    ingest(harps_files[:2], tmp_path / "off", IngestConfig.from_preset("harps", checksum=False))
    off = SpectrumStore(tmp_path / "off")
    assert off.attrs["checksum_algorithm"] is None
    assert (off.metadata["checksum"] == "").all()


def test_summary_reports_seconds_per_stage(harps_files, tmp_path):
    summary = ingest(harps_files[:2], tmp_path / "s", IngestConfig.from_preset("harps"))
    assert set(summary.stage_seconds) == {"read", "hash", "preprocess", "write"}
    assert all(v > 0 for v in summary.stage_seconds.values())
    assert sum(summary.stage_seconds.values()) <= summary.wall_seconds


def test_fitsio_and_astropy_read_the_same_spectrum(tmp_path):
    if not fast_fits.available():
        pytest.skip("fitsio is not installed")
    wave = 5000.0 + 0.1 * np.arange(1000)
    path = write_eso1d(
        tmp_path / "a.fits", wave, np.linspace(1, 2, 1000), np.ones(1000), object_name="X"
    )
    reader = readers_api.get("eso-1d")
    fast = reader.read(path)[0]
    assert fast_fits.read_row(path, {"WAVE", "FLUX"}) is not None  # the fast path was taken
    fast_fits_module = fast_fits.fitsio
    try:
        fast_fits.fitsio = None
        slow = reader.read(path)[0]
    finally:
        fast_fits.fitsio = fast_fits_module
    assert (fast.id, fast.object) == (slow.id, slow.object) == ("a", "X")
    for name in ("wave", "flux", "err"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype and a.dtype.isnative
        np.testing.assert_array_equal(a, b)
    assert fast.flux.dtype == np.float32  # the file's precision is kept


def test_fitsio_leaves_broken_files_to_astropy(tmp_path):
    if not fast_fits.available():
        pytest.skip("fitsio is not installed")
    good = write_eso1d(tmp_path / "g.fits", np.arange(1.0, 101.0) + 4000, np.ones(100))
    cut = tmp_path / "cut.fits"
    cut.write_bytes(good.read_bytes()[:-1500])
    assert fast_fits.read_row(cut, {"WAVE", "FLUX"}) is None
    assert fast_fits.read_row(good, {"WAVE", "FLUX", "QUALITY"}) is None  # missing column


@pytest.mark.parametrize("size", [1, 2, 7, 10, 1001, 1002])
def test_median_matches_numpy_for_odd_and_even_sizes(size):
    rng = np.random.default_rng(size)
    for values in (rng.normal(size=size), rng.integers(0, 3, size).astype(np.float32)):
        assert _median(values.copy()) == np.median(values)
        values[rng.integers(0, size)] = np.nan
        assert np.isnan(_median(values.copy())) and np.isnan(np.median(values))


def _spec(wave, flux, err=None):
    return Spectrum(id="s", wave=np.asarray(wave, float), flux=flux, err=err, source="m.fits")


def test_known_wavelengths_are_reused_only_when_identical():
    grid = GridConfig(start=4000.0, stop=4999.0, step=1.0)
    config = PreprocessConfig(grid=grid, normalise="none")
    prep = Preprocessor(config)
    wave = grid.wavelengths()
    first = prep(_spec(wave, np.ones(1000, np.float32)))
    assert isinstance(first, Processed) and first.valid.all()
    shifted = wave + 0.5  # same size, off the grid: must be interpolated, not copied
    ramp = (wave - 4000.0).astype(np.float32)
    out = prep(_spec(shifted, ramp))
    expected = Preprocessor(config)(_spec(shifted, ramp))
    np.testing.assert_array_equal(out.flux, expected.flux)
    np.testing.assert_allclose(out.flux[1:-1], ramp[1:-1] - 0.5)
    reversed_ = prep(_spec(wave[::-1], ramp[::-1].copy()))
    np.testing.assert_array_equal(reversed_.flux, ramp)


@pytest.mark.parametrize("mode", ["interp", "flux-conserving"])
def test_resampled_spectra_equal_the_float64_implementation(mode):
    src = np.linspace(4000, 5000, 3001)
    rng = np.random.default_rng(5)
    flux = 100 + 10 * np.sin(src / 3) + rng.normal(0, 1, src.size)
    flux[[10, 500, 501]] = np.nan
    err = rng.uniform(0.5, 2, src.size)
    grid = GridConfig(start=4100.0, stop=4900.0, step=0.7)
    config = PreprocessConfig(grid=grid, resample=mode, pad_to=1200, mask_ranges=[(4500, 4510)])
    spectrum = _spec(src, flux.astype(np.float32), err.astype(np.float32))
    ref = reference_preprocess(copy.deepcopy(spectrum), config)
    out = Preprocessor(config)(spectrum)
    np.testing.assert_array_equal(out.valid, ref.valid)
    np.testing.assert_allclose(out.flux, ref.flux, rtol=F32, atol=0)
    np.testing.assert_allclose(out.err, ref.err, rtol=F32, atol=0)
    assert out.scale == pytest.approx(ref.scale, rel=1e-12) and out.n_valid == ref.n_valid


def test_big_endian_float32_stays_float32():
    flux = (1.0 + np.arange(100) / 100).astype(">f4")  # as astropy hands out FITS data
    spectrum = _check_arrays(_spec(np.arange(100.0) + 4000, flux, err=flux.astype(">f8")))
    assert spectrum.flux.dtype == np.dtype("=f4") and spectrum.err.dtype == np.dtype("=f4")
    np.testing.assert_array_equal(spectrum.flux, flux)


def test_scaled_columns_are_left_to_astropy(tmp_path):
    if not fast_fits.available():
        pytest.skip("fitsio is not installed")
    from astropy.io import fits

    wave = fits.Column(name="WAVE", format="100D", unit="Angstrom", array=[4000 + np.arange(100.0)])
    physical = np.arange(1000, 1100)
    flux = fits.Column(name="FLUX", format="100I", bzero=1000, array=[physical])
    path = tmp_path / "scaled.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([wave, flux])]).writeto(path)
    assert fast_fits.read_row(path, {"WAVE", "FLUX"}) is None
    spectrum = readers_api.get("eso-1d").read(path)[0]
    np.testing.assert_array_equal(spectrum.flux, physical)  # TZERO applied by astropy
