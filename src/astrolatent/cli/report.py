"""CLI command: ``report`` (the HTML report of a run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astrolatent.cli.common import ConfigFile, PrintConfig, configure, console


def report(
    run: Annotated[
        Path, typer.Argument(help="Run directory (spectrum run after `analyze`, or galaxy run).")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML file to write (default RUN/report/report.html)."),
    ] = None,
    config: ConfigFile = None,
    show_config: PrintConfig = False,
) -> None:
    """Write one self-contained HTML report of a run (figures embedded) and print its path."""
    from astrolatent import api

    cfg = configure(api.report_config, show=show_config, config=config, out=out)
    with console.status("writing the report"):
        path = api.report(run, config=cfg)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command("report")(report)
