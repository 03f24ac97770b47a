"""The ``astrolatent`` command line: a thin Typer shell over the library.

Each area of the tool has its own module here with a ``register(app)`` function. Library
errors (:class:`~astrolatent.errors.AstrolatentError`) become one red line on stderr and
the error's exit code.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.markup import escape

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
#: usage errors (typer >= 0.29 carries its own copy of click, whose errors are TyperExceptions)
_USAGE_ERRORS = (click.ClickException, getattr(typer, "TyperException", click.ClickException))


def run(args: Sequence[str] | None = None) -> int:
    """Run the command line on ``args`` (default ``sys.argv[1:]``); return the exit code.

    Every error becomes one line on stderr: astrolatent's own with their exit codes, usage
    errors with 2, file-system errors with 8, anything else with 1 (its traceback follows
    with ``-v``). Exit codes: README, section "Exit codes".
    """
    command = typer.main.get_command(app)
    try:
        code = command.main(
            list(sys.argv[1:] if args is None else args),
            prog_name="astrolatent",
            standalone_mode=False,
        )
    except _USAGE_ERRORS as exc:  # a bad option value, a missing argument
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())  # a command group called without a command
            return 0
        where = f"{ctx.command_path}: " if ctx is not None else ""
        return _fail(f"{where}{exc.format_message()} (see --help)", exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        return _fail("interrupted", 130)
    except AstrolatentError as exc:
        return _fail(str(exc), exc.exit_code)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", 8, traceback=True)
    except Exception as exc:  # not ours: a library's or a bug; the traceback is behind -v
        return _fail(f"unexpected {type(exc).__name__}: {exc}", 1, traceback=True)
    return code if isinstance(code, int) else 0


def command_line(*args: str) -> list[str]:
    """The argv that runs ``astrolatent ARGS`` in a new process with this Python (for
    benchmarks and tests that need a separate process)."""
    return [sys.executable, "-m", "astrolatent", *args]


def _fail(message: str, code: int, *, traceback: bool = False) -> int:
    """Print ``message`` as one red line (the traceback after it with -v); return ``code``."""
    line = " ".join(str(message).split()) or "failed"
    if traceback and logging.getLogger("astrolatent").getEffectiveLevel() <= logging.INFO:
        err_console.print_exception()
    elif traceback:
        line += " (-v shows the traceback)"
    err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return code


def main() -> None:
    """Entry point of the ``astrolatent`` script."""
    sys.exit(run())
