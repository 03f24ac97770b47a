"""Every command of the CLI takes ``--config FILE`` and ``--print-config``: the printed YAML
is the effective configuration, fed back through ``--config`` it gives the same one, an
option given beside the file wins over it, and the ``config.yaml`` a stage saves is valid
input to its command. The commands are taken from the Typer app itself (as in
test_hostile.py), so a new command without a case here fails the first test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from astrolatent.cli import app
from tests.test_hostile import COMMANDS

runner = CliRunner()

#: command -> (its arguments, an option, its value, the configuration key it sets, the value
#: the key then holds). Words starting with ``~`` are paths in the test's folder; STORE is
#: the tiny store. The option is None where there is nothing to configure.
CASES: dict[str, tuple[list[str], str | None, str, str, object]] = {
    "analyze": (["~RUN"], "--n-permutations", "9", "n_permutations", 9),
    "causal": (["~RUN", "--query", "z"], "--neighbors", "30", "n_neighbors", 30),
    "decompose": (
        ["~t.csv", "--target", "y", "--x1", "a", "--x2", "b"],
        "--x2",
        "b,c",
        "x2",
        ["b", "c"],
    ),
    "discover": (["~t.csv"], "--alpha", "0.01", "alpha", 0.01),
    "encode": (["~RUN"], "--batch-size", "7", "batch_size", 7),
    "explore": (["~RUN"], "--port", "9", "port", 9),
    "export": (["~RUN"], "--format", "fits", "formats", ["fits"]),
    "galaxy decompose": (["--runs", "~A,~B,~C"], "--n-bins", "3", "n_bins", 3),
    "galaxy fetch-real": (["mlz", "~OUT.csv"], "--source", "~SRC", "source", "~SRC"),
    "galaxy groups": (["~t.csv"], "--groups", "~G.yaml", "groups", "~G.yaml"),
    "galaxy simulate": (["~OUT"], "--n", "9", "n", 9),
    "galaxy train": (
        ["~t.csv", "--target", "y", "--run", "~RUN", "--inputs", "optical"],
        "--bins",
        "40",
        "pdf.n_bins",
        40,
    ),
    "info": (["STORE"], None, "", "", None),
    "ingest": (["--store", "~S", "--preset", "harps"], "--workers", "2", "workers", 2),
    "mi": (["~t.csv", "--x", "a", "--y", "b"], "--n-neighbors", "5", "n_neighbors", 5),
    "reconstruct": (["~RUN", "--ids", "a"], "--ids", "b,c", "ids", ["b", "c"]),
    "report": (["~RUN"], "--out", "~R.html", "out", "~R.html"),
    "run": (["~p.yaml"], "--force", "train", "force", "train"),
    "simulate dag": (["~OUT"], "--nodes", "5", "n_nodes", 5),
    "simulate spectra": (["~OUT"], "--n", "7", "n", 7),
    "train": (["STORE", "--run", "~RUN"], "--max-steps", "7", "trainer.max_steps", 7),
}


def _arg(word: object, tmp_path: Path, store: Path) -> object:
    """``word`` with ``~NAME`` (also in a comma-separated list) made a path in ``tmp_path``."""
    if word == "STORE":
        return str(store)
    if isinstance(word, str) and word.startswith("~"):
        return ",".join(str(tmp_path / w.removeprefix("~")) for w in word.split(","))
    return word


def _get(config: dict, dotted: str) -> object:
    for part in dotted.split("."):
        config = config[part]
    return config


def _print_config(args: list[str]) -> dict:
    result = runner.invoke(app, [*args, "--print-config"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert isinstance(printed, dict)
    return printed


def test_every_command_has_a_case_and_both_options() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert names == set(CASES)
    for path, command in COMMANDS:
        opts = {o for p in command.params for o in p.opts}
        assert {"--config", "--print-config"} <= opts, " ".join(path)


@pytest.mark.parametrize("name", sorted(CASES))
def test_print_config_round_trips_and_options_win(name, tmp_path, tiny_store) -> None:
    words, option, value, key, wanted = CASES[name]
    args = [*name.split(), *(_arg(w, tmp_path, tiny_store) for w in words)]
    printed = _print_config(args)
    saved = tmp_path / "printed.yaml"
    saved.write_text(yaml.safe_dump(printed))
    assert _print_config([*args, "--config", str(saved)]) == printed
    if option is not None:
        value = _arg(value, tmp_path, tiny_store)
        wanted = _arg(wanted, tmp_path, tiny_store)
        assert _get(printed, key) != wanted  # the option changes something
        again = _print_config([*args, "--config", str(saved), option, value])
        assert _get(again, key) == wanted  # the option wins over the file
        rest = {k: v for k, v in again.items() if k != key.split(".")[0]}
        assert rest == {k: v for k, v in printed.items() if k != key.split(".")[0]}
    assert [p.name for p in tmp_path.iterdir()] == ["printed.yaml"]  # nothing ran


def test_a_file_value_is_kept_where_no_option_is_given(tmp_path) -> None:
    config = tmp_path / "mi.yaml"
    config.write_text("x: a\ny: [b, c]\nn_bootstrap: 4\nsigma: 0\n")
    printed = _print_config(["mi", str(tmp_path / "t.csv"), "--config", str(config)])
    assert printed["x"] == ["a"] and printed["y"] == ["b", "c"]  # commas or lists
    assert printed["n_bootstrap"] == 4 and printed["sigma"] == 0
    assert printed["n_permutations"] == 100  # the class default


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mi", "~t.csv", "--y", "b"], "x: Field required"),
        (["reconstruct", "~RUN"], "ids: Field required"),
        (["galaxy", "decompose", "--runs", "~A,~B"], "give three runs"),
        (["causal", "~RUN", "--config", "~bad.yaml"], "nonsense: Extra inputs"),
        (["galaxy", "train", "~t.csv", "--target", "y", "--run", "~R"], "options: data: give"),
    ],
)
def test_a_missing_or_unknown_setting_is_one_line(tmp_path, args, message) -> None:
    (tmp_path / "bad.yaml").write_text("query: z\nnonsense: 1\n")
    args = [_arg(a, tmp_path, tmp_path) for a in args]
    result = runner.invoke(app, [*args, "--print-config"])
    assert result.exit_code != 0
    assert message in str(result.exception)  # the field by its full path, once
    assert "(root)" not in str(result.exception) and "Config:" not in str(result.exception)


# ---------------------------------------------------------------------------------------
# the configuration a stage saves is valid input to its command
# ---------------------------------------------------------------------------------------
def test_a_runs_config_yaml_is_valid_train_input(analyzed_run, tiny_store, tmp_path) -> None:
    saved = analyzed_run / "config.yaml"
    args = ["train", str(tiny_store), "--run", str(tmp_path / "again"), "--config", str(saved)]
    assert _print_config(args) == yaml.safe_load(saved.read_text())
    assert _get(_print_config([*args, "--max-steps", "11"]), "trainer.max_steps") == 11


def test_a_stores_ingest_yaml_is_valid_ingest_input(tiny_store, tmp_path) -> None:
    saved = tiny_store / "ingest.yaml"
    args = ["ingest", "--store", str(tmp_path / "again"), "--config", str(saved)]
    assert _print_config(args) == yaml.safe_load(saved.read_text())
    assert _print_config([*args, "--workers", "3"])["workers"] == 3


def test_a_galaxy_runs_config_yaml_is_valid_galaxy_train_input(tmp_path) -> None:
    from astrolatent.galaxies.config import EstimatorConfig, GalaxySimulationConfig
    from astrolatent.galaxies.simulate import write_galaxies
    from astrolatent.galaxies.train import fit_estimator

    write_galaxies(tmp_path, GalaxySimulationConfig(n=200, random_state=1), images=False)
    table = tmp_path / "catalog.parquet"
    config = EstimatorConfig.from_dict(
        {
            "data": {"table": str(table), "target": "logmass", "inputs": ["optical"]},
            "trainer": {"max_epochs": 1, "num_threads": 1},
        }
    )
    threads = torch.get_num_threads()
    try:
        fit_estimator(config, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    saved = tmp_path / "run" / "config.yaml"
    args = ["galaxy", "train", str(table), "--target", "logmass", "--run", str(tmp_path / "b")]
    assert _print_config([*args, "--config", str(saved)]) == yaml.safe_load(saved.read_text())
    printed = _print_config([*args, "--config", str(saved), "--max-epochs", "3"])
    assert printed["trainer"]["max_epochs"] == 3


def test_the_api_function_takes_the_same_options_and_gives_the_cli_numbers(tmp_path) -> None:
    import json

    import numpy as np
    import pandas as pd

    from astrolatent import api

    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": a, "b": a + rng.normal(size=400), "c": rng.normal(size=400)}).to_csv(
        table, index=False
    )
    options = ["--x", "a", "--y", "b", "--conditional", "c", "--n-bootstrap", "3", "--seed", "4"]
    result = runner.invoke(app, ["mi", str(table), *options, "--n-permutations", "9", "--json"])
    assert result.exit_code == 0, result.output
    config = tmp_path / "mi.yaml"
    config.write_text("n_permutations: 9\n")
    direct = api.mi(table, config=config, x="a", y=["b"], conditional="c", n_bootstrap=3, seed=4)
    assert direct.to_dict() == json.loads(result.output)
    assert direct.mi > 0.2  # a and b share information given c


@pytest.mark.parametrize(
    ("command", "option", "key"),
    [(["simulate", "spectra"], "--n", "n"), (["galaxy", "simulate", "--no-images"], "--n", "n")],
)
def test_a_simulations_yaml_is_valid_simulate_input(tmp_path, command, option, key) -> None:
    first = tmp_path / "first"
    result = runner.invoke(app, [*command, str(first), option, "3", "--seed", "2", "--json"])
    assert result.exit_code == 0, result.output
    saved = first / "simulation.yaml"
    args = [*command, str(tmp_path / "again"), "--config", str(saved)]
    assert _print_config(args) == yaml.safe_load(saved.read_text())
    assert _print_config([*args, option, "5"])[key] == 5


def test_api_train_config_is_what_train_print_config_prints(tiny_store, tmp_path) -> None:
    from astrolatent import api

    args = ["train", str(tiny_store), "--run", str(tmp_path / "r"), "--max-steps", "9"]
    options = {"known_labels": ["rv"], "config": {"optim": {"batch_size": 8}}}
    printed = _print_config([*args, "--known-labels", "rv", "--config", str(_yaml(tmp_path))])
    assert api.train_config(tiny_store, max_steps=9, **options).to_dict() == printed
    assert printed["optim"]["batch_size"] == 8 and printed["known_labels"]["names"] == ["rv"]


def _yaml(tmp_path: Path) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text("optim:\n  batch_size: 8\n")
    return path


def test_galaxy_train_config_takes_the_cli_options_and_merges_groups(tmp_path) -> None:
    from astrolatent import api
    from astrolatent.errors import ConfigError

    (tmp_path / "c.yaml").write_text("data:\n  groups:\n    mine: [a]\n")
    (tmp_path / "g.yaml").write_text("yours: [b, c]\n")
    cfg = api.galaxy_train_config(
        tmp_path / "t.csv",
        config=tmp_path / "c.yaml",
        target="y",
        inputs="mine, yours",
        groups=tmp_path / "g.yaml",
        target_range="1,2.5",
        bins=40,
        seed=3,
    )
    assert cfg.data.inputs == ["mine", "yours"]
    assert cfg.data.groups == {"mine": ["a"], "yours": ["b", "c"]}  # the file's and the extra
    assert (cfg.pdf.target_min, cfg.pdf.target_max, cfg.pdf.n_bins) == (1.0, 2.5, 40)
    assert cfg.trainer.seed == 3
    assert api.galaxy_train_config(tmp_path / "t.csv", config=cfg) == cfg  # a round trip
    with pytest.raises(ConfigError, match="expected LOW,HIGH"):
        api.galaxy_train_config(tmp_path / "t.csv", target="y", target_range="1")
    with pytest.raises(ConfigError, match=r"\['epochs'\] unknown"):
        api.galaxy_train_config(tmp_path / "t.csv", target="y", epochs=3)
