"""CLI command: ``report`` (the HTML report of a run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astrolatent import api
from astrolatent.cli.common import configured, console


@configured(api.report_config, exclude=("run",))
def report(
    run: Annotated[
        Path, typer.Argument(help="Run directory (spectrum run after `analyze`, or galaxy run).")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML file to write (default RUN/report/report.html)."),
    ] = None,
    *,
    cfg,
) -> None:
    """Write one self-contained HTML report of a run (figures embedded) and print its path."""
    with console.status("writing the report"):
        path = api.report(run, config=cfg)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command("report")(report)
