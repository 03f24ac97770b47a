"""CLI commands of the causal area: ``causal`` (local tests in a run's latent space),
``discover`` (global causal discovery on a table or a run) and ``simulate dag``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from astrolatent import api
from astrolatent.cli.common import (
    Alpha,
    JsonFlag,
    Seed,
    configured,
    console,
    echo_json,
    parse_columns,
    progress_bar,
)
from astrolatent.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app (and ``dag`` to ``simulate``)."""
    from astrolatent.cli.data import simulate_app

    app.command("causal")(causal_command)
    app.command("discover")(discover_command)
    simulate_app.command("dag")(simulate_dag_command)


@configured(api.causal_config, exclude=("run",))
def causal_command(
    run: Annotated[Path, typer.Argument(help="Galaxy-estimator run directory.")],
    query: Annotated[
        str | None,
        typer.Option("--query", help="Query column X_q of the catalogue (required)."),
    ] = None,
    condition: Annotated[
        str | None,
        typer.Option("--condition", help="Comma-separated conditioning column(s) X_c."),
    ] = None,
    model: Annotated[
        int | None, typer.Option("--model", help="Which model's latent space (default 0).")
    ] = None,
    evaluate: Annotated[
        Literal["test", "val", "train"] | None,
        typer.Option(
            "--evaluate", help="Objects to test (default test; neighbours: training objects)."
        ),
    ] = None,
    max_objects: Annotated[
        int | None,
        typer.Option("--max-objects", help="Test at most this many (seeded; default all)."),
    ] = None,
    n_neighbors: Annotated[
        int | None, typer.Option("--neighbors", help="Neighbourhood size k in S (default 100).")
    ] = None,
    n_permutations: Annotated[
        int | None,
        typer.Option("--permutations", help="Permutations of the null per object (default 200)."),
    ] = None,
    alpha: Alpha = None,
    seed: Seed = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default RUN/causal/local_<query>...)."),
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Local tests: does the target depend on a query variable among objects with nearby
    latents (i.e. outside the path through S), with or without conditioning?"""
    from astrolatent.analysis.causal.local import summary_rows

    with progress_bar(disable=as_json) as bar:
        task = bar.add_task("local tests", total=cfg.max_objects)
        result, folder = api.causal(run, config=cfg, progress=lambda k: bar.advance(task, k))
    if as_json:
        echo_json({**result.to_dict(), "out": str(folder)})
        return
    s = result.settings
    table = Table(
        title=f"r({s['target']}, {cfg.query}) in neighbourhoods of {cfg.n_neighbors} in S "
        f"({s['n_evaluated']} {cfg.evaluate} objects)"
    )
    headers, rows = summary_rows(result.to_dict())
    for col in headers:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"alpha {cfg.alpha}; wrote {folder}")


@configured(
    api.discover_config, exclude=("source", "variables", "model", "latent_dims", "truth", "out")
)
def discover_command(
    source: Annotated[
        Path, typer.Argument(help="A table (.csv/.parquet/.fits) or a galaxy run directory.")
    ],
    variables: Annotated[
        str,
        typer.Option(
            "--vars",
            help="Comma-separated columns (a run adds them to its latent dims and target).",
        ),
    ] = "",
    method: Annotated[
        Literal["pc", "fci", "ges", "lingam"] | None,
        typer.Option("--method", help="Algorithm (default pc)."),
    ] = None,
    test: Annotated[
        Literal["fisherz", "kci", "rcit"] | None,
        typer.Option(
            "--test", help="CI test of pc/fci (default fisherz; kci, rcit: nonparametric)."
        ),
    ] = None,
    alpha: Alpha = None,
    n_bootstrap: Annotated[
        int | None,
        typer.Option("--bootstrap", help="Subsamples for edge stability (0: none; default 20)."),
    ] = None,
    max_samples: Annotated[
        int | None,
        typer.Option("--max-samples", help="Rows used at most (default: all; kci/rcit 400)."),
    ] = None,
    model: Annotated[int, typer.Option("--model", help="Run: which model's latents.")] = 0,
    latent_dims: Annotated[
        str, typer.Option("--latent-dims", help="Run: comma-separated dims (default all).")
    ] = "",
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="dag.json of a planted DAG: report skeleton F1."),
    ] = None,
    seed: Seed = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for discovery.json and graph.png (run default: "
            "RUN/causal/discovery_<method>; table default: none).",
        ),
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Causal discovery among the columns of a table, or among a run's latent dims, target
    and catalogue columns; edge marks and subsample stability."""
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task(f"{cfg.method} fits", total=1 + cfg.n_bootstrap)
        found = api.discover(
            source,
            vars=parse_columns(variables),
            model=model,
            latent_dims=_parse_dims(latent_dims),
            truth=truth,
            out=out,
            config=cfg,
            progress=lambda k: bar.advance(task, k),
        )
    if as_json:
        echo_json(found.to_dict())
        return
    if found.n_dropped:
        console.print(f"dropped {found.n_dropped} rows with NaN or inf")
    _print_graph(found.graph, cfg.method, found.skeleton, found.out)


def _print_graph(graph, method: str, skeleton: dict | None, folder: Path | None) -> None:
    table = Table(title=f"{method} on {len(graph.nodes)} nodes, n = {graph.settings['n']}")
    for col in ("from", "type", "to", "stability"):
        table.add_column(col)
    for edge in graph.edges():
        stab = edge["stability"]
        table.add_row(edge["from"], edge["type"], edge["to"], "" if stab is None else f"{stab:.2f}")
    console.print(table)
    if skeleton is not None:
        s = skeleton
        console.print(
            f"skeleton vs truth: precision {s['precision']:.3f}, recall {s['recall']:.3f}, "
            f"F1 {s['f1']:.3f} (tp {s['tp']}, fp {s['fp']}, fn {s['fn']})"
        )
    if folder is not None:
        console.print(f"wrote {folder}")


def _parse_dims(value: str) -> list[int] | None:
    """``"0,2,5"`` -> ``[0, 2, 5]``; empty -> None (all dims)."""
    if not value:
        return None
    try:
        return [int(d) for d in parse_columns(value)]
    except ValueError:
        raise ConfigError(f"--latent-dims {value!r}: expected integers like 0,1,2") from None


@configured(api.simulate_dag_config, exclude=("out_dir",))
def simulate_dag_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder for table.parquet and dag.json.")],
    kind: Annotated[
        Literal["linear", "nonlinear"] | None,
        typer.Option("--kind", help="Edge functions (default linear)."),
    ] = None,
    n_nodes: Annotated[
        int | None, typer.Option("--nodes", help="Number of nodes (default 7).")
    ] = None,
    n_edges: Annotated[
        int | None, typer.Option("--edges", help="Number of edges (default 9).")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Number of samples (default 5000).")] = None,
    noise: Annotated[
        Literal["gaussian", "laplace"] | None,
        typer.Option("--noise", help="Noise distribution (default gaussian)."),
    ] = None,
    seed: Seed = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Simulate a table from a planted causal DAG (the truth for ``discover --truth``)."""
    table, truth = api.simulate_dag(out_dir, config=cfg)
    if as_json:
        echo_json({"table": str(table), "truth": str(truth), **json.loads(truth.read_text())})
        return
    edges = json.loads(truth.read_text())["edges"]
    console.print(
        f"wrote {table} ({cfg.n} rows, {cfg.n_nodes} nodes) and {truth}: "
        + ", ".join(f"{e['from']}->{e['to']}" for e in edges)
    )
