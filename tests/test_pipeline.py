"""``astrolatent run``: the chain from one file, stamps, skipping and reruns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from astrolatent.cli import app
from astrolatent.errors import ConfigError
from astrolatent.pipeline import load_pipeline, run_pipeline


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_pipeline_runs_skips_and_reruns_after_a_change(
    tmp_path, tiny_store, one_torch_thread
) -> None:
    # the tiny store's FITS files and labels (conftest) are the inputs: no simulate stage
    fits = tiny_store.parent / "fits"
    labels = tiny_store.parent / "fits-labels.csv"
    base = {
        "out": "out",
        "ingest": {"inputs": [str(fits)], "labels": str(labels), "rows_per_task": 48},
        "train": {
            "max_steps": 6,
            "options": {
                "optim": {"batch_size": 16},
                "trainer": {"val_every": 3, "checkpoint_every": 3},
            },
        },
        "analyze": {
            "n_bootstrap": 0,
            "n_permutations": 10,
            "pca_baseline": False,
            "max_samples": 96,
        },
    }
    config_path = _write(tmp_path / "p.yaml", base)
    result = run_pipeline(load_pipeline(config_path), source=config_path)
    assert [s.stage for s in result.stages] == ["ingest", "train", "encode", "analyze", "report"]
    assert all(s.status == "ran" for s in result.stages)
    assert (
        result.report == tmp_path / "out" / "run" / "report" / "report.html"
    )  # relative to the file
    assert result.report.is_file()
    assert result.summary["n_spectra"] == 96
    recorded = yaml.safe_load((tmp_path / "out" / "run" / "pipeline.yaml").read_text())
    assert recorded["source"] == str(config_path)

    again = run_pipeline(load_pipeline(config_path))
    assert all(s.status == "skipped" for s in again.stages)

    changed = {**base, "analyze": {**base["analyze"], "n_permutations": 12}}
    after = run_pipeline(load_pipeline(_write(config_path, changed)))
    status = {s.stage: s.status for s in after.stages}
    assert status == {
        "ingest": "skipped",
        "train": "skipped",
        "encode": "skipped",
        "analyze": "ran",
        "report": "ran",
    }
    saved = yaml.safe_load((tmp_path / "out" / "run" / "analysis" / "config.yaml").read_text())
    assert saved["n_permutations"] == 12

    forced = run_pipeline(load_pipeline(config_path), force="encode")
    assert [s.status for s in forced.stages] == ["skipped", "skipped", "ran", "ran", "ran"]

    # the CLI: everything up to date, the summary names each informative dim and the report
    out = CliRunner().invoke(app, ["run", str(config_path)])
    assert out.exit_code == 0, out.output
    assert "up to date, skipped" in out.output
    assert f"report: {result.report}" in out.output.replace("\n", "")
    dims = (
        result.summary["informative"]["agreed"]
        or result.summary["informative"]["dispersion"]["dims"]
    )
    assert f"dim {dims[0]}:" in out.output


def test_simulate_stage_writes_inputs_and_labels(tmp_path) -> None:
    from astrolatent.pipeline import Layout, _ingest, _simulate

    config = load_pipeline(
        _write(
            tmp_path / "p.yaml",
            {
                "out": "o",
                "simulate": {"n": 30, "n_objects": 20, "random_state": 2},
                "ingest": {"workers": 1},
            },
        )
    )
    layout = Layout.of(config)
    _simulate(config, layout, False, lambda *_: None)
    message = _ingest(config, layout, False, lambda *_: None)
    assert message.startswith("30 spectra accepted")
    from astrolatent.data.store import SpectrumStore

    info = SpectrumStore(layout.store).info()
    assert info["n_objects"] == 20
    assert {"teff", "rv"} <= set(info["labels"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"out": "o", "ingest": {"inputs": ["x"]}, "trian": {}}, "trian"),
        ({"out": "o", "ingest": {"inputs": ["x"]}, "analyze": {"n_bootstrap": -1}}, "n_bootstrap"),
        ({"out": "o", "ingest": {"inputs": ["nowhere"]}}, "nowhere does not exist"),
        ({"out": "o"}, "ingest.inputs"),
        ({"out": "o", "simulate": {"n": 10}, "ingest": {"inputs": ["x"]}}, "both given"),
        (
            {"out": "o", "simulate": {"n": 10}, "ingest": {"labels": "none.csv"}},
            "none.csv does not exist",
        ),
        ({"ingest": {"inputs": ["x"]}}, "out: Field required"),
        (
            {"out": "o", "simulate": {"n": 10}, "train": {"options": {"loss": {"betaa": 1}}}},
            "train.preset/train.options: .*betaa",
        ),
        ({"out": "o", "simulate": {"n": 10}, "train": {"preset": "nope"}}, "unknown preset 'nope'"),
        (
            {"out": "o", "simulate": {"n": 10}, "train": {"known_labels": ["teff", "teff"]}},
            "train.preset/train.options: .*teff.*twice",
        ),
        ({"out": "o", "simulate": {"n": 10}, "report": {"out": "r.pdf"}}, r"report.out: .*\.html"),
    ],
)
def test_bad_pipeline_configs_are_config_errors(tmp_path, data, message) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(ConfigError, match=message):
        load_pipeline(_write(tmp_path / "p.yaml", data))


def test_unknown_force_stage_and_cli_error(tmp_path) -> None:
    (tmp_path / "x").mkdir()
    config = load_pipeline(_write(tmp_path / "p.yaml", {"out": "o", "ingest": {"inputs": ["x"]}}))
    with pytest.raises(ConfigError, match="not a stage"):
        run_pipeline(config, force="training")
    with pytest.raises(ConfigError, match="no simulate stage"):
        run_pipeline(config, force="simulate")
    bad = _write(tmp_path / "bad.yaml", {"out": "o", "ingest": {"inputs": ["x"], "wrkers": 2}})
    result = CliRunner().invoke(app, ["run", str(bad)])
    assert isinstance(result.exception, ConfigError)
    assert "wrkers" in str(result.exception)


def test_example_pipeline_is_valid() -> None:
    example = Path(__file__).parents[1] / "examples" / "pipeline.yaml"
    config = load_pipeline(example)
    assert config.simulate.n == 1500
    assert config.train.max_steps == 12000 and config.train.max_minutes == 20  # steps, with a cap
    assert Path(config.out).resolve() == (example.parents[1] / "demo-output").resolve()
    json.dumps(config.to_dict())
