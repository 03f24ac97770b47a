"""The ``astrolatent`` command line: a thin Typer shell over the library.

Each area of the tool has its own module here with a ``register(app)`` function. Library
errors (:class:`~astrolatent.errors.AstrolatentError`) become one red line on stderr and
the error's exit code.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from astrolatent import __version__
from astrolatent.cli import (
    analysis,
    causal,
    data,
    explore,
    export,
    galaxies,
    pid,
    pipeline,
    report,
    training,
)
from astrolatent.errors import AstrolatentError
from astrolatent.logsetup import configure as configure_logging

app = typer.Typer(
    name="astrolatent",
    help="Learn compact representations of astronomical data and measure what they know.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (data, training, analysis, pid, galaxies, causal, report, explore, export, pipeline):
    module.register(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"astrolatent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="-v: progress details, -vv: debug.")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Learn compact representations of astronomical data and measure what they know."""
    configure_logging(verbose)


err_console = Console(stderr=True)


def main() -> None:
    """Entry point of the ``astrolatent`` script."""
    try:
        app()
    except AstrolatentError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
