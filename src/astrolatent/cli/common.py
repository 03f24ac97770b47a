"""Helpers shared by the CLI modules: JSON output, the console and its progress bar."""

from __future__ import annotations

import json
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

from astrolatent.config import Config

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


def print_config(config: Config, *, when: bool = True) -> None:
    """With ``when`` (the ``--print-config`` flag): print the effective configuration as YAML
    on stdout (valid input to ``--config``) and end the command."""
    if when:
        typer.echo(yaml.safe_dump(config.to_dict(), sort_keys=False), nl=False)
        raise typer.Exit()


def parse_columns(value: str | None) -> list[str]:
    """Split a comma-separated option (``"a,b , c"`` -> ``["a", "b", "c"]``)."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]
