"""The typed loaders of every JSON file a stage writes: a good file loads, a missing one names
the command that writes it, a corrupt one, one of a newer format and one lacking a key are
one-line errors naming the file and the command that rebuilds it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from astrolatent.errors import InputFileError, RunError
from astrolatent.outputs import summaries as s
from astrolatent.simulate.dags import DAGSimulationConfig, simulate_dag, write_dag

REF = Path(__file__).parent / "reference"
_EDGE = {"from": "x0", "to": "x1", "type": "directed", "stability": 0.8}


def _reference(rel: str) -> Callable[[], object]:
    return lambda: json.loads((REF / rel).read_text())


def _given(payload: object) -> Callable[[], object]:
    return lambda: json.loads(json.dumps(payload))


# name: (loader, the file below the folder, whether the loader takes the folder, a good
# payload, a key it needs, words of the command that rebuilds it)
CASES = {
    "store": (
        s.load_store_summary,
        "summary.json",
        True,
        _reference("sim.store/summary.json"),
        "n_ok",
        "astrolatent ingest",
    ),
    "train": (
        s.load_train_summary,
        "train_summary.json",
        True,
        _reference("run/train_summary.json"),
        "stopped_by",
        "astrolatent train",
    ),
    "galaxy": (
        s.load_galaxy_summary,
        "train_summary.json",
        True,
        _reference("g_morph_ebv/train_summary.json"),
        "columns",
        "astrolatent galaxy train",
    ),
    "analysis": (
        s.load_summary,
        "analysis/summary.json",
        True,
        _reference("run/analysis/summary.json"),
        "labels",
        "astrolatent analyze",
    ),
    "data": (
        s.load_data_summary,
        "analysis/data_summary.json",
        True,
        _given(
            {
                "path": "/data/store",
                "n_spectra": 10,
                "n_objects": 8,
                "n_rows": 10,
                "length": 100,
                "dtype": "float32",
                "n_rejected": 1,
                "n_quarantined": 1,
                "format": "eso1d",
                "preset": None,
                "wavelength_range": [4000.0, 7000.0],
                "rejection_reasons": {"all pixels masked": 1},
                "quarantined": [{"file": "bad.fits", "reason": "truncated"}],
                "preprocess": {"normalise": "median"},
                "label_coverage": {"teff": 9},
            }
        ),
        "wavelength_range",
        "astrolatent analyze",
    ),
    "traversals": (
        s.load_traversals,
        "analysis/traversals.json",
        True,
        _reference("run/analysis/traversals.json"),
        None,
        "astrolatent analyze",
    ),
    "decomposition": (
        s.load_decomposition,
        "decomposition.json",
        False,
        _reference(
            "g_optical_morph_ebv/decomposition/g_optical_ebv_vs_g_morph_ebv/decomposition.json"
        ),
        "synergy",
        "astrolatent galaxy decompose",
    ),
    "local": (
        s.load_local_tests,
        "local.json",
        False,
        _given({"target": "y", "query": "q", "condition": [], "tests": {"given_s": {}}}),
        "tests",
        "astrolatent causal",
    ),
    "discovery": (
        s.load_discovery,
        "discovery.json",
        False,
        _given({"method": "pc", "nodes": ["x0", "x1"], "edges": [_EDGE]}),
        "edges",
        "astrolatent discover",
    ),
    "dag": (
        s.load_dag_truth,
        "dag.json",
        False,
        _given(
            {
                "nodes": ["x0", "x1"],
                "adjacency": [[False, True], [False, False]],
                "edges": [{"from": "x0", "to": "x1", "weight": 0.7, "function": "identity"}],
            }
        ),
        "adjacency",
        "astrolatent simulate dag",
    ),
    "stamp": (
        s.load_stamp,
        "train.json",
        False,
        _given({"stage": "train", "key": "abc", "status": "done", "seconds": 1.5}),
        "key",
        "astrolatent run PIPELINE.yaml --force train",
    ),
}


def _load(name: str, folder: Path, payload: object | None):
    """Write ``payload`` (unless None) where case ``name`` reads it; return what it loads."""
    loader, rel, takes_folder, _, _, _ = CASES[name]
    path = folder / rel
    if payload is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return loader(folder if takes_folder else path)


@pytest.mark.parametrize("name", CASES)
def test_a_good_file_loads(name: str, tmp_path: Path) -> None:
    payload = CASES[name][3]()
    loaded = _load(name, tmp_path, payload)
    if name == "analysis":  # load_summary keeps its dict
        assert loaded == payload
    elif name == "traversals":
        assert [t.dim for t in loaded] == [t["dim"] for t in payload]
        assert (
            loaded[0].top_wavelengths[0].wavelength
            == payload[0]["top_wavelengths"][0]["wavelength"]
        )
    else:
        # files written before the header existed are format 1; every key is kept
        assert loaded.format_version == payload.get("format_version", 1)
        kept = loaded.model_dump(mode="json", exclude_unset=True, by_alias=True)
        assert kept == payload


@pytest.mark.parametrize("name", CASES)
def test_a_missing_file_names_the_command_that_writes_it(name: str, tmp_path: Path) -> None:
    with pytest.raises(RunError, match=rf"{Path(CASES[name][1]).name}: not found; run `") as info:
        _load(name, tmp_path, None)
    assert CASES[name][5] in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", CASES)
def test_a_corrupt_file_is_one_line_naming_file_and_command(name: str, tmp_path: Path) -> None:
    text = json.dumps(CASES[name][3]())[:-7]  # cut short, as by a full disk
    with pytest.raises(InputFileError) as info:
        _load(name, tmp_path, text)
    message = str(info.value)
    assert "not valid JSON" in message and CASES[name][5] in message and "\n" not in message
    assert Path(CASES[name][1]).name in message


MODELS = {
    "store": s.StoreSummary,
    "train": s.SpectrumTrainSummary,
    "galaxy": s.GalaxyTrainSummary,
    "analysis": s.AnalysisSummary,
    "data": s.DataSummary,
    "traversals": s.Traversals,
    "decomposition": s.Decomposition,
    "local": s.LocalTests,
    "discovery": s.Discovery,
    "dag": s.DAGTruth,
    "stamp": s.StageStamp,
}


@pytest.mark.parametrize("name", CASES)
def test_a_newer_format_is_refused(name: str, tmp_path: Path) -> None:
    payload = CASES[name][3]()
    newer = MODELS[name].FORMAT + 1
    if name == "traversals":  # a bare list today: a later format would be an object
        payload = {"format_version": newer, "traversals": payload}
    else:
        payload["format_version"] = newer
    with pytest.raises(
        InputFileError,
        match=rf"format {newer} is newer than this astrolatent reads \({newer - 1}\)",
    ):
        _load(name, tmp_path, payload)


@pytest.mark.parametrize("version", ["99", 2.5, None, True])
def test_a_format_version_that_is_not_a_whole_number_is_refused(version, tmp_path: Path) -> None:
    # "99" would otherwise pass the newer-format check and be read as format 99
    payload = CASES["decomposition"][3]()
    payload["format_version"] = version
    with pytest.raises(InputFileError, match=r"format_version .* is not a whole number") as info:
        _load("decomposition", tmp_path, payload)
    assert "decomposition.json" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n][4] is not None])
def test_a_file_lacking_a_key_says_which(name: str, tmp_path: Path) -> None:
    payload = CASES[name][3]()
    key = CASES[name][4]
    del payload[key]
    with pytest.raises(InputFileError, match=rf"lacks {key}; rerun `{CASES[name][5]}"):
        _load(name, tmp_path, payload)


def test_traversals_that_are_not_a_list_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"traversals\.json: the file: input should be"):
        _load("traversals", tmp_path, {"dim": 1})


def test_write_summary_checks_the_payload_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "local.json"
    header = s.provenance(format_version=s.LocalTests.FORMAT, seeds={"random_state": 3})
    with pytest.raises(ValidationError):
        s.write_summary(path, s.LocalTests, {**header, "target": "y"})  # no tests block
    with pytest.raises(ValueError, match="written as format 7"):
        s.write_summary(path, s.LocalTests, {**header, "format_version": 7, "tests": {}})
    assert not path.exists()
    s.write_summary(path, s.LocalTests, {**header, "tests": {"given_s": {"n": np.int64(4)}}})
    loaded = s.load_local_tests(path)
    assert loaded.seeds == {"random_state": 3} and loaded.tests["given_s"]["n"] == 4
    assert loaded.astrolatent_version and loaded.command


def test_the_dag_truth_written_loads_as_the_planted_graph(tmp_path: Path) -> None:
    config = DAGSimulationConfig(n=200, n_nodes=5, n_edges=4, random_state=4)
    _, truth = write_dag(tmp_path / "dag", config)
    loaded = s.load_dag_truth(truth)
    planted = simulate_dag(config)
    assert loaded.format_version == s.DAG_FORMAT_VERSION
    assert loaded.seeds == {"random_state": 4} and loaded.nodes == planted.nodes
    np.testing.assert_array_equal(loaded.adjacency_array(), planted.adjacency)
    assert [(e.source, e.to) for e in loaded.edges] == [
        (planted.nodes[i], planted.nodes[j])
        for i, j in zip(*np.nonzero(planted.adjacency), strict=True)
    ]


def test_pipeline_stamps_read_back_as_written(tmp_path: Path, caplog) -> None:
    from astrolatent.pipeline import _hash, _read_stamp, _write_stamp

    path = tmp_path / "train.json"
    written = _write_stamp(path, "train", "k1", "done", finished=12.5, seconds=3.25)
    assert _read_stamp(path) == written and _hash(_read_stamp(path)) == _hash(written)
    old = {"stage": "train", "key": "k1", "status": "done", "finished": 1.0, "seconds": 2.0}
    path.write_text(json.dumps(old))  # a stamp written before stamps had a header
    assert _read_stamp(path) == old
    path.write_text('{"stage": "train"')
    with caplog.at_level(logging.WARNING):
        assert _read_stamp(path) is None
    assert "train.json: not valid JSON" in caplog.text and "the stage reruns" in caplog.text
    assert _read_stamp(tmp_path / "encode.json") is None


def test_the_latents_metadata_reads_back_and_a_corrupt_one_is_one_line(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": ["a", "b"], "mu_0": [0.1, 0.2]})
    path = tmp_path / "latents.parquet"
    recorded = s.LatentsMetadata(run="RUN", store="/data/store", latent_dim=1)
    pq.write_table(table.replace_schema_metadata(s.latents_metadata(recorded)), path)
    assert s.read_latents_metadata(path) == recorded
    pq.write_table(table, path)  # latents written without it
    assert s.read_latents_metadata(path) == s.LatentsMetadata()
    pq.write_table(table.replace_schema_metadata({b"astrolatent": b'{"store": '}), path)
    with pytest.raises(InputFileError, match=r"latents\.parquet: unreadable latents metadata"):
        s.read_latents_metadata(path)


def test_a_dag_truth_whose_adjacency_does_not_fit_its_nodes_is_refused(tmp_path: Path) -> None:
    payload = CASES["dag"][3]()
    payload["nodes"] = ["x0", "x1", "x2"]  # three nodes, a 2 x 2 adjacency
    with pytest.raises(InputFileError, match="adjacency is not 3 x 3") as info:
        _load("dag", tmp_path, payload)
    assert "dag.json" in str(info.value) and "\n" not in str(info.value)


def test_an_analysis_summary_naming_a_dim_the_run_lacks_is_refused(tmp_path: Path) -> None:
    payload = CASES["analysis"][3]()
    payload["informative"]["agreed"] = [0, payload["n_latent"]]  # one past the last dim
    with pytest.raises(InputFileError, match=r"informative dims .* are not among") as info:
        _load("analysis", tmp_path, payload)
    assert "summary.json" in str(info.value) and "\n" not in str(info.value)
