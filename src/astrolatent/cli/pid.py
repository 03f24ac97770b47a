"""CLI commands of the pid area: ``astrolatent decompose``."""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Annotated

import typer
from rich.table import Table

from astrolatent import api
from astrolatent.cli.common import (
    JsonFlag,
    TableArg,
    configured,
    console,
    echo_json,
)

_METHODS = (
    "mmi (default: minimum of the classifiers' mean MIs), pointwise (the 2025 study's "
    "per-object minimum; biased), gaussian, gaussian_dep, imin, broja, ccs"
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    app.command("decompose")(decompose_command)


@configured(api.decompose_config, exclude=("table",))
def decompose_command(
    table: TableArg,
    target: Annotated[str | None, typer.Option("--target", help="Target column Y.")] = None,
    x1: Annotated[
        str | None, typer.Option("--x1", help="Comma-separated columns of source X1.")
    ] = None,
    x2: Annotated[
        str | None, typer.Option("--x2", help="Comma-separated columns of source X2.")
    ] = None,
    method: Annotated[
        str | None, typer.Option("--method", help=f"PID measure: {_METHODS}.")
    ] = None,
    n_bins: Annotated[
        int | None,
        typer.Option(
            "--n-bins", help="Target bins (mmi, pointwise) or bins per column (discrete)."
        ),
    ] = None,
    n_bootstrap: Annotated[
        int | None,
        typer.Option("--bootstrap", help="Bootstrap resamples for the errors (default 100)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (default: none, unseeded).")
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Split the information X1 and X2 carry about a target into redundant, unique and
    synergistic parts (nats). --target, --x1 and --x2 are required (here or in --config)."""
    rows, dropped = api.decompose_rows(table, cfg)
    if dropped and not as_json:
        n_rows = len(rows) + dropped
        console.print(f"dropped {dropped} of {n_rows} rows with NaN or inf in the used columns")
    with nullcontext() if as_json else console.status(f"decomposing with {cfg.method}..."):
        result = api.decompose(rows, config=cfg)
    if as_json:
        sources = {"target": cfg.target, "x1": cfg.x1, "x2": cfg.x2}
        echo_json({**result.to_dict(), **sources, "n_dropped": dropped, "table": str(table)})
        return
    _print_pid(result, cfg.target, ",".join(cfg.x1), ",".join(cfg.x2))


def _print_pid(result, target: str, name1: str, name2: str) -> None:
    """The four atoms with their errors, and the three MIs they decompose."""
    out = Table(title=f"PID of {target} ({result.method}, n={result.n}), nats")
    out.add_column("term")
    out.add_column("value", justify="right")
    out.add_column("error", justify="right")
    for atom, label in (
        ("redundancy", "redundancy"),
        ("unique1", f"unique to {name1}"),
        ("unique2", f"unique to {name2}"),
        ("synergy", "synergy"),
    ):
        err = getattr(result, f"{atom}_err")
        out.add_row(label, f"{getattr(result, atom):.4f}", "-" if math.isnan(err) else f"{err:.4f}")
    out.add_section()
    out.add_row(f"I({target}; {name1})", f"{result.mi1:.4f}", "")
    out.add_row(f"I({target}; {name2})", f"{result.mi2:.4f}", "")
    out.add_row(f"I({target}; both)", f"{result.mi12:.4f}", "")
    console.print(out)
