"""CLI command ``export``: a run's tables as FITS and VOTable, beside the Parquet/CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astrolatent.cli.common import ConfigFile, JsonFlag, PrintConfig, configure, console, echo_json


def export(
    run: Annotated[Path, typer.Argument(help="Run directory (after encode and/or analyze).")],
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="fits and/or votable (repeat the option; default both)."),
    ] = None,
    config: ConfigFile = None,
    show_config: PrintConfig = False,
    as_json: JsonFlag = False,
) -> None:
    """Write RUN/latents.parquet and the RUN/analysis tables as FITS and VOTable (TOPCAT)."""
    from astrolatent import api
    from astrolatent.workflows.export import export_run

    cfg = configure(api.export_config, show=show_config, config=config, formats=formats)
    written, n_tables = export_run(run, cfg)
    if as_json:
        echo_json({"written": [str(p) for p in written]})
    else:
        console.print(f"wrote {len(written)} tables beside {n_tables} in {run}")


def register(app: typer.Typer) -> None:
    """Add the export command to the main app."""
    app.command()(export)
