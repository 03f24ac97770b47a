"""CLI command ``export``: a run's tables as FITS and VOTable, beside the Parquet/CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astrolatent import api
from astrolatent.cli.common import JsonFlag, configured, console, echo_json


@configured(api.export_config, exclude=("run",))
def export(
    run: Annotated[Path, typer.Argument(help="Run directory (after encode and/or analyze).")],
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="fits and/or votable (repeat the option; default both)."),
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Write RUN/latents.parquet and the RUN/analysis tables as FITS and VOTable (TOPCAT)."""
    from astrolatent.workflows.export import export_run

    written, n_tables = export_run(run, cfg)
    if as_json:
        echo_json({"written": [str(p) for p in written]})
    else:
        console.print(f"wrote {len(written)} tables beside {n_tables} in {run}")


def register(app: typer.Typer) -> None:
    """Add the export command to the main app."""
    app.command()(export)
