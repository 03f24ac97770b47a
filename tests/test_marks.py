"""What astrolatent may delete: only folders it marked, and only what it wrote in them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
import zarr
from astropy.io import fits

from astrolatent.cli import run
from astrolatent.data.ingest import IngestConfig, ingest
from astrolatent.errors import OutputFolderError, TrainingError
from astrolatent.outputs import marks
from astrolatent.pipeline import load_pipeline, run_pipeline

MINE = b"the user's own file\n"


def _plant(folder: Path, name: str = "mine.txt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(MINE)
    return path


def test_claim_marks_first_and_refuses_a_folder_it_did_not_write(tmp_path) -> None:
    new = marks.claim(tmp_path / "a" / "b", "run", ("model.pt",))
    assert marks.read_mark(new) == {
        "astrolatent": "output folder",
        "kind": "run",
        "owns": ["model.pt"],
        "version": marks.read_mark(new)["version"],
    }
    empty = tmp_path / "empty"
    empty.mkdir()
    assert marks.is_marked(marks.claim(empty, "run", ("x",)))
    user = tmp_path / "user"
    mine = _plant(user)
    with pytest.raises(OutputFolderError, match=r"user: --run exists, is not empty and was not"):
        marks.claim(user, "run", ("*",), what="--run")
    assert sorted(p.name for p in user.iterdir()) == ["mine.txt"]  # not even a mark
    assert mine.read_bytes() == MINE
    with pytest.raises(OutputFolderError, match="holds an astrolatent run, not a store"):
        marks.claim(new, "store", ("zarr.json",))
    with pytest.raises(OutputFolderError, match="is a file"):
        marks.claim(mine, "run", ())
    assert marks.claim(user, "run", ("x",), legacy=lambda f: (f / "mine.txt").is_file()) == user


def test_clear_and_remove_take_only_what_astrolatent_wrote(tmp_path) -> None:
    run_dir = marks.claim(tmp_path / "run", "run", ("model.pt", "checkpoints", "analysis"))
    (run_dir / "model.pt").write_bytes(b"weights")
    (run_dir / "model.pt.tmp").write_bytes(b"half")
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"ckpt")
    analysis = marks.claim(run_dir / "analysis", "analysis", ("summary.json",))
    (analysis / "summary.json").write_text("{}")
    mine = [_plant(run_dir), _plant(analysis, "notes.md")]
    marks.clear(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == [marks.MARK_FILE, "analysis", "mine.txt"]
    assert sorted(p.name for p in analysis.iterdir()) == [marks.MARK_FILE, "notes.md"]
    assert not marks.remove(run_dir)  # the user's files keep the folder
    assert all(p.read_bytes() == MINE for p in mine)
    mine[0].unlink()
    mine[1].unlink()
    assert marks.remove(run_dir) and not run_dir.exists()


def test_a_zarr_store_counts_as_marked(tmp_path) -> None:
    zarr.create_group(store=str(tmp_path / "s"))
    assert marks.is_marked(tmp_path / "s") and not marks.is_marked(tmp_path)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array"}')
    assert not marks.is_zarr_group(tmp_path / "t")


def test_ingest_never_recreates_a_folder_that_is_not_a_store(tmp_path, eso_folder, capsys) -> None:
    user = tmp_path / "desk"
    mine = _plant(user)
    assert run(["ingest", str(eso_folder), "--store", str(user)]) == 6
    assert "desk: --store exists, is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in user.iterdir()) == ["mine.txt"]
    # the store is the input folder: the spectra stay
    before = sorted(p.name for p in eso_folder.iterdir())
    assert run(["ingest", str(eso_folder), "--store", str(eso_folder)]) == 6
    assert sorted(p.name for p in eso_folder.iterdir()) == before
    capsys.readouterr()
    # a file where the store should be
    assert run(["ingest", str(eso_folder), "--store", str(mine)]) == 6
    assert mine.read_bytes() == MINE


def test_rebuilding_a_store_keeps_a_users_file_in_it(tmp_path, eso_folder) -> None:
    store = tmp_path / "store"
    ingest([eso_folder], store, IngestConfig(rows_per_task=6))
    mine = _plant(store)
    other = IngestConfig(rows_per_task=6, preprocess={"min_median": 1.0})
    with pytest.raises(Exception, match="--overwrite"):
        ingest([eso_folder], store, other)
    summary = ingest([eso_folder], store, other, overwrite=True)
    assert summary.n_ok == 12 and mine.read_bytes() == MINE
    assert marks.read_mark(store)["kind"] == "store"


def test_a_store_written_before_marks_is_still_read_and_resumed(tmp_path, eso_folder) -> None:
    store = tmp_path / "store"
    ingest([eso_folder], store, IngestConfig(rows_per_task=6))
    (store / marks.MARK_FILE).unlink()  # as written by earlier versions
    again = ingest([eso_folder], store, IngestConfig(rows_per_task=6))
    assert again.n_tasks_skipped == again.n_tasks and marks.is_marked(store)


def test_float16_overflow_is_masked_with_a_reason(tmp_path) -> None:
    from astrolatent.data.readers.eso1d import write_eso1d
    from astrolatent.data.store import SpectrumStore

    wave = 5000.0 + 0.5 * np.arange(64)
    folder = tmp_path / "fits"
    folder.mkdir()
    for i in range(2):
        flux = np.full(64, 100.0)
        if i == 1:
            flux[10] = 1e9  # 1e7 times the median: inf in float16
        write_eso1d(folder / f"s{i}.fits", wave, flux, np.full(64, 1.0), arcfile=f"s{i}.fits")
    ingest([folder], tmp_path / "store", IngestConfig(preprocess={"dtype": "float16"}))
    store = SpectrumStore(tmp_path / "store")
    flux = np.asarray(store.flux[:], dtype=np.float64)
    valid = np.asarray(store.valid[:])
    assert np.isfinite(flux[valid]).all() and not valid[1, 10] and valid[1, 11]
    meta = store.metadata.set_index("id")
    assert "1 pixels masked" in meta.loc["s1", "reason"] and "float16" in meta.loc["s1", "reason"]
    assert meta.loc["s0", "reason"] == ""


def test_non_finite_loss_stops_training_with_an_error(tiny_store, tmp_path, capsys) -> None:
    from astrolatent.training.fit import fit

    broken = tmp_path / "store"
    import shutil

    shutil.copytree(tiny_store, broken)
    group = zarr.open_group(str(broken), mode="r+")
    flux = group["flux"][:]
    flux[:, 5] = np.inf  # what a float16 store held before overflow was masked
    group["flux"][:] = flux
    options = {"optim": {"batch_size": 8}, "trainer": {"log_every": 1, "checkpoint_every": 2}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(TrainingError, match=r"step 1: the loss is (nan|inf)"):
            fit(broken, tmp_path / "run", options, max_steps=4)
        code = run(["train", str(broken), "--run", str(tmp_path / "run2"), "--max-steps", "4"])
    finally:
        torch.set_num_threads(threads)
    assert code == 7 and "non-finite" in capsys.readouterr().err


def test_resume_of_a_missing_run_is_an_error(tiny_store, tmp_path, capsys) -> None:
    assert run(["train", str(tiny_store), "--run", str(tmp_path / "no"), "--resume"]) == 2
    assert "holds no run to resume" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def _pipeline(tmp_path: Path, tiny_store: Path, out: Path) -> Path:
    fits = tiny_store.parent / "fits"
    config = {
        "out": str(out),
        "ingest": {"inputs": [str(fits)], "labels": str(tiny_store.parent / "fits-labels.csv")},
        "train": {"max_steps": 3, "options": {"optim": {"batch_size": 16}}},
        "analyze": {
            "n_bootstrap": 0,
            "n_permutations": 5,
            "pca_baseline": False,
            "max_samples": 96,
        },
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_users_file_in_every_output_folder_survives_every_stage(tmp_path, tiny_store) -> None:
    """End to end: ``out`` is the user's own folder; after a first run, a file of the user's
    sits in every folder astrolatent wrote; a forced rerun of every stage keeps them all."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "work"
        planted = [_plant(out)]
        config = load_pipeline(_pipeline(tmp_path, tiny_store, out))
        run_pipeline(config)
        folders = [out / ".stamps", out / "store", out / "run", out / "run" / "analysis"]
        folders += [out / "run" / "report", out / "run" / "report" / "figures"]
        assert all(marks.is_marked(f) for f in folders)
        planted += [_plant(f) for f in folders]
        result = run_pipeline(config, force="ingest")
        assert all(s.status == "ran" for s in result.stages)
        assert all(p.read_bytes() == MINE for p in planted)
        assert (out / "run" / "model.pt").is_file() and result.report.is_file()
        # a folder of the user's where a stage would write: refused, nothing touched
        other = tmp_path / "other"
        mine = _plant(other / "run")
        with pytest.raises(OutputFolderError, match="run: --run exists, is not empty"):
            run_pipeline(load_pipeline(_pipeline(tmp_path, tiny_store, other)))
        assert sorted(p.name for p in (other / "run").iterdir()) == ["mine.txt"]
        assert mine.read_bytes() == MINE
    finally:
        torch.set_num_threads(threads)


def test_simulate_stage_reruns_keep_the_users_files(tmp_path) -> None:
    from astrolatent.pipeline import Layout, _simulate

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"out": ".", "simulate": {"n": 4, "n_objects": 2}}))
    config = load_pipeline(path)
    layout = Layout.of(config)
    _simulate(config, layout, False, lambda *_: None)
    mine = _plant(layout.spectra, "my_spectrum.fits")
    ours = sorted(layout.spectra.glob("ADP.*.fits"))
    (ours[0]).unlink()
    _simulate(config, layout, False, lambda *_: None)
    assert mine.read_bytes() == MINE and len(list(layout.spectra.glob("ADP.*.fits"))) == 4
    user = tmp_path / "u"
    _plant(user / "spectra")
    path.write_text(yaml.safe_dump({"out": "u", "simulate": {"n": 4}}))
    user_config = load_pipeline(path)
    with pytest.raises(OutputFolderError, match="spectra: output folder exists"):
        _simulate(user_config, Layout.of(user_config), False, lambda *_: None)


def test_labels_ids_are_text_and_blank_ids_are_named(tmp_path, eso_folder) -> None:
    from astrolatent.data.labels import load_labels
    from astrolatent.errors import LabelError

    path = tmp_path / "l.csv"
    path.write_text("id,teff\n0001,5000\n1.0,6000\n1,7000\n")
    frame = load_labels(path, "id")
    assert list(frame.index) == ["0001", "1.0", "1"] and frame.loc["1.0", "teff"] == 6000
    path.write_text("id,teff\n0001,5000\n ,6000\n")
    with pytest.raises(LabelError, match=r"1 row\(s\) have a blank 'id', e.g. data row\(s\) 2"):
        load_labels(path, "id")


def test_text_in_a_numeric_label_column_is_named(tmp_path, caplog) -> None:
    from astrolatent.data.labels import load_labels
    from astrolatent.errors import InputFileError
    from astrolatent.tables import numeric_columns

    path = tmp_path / "l.csv"
    path.write_text("id,teff,name\na,5000,x\nb,n/a?,y\nc,6000,z\n")
    frame = load_labels(path, "id")
    assert "label column 'teff' holds 1 distinct non-numeric value(s), e.g. 'n/a?'" in caplog.text
    assert frame["teff"].dtype == float and np.isnan(frame.loc["b", "teff"])
    assert frame["name"].tolist() == ["x", "y", "z"]  # a text column stays text, unflagged
    with pytest.raises(InputFileError, match=r"t.csv: column 'teff' holds 1 distinct"):
        numeric_columns(pd.read_csv(path), ["teff"], source="t.csv")


def test_verify_redoes_a_file_rewritten_with_the_same_size_and_time(tmp_path, eso_folder) -> None:
    import os

    from astrolatent.data.store import SpectrumStore

    store = tmp_path / "store"
    config = IngestConfig(rows_per_task=6)
    ingest([eso_folder], store, config)
    target = sorted(eso_folder.glob("*.fits"))[0]
    st = target.stat()
    from astrolatent.data.readers.eso1d import write_eso1d
    from tests.conftest import LOW_WAVE, absorption_spectrum

    flux, err = absorption_spectrum(LOW_WAVE, level=500.0, rv=-80.0, seed=99)  # other lines
    arc = target.name
    write_eso1d(target, LOW_WAVE, flux, err, arcfile=arc, object_name="STAR0")
    assert target.stat().st_size == st.st_size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    before = np.asarray(SpectrumStore(store).flux[:])
    fooled = ingest([eso_folder], store, config)
    assert fooled.n_tasks_skipped == fooled.n_tasks  # size and time alone cannot tell
    checked = ingest([eso_folder], store, config, verify=True)
    assert checked.n_tasks_skipped == checked.n_tasks - 1
    after = SpectrumStore(store)
    row = int(after.metadata.set_index("file").loc[str(target.resolve()), "row"])
    assert not np.array_equal(np.asarray(after.flux[row]), before[row])


def test_missing_parents_are_marked_as_holding_only_what_was_created(tmp_path) -> None:
    marks.claim(tmp_path / "a" / "b" / "local_x", "causal", ("local.json",))
    marks.claim(tmp_path / "a" / "b" / "graph_y", "discovery", ("graph.png",))
    assert marks.read_mark(tmp_path / "a")["owns"] == ["b"]
    assert marks.read_mark(tmp_path / "a" / "b")["owns"] == ["graph_y", "local_x"]
    mine = _plant(tmp_path / "a" / "b")
    assert not marks.remove(tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == [marks.MARK_FILE, "mine.txt"]
    assert mine.read_bytes() == MINE


def test_verify_on_a_table_store_hashes_the_table_file_not_its_rows(tmp_path) -> None:
    """A table's rows are recorded as FILE[i]; --verify must check FILE itself, and redo the
    task when the table changes."""
    from tests.test_readers import _many_spectra_table

    table = _many_spectra_table(tmp_path / "tab.fits", wave_column=True)
    store = tmp_path / "store"
    config = IngestConfig(
        preprocess={"grid": {"start": 4000.0, "stop": 5000.0, "step": 50.0}}, checksum=True
    )
    ingest([table], store, config)
    unchanged = ingest([table], store, config, verify=True)
    assert unchanged.n_tasks_skipped == unchanged.n_tasks
    import os

    st = table.stat()
    with fits.open(table, mode="update") as hdul:  # same size; the time is put back below
        hdul[1].data["flux"][0] *= 2.0
    os.utime(table, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = ingest([table], store, config, verify=True)
    assert changed.n_tasks_skipped == 0
