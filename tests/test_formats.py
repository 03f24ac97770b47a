"""Readers of 2-D row arrays, APOGEE and specutils files; per-file identification; grid inference."""

from __future__ import annotations

import bz2
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from astrolatent.data import readers
from astrolatent.data.ingest import IngestConfig, ingest, make_plan
from astrolatent.data.presets import spectral_type_number
from astrolatent.data.readers.eso1d import write_eso1d
from astrolatent.data.store import SpectrumStore
from astrolatent.errors import ConfigError, InputFileError, RunError, UnknownFormatError

HAS_SPECUTILS = importlib.util.find_spec("specutils") is not None


def _spex_wave(n: int = 300) -> np.ndarray:
    """Prism-like sampling in micron: the step grows then shrinks (neither linear nor log)."""
    x = np.linspace(0.0, 1.0, n)
    step = 0.0023 + 0.0017 * np.sin(np.pi * x)
    return 0.65 + np.concatenate([[0.0], np.cumsum(step[:-1])])


def _write_rows(path: Path, rows: np.ndarray, **header) -> Path:
    hdu = fits.PrimaryHDU(np.asarray(rows, np.float32))
    for key, value in header.items():
        hdu.header[key] = value
    hdu.writeto(path)
    return path


def test_spextool_rows_units_and_flags(tmp_path):
    wave = _spex_wave()
    flux = 1e-15 * (wave / 1.2) ** -2
    err, flag = 0.05 * flux, np.zeros_like(wave)
    flag[10] = 1
    path = _write_rows(
        tmp_path / "a.fits", [wave, flux, err, flag], XUNITS="Microns", YUNITS="W m-2 um-1"
    )
    assert readers.identify(path) == "spextool"
    (spec,) = readers.get("spextool").read(path)
    np.testing.assert_allclose(spec.wave, wave * 1e4, rtol=1e-6)  # micron -> Angstrom
    np.testing.assert_allclose(spec.err, err, rtol=1e-6)
    assert spec.bad[10] and spec.bad.sum() == 1
    assert spec.extra["flux_unit"] == "W m-2 um-1"


def test_spextool_transposed_no_units_two_rows_and_aperture_stack(tmp_path):
    wave = _spex_wave()
    flux = np.linspace(1.0, 2.0, wave.size)
    cols = _write_rows(tmp_path / "cols.fits", np.stack([wave, flux, 0.1 * flux], axis=1))
    two = _write_rows(tmp_path / "two.fits", [wave, flux])
    stack = np.stack([[wave, np.full_like(wave, np.nan), flux], [wave, flux, 0.1 * flux]])
    aps = _write_rows(tmp_path / "aps.fits", stack, XUNITS="um")
    for path in (cols, two, aps):
        assert readers.identify(path) == "spextool", path.name
        (spec,) = readers.get("spextool").read(path)
        np.testing.assert_allclose(spec.wave, wave * 1e4, rtol=1e-6)
        np.testing.assert_allclose(spec.flux, flux, rtol=1e-6)
    (spec,) = readers.get("spextool").read(aps)
    assert spec.extra["aperture"] == 1  # the first aperture's flux is all NaN
    assert readers.get("spextool").read(two)[0].err is None


def test_lamost_rows_ivar_and_mask(tmp_path):
    wave = 10 ** (3.5682 + 1e-4 * np.arange(400))
    flux = np.linspace(10.0, 20.0, 400)
    ivar = np.full(400, 4.0)
    ivar[5] = 0.0
    andmask = np.zeros(400)
    andmask[7] = 8
    path = _write_rows(
        tmp_path / "spec-55859-F5902_sp01-001.fits",
        [flux, ivar, wave, andmask, np.zeros(400)],
        TELESCOP="LAMOST",
        CRVAL1=3.5682,
        CD1_1=1e-4,
    )
    assert readers.identify(path) == "lamost"
    (spec,) = readers.get("lamost").read(path)
    np.testing.assert_allclose(spec.wave, wave, rtol=1e-6)
    np.testing.assert_allclose(spec.err[~spec.bad], 0.5)
    assert spec.bad[5] and spec.bad[7] and spec.bad.sum() == 2


def test_lamost_dr8_table_with_inverse_variance(tmp_path):
    wave = 10 ** (3.5682 + 1e-4 * np.arange(300))
    ivar = np.full(300, 25.0)
    ivar[9] = 0.0
    cols = [
        fits.Column(name="FLUX", format="300E", array=np.ones((1, 300))),
        fits.Column(name="IVAR", format="300E", array=ivar[None]),
        fits.Column(name="WAVELENGTH", format="300D", array=wave[None]),
    ]
    path = tmp_path / "spec-dr8.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    assert readers.identify(path) == "table"
    (spec,) = readers.get("table").read(path)
    np.testing.assert_allclose(spec.wave, wave)
    np.testing.assert_allclose(spec.err[~spec.bad], 0.2, rtol=1e-6)
    assert spec.bad[9] and spec.bad.sum() == 1 and spec.err[9] == np.inf


def test_named_rows_with_wcs_wavelengths(tmp_path):
    flux = np.linspace(1.0, 2.0, 50)
    path = _write_rows(
        tmp_path / "r.fits", [0.1 * flux, flux], CRVAL1=5000.0, CDELT1=2.0, CRPIX1=1.0
    )
    (spec,) = readers.get("rows", rows=["err", "flux"]).read(path)
    np.testing.assert_allclose(spec.wave, 5000.0 + 2.0 * np.arange(50))
    np.testing.assert_allclose(spec.err, 0.1 * flux, rtol=1e-6)
    with pytest.raises(ConfigError, match="rows="):
        readers.get("rows", rows=["wave", "bogus"])
    with pytest.raises(InputFileError, match="needs its flux row"):
        readers.get("rows", rows=["err", "wave", "flux"]).read(path)
    # LAMOST rows flux, ivar only: the wavelengths from the log-linear WCS
    lamost = _write_rows(
        tmp_path / "l.fits", [flux, np.ones(50)], CRVAL1=3.6, CD1_1=1e-4, CRPIX1=1.0
    )
    lamost_hdr = fits.open(lamost, mode="update")
    lamost_hdr[0].header["DC-FLAG"] = 1
    lamost_hdr.close()
    (spec,) = readers.get("lamost").read(lamost)
    np.testing.assert_allclose(spec.wave, 10 ** (3.6 + 1e-4 * np.arange(50)))


def _apogee(path: Path, *, apstar: bool) -> Path:
    n = 600
    flux = np.linspace(1.0, 2.0, n)
    flux[100:120] = 0.0  # chip gap
    head = fits.Header({"CRVAL1": 4.179, "CDELT1": 6e-6, "CRPIX1": 1, "CTYPE1": "LOG-LINEAR"})
    primary = fits.PrimaryHDU()
    primary.header["OBJID"] = "2M00000002+7417074"
    if apstar:
        fluxes = np.stack([flux, flux * 1.01, flux * 0.99])
        mask = np.zeros((3, n), np.int32)
        mask[0, 300] = 2**1  # CRPIX: bad
        mask[0, 301] = 2**12  # SIG_SKYLINE: not in the default bits
        third = fits.ImageHDU(mask)
    else:
        fluxes = flux
        third = fits.ImageHDU(flux.astype(np.float32))  # best-fit model
    hdus = [primary, fits.ImageHDU(fluxes, head), fits.ImageHDU(0.01 * fluxes + 0.01, head), third]
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.mark.parametrize("apstar", [True, False])
def test_apogee_apstar_and_aspcapstar(tmp_path, apstar):
    path = _apogee(tmp_path / "apStar.fits", apstar=apstar)
    assert readers.identify(path) == "apogee"
    (spec,) = readers.get("apogee").read(path)
    np.testing.assert_allclose(spec.wave[0], 10**4.179)
    np.testing.assert_allclose(np.log10(spec.wave[1] / spec.wave[0]), 6e-6, rtol=1e-6)
    assert spec.id == "2M00000002+7417074" and spec.flux.shape == (600,)
    assert spec.bad[100:120].all()
    assert spec.bad[300] == apstar and not spec.bad[301]
    assert spec.bad.sum() == 20 + apstar


def test_unknown_file_names_what_every_reader_expects(tmp_path):
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((50, 60), np.float32)).writeto(path)
    with pytest.raises(UnknownFormatError) as info:
        readers.identify(path)
    reason = info.value.reason
    assert reason.startswith("no reader matched:")
    assert "eso-1d expects" in reason and "spextool expects" in reason
    assert "apogee expects" in reason and "wcs-1d expects" in reason


def _eso(path: Path, wave: np.ndarray, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    flux = 100.0 + rng.normal(0, 1, wave.size)
    return write_eso1d(path, wave, flux, np.ones_like(flux))


def test_mixed_folder_compressed_files_and_quarantine(tmp_path):
    """eso-1d, wcs-1d (bz2) and fpack'ed files in one store; an image quarantined with reasons."""
    src = tmp_path / "in"
    src.mkdir()
    wave = 5000.0 + 0.5 * np.arange(400)
    _eso(src / "a.fits", wave, 0)
    _eso(src / "b.fits", wave, 1)
    flux = np.linspace(90.0, 110.0, 400).astype(np.float32)
    hdu = fits.PrimaryHDU(flux)
    hdu.header.update({"CRVAL1": 5000.0, "CDELT1": 0.5, "CRPIX1": 1.0})
    hdu.writeto(tmp_path / "c.fits")
    (src / "c.fits.bz2").write_bytes(bz2.compress((tmp_path / "c.fits").read_bytes()))
    comp = fits.CompImageHDU(flux, hdu.header)
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(src / "d.fits.fz")
    fits.PrimaryHDU(np.zeros((50, 60), np.float32)).writeto(src / "image.fits")
    summary = ingest([src], tmp_path / "s")
    assert summary.n_files == 5 and summary.n_ok == 4 and summary.n_quarantined == 1
    store = SpectrumStore(tmp_path / "s")
    assert store.attrs["formats"] == {"eso-1d": 2, "wcs-1d": 2}
    assert store.attrs["reader"] == "mixed"
    q = store.quarantine()
    assert q["file"].str.endswith("image.fits").all()
    assert q["reason"].iloc[0].startswith("no reader matched: eso-1d expects")
    meta = store.metadata.set_index("id")
    f, _ = store.read([meta.loc["c", "row"], meta.loc["d", "row"]])
    np.testing.assert_allclose(f[0] * meta.loc["c", "scale"], flux, rtol=1e-6)
    np.testing.assert_array_equal(f[0], f[1])


@pytest.mark.parametrize("bad", ["nan-wave", "nan-flux", "short", "non-monotonic", "length"])
def test_first_file_never_decides_the_grid(tmp_path, bad):
    src = tmp_path / "in"
    src.mkdir()
    wave = 5000.0 + 0.5 * np.arange(400)
    for k in range(5):
        _eso(src / f"b{k}.fits", wave, k)
    first = wave.copy()
    flux = np.full(wave.size, 100.0)
    if bad == "nan-wave":
        first[3] = np.nan
    elif bad == "nan-flux":
        flux[:] = np.nan
    elif bad == "short":
        first = wave[150:250]  # valid, but a cut coverage must not cut everyone
        flux = flux[150:250]
    elif bad == "non-monotonic":
        first[[10, 11]] = first[[11, 10]]
    if bad == "length":  # WAVE and FLUX of different lengths
        cols = [
            fits.Column(name="WAVE", format="400D", array=wave[None]),
            fits.Column(name="FLUX", format="390E", array=np.ones((1, 390))),
        ]
        table = fits.BinTableHDU.from_columns(cols)
        fits.HDUList([fits.PrimaryHDU(), table]).writeto(src / "a0.fits")
    else:
        write_eso1d(src / "a0.fits", first, flux)
    plan = make_plan([src], IngestConfig())
    grid = plan.config.preprocess.grid
    assert (grid.start, grid.stop, grid.step, grid.scale) == (5000.0, wave[-1], 0.5, "linear")
    skipped = [Path(s["file"]).name for s in plan.grid_inference["skipped"]]
    assert skipped == ([] if bad == "short" else ["a0.fits"])
    used = [Path(f).name for f in plan.grid_inference["files"]]
    assert ("a0.fits" in used) == (bad == "short")  # the short file passes validation
    summary = ingest([src], tmp_path / "s")
    assert summary.n_ok == 5 and summary.n_quarantined + summary.n_rejected == 1


def test_zero_row_table_first_and_all_bad_is_one_clear_error(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    cols = [fits.Column(name="flux", format="10E", array=np.zeros((0, 10), np.float32))]
    cols.append(fits.Column(name="wave", format="10D", array=np.zeros((0, 10))))
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(src / "a.fits")
    with pytest.raises(ConfigError, match="none of the 1 input files could be read"):
        make_plan([src], IngestConfig())
    _eso(src / "b.fits", 5000.0 + 0.5 * np.arange(100), 0)
    plan = make_plan([src], IngestConfig())
    assert plan.config.preprocess.grid.start == 5000.0
    assert plan.grid_inference["skipped"][0]["reason"] == "holds no spectra"
    assert plan.quarantine == [
        {"file": str((src / "a.fits").resolve()), "reason": "holds no spectra"}
    ]


def test_non_uniform_sampling_gets_a_log_grid_and_flux_conserving_resampling(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    wave = _spex_wave(400)
    for k in range(3):
        flux = (wave / 1.2) ** -2 * (1 + 0.1 * k)
        _write_rows(src / f"s{k}.fits", [wave, flux, 0.01 * flux], XUNITS="um")
    plan = make_plan([src], IngestConfig())
    pre = plan.config.preprocess
    assert pre.grid.scale == "log" and pre.resample == "flux-conserving"
    med = np.median(np.diff(np.log10(wave)))
    assert pre.grid.step == pytest.approx(med, rel=1e-5)  # the file stores float32
    assert (
        pre.grid.start == pytest.approx(wave[0] * 1e4)
        and "median resolution" in (plan.grid_inference["rule"])
    )
    ingest([src], tmp_path / "s")
    store = SpectrumStore(tmp_path / "s")
    assert store.attrs["grid_inference"]["resample"] == "flux-conserving"
    meta = store.metadata
    f, v = store.read([0])
    # analytic mean of lam^-2 over each grid pixel: (1/a - 1/b) / (b - a), in file units
    edges = 10 ** (np.log10(store.wave[0]) + pre.grid.step * (np.arange(store.length + 1) - 0.5))
    a, b = edges[:-1] / 1.2e4, edges[1:] / 1.2e4
    truth = (1 / a - 1 / b) / (b - a)
    got = f[0] * meta.loc[0, "scale"]
    np.testing.assert_allclose(got[v[0]], truth[v[0]], rtol=2e-3)


@pytest.mark.parametrize(
    ("text", "value", "sd"),
    [
        ("M0.0", 0.0, 0.0),
        ("L0", 10.0, 0.0),
        ("T9", 29.0, 0.0),
        ("L5.5:", 15.5, 0.0),
        ("K5", -5.0, 0.0),
        ("sdM7", 7.0, 1.0),
        ("d/sdM4", 4.0, 1.0),
        ("esdL1", 11.0, 1.0),
        ("", np.nan, np.nan),
        ("M alph", np.nan, np.nan),
        (None, np.nan, np.nan),
    ],
)
def test_spectral_type_number(text, value, sd):
    got = spectral_type_number(text)
    np.testing.assert_equal(got, (value, sd))


@pytest.mark.skipif(not HAS_SPECUTILS, reason="specutils not installed")
@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyDeprecationWarning")
def test_specutils_fallback_and_export(tmp_path):
    import astropy.units as u
    from specutils import Spectrum1D

    wave = np.linspace(5000.0, 6000.0, 300)
    flux = np.linspace(1.0, 3.0, 300) * 1e-17
    src = tmp_path / "in"
    src.mkdir()
    Spectrum1D(spectral_axis=wave / 10 * u.nm, flux=flux * u.Unit("erg/(s cm2 AA)")).write(
        src / "tab.fits", format="tabular-fits"
    )
    assert readers.identify(src / "tab.fits") == "specutils"
    (spec,) = readers.get("specutils").read(src / "tab.fits")
    np.testing.assert_allclose(spec.wave, wave)  # nm -> Angstrom
    ingest([src], tmp_path / "s")
    out = readers.specutils_reader.to_specutils(tmp_path / "s")
    assert out.flux.shape == (1, 300) and out.spectral_axis.unit == u.AA
    np.testing.assert_allclose(out.spectral_axis.value, wave)
    np.testing.assert_allclose(out.flux.value[0] * out.meta["scale"][0], flux, rtol=1e-6)
    assert out.meta["id"] == ["tab"] and not out.mask.any()


def test_export_command_writes_fits_and_votable_beside_the_run_tables(tmp_path):
    from typer.testing import CliRunner

    from astrolatent.cli import app

    run = tmp_path / "run"
    (run / "analysis").mkdir(parents=True)
    pd.DataFrame({"id": ["a"], "mu_0": [1.0]}).to_parquet(run / "latents.parquet")
    pd.DataFrame({"label": ["teff"], "mi": [0.3]}).to_csv(run / "analysis" / "mi.csv", index=False)
    result = CliRunner().invoke(app, ["export", str(run), "--format", "fits"])
    assert result.exit_code == 0, result.output
    assert (run / "latents.fits").is_file() and (run / "analysis" / "mi.fits").is_file()
    assert not (run / "latents.vot").exists()
    result = CliRunner().invoke(app, ["export", str(tmp_path / "nothing")])
    assert isinstance(result.exception, RunError) and "not a run directory" in str(result.exception)


def test_fits_and_votable_export(tmp_path):
    from astropy.table import Table

    from astrolatent.tables import export_tables

    frame = pd.DataFrame({"id": ["a", "b", None], "mu_0": [0.5, np.nan, -1.0], "row": [0, 1, 2]})
    frame.to_parquet(tmp_path / "latents.parquet", index=False)
    written = export_tables([tmp_path / "latents.parquet"], ["fits", "votable"])
    assert [p.name for p in written] == ["latents.fits", "latents.vot"]
    for path in written:
        table = Table.read(path)
        ids = table["id"].filled("") if hasattr(table["id"], "filled") else table["id"]
        assert list(ids) == ["a", "b", ""]  # VOTable reads an empty string back as null
        np.testing.assert_array_equal(np.asarray(table["mu_0"], float), frame["mu_0"])
        assert list(table["row"]) == [0, 1, 2]
    with pytest.raises(ConfigError, match="unknown table format"):
        export_tables([tmp_path / "latents.parquet"], ["hdf5"])


SPLAT = importlib.util.find_spec("splat")


@pytest.mark.skipif(SPLAT is None, reason="splat (SpeX Prism Library) not installed")
def test_real_spex_files_of_every_layout(tmp_path):
    folder = Path(SPLAT.submodule_search_locations[0]) / "resources/Spectra/Public/SPEX-PRISM"
    # one file of each layout found in the library: 3 x N with XUNITS um, 4 x N with flags,
    # 2 x N without units, N x 3 transposed, 2 apertures x 3 x N
    names = ["10001_10443", "12016_11724", "10329_10311", "12204_11940", "11008_11146"]
    for name in names:
        assert readers.identify(folder / f"{name}.fits.gz") == "spextool", name
    summary = ingest([folder / f"{n}.fits.gz" for n in names], tmp_path / "s")
    assert summary.n_ok == len(names)
    store = SpectrumStore(tmp_path / "s")
    grid = store.attrs["preprocess"]["grid"]
    assert grid["scale"] == "log" and 6400 < grid["start"] < 6900 and 25300 < grid["stop"] < 25700
    assert store.labels == []  # flux_unit and aperture describe the files, they are no labels
    assert store.metadata["aperture"].notna().sum() == 1


def test_max_flux_rejects_spectra_far_above_their_median(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    wave = 5000.0 + 0.5 * np.arange(200)
    write_eso1d(src / "a.fits", wave, np.full(200, 10.0))
    spiky = np.full(200, 10.0)
    spiky[50] = 10.0 * 80  # 80 times the median
    write_eso1d(src / "b.fits", wave, spiky)
    config = IngestConfig.from_dict({"preprocess": {"max_flux": 50.0}})
    summary = ingest([src], tmp_path / "s", config)
    assert summary.n_ok == 1 and summary.n_rejected == 1
    meta = SpectrumStore(tmp_path / "s").metadata.set_index("id")
    assert meta.loc["b", "reason"] == "normalised flux reaches 80 > max_flux 50"


@pytest.mark.skipif(SPLAT is None, reason="splat (SpeX Prism Library) not installed")
def test_spex_prism_preset_labels_on_real_files(tmp_path):
    from astrolatent.data import presets

    preset = presets.get("spex-prism")
    (folder,) = preset.default_inputs()
    names = ["10001_10443", "10002_10782", "12016_11724"]
    config = IngestConfig.from_preset("spex-prism")
    summary = ingest([folder / f"{n}.fits.gz" for n in names], tmp_path / "s", config)
    assert summary.n_ok == 3 and summary.label_report["n_matched"] == 3
    store = SpectrumStore(tmp_path / "s")
    meta = store.metadata.set_index("id")
    assert {"spt", "subdwarf", "gravity", "quality", "median_snr", "published"} <= set(store.labels)
    # spectral_data.csv: 10001 is L5.0, FLD-G, OK, S/N 224, published
    row = meta.loc["10001_10443"]
    assert (row["spt"], row["gravity"], row["quality"], row["median_snr"], row["published"]) == (
        15.0,
        0.0,
        0.0,
        224.0,
        1.0,
    )
    labels = preset.label_table()
    assert len(labels) == 3089 and labels["published"].sum() == 2328
