"""Every reader on generated files in its real format; identification by content."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from astrolatent.data import readers
from astrolatent.data.readers.eso1d import write_eso1d
from astrolatent.errors import ConfigError, InputFileError, UnknownFormatError

WAVE = np.linspace(4000.0, 5000.0, 1001)
FLUX = np.linspace(1.0, 2.0, 1001)


def test_eso1d_reads_id_object_and_arrays(tmp_path):
    path = write_eso1d(
        tmp_path / "x.fits",
        WAVE,
        FLUX,
        FLUX * 0.1,
        arcfile="ADP.2014-09-16T11:03:31.127.fits",
        object_name="HD 1",
    )
    assert readers.identify(path) == "eso-1d"
    (spec,) = readers.get("eso-1d").read(path)
    assert spec.id == "ADP.2014-09-16T11:03:31.127"
    assert spec.object == "HD 1"
    np.testing.assert_allclose(spec.wave, WAVE)
    np.testing.assert_allclose(spec.flux, FLUX, rtol=1e-6)
    np.testing.assert_allclose(spec.err, FLUX * 0.1, rtol=1e-6)


def test_eso1d_lowercase_columns_no_err_no_arcfile_nm_units(tmp_path):
    cols = [
        fits.Column(name="wave", format="1001D", unit="nm", array=(WAVE / 10)[None]),
        fits.Column(name="flux", format="1001E", array=FLUX[None]),
    ]
    path = tmp_path / "my_spectrum.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    (spec,) = readers.get("eso-1d").read(path)
    assert spec.id == "my_spectrum"
    assert spec.err is None
    np.testing.assert_allclose(spec.wave, WAVE)


def test_eso1d_non_wavelength_unit_is_a_clear_error(tmp_path):
    cols = [
        fits.Column(name="WAVE", format="3D", unit="kg", array=[[1.0, 2.0, 3.0]]),
        fits.Column(name="FLUX", format="3E", array=[[1.0, 1, 1]]),
    ]
    path = tmp_path / "kg.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    with pytest.raises(InputFileError, match=r"kg\.fits: WAVE has unit 'kg'"):
        readers.get("eso-1d").read(path)


@pytest.mark.parametrize("log10", [False, True])
def test_wcs1d_linear_and_log(tmp_path, log10):
    n = 500
    hdu = fits.PrimaryHDU(np.arange(n, dtype=np.float32) + 10)
    if log10:
        hdu.header.update(
            {"CRVAL1": 3.6, "CD1_1": 1e-4, "CRPIX1": 1, "DC-FLAG": 1, "OBJECT": "star"}
        )
        expected = 10 ** (3.6 + 1e-4 * np.arange(n))
    else:
        hdu.header.update(
            {"CRVAL1": 500.0, "CDELT1": 0.1, "CRPIX1": 11, "CUNIT1": "nm", "OBJECT": "star"}
        )
        expected = (500.0 + 0.1 * (np.arange(1, n + 1) - 11)) * 10
    hdu.writeto(tmp_path / "s.fits")
    fits.append(tmp_path / "s.fits", np.ones(n, np.float32), fits.Header({"EXTNAME": "ERR"}))
    assert readers.identify(tmp_path / "s.fits") == "wcs-1d"
    (spec,) = readers.get("wcs-1d").read(tmp_path / "s.fits")
    np.testing.assert_allclose(spec.wave, expected, rtol=1e-10)
    assert spec.object == "star"
    np.testing.assert_allclose(spec.err, 1.0)


def test_sdss_coadd_errors_and_masks(tmp_path):
    n = 300
    loglam = 3.58 + 1e-4 * np.arange(n)
    ivar = np.full(n, 4.0)
    ivar[10] = 0
    and_mask = np.zeros(n, np.int32)
    and_mask[20] = 16
    coadd = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="flux", format="E", array=np.ones(n)),
            fits.Column(name="loglam", format="E", array=loglam),
            fits.Column(name="ivar", format="E", array=ivar),
            fits.Column(name="and_mask", format="J", array=and_mask),
        ],
        name="COADD",
    )
    primary = fits.PrimaryHDU()
    primary.header.update({"PLATEID": 266, "MJD": 51630, "FIBERID": 3})
    path = tmp_path / "spec-lite.fits"
    fits.HDUList([primary, coadd]).writeto(path)
    assert readers.identify(path) == "sdss"
    (spec,) = readers.get("sdss").read(path)
    assert spec.id == "0266-51630-0003"
    np.testing.assert_allclose(spec.wave, 10 ** loglam.astype(np.float32), rtol=1e-6)
    assert spec.err[0] == pytest.approx(0.5)
    assert spec.bad[10] and spec.bad[20] and spec.bad.sum() == 2


def _many_spectra_table(path, n_rows=5, n_pix=50, wave_column=True):
    cols = [
        fits.Column(name="source_id", format="K", array=np.arange(n_rows) + 100),
        fits.Column(
            name="flux",
            format=f"{n_pix}E",
            array=np.ones((n_rows, n_pix)) * np.arange(1, n_rows + 1)[:, None],
        ),
        fits.Column(name="flux_error", format=f"{n_pix}E", array=np.full((n_rows, n_pix), 0.1)),
        fits.Column(name="teff", format="E", array=4000 + 100 * np.arange(n_rows)),
    ]
    if wave_column:
        cols.append(
            fits.Column(
                name="wavelength",
                format=f"{n_pix}D",
                unit="Angstrom",
                array=np.tile(np.linspace(4000, 5000, n_pix), (n_rows, 1)),
            )
        )
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    return path


def test_table_reader_rows_ranges_and_extra_columns(tmp_path):
    path = _many_spectra_table(tmp_path / "tab.fits")
    assert readers.identify(path) == "table"
    reader = readers.get("table", extra_columns=["teff"])
    assert reader.count(path) == 5
    spectra = reader.read(path, 1, 3)
    assert [s.id for s in spectra] == ["101", "102"]
    assert spectra[0].flux[0] == 2 and spectra[0].extra == {"teff": 4100.0}
    np.testing.assert_allclose(spectra[1].wave, np.linspace(4000, 5000, 50))
    np.testing.assert_allclose(spectra[1].err, 0.1, rtol=1e-6)


def test_table_reader_linear_grid_and_errors(tmp_path):
    path = _many_spectra_table(tmp_path / "tab.fits", wave_column=False)
    with pytest.raises(InputFileError, match="no wavelength column"):
        readers.get("table").read(path)
    spectra = readers.get("table", wave_start=3360.0, wave_step=20.0).read(path)
    np.testing.assert_allclose(spectra[0].wave, 3360.0 + 20.0 * np.arange(50))
    with pytest.raises(InputFileError, match="flux column 'FLUXX' not found"):
        readers.get("table", flux_column="FLUXX", wave_start=1.0, wave_step=1.0).read(path)
    with pytest.raises(ConfigError, match="both wave_start and wave_step"):
        readers.get("table", wave_start=1.0)


def test_identification_is_by_content_not_name(tmp_path):
    path = write_eso1d(tmp_path / "spec-0266-51630-0003.fits", WAVE, FLUX)
    assert readers.identify(path) == "eso-1d"
    img = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(img)
    with pytest.raises(UnknownFormatError, match=r"image\.fits: no reader matched: eso-1d expects"):
        readers.identify(img)


def test_not_fits_truncated_and_missing_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_text("hello")
    with pytest.raises(InputFileError, match=r"bad\.fits: not a readable FITS file"):
        readers.identify(bad)
    good = write_eso1d(tmp_path / "good.fits", WAVE, FLUX)
    data = good.read_bytes()
    (tmp_path / "cut.fits").write_bytes(data[: len(data) - 3000])
    with pytest.raises(InputFileError, match=r"cut\.fits: truncated"):
        readers.get("eso-1d").read(tmp_path / "cut.fits")
    with pytest.raises(InputFileError, match="file not found"):
        readers.identify(tmp_path / "nope.fits")
    with pytest.raises(ConfigError, match="unknown format 'fooformat'"):
        readers.get("fooformat")


@pytest.mark.parametrize(("key", "value"), [("CRVAL1", "abc"), ("CDELT1", "x"), ("DC-FLAG", "yes")])
def test_wcs_keyword_that_is_not_a_number_is_an_input_file_error(tmp_path, key, value):
    hdu = fits.PrimaryHDU(np.ones(100, np.float32))
    hdu.header.update({"CRVAL1": 5000.0, "CDELT1": 0.5, "CRPIX1": 1})
    hdu.header[key] = value
    hdu.writeto(tmp_path / "s.fits")
    with pytest.raises(InputFileError, match=rf"s\.fits: {key} = '{value}' is not a number"):
        readers.get("wcs-1d").read(tmp_path / "s.fits")
