"""CLI command ``export``: a run's tables as FITS and VOTable, beside the Parquet/CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astrolatent.cli.common import console, echo_json
from astrolatent.errors import RunError


def export(
    run: Annotated[Path, typer.Argument(help="Run directory (after encode and/or analyze).")],
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="fits and/or votable (repeat the option; default both)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the files written as JSON.")
    ] = False,
) -> None:
    """Write RUN/latents.parquet and the RUN/analysis tables as FITS and VOTable (TOPCAT)."""
    from astrolatent.tables import export_tables

    if not run.is_dir():
        raise RunError(f"{run}: not a run directory")
    tables = [run / "latents.parquet", *sorted((run / "analysis").glob("*.csv"))]
    tables = [t for t in tables if t.is_file()]
    if not tables:
        raise RunError(
            f"{run}: no latents.parquet or analysis tables; run `astrolatent encode` first"
        )
    written = export_tables(tables, formats or ["fits", "votable"])
    if as_json:
        echo_json({"written": [str(p) for p in written]})
    else:
        console.print(f"wrote {len(written)} tables beside {len(tables)} in {run}")


def register(app: typer.Typer) -> None:
    """Add the export command to the main app."""
    app.command()(export)
