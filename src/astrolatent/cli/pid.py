"""CLI commands of the pid area: ``astrolatent decompose``."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from astrolatent.cli.common import console, echo_json, parse_columns
from astrolatent.errors import ConfigError, InputFileError
from astrolatent.tables import read_table

_METHODS = (
    "mmi (default: minimum of the classifiers' mean MIs), pointwise (the 2025 study's "
    "per-object minimum; biased), gaussian, gaussian_dep, imin, broja, ccs"
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    app.command("decompose")(decompose_command)


def decompose_command(
    table: Annotated[Path, typer.Argument(help="Table file: .csv, .parquet or .fits.")],
    target: Annotated[str, typer.Option("--target", help="Target column Y.")],
    x1: Annotated[str, typer.Option("--x1", help="Comma-separated columns of source X1.")],
    x2: Annotated[str, typer.Option("--x2", help="Comma-separated columns of source X2.")],
    method: Annotated[str, typer.Option("--method", help=f"PID measure: {_METHODS}.")] = ("mmi"),
    n_bins: Annotated[
        int | None,
        typer.Option(
            "--n-bins", help="Target bins (mmi, pointwise) or bins per column (discrete)."
        ),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples for the errors.")
    ] = 100,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Split the information X1 and X2 carry about a target into redundant, unique and
    synergistic parts (nats)."""
    from astrolatent.analysis.pid import decompose, select_columns

    frame = read_table(table)
    sources = {"x1": parse_columns(x1), "x2": parse_columns(x2)}
    try:
        rows, dropped = select_columns(frame, target=target, **sources)
    except ConfigError as exc:
        raise InputFileError(table, str(exc)) from exc
    if dropped and not as_json:
        console.print(f"dropped {dropped} of {len(frame)} rows with NaN or inf in the used columns")
    with nullcontext() if as_json else console.status(f"decomposing with {method}..."):
        result = decompose(
            rows,
            target=target,
            **sources,
            method=method,
            n_bins=n_bins,
            n_bootstrap=bootstrap,
            random_state=seed,
        )
    if as_json:
        payload = {**result.to_dict(), "target": target, **sources, "n_dropped": dropped}
        echo_json({**payload, "table": str(table)})
        return
    out = Table(title=f"PID of {target} ({result.method}, n={result.n}), nats")
    out.add_column("term")
    out.add_column("value", justify="right")
    out.add_column("error", justify="right")
    names = {"x1": ",".join(sources["x1"]), "x2": ",".join(sources["x2"])}
    for atom, label in (
        ("redundancy", "redundancy"),
        ("unique1", f"unique to {names['x1']}"),
        ("unique2", f"unique to {names['x2']}"),
        ("synergy", "synergy"),
    ):
        err = getattr(result, f"{atom}_err")
        out.add_row(label, f"{getattr(result, atom):.4f}", "-" if math.isnan(err) else f"{err:.4f}")
    out.add_section()
    out.add_row(f"I({target}; {names['x1']})", f"{result.mi1:.4f}", "")
    out.add_row(f"I({target}; {names['x2']})", f"{result.mi2:.4f}", "")
    out.add_row(f"I({target}; both)", f"{result.mi12:.4f}", "")
    console.print(out)
