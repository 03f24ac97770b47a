"""Helpers shared by the CLI modules: JSON output, the console and its progress bar, the
configuration every command resolves (``--config``/``--print-config``), and the options
several commands declare alike."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from astrolatent.config import Config, split_columns

console = Console(soft_wrap=True)


def progress_bar(
    *, disable: bool = False, counts: bool = True, label: str = "[bold]{task.description}"
) -> Progress:
    """The CLI's progress bar (transient; ``disable`` for JSON output). ``counts`` shows done
    of total and the time remaining (off where the total is a time budget or unknown);
    ``label`` is the text column's template."""
    columns = [TextColumn(label), BarColumn()]
    if counts:
        columns.append(MofNCompleteColumn())
    columns.append(TimeElapsedColumn())
    if counts:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=console, transient=True, disable=disable)


def echo_json(payload: object) -> None:
    """Print machine-readable output on stdout (no rich markup)."""
    typer.echo(json.dumps(payload, indent=2, default=str))


#: ``--config FILE`` and ``--print-config`` of the commands that take a configuration.
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="YAML/JSON options (e.g. a config.yaml the command saved); options given here win.",
    ),
]
PrintConfig = Annotated[
    bool, typer.Option("--print-config", help="Print the effective configuration and exit.")
]


#: ``--json`` of every command that prints a result.
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (no tables, no progress bar).")
]
#: ``--seed`` of the commands whose random state defaults to 0.
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")]
#: ``--seed`` of the simulations.
SimulationSeed = Annotated[
    int | None, typer.Option("--seed", help="Random seed (same seed, same files; default 0).")
]
#: ``--alpha`` of the commands that test at a significance level.
Alpha = Annotated[
    float | None, typer.Option("--alpha", help="Significance level of the tests (default 0.05).")
]
#: The run argument of the commands that use a trained spectrum run.
TrainingRun = Annotated[Path, typer.Argument(help="Training run directory.")]
#: The table argument of the commands that read one.
TableArg = Annotated[Path, typer.Argument(help="Table file: .csv, .parquet or .fits.")]
#: ``--store`` of the commands that read a run's spectra.
RunStore = Annotated[
    Path | None,
    typer.Option("--store", help="Store holding the spectra (default: the run's own)."),
]
#: ``--n-permutations`` of the commands that give permutation p-values.
Permutations = Annotated[
    int | None,
    typer.Option("--n-permutations", help="Permutations for the p-values (0: none; default 100)."),
]


def configured(make: Callable[..., Config], *, exclude: tuple[str, ...] = ()):
    """Decorator of a command whose options are the fields of a configuration.

    The command gains ``--config FILE`` and ``--print-config``. Its parameters, but those in
    ``exclude`` (its arguments and the options that are not configuration) and ``as_json``,
    are the options ``make`` (an ``api.*_config`` function) resolves over the file (None:
    not given); the effective configuration is printed with ``--print-config`` (and the
    command ends), otherwise the command is called with it as ``cfg``.
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for name, p in signature.parameters.items() if name != "cfg"]
        keyword = inspect.Parameter.KEYWORD_ONLY
        added = [
            inspect.Parameter("config", keyword, default=None, annotation=ConfigFile),
            inspect.Parameter("show_config", keyword, default=False, annotation=PrintConfig),
        ]

        def run(*, config: Path | None = None, show_config: bool = False, **given: object):
            options = {k: v for k, v in given.items() if k not in (*exclude, "as_json")}
            cfg = make(config=config, **options)
            print_config(cfg, when=show_config)
            return command(**given, cfg=cfg)

        run.__name__, run.__doc__ = command.__name__, command.__doc__
        run.__signature__ = signature.replace(parameters=[*own, *added])
        return run

    return decorate


def print_config(config: Config, *, when: bool = True) -> None:
    """With ``when`` (the ``--print-config`` flag): print the effective configuration as YAML
    on stdout (valid input to ``--config``) and end the command."""
    if when:
        typer.echo(yaml.safe_dump(config.to_dict(), sort_keys=False), nl=False)
        raise typer.Exit()


def parse_columns(value: str | None) -> list[str]:
    """Split a comma-separated option (``"a,b , c"`` -> ``["a", "b", "c"]``; None -> ``[]``)."""
    return split_columns(value or "")
