"""The Python API: the documented example runs, and options override files override defaults."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from astrolatent import api
from astrolatent.errors import ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def test_import_loads_no_torch() -> None:
    code = "import astrolatent.api, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_options_override_the_file_which_overrides_the_defaults(tmp_path) -> None:
    cfg = tmp_path / "analyze.yaml"
    cfg.write_text("n_permutations: 7\nn_bootstrap: 3\n")
    resolved = api.analyze_config(config=cfg, n_bootstrap=5, seed=4, labels="a, b")
    assert resolved.n_permutations == 7  # from the file
    assert resolved.n_bootstrap == 5  # the option wins over the file
    assert resolved.random_state == 4 and resolved.labels == ["a", "b"]
    assert resolved.max_samples == type(resolved)().max_samples  # the class default
    with pytest.raises(ConfigError, match="n_bootstrap"):
        api.analyze_config(n_bootstrap=-1)


def test_ingest_config_layers_preset_file_and_options(tmp_path) -> None:
    cfg = tmp_path / "ingest.yaml"
    cfg.write_text("preprocess:\n  min_median: 10\nworkers: 2\n")
    resolved = api.ingest_config(preset="harps", config=cfg, pad_to=400_000)
    assert resolved.preset == "harps" and resolved.workers == 2
    assert resolved.preprocess.min_median == 10  # the file wins over the preset (50)
    assert resolved.preprocess.pad_to == 400_000  # the option wins over the preset (327,680)
    assert resolved.preprocess.mask_ranges  # the rest of the preset stays (the CCD gap)


def test_the_documented_example_runs(tmp_path) -> None:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "teff" in out.stdout and "rv" in out.stdout
    report = Path(out.stdout.strip().splitlines()[-1])
    assert report.name == "report.html" and report.is_file()
    assert (report.parents[2] / "mi.png").is_file()


def test_a_saved_analysis_config_is_valid_cli_input(analyzed_run) -> None:
    import yaml
    from typer.testing import CliRunner

    from astrolatent.cli import app

    saved = analyzed_run / "analysis" / "config.yaml"
    args = ["analyze", str(analyzed_run), "--config", str(saved), "--print-config"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == yaml.safe_load(saved.read_text())
    result = CliRunner().invoke(app, [*args, "--n-permutations", "7"])
    assert yaml.safe_load(result.output)["n_permutations"] == 7
    assert api.Analysis.load(analyzed_run).to_pandas().index.tolist() == list(
        yaml.safe_load((analyzed_run / "analysis" / "summary.json").read_text())["labels"]
    )


def test_every_summary_records_version_command_and_seeds(analyzed_run) -> None:
    import json

    from astrolatent import __version__

    run_summary = json.loads((analyzed_run / "train_summary.json").read_text())
    analysis = json.loads((analyzed_run / "analysis" / "summary.json").read_text())
    for payload in (run_summary, analysis):
        assert payload["astrolatent_version"] == __version__
        assert payload["format_version"] >= 1 and isinstance(payload["command"], str)
        assert isinstance(payload["seeds"], dict) and payload["seeds"]


@pytest.mark.parametrize(
    ("command", "option", "key", "value"),
    [
        (["simulate", "spectra", "OUT"], "--n", "n", 7),
        (["simulate", "dag", "OUT"], "--nodes", "n_nodes", 5),
        (["galaxy", "simulate", "OUT"], "--n", "n", 9),
        (["discover", "t.csv"], "--alpha", "alpha", 0.01),
        (["ingest", "--store", "S", "--preset", "harps"], "--workers", "workers", 2),
        (["analyze", "RUN"], "--n-permutations", "n_permutations", 9),
    ],
)
def test_print_config_is_valid_config_input(tmp_path, command, option, key, value) -> None:
    """--print-config prints the effective configuration; fed back through --config it gives
    the same configuration, and an option given beside the file wins."""
    import yaml
    from typer.testing import CliRunner

    from astrolatent.cli import app

    args = [str(tmp_path / a) if a.isupper() or "." in a else a for a in command]
    first = CliRunner().invoke(app, [*args, option, str(value), "--print-config"])
    assert first.exit_code == 0, first.output
    printed = yaml.safe_load(first.output)
    assert printed[key] == value
    saved = tmp_path / "config.yaml"
    saved.write_text(first.output)
    again = CliRunner().invoke(app, [*args, "--config", str(saved), "--print-config"])
    assert yaml.safe_load(again.output) == printed
    other = 2 * value
    third = CliRunner().invoke(
        app, [*args, "--config", str(saved), option, str(other), "--print-config"]
    )
    assert yaml.safe_load(third.output)[key] == other
    assert not any(p.name == "OUT" for p in tmp_path.iterdir())  # nothing was run


def test_discover_on_a_table_without_enough_finite_rows_names_the_file(tmp_path) -> None:
    import numpy as np

    from astrolatent.errors import InputFileError

    rng = np.random.default_rng(0)
    table = tmp_path / "t.csv"
    a, b = rng.normal(size=50), rng.normal(size=50)
    b[5:] = np.nan  # 5 finite rows of 50
    table.write_text("a,b\n" + "\n".join(f"{x},{y}" for x, y in zip(a, b, strict=True)))
    with pytest.raises(InputFileError, match=r"only 5 of 50 rows are finite") as info:
        api.discover(table, vars=["a", "b"])
    assert "t.csv" in str(info.value) and "\n" not in str(info.value)


def test_discover_reads_its_truth_through_the_dag_loader(tmp_path) -> None:
    import json

    import numpy as np

    from astrolatent.errors import InputFileError

    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    table = tmp_path / "t.csv"
    rows = zip(a, a + 0.5 * rng.normal(size=200), rng.normal(size=200), strict=True)
    table.write_text("a,b,c\n" + "\n".join(",".join(map(str, r)) for r in rows))
    truth = tmp_path / "dag.json"
    edge = {"from": "a", "to": "b", "weight": 1.0, "function": "identity"}
    planted = {"nodes": ["a", "b", "c"], "edges": [edge]}
    truth.write_text(json.dumps({**planted, "adjacency": [[False, True], [False, False]]}))
    with pytest.raises(InputFileError, match="adjacency is not 3 x 3"):
        api.discover(table, vars=["a", "b", "c"], truth=truth)
    square = [[False, True, False], [False, False, False], [False, False, False]]
    truth.write_text(json.dumps({**planted, "adjacency": square}))
    found = api.discover(table, vars=["c", "b", "a"], truth=truth)  # reordered to the vars
    assert found.skeleton["tp"] == 1 and found.skeleton["fn"] == 0


def test_an_analysis_without_labels_is_an_empty_table() -> None:
    """Every label can be skipped (too few usable values, e.g. after one spectrum per
    object): the table is empty with its columns, not a KeyError."""
    frame = api.Analysis(Path("run"), {"labels": {}}).to_pandas()
    assert frame.empty and frame.index.name == "label"
    assert {"best_dim", "r_info", "ceiling_r"} <= set(frame.columns)
