"""Ingestion: quarantine of bad files, duplicates, labels, parallel and Dask runs, kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from astropy.io import fits
from typer.testing import CliRunner

from astrolatent.cli import app, command_line
from astrolatent.data import ingest as ingest_module
from astrolatent.data.ingest import IngestConfig, ingest
from astrolatent.data.readers.eso1d import write_eso1d
from astrolatent.data.store import SpectrumStore
from astrolatent.errors import ConfigError, InputFileError, LabelError, StoreError
from tests.conftest import LOW_WAVE, absorption_spectrum

runner = CliRunner()


def _add_bad_files(folder: Path) -> dict[str, str]:
    """One file per failure mode; returns {file name: expected reason fragment}."""
    good = sorted(folder.glob("*.fits"))[0].read_bytes()
    (folder / "truncated.fits").write_bytes(good[: len(good) // 2])
    (folder / "notfits.fits").write_text("SIMPLE? no, this is a text file\n")
    cols = [
        fits.Column(name="WAVE", format="10D", array=np.arange(10.0)[None]),
        fits.Column(name="FLUX2", format="10E", array=np.ones((1, 10))),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(
        folder / "noflux.fits"
    )
    write_eso1d(
        folder / "allnan.fits", LOW_WAVE, np.full(LOW_WAVE.size, np.nan), arcfile="ADP.allnan.fits"
    )
    cols = [
        fits.Column(name="WAVE", format="100D", array=LOW_WAVE[None, :100]),
        fits.Column(name="FLUX", format="90E", array=np.ones((1, 90))),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(
        folder / "shape.fits"
    )
    return {
        "truncated.fits": "truncated",
        "notfits.fits": "not a readable FITS file",
        "noflux.fits": "no reader matched: eso-1d expects a one-row binary table with WAVE and FLUX",
        "allnan.fits": "flux is entirely NaN/inf",
        "shape.fits": "wavelength has 100 values but flux has 90",
    }


def test_bad_files_are_quarantined_and_good_ones_go_through(eso_folder, tmp_path):
    expected = _add_bad_files(eso_folder)
    store_dir = tmp_path / "store"
    result = runner.invoke(app, ["ingest", str(eso_folder), "--store", str(store_dir)])
    assert result.exit_code == 5, result.output
    assert "12 spectra accepted" in result.output and "5 quarantined" in result.output
    info = json.loads(runner.invoke(app, ["info", str(store_dir), "--json"]).output)
    assert info["n_spectra"] == 12 and info["length"] == 6251 and info["n_quarantined"] == 5
    reasons = {Path(q["file"]).name: q["reason"] for q in info["quarantined"]}
    assert set(reasons) == set(expected)
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])
    for key in ("n_rejected", "rejected", "labels"):
        assert key in info


def test_store_content_matches_the_files(eso_folder, tmp_path):
    ingest([eso_folder], tmp_path / "s", IngestConfig())
    store = SpectrumStore(tmp_path / "s")
    meta = store.metadata
    assert (meta["status"] == "ok").all() and meta["object"].nunique() == 4
    assert list(meta["id"]) == sorted(meta["id"])  # rows follow the sorted file names
    flux, valid = store.read(np.arange(12))
    assert valid.all()
    np.testing.assert_allclose(np.median(flux, axis=1), 1.0, atol=1e-6)
    assert meta["checksum"].str.len().eq(32).all()  # XXH3-128, hex
    assert store.flux.chunks[0] >= 1 and store.flux.dtype == np.float32


def test_rows_of_spectra_not_stored_are_zero_in_reused_blocks(eso_folder, tmp_path, monkeypatch):
    """Tasks reuse the previous task's blocks without zeroing them: the rows of a rejected
    spectrum, of one whose content is broken and of a file that cannot be read when its
    task runs must still be zero, not the previous spectrum."""
    _add_bad_files(eso_folder)
    gone = "ADP.2020-01-01T00:05:00.000.fits"
    read_segment = ingest_module._read_segment

    def vanishing(reader, seg, *args):
        if Path(seg.path).name == gone:  # e.g. deleted between the plan and its task
            raise InputFileError(seg.path, "cannot read file (No such file or directory)")
        return read_segment(reader, seg, *args)

    monkeypatch.setattr(ingest_module, "_read_segment", vanishing)
    flux, err = absorption_spectrum(LOW_WAVE, level=10.0)
    write_eso1d(eso_folder / "ADP.dim.fits", LOW_WAVE, flux, err, arcfile="ADP.dim.fits")
    config = IngestConfig(workers=1, rows_per_task=1, preprocess={"min_median": 50.0})
    ingest([eso_folder], tmp_path / "s", config)
    store = SpectrumStore(tmp_path / "s")
    meta = store.metadata
    stored = meta["status"] == "ok"
    assert set(meta.loc[~stored, "status"]) == {"rejected", "quarantined"}
    assert (meta["status"] == "rejected").sum() == 1 and (~stored).sum() == 4
    assert "No such file" in meta.loc[meta["file"].str.endswith(gone), "reason"].item()
    group = zarr.open_group(str(tmp_path / "s"), mode="r")
    for row, ok in zip(meta["row"], stored, strict=True):
        arrays = [group[name][row] for name in ("flux", "valid", "err")]
        assert all(a.any() for a in arrays) if ok else not any(a.any() for a in arrays), row


def test_two_workers_give_the_same_store_as_one(eso_folder, tmp_path):
    ingest([eso_folder], tmp_path / "a", IngestConfig(workers=1, rows_per_task=2))
    ingest([eso_folder], tmp_path / "b", IngestConfig(workers=2, rows_per_task=2))
    _assert_same_store(tmp_path / "a", tmp_path / "b")


def test_dask_local_cluster_path(eso_folder, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        summary = ingest(
            [eso_folder],
            tmp_path / "dask",
            IngestConfig(scheduler=cluster.scheduler_address, rows_per_task=2),
        )
    assert summary.n_ok == 12 and summary.n_tasks == 6
    ingest([eso_folder], tmp_path / "local", IngestConfig(rows_per_task=2))
    _assert_same_store(tmp_path / "dask", tmp_path / "local")


def test_unreachable_scheduler_is_a_clear_error(eso_folder, tmp_path):
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        ingest([eso_folder], tmp_path / "x", IngestConfig(scheduler="tcp://127.0.0.1:9"))


def test_duplicate_ids_are_detected(eso_folder, tmp_path):
    first = sorted(eso_folder.glob("*.fits"))[0]
    (eso_folder / "zz-copy.fits").write_bytes(first.read_bytes())
    summary = ingest([eso_folder], tmp_path / "s", IngestConfig())
    assert summary.n_ok == 12 and summary.n_rejected == 1
    rejected = SpectrumStore(tmp_path / "s").info()["rejected"]
    assert rejected[0]["id"] == first.name.removesuffix(".fits")
    assert "duplicate id (first stored at row 0" in rejected[0]["reason"]


def test_labels_join_and_report(eso_folder, tmp_path):
    ids = sorted(p.name.removesuffix(".fits") for p in eso_folder.glob("*.fits"))
    labels = pd.DataFrame(
        {"spec": [*ids[:10], "ADP.unknown"], "teff": np.arange(11) * 100.0 + 4000}
    )
    labels.to_csv(tmp_path / "labels.csv", index=False)
    summary = ingest(
        [eso_folder],
        tmp_path / "s",
        IngestConfig(labels=str(tmp_path / "labels.csv"), id_column="spec"),
    )
    report = summary.label_report
    assert (
        report["n_matched"] == 10
        and report["n_unknown_ids"] == 1
        and report["unknown_ids"] == ["ADP.unknown"]
    )
    assert report["n_unlabelled"] == 2 and report["unlabelled"] == ids[10:]
    store = SpectrumStore(tmp_path / "s")
    assert store.labels == ["teff"]
    meta = store.metadata.set_index("id")
    assert meta.loc[ids[3], "teff"] == 4300.0 and np.isnan(meta.loc[ids[11], "teff"])
    assert store.info()["label_coverage"] == {"teff": 10}


def test_label_table_problems(eso_folder, tmp_path):
    pd.DataFrame({"id": ["a", "a"], "teff": [1, 2]}).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(LabelError, match=r"dup\.csv: 1 id"):
        ingest([eso_folder], tmp_path / "s1", IngestConfig(labels=str(tmp_path / "dup.csv")))
    pd.DataFrame({"name": ["a"], "teff": [1]}).to_csv(tmp_path / "noid.csv", index=False)
    with pytest.raises(LabelError, match=r"noid\.csv: id column 'id' not found"):
        ingest([eso_folder], tmp_path / "s2", IngestConfig(labels=str(tmp_path / "noid.csv")))


def test_store_from_other_inputs_is_not_mixed(eso_folder, tmp_path):
    ingest([eso_folder], tmp_path / "s", IngestConfig())
    with pytest.raises(StoreError, match="built from other inputs or preprocessing"):
        ingest([eso_folder], tmp_path / "s", IngestConfig(preprocess={"dtype": "float16"}))
    ingest(
        [eso_folder], tmp_path / "s", IngestConfig(preprocess={"dtype": "float16"}), overwrite=True
    )
    assert SpectrumStore(tmp_path / "s").flux.dtype == np.float16


def test_unfinished_or_missing_store_errors(tmp_path):
    with pytest.raises(StoreError, match="not a spectrum store"):
        SpectrumStore(tmp_path)
    result = runner.invoke(app, ["ingest", "--store", str(tmp_path / "s")])
    assert result.exit_code != 0


def _assert_same_store(a: Path, b: Path) -> None:
    sa, sb = SpectrumStore(a), SpectrumStore(b)
    for name in ("flux", "valid", "err", "wave"):
        np.testing.assert_array_equal(
            zarr.open_group(str(a))[name][:], zarr.open_group(str(b))[name][:]
        )
    pd.testing.assert_frame_equal(sa.metadata, sb.metadata)
    pd.testing.assert_frame_equal(sa.quarantine(), sb.quarantine())


def test_kill_and_resume_gives_the_same_store(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(80):
        flux, err = absorption_spectrum(LOW_WAVE, rv=i, seed=i)
        write_eso1d(folder / f"ADP.{i:03d}.fits", LOW_WAVE, flux, err, object_name=f"S{i}")
    _add_bad_files(folder)
    killed = tmp_path / "killed"
    cmd = command_line("ingest", str(folder), "--store", str(killed), "--rows-per-task", "1")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    parts = killed / "parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(parts.glob("*.parquet"))) < 10:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done = len(list(parts.glob("*.parquet")))
    assert 10 <= n_done < 85, "the kill must land mid-run"
    assert not (killed / "metadata.parquet").exists()
    resumed = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env)
    assert resumed.returncode == 5, resumed.stderr  # finished; 5 files quarantined
    summary = json.loads(resumed.stdout)
    assert summary["n_tasks_skipped"] >= 10 and summary["n_ok"] == 80
    ingest([folder], tmp_path / "clean", IngestConfig(rows_per_task=1))
    _assert_same_store(killed, tmp_path / "clean")


def test_label_columns_that_clash_with_metadata_are_renamed(eso_folder, tmp_path):
    ids = sorted(p.name.removesuffix(".fits") for p in eso_folder.glob("*.fits"))
    pd.DataFrame({"id": ids, "snr": 50.0, "object": "x", "logg": 4.0}).to_csv(
        tmp_path / "l.csv", index=False
    )
    summary = ingest([eso_folder], tmp_path / "s", IngestConfig(labels=str(tmp_path / "l.csv")))
    assert summary.label_report["renamed"] == {"snr": "snr_label", "object": "object_label"}
    store = SpectrumStore(tmp_path / "s")
    assert store.labels == ["snr_label", "object_label", "logg"]
    assert store.metadata["object"].str.startswith("STAR").all()  # the files' own values are kept
