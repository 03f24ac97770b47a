"""Helpers shared by the CLI modules: JSON output, the console and its progress bar."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(soft_wrap=True)


def progress_bar(*, disable: bool = False) -> Progress:
    """The CLI's progress bar (transient; ``disable`` for JSON output)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=disable,
    )


def echo_json(payload: object) -> None:
    """Print machine-readable output on stdout (no rich markup)."""
    typer.echo(json.dumps(payload, indent=2, default=str))


def parse_columns(value: str | None) -> list[str]:
    """Split a comma-separated option (``"a,b , c"`` -> ``["a", "b", "c"]``)."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]
