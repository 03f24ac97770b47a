"""The fast ingestion path (issue 17) against the float64 implementation it replaced.

The reference is a frozen copy of the old code (tests/reference_preprocess.py); flux, masks,
errors and the normalisation must agree within float32 rounding, through the library call
and through a whole ingestion of generated HARPS-format files, with the files parsed from
the bytes read to hash them and with astropy.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import os
from pathlib import Path

import blake3
import numpy as np
import pytest
import xxhash

from astrolatent.data import presets
from astrolatent.data import readers as readers_api
from astrolatent.data.checksum import read_file
from astrolatent.data.ingest import IngestConfig, ingest
from astrolatent.data.preprocess import (
    GridConfig,
    PreprocessConfig,
    Preprocessor,
    Processed,
    Rejected,
    _check_arrays,
    masked_median,
)
from astrolatent.data.readers import fits_bytes
from astrolatent.data.readers.eso1d import write_eso1d
from astrolatent.data.spectrum import Spectrum
from astrolatent.data.store import SpectrumStore
from astrolatent.errors import InputFileError, StoreError
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


def _astropy_only(monkeypatch) -> None:
    """Make the ESO reader decline every file's bytes, so astropy reads them."""
    monkeypatch.setattr(fits_bytes, "read_row", lambda *args, **kwargs: None)


@pytest.mark.parametrize("from_bytes", [True, False])
def test_ingested_harps_store_equals_the_float64_implementation(
    harps_files, tmp_path, monkeypatch, from_bytes
):
    if not from_bytes:
        _astropy_only(monkeypatch)
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


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        (None, lambda data: xxhash.xxh3_128_hexdigest(data)),  # the default
        ("blake3", lambda data: blake3.blake3(data).hexdigest()),
        ("sha256", lambda data: hashlib.sha256(data).hexdigest()),
    ],
)
def test_checksum_of_the_file_and_its_algorithm_are_recorded(
    harps_files, tmp_path, algorithm, expected
):
    config = IngestConfig.from_preset("harps", checksum_algorithm=algorithm)
    ingest(harps_files[:2], tmp_path / "on", config)
    store = SpectrumStore(tmp_path / "on")
    assert store.attrs["checksum_algorithm"] == (algorithm or "xxh3-128")
    assert list(store.metadata["checksum"]) == [expected(p.read_bytes()) for p in harps_files[:2]]
    ingest(harps_files[:2], tmp_path / "off", IngestConfig.from_preset("harps", checksum=False))
    off = SpectrumStore(tmp_path / "off")
    assert off.attrs["checksum_algorithm"] is None
    assert (off.metadata["checksum"] == "").all()


@pytest.mark.parametrize("algorithm", ["xxh3-128", "blake3", "unrecorded"])
def test_verify_detects_a_changed_file_with_the_store_algorithm(harps_files, tmp_path, algorithm):
    """A file rewritten with the same size and time is found by --verify, with the store's
    own algorithm: the default, BLAKE3 stores, and older stores that record none (SHA-256)."""
    folder = tmp_path / "in"
    folder.mkdir()
    files = [folder / p.name for p in harps_files[:2]]
    for src, dst in zip(harps_files, files, strict=False):
        dst.write_bytes(src.read_bytes())
    store = tmp_path / "store"
    chosen = "sha256" if algorithm == "unrecorded" else algorithm
    config = IngestConfig.from_preset("harps", rows_per_task=1, checksum_algorithm=chosen)
    ingest([folder], store, config)
    if algorithm == "unrecorded":  # as a store written before the attribute existed
        import zarr

        group = zarr.open_group(str(store), mode="r+")
        attrs = dict(group.attrs)
        del attrs["checksum_algorithm"]
        group.attrs.clear()
        group.attrs.update(attrs)
    again = IngestConfig.from_preset("harps", rows_per_task=1)  # default algorithm asked for
    assert ingest([folder], store, again, verify=True).n_tasks_skipped == 2
    st = files[1].stat()
    data = bytearray(files[1].read_bytes())
    data[-3000] ^= 1  # one bit of the flux
    files[1].write_bytes(bytes(data))
    os.utime(files[1], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ingest([folder], store, again).n_tasks_skipped == 2  # size and time cannot tell
    redone = ingest([folder], store, again, verify=True)
    assert redone.n_tasks_skipped == 1
    meta = SpectrumStore(store).metadata
    digest = {
        "xxh3-128": xxhash.xxh3_128_hexdigest,
        "blake3": lambda b: blake3.blake3(b).hexdigest(),
        "sha256": lambda b: hashlib.sha256(b).hexdigest(),
    }[chosen]
    assert meta.loc[1, "checksum"] == digest(bytes(data))


def test_unknown_checksum_algorithm_of_a_store_is_a_store_error(harps_files, tmp_path):
    """A store whose recorded algorithm this version does not know (a newer or edited
    store) is refused with one line naming it, before any task runs."""
    import zarr

    store = tmp_path / "store"
    config = IngestConfig.from_preset("harps")
    ingest(harps_files[:1], store, config)
    zarr.open_group(str(store), mode="r+").attrs["checksum_algorithm"] = "md5"
    with pytest.raises(StoreError, match="checksum_algorithm 'md5' is not one of"):
        ingest(harps_files[:1], store, config, verify=True)


def test_summary_reports_seconds_per_stage(harps_files, tmp_path):
    summary = ingest(harps_files[:2], tmp_path / "s", IngestConfig.from_preset("harps"))
    assert set(summary.stage_seconds) == {"read", "hash", "preprocess", "write"}
    assert all(v > 0 for v in summary.stage_seconds.values())
    assert sum(summary.stage_seconds.values()) <= summary.wall_seconds


def test_bytes_and_astropy_read_the_same_spectrum(tmp_path, monkeypatch):
    wave = 5000.0 + 0.1 * np.arange(1000)
    path = write_eso1d(
        tmp_path / "a.fits", wave, np.linspace(1, 2, 1000), np.ones(1000), object_name="X"
    )
    reader = readers_api.get("eso-1d")
    views = reader.read_bytes(path, read_file(path))[0]
    assert views.flux.dtype == np.dtype(">f4")  # views of the file's bytes: no copy
    fast = reader.read(path)[0]
    _astropy_only(monkeypatch)
    assert reader.read_bytes(path, read_file(path)) is None
    slow = reader.read(path)[0]
    assert (
        (fast.id, fast.object) == (slow.id, slow.object) == (views.id, views.object) == ("a", "X")
    )
    for name in ("wave", "flux", "err"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype and a.dtype.isnative
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(getattr(views, name), b)
    assert fast.flux.dtype == np.float32  # the file's precision is kept


def test_bytes_parser_leaves_other_layouts_to_astropy(tmp_path):
    good = write_eso1d(tmp_path / "g.fits", np.arange(1.0, 101.0) + 4000, np.ones(100))
    assert fits_bytes.read_row(read_file(good), {"WAVE", "FLUX"}) is not None
    cut = tmp_path / "cut.fits"
    cut.write_bytes(good.read_bytes()[:-1500])
    assert fits_bytes.read_row(read_file(cut), {"WAVE", "FLUX"}) is None
    assert fits_bytes.read_row(read_file(good), {"WAVE", "FLUX", "QUALITY"}) is None  # missing
    packed = tmp_path / "g.fits.gz"
    packed.write_bytes(gzip.compress(good.read_bytes()))
    assert fits_bytes.read_row(read_file(packed), {"WAVE", "FLUX"}) is None
    spectrum = readers_api.get("eso-1d").read(packed)[0]  # astropy reads it
    np.testing.assert_array_equal(spectrum.flux, np.ones(100))
    with pytest.raises(InputFileError, match="truncated"):
        readers_api.get("eso-1d").read(cut)


def test_bytes_parser_finds_cells_after_other_columns(tmp_path, monkeypatch):
    """Cell offsets follow every column's TFORM width (text, bits, integers before them)."""
    from astropy.io import fits

    n = 50
    columns = [
        fits.Column(name="NAME", format="7A", array=["abcdefg"]),
        fits.Column(name="BITS", format="11X", array=[np.ones(11, bool)]),
        fits.Column(name="Wave", format=f"{n}D", unit="nm", array=[400 + np.arange(n) / 10]),
        fits.Column(name="COUNT", format="J", array=[7]),
        fits.Column(name="flux", format=f"{n}E", array=[np.linspace(1, 2, n)]),
    ]
    primary = fits.PrimaryHDU(np.zeros((3, 4), np.int16))  # a primary with data to skip
    primary.header["ARCFILE"] = "X.fits"
    path = tmp_path / "mixed.fits"
    fits.HDUList([primary, fits.BinTableHDU.from_columns(columns)]).writeto(path)
    reader = readers_api.get("eso-1d")
    fast = reader.read_bytes(path, read_file(path))[0]
    _astropy_only(monkeypatch)
    slow = reader.read(path)[0]
    np.testing.assert_array_equal(fast.wave, slow.wave)  # nm -> Angstrom in both
    np.testing.assert_allclose(fast.wave, 4000 + np.arange(n), rtol=1e-12)
    np.testing.assert_array_equal(fast.flux, slow.flux)
    assert fast.err is None and slow.err is None and fast.id == slow.id == "X"


def _masked_median(values, valid):
    work = np.empty(values.size, {2: np.int16, 4: np.int32, 8: np.int64}[values.itemsize])
    before = values.copy()
    out = masked_median(values, valid, int(valid.sum()), work, np.empty(values.size, bool))
    np.testing.assert_array_equal(values, before)  # left as it was
    return out


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 2, 7, 10, 1001, 1002, 312_501])
def test_masked_median_is_numpys_median_of_the_valid_values(size, dtype):
    rng = np.random.default_rng(size)
    normal = rng.normal(size=size)
    for values in (
        normal,  # negative and positive floats: their bits need the order-preserving map
        np.abs(normal) + 3000,
        rng.integers(-2, 3, size).astype(float),  # ties, -1 .. 2
        np.where(rng.random(size) < 0.5, -0.0, 0.0) + rng.integers(0, 2, size),  # signed zeros
    ):
        values = values.astype(dtype)
        for valid in (np.ones(size, bool), rng.random(size) < 0.7):
            if not valid.any():
                continue
            assert _masked_median(values, valid) == np.median(values[valid].astype(np.float64))
    values = rng.normal(size=size).astype(dtype)
    values[0], valid = np.inf, np.ones(size, bool)
    assert _masked_median(values, valid) == np.median(values.astype(np.float64))
    values[-1] = np.nan  # a NaN among the valid values makes it NaN, an invalid one is ignored
    assert np.isnan(_masked_median(values, valid))
    valid[-1] = False
    if size > 1:
        assert _masked_median(values, valid) == np.median(values[valid].astype(np.float64))


def test_every_pixel_of_reused_rows_is_written():
    """Rows that hold the previous task's spectra: the stretch of the grid a spectrum does
    not cover, its invalid pixels, and all of a rejected spectrum's rows end up zero."""
    grid = GridConfig(start=4000.0, stop=4099.0, step=1.0)
    config = PreprocessConfig(grid=grid, pad_to=105, min_median=0.5)  # padding 2 + 3
    prep = Preprocessor(config)
    rows = (np.full(105, 7.0, np.float32), np.ones(105, bool), np.full(105, 7.0, np.float32))
    wave = grid.wavelengths()[10:90]
    flux = np.full(80, 2.0, np.float32)
    flux[5] = np.nan
    out = prep(_spec(wave, flux, np.full(80, 0.5, np.float32)), rows)
    assert isinstance(out, Processed) and out.n_valid == 79
    expected = np.zeros(105, bool)
    expected[12:92] = True
    expected[17] = False
    np.testing.assert_array_equal(rows[1], expected)
    np.testing.assert_array_equal(rows[0], np.where(expected, 1.0, 0.0))
    np.testing.assert_array_equal(rows[2], np.where(expected, 0.25, 0.0))
    rows[0][:], rows[1][:], rows[2][:] = 7.0, True, 7.0
    dim = prep(_spec(wave, np.full(80, 0.1, np.float32), np.full(80, 0.5, np.float32)), rows)
    assert isinstance(dim, Rejected) and "median flux" in dim.reason
    assert not rows[0].any() and not rows[1].any() and not rows[2].any()
    rows[0][:], rows[1][:], rows[2][:] = 7.0, True, 7.0
    no_err = prep(_spec(wave, np.full(80, 2.0, np.float32)), rows)  # a file without errors
    assert isinstance(no_err, Processed) and no_err.err is None and not rows[2].any()
    rows[0][:] = 7.0
    with pytest.raises(InputFileError):
        prep(_spec(wave + 1000.0, np.full(80, 2.0, np.float32)), rows)  # off the grid
    assert not rows[0].any() and not rows[1].any()


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
    from astropy.io import fits

    wave = fits.Column(name="WAVE", format="100D", unit="Angstrom", array=[4000 + np.arange(100.0)])
    physical = np.arange(1000, 1100)
    flux = fits.Column(name="FLUX", format="100I", bzero=1000, array=[physical])
    path = tmp_path / "scaled.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([wave, flux])]).writeto(path)
    assert fits_bytes.read_row(read_file(path), {"WAVE", "FLUX"}) is None
    spectrum = readers_api.get("eso-1d").read(path)[0]
    np.testing.assert_array_equal(spectrum.flux, physical)  # TZERO applied by astropy


def _assert_close(out, ref) -> None:
    """``out`` equals the float64 reference within float32 rounding (same rejections)."""
    assert type(out) is type(ref)
    if isinstance(ref, Rejected):
        assert out.reason == ref.reason
        return
    np.testing.assert_array_equal(out.valid, ref.valid)
    np.testing.assert_allclose(out.flux, ref.flux, rtol=F32, atol=0)
    if ref.err is None:
        assert out.err is None
    else:
        np.testing.assert_allclose(out.err, ref.err, rtol=F32, atol=0)
    assert out.scale == pytest.approx(ref.scale, rel=1e-12) and out.n_valid == ref.n_valid
    assert out.snr == pytest.approx(ref.snr, rel=F32, nan_ok=True)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"mask_nonpositive_error": False},  # zero, negative and NaN errors stay in the ratio
        {"store_errors": False},
        {"normalise": "none"},
        {"pad_to": 1100, "mask_ranges": [(4300.0, 4310.0)]},
    ],
)
@pytest.mark.parametrize("with_err", [True, False])
def test_preprocessing_of_file_bytes_equals_the_float64_implementation(options, with_err):
    """Big-endian views of a file's bytes and native arrays give the same rows, equal to the
    float64 implementation within float32 rounding, for every masking branch."""
    rng = np.random.default_rng(3)
    wave = 4000.0 + np.arange(1000.0)
    flux = (5e4 + rng.normal(0, 500, wave.size)).astype(np.float32)
    flux[[3, 40, 41]] = [np.nan, np.inf, -np.inf]
    err = rng.uniform(100, 300, wave.size).astype(np.float32)
    err[[7, 8, 9, 10]] = [0.0, -1.0, np.nan, np.inf]
    bad = np.zeros(wave.size, bool)
    bad[600:620] = True
    grid = GridConfig(start=4000.0, stop=4999.0, step=1.0)
    config = PreprocessConfig(grid=grid, **options)
    spectrum = Spectrum(
        id="s", wave=wave, flux=flux, err=err if with_err else None, bad=bad, source="m.fits"
    )
    big_endian = copy.deepcopy(spectrum)  # as parsed from a file's bytes
    big_endian.wave = wave.astype(">f8")
    big_endian.flux = flux.astype(">f4")
    big_endian.err = err.astype(">f4") if with_err else None
    prep = Preprocessor(config)
    out = prep(copy.deepcopy(spectrum))
    _assert_close(out, reference_preprocess(copy.deepcopy(spectrum), config))
    for _ in range(2):  # the second time through the known wavelengths
        again = prep(copy.deepcopy(big_endian))
        _assert_close(again, out)
        if isinstance(out, Processed):
            np.testing.assert_array_equal(again.flux, out.flux)


def test_read_file_gives_exactly_each_file_bytes(tmp_path):
    """One kept buffer serves files larger and smaller than itself, and the empty file."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 << 20))  # more than the first buffer (4 MiB)
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    for path in (small, big, small, empty, big):
        assert bytes(read_file(path)) == path.read_bytes()
    with pytest.raises(InputFileError, match="cannot read file"):
        read_file(tmp_path / "missing.bin")


@pytest.mark.parametrize("algorithm", ["xxh3-128", "blake3", "sha256"])
def test_block_checksum_of_a_file_equals_the_whole_file_digest(tmp_path, algorithm):
    from astrolatent.data import checksum

    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(2 * checksum.BLOCK_BYTES + 12345))
    reference = {
        "xxh3-128": xxhash.xxh3_128_hexdigest,
        "blake3": lambda b: blake3.blake3(b).hexdigest(),
        "sha256": lambda b: hashlib.sha256(b).hexdigest(),
    }[algorithm](path.read_bytes())  # the hash libraries themselves, on the whole file
    assert checksum.digest(read_file(path), algorithm) == reference
    assert checksum.file_checksum(path, algorithm) == reference


def test_files_beyond_the_whole_file_size_are_hashed_in_blocks(harps_files, tmp_path, monkeypatch):
    """A file larger than the kept buffer may grow is hashed block by block and read by its
    reader: the same store, checksums included."""
    from astrolatent.data import checksum

    ingest(harps_files[:2], tmp_path / "whole", IngestConfig.from_preset("harps"))
    monkeypatch.setattr(checksum, "WHOLE_FILE_BYTES", 1000)
    ingest(harps_files[:2], tmp_path / "blocks", IngestConfig.from_preset("harps"))
    a, b = SpectrumStore(tmp_path / "whole"), SpectrumStore(tmp_path / "blocks")
    pd_cols = ["checksum", "scale", "snr", "n_valid", "status"]
    assert a.metadata[pd_cols].equals(b.metadata[pd_cols])
    np.testing.assert_array_equal(a.flux[:], b.flux[:])


def test_verify_hashes_a_file_of_several_tasks_once(tmp_path, monkeypatch):
    """A table file whose rows are spread over tasks is hashed once by --verify."""
    from astrolatent.data import checksum
    from tests.test_readers import _many_spectra_table

    path = _many_spectra_table(tmp_path / "tab.fits")
    store = tmp_path / "store"
    config = IngestConfig(rows_per_task=1)
    assert ingest([path], store, config).n_ok == 5
    calls = []
    real = checksum.file_checksum
    monkeypatch.setattr(checksum, "file_checksum", lambda p, a: calls.append(p) or real(p, a))
    assert ingest([path], store, config, verify=True).n_tasks_skipped == 5
    assert calls == [str(path.resolve())]


def test_read_ahead_asks_for_each_file_once_ahead_of_its_read(tmp_path, monkeypatch):
    from astrolatent.data import checksum

    asked: list[str] = []
    monkeypatch.setattr(checksum, "prefetch", asked.append)
    files = ["a", "b", "b", "c", "d", "e"]  # "b" holds two spectra: one file to read
    ahead = checksum.ReadAhead(files)
    ahead.at("a")
    assert asked == ["a", "b", "c"][: 1 + checksum.PREFETCH_FILES]
    for path in files[1:]:
        ahead.at(path)
    assert asked == ["a", "b", "c", "d", "e"]  # each once, in order
    monkeypatch.undo()
    checksum.prefetch(tmp_path / "missing.fits")  # its own read reports a missing file
    (tmp_path / "x.fits").write_bytes(b"x" * 10)
    checksum.prefetch(tmp_path / "x.fits")
