"""The HTML report: self-contained, every section, numbers from the run's outputs."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from astrolatent.analysis.causal.local import local_tests, summary_rows
from astrolatent.cli import app
from astrolatent.errors import ConfigError, OutputFolderError, RunError
from astrolatent.report.html import build_report, fmt, pm


def _assert_self_contained(text: str) -> None:
    assert re.search(r"https?://", text) is None  # no network resource (nor any URL at all)
    targets = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", text)
    assert targets and all(t.startswith(("data:image/png;base64,", "#")) for t in targets)
    assert "<script" not in text


@pytest.fixture(scope="module")
def spectrum_report(analyzed_run: Path) -> tuple[Path, str]:
    path = build_report(analyzed_run)
    return path, path.read_text()


def test_spectrum_report_sections_and_numbers(analyzed_run, spectrum_report) -> None:
    path, text = spectrum_report
    assert path == analyzed_run / "report" / "report.html"
    _assert_self_contained(text)
    for anchor in (
        "summary",
        "data",
        "training",
        "informative",
        "mi",
        "scatter",
        "traversals",
        "disentanglement",
        "reconstructions",
        "provenance",
    ):
        assert f'<section id="{anchor}">' in text
    summary = json.loads((analyzed_run / "analysis" / "summary.json").read_text())
    inf = summary["informative"]
    assert str(inf["dispersion"]["dims"]) in text and str(inf["kl"]["dims"]) in text
    for name, b in summary["labels"].items():
        assert pm(b["mi"], b["mi_err"]) in text
        assert f"against its best latent mu_{b['best_dim']}" in text
        assert f"mi_errorbars_{name}.png" in {p.name for p in (path.parent / "figures").iterdir()}
    for name, c in [*summary["ceiling"].items(), *summary["all_latents"].items()]:
        assert fmt(c["r"], 2) in text, name
    train = json.loads((analyzed_run / "train_summary.json").read_text())
    assert f'<td class="num">{fmt(train["steps"])}</td>' in text
    # data counts come from data_summary.json (written by analyze), which matches the store
    data = json.loads((analyzed_run / "analysis" / "data_summary.json").read_text())
    assert data["n_spectra"] == 96 and data["n_objects"] == 32
    assert f'<td class="num">{data["n_spectra"]}</td>' in text
    # reconstructions (written by analyze): every spectrum (96 < 256), worst L1 shown
    rec = pd.read_parquet(analyzed_run / "analysis" / "reconstructions.parquet")
    assert len(rec) == 96 and (rec["l1"] > 0).all()
    assert fmt(float(rec["l1"].max())) in text
    # the embedded figures are the files written beside the report
    pngs = sorted((path.parent / "figures").glob("*.png"))
    assert text.count("data:image/png;base64,") == len(pngs) > 10
    # provenance: the configuration files and the commands
    assert "astrolatent analyze" in text and "n_permutations: 20" in text
    assert f"astrolatent analyze NEW_RUN --config {analyzed_run}/analysis/config.yaml" in text
    # the printed commands start a new run: `train --run` into an existing run would fail
    assert f"--run NEW_RUN --config {analyzed_run}/config.yaml" in text
    assert "no disentanglement scores" in text  # 96 spectra: below the 100 the scores need
    # the report only reads: it writes nothing but the HTML and its figures
    assert sorted(p.name for p in path.parent.iterdir()) == [
        ".astrolatent.json",
        "figures",
        "report.html",
    ]


def test_report_cli_prints_the_path(analyzed_run, tmp_path) -> None:
    out = tmp_path / "r" / "mine.html"
    result = CliRunner().invoke(app, ["report", str(analyzed_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert out.is_file() and (out.parent / "figures" / "informative_dims.png").is_file()
    # a second report to the same place replaces its own figures
    result = CliRunner().invoke(app, ["report", str(analyzed_run), "--out", str(out)])
    assert result.exit_code == 0, result.output


def test_report_never_deletes_a_figures_folder_it_did_not_write(analyzed_run, tmp_path) -> None:
    mine = tmp_path / "desk" / "figures" / "thesis_plot.png"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"not ours")
    with pytest.raises(
        OutputFolderError, match="figures folder exists, is not empty and was not written by"
    ):
        build_report(analyzed_run, tmp_path / "desk" / "report.html")
    assert mine.read_bytes() == b"not ours"


def test_report_says_which_command_is_missing(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(RunError, match="not a run directory"):
        build_report(run)
    (run / "config.yaml").write_text("preset: lowres\n")
    with pytest.raises(RunError, match=r"astrolatent encode .*run"):
        build_report(run)
    pd.DataFrame({"id": ["a"], "mu_0": [0.0], "logvar_0": [0.0]}).to_parquet(
        run / "latents.parquet"
    )
    with pytest.raises(RunError, match="astrolatent analyze"):
        build_report(run)
    with pytest.raises(ConfigError, match=r"\.html"):
        build_report(run, tmp_path / "report.pdf")


def _png(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _galaxy_run(root: Path) -> Path:
    """Files of the shapes a galaxy run and its decomposition/causal analyses write."""
    run = root / "gal"
    run.mkdir()
    (run / "config.yaml").write_text(
        yaml.safe_dump({"data": {"table": "cat.parquet", "target": "logmass"}})
    )
    rng = np.random.default_rng(0)
    truth = rng.uniform(9, 11.5, 40)
    pd.DataFrame(
        {
            "id": np.arange(40),
            "model": 0,
            "truth": truth,
            "mean": truth + 0.1,
            "median": truth + 0.05,
            "mode": truth,
            "ce": 2.0,
            "prior_ce": 4.0,
            "crps": 0.07,
        }
    ).to_parquet(run / "predictions.parquet")
    point = {"bias": 0.0512, "sigma_mad": 0.1234, "outlier_fraction": 0.025, "n": 40}
    summary = {
        "run_dir": str(run),
        "table": "cat.parquet",
        "target": "logmass",
        "columns": ["mag_u", "mag_g"],
        "images": None,
        "n_objects": 200,
        "n_models": 1,
        "latent_dim": 8,
        "n_parameters": 1234,
        "cleaning": {"n_rows": 210, "n_used": 200},
        "models": [
            {
                "model": 0,
                "n_train": 120,
                "n_val": 40,
                "n_test": 40,
                "epochs": 5,
                "best_epoch": 4,
                "best_val_ce": 2.1,
                "stopped_by": "max_epochs",
                "seconds": 3.0,
            }
        ],
        "metrics": {
            "mean": point,
            "median": {**point, "bias": 0.0421},
            "mode": point,
            "crps": 0.0731,
            "ce": 2.0,
            "prior_ce": 4.0,
            "mi": 2.0,
            "truth_std": 0.7,
            "n": 40,
        },
        "wall_seconds": 4.0,
    }
    (run / "train_summary.json").write_text(json.dumps(summary))
    atoms = {"redundancy": 0.8123, "unique1": 0.2, "unique2": -0.05, "synergy": 0.3456}
    errs = {f"{k}_err": 0.01 for k in atoms}
    decomposition = {
        **atoms,
        **errs,
        "method": "pointwise",
        "note": "per-class and per-bin atoms are means of the pointwise terms",
        "n": 40,
        "x1": ["mag_u", "mag_g"],
        "x2": "images",
        "target": "logmass",
        "by_class": {
            "star-forming": {**atoms, **errs, "n": 25},
            "passive": {**atoms, **errs, "n": 15},
        },
        "by_bin": {
            "mag_r": [
                {"low": 9.0, "high": 10.0, **atoms, **errs, "n": 20},
                {"low": 10.0, "high": 11.5, **atoms, **errs, "n": 20},
            ]
        },
        "figures": {"by_class": "by_class.png", "stack_mag_r": "stack_mag_r.png"},
    }
    folder = run / "decomposition" / "phot_vs_img"
    folder.mkdir(parents=True)
    (folder / "decomposition.json").write_text(json.dumps(decomposition))
    _png(folder / "by_class.png")
    _png(folder / "stack_mag_r.png")
    local = run / "causal" / "local_ba_r_given_z"
    local.mkdir(parents=True)
    rng = np.random.default_rng(0)
    s, q, z = rng.normal(size=(3, 60))
    result = local_tests(
        s[:, None], s + q, q, condition=z, n_neighbors=10, n_permutations=19, alpha=0.1
    )
    result.settings.update({"target": "logmass", "query": "ba_r", "condition": ["z"]})
    (local / "local.json").write_text(json.dumps(result.to_dict()))
    _png(local / "map.png")
    disc = run / "causal" / "discovery"
    disc.mkdir(parents=True)
    (disc / "discovery.json").write_text(
        json.dumps(
            {
                "nodes": ["s_0", "logmass", "<script>x</script>"],
                "adjacency": [[0, 1, 0], [0, 0, 0], [0, 0, 0]],
                "edges": [{"from": "s_0", "to": "logmass", "type": "directed", "stability": 0.87}],
                "method": "pc",
            }
        )
    )
    _png(disc / "graph.png")
    return run


def test_galaxy_report_from_contract_shaped_files(tmp_path) -> None:
    run = _galaxy_run(tmp_path)
    path = build_report(run)
    text = path.read_text()
    _assert_self_contained(text)
    for anchor in (
        "summary",
        "metrics",
        "pdfs",
        "decomposition",
        "local",
        "discovery",
        "provenance",
    ):
        assert f'<section id="{anchor}">' in text
    assert "galaxy estimator run" in text
    assert (
        ">0.042<" in text and ">0.123<" in text and ">0.073<" in text
    )  # median bias, sigma_MAD, CRPS
    assert "no PDF examples" in text  # no pdf_examples.npz in these synthetic files
    assert pm(0.8123, 0.01) in text and pm(0.3456, 0.01) in text
    assert "star-forming" in text and "10.000 to 11.500" in text and "in bins of mag_r" in text
    # the pointwise measure's bias is stated where it is shown, and the file's own note
    assert "is biased: the mean of the per-object minima" in text
    assert "per-class and per-bin atoms are means of the pointwise terms" in text
    local = json.loads((run / "causal" / "local_ba_r_given_z" / "local.json").read_text())
    rows = summary_rows(local)[1]
    assert [r[0] for r in rows] == ["given S", "given S, z"]
    for row in rows:  # each test's summary, as the CLI prints it
        assert all(f">{html.escape(cell)}<" in text for cell in row), row
    assert ">0.870<" in text and "&lt;script&gt;" in text and "<script>x" not in text
    names = {p.name for p in (path.parent / "figures").iterdir()}
    assert {
        "predictions.png",
        "phot_vs_img_by_class.png",
        "phot_vs_img_stack_mag_r.png",
        "discovery_graph.png",
    } <= names
    assert "astrolatent galaxy train cat.parquet --target logmass" in text


def test_a_run_analysed_before_the_outputs_layer_still_reports(tmp_path) -> None:
    """tests/reference/run was written before analyze wrote the report's tables: the report
    says which file is missing and which command writes it, and shows everything else."""
    import shutil

    run = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "reference" / "run", run)
    text = build_report(run).read_text()
    assert "no data_summary.json (written by `astrolatent analyze`)" in text
    assert "no reconstructions.parquet (written by `astrolatent analyze`)" in text
    assert '<section id="mi">' in text and '<section id="traversals">' in text


def test_an_unreadable_extension_file_is_a_note_and_the_report_is_built(tmp_path) -> None:
    """A decomposition.json lacking its atoms and a discovery.json of a newer format do not
    stop the report: each becomes a one-line note naming the file and the command to rerun."""
    run = _galaxy_run(tmp_path)
    path = run / "decomposition" / "phot_vs_img" / "decomposition.json"
    path.write_text(json.dumps({"method": "mmi", "n": 3}))
    disc = run / "causal" / "discovery" / "discovery.json"
    disc.write_text(json.dumps({**json.loads(disc.read_text()), "format_version": 99}))
    text = html.unescape(build_report(run).read_text())
    assert f"{path}: lacks redundancy, unique1, unique2, synergy; rerun `astrolatent galaxy" in text
    assert f"{disc}: format 99 is newer than this astrolatent reads" in text
    assert '<section id="local">' in text and ">0.042<" in text  # the rest is all there
