"""CLI commands of the causal area: ``causal`` (local tests in a run's latent space),
``discover`` (global causal discovery on a table or a run) and ``simulate dag``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import typer
from rich.table import Table

from astrolatent.api import resolve
from astrolatent.cli.common import (
    ConfigFile,
    PrintConfig,
    console,
    echo_json,
    parse_columns,
    print_config,
    progress_bar,
)
from astrolatent.errors import ConfigError, InputFileError


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app (and ``dag`` to ``simulate``)."""
    from astrolatent.cli.data import simulate_app

    app.command("causal")(causal_command)
    app.command("discover")(discover_command)
    simulate_app.command("dag")(simulate_dag_command)


def causal_command(
    run: Annotated[Path, typer.Argument(help="Galaxy-estimator run directory.")],
    query: Annotated[str, typer.Option("--query", help="Query column X_q of the catalogue.")],
    condition: Annotated[
        str, typer.Option("--condition", help="Comma-separated conditioning column(s) X_c.")
    ] = "",
    model: Annotated[int, typer.Option("--model", help="Which model's latent space.")] = 0,
    evaluate: Annotated[
        Literal["test", "val", "train"],
        typer.Option("--evaluate", help="Objects to test (neighbours: training objects)."),
    ] = "test",
    max_objects: Annotated[
        int | None, typer.Option("--max-objects", help="Test at most this many (seeded).")
    ] = None,
    n_neighbors: Annotated[
        int, typer.Option("--neighbors", help="Neighbourhood size k in S.")
    ] = 100,
    n_permutations: Annotated[
        int, typer.Option("--permutations", help="Permutations of the null per object.")
    ] = 200,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level.")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default RUN/causal/local_<query>...)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Local tests: does the target depend on a query variable among objects with nearby
    latents (i.e. outside the path through S), with or without conditioning?"""
    from astrolatent.analysis.causal.local import summary_rows
    from astrolatent.workflows.causal import run_local_tests

    with progress_bar(disable=as_json) as bar:
        task = bar.add_task("local tests", total=max_objects)
        result, folder = run_local_tests(
            run,
            query,
            condition=parse_columns(condition),
            model=model,
            evaluate=evaluate,
            max_objects=max_objects,
            n_neighbors=n_neighbors,
            n_permutations=n_permutations,
            alpha=alpha,
            random_state=seed,
            out_dir=out,
            progress=lambda k: bar.advance(task, k),
        )
    if as_json:
        echo_json({**result.to_dict(), "out": str(folder)})
        return
    s = result.settings
    table = Table(
        title=f"r({s['target']}, {query}) in neighbourhoods of {n_neighbors} in S "
        f"({s['n_evaluated']} {evaluate} objects)"
    )
    headers, rows = summary_rows(result.to_dict())
    for col in headers:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"alpha {alpha}; wrote {folder}")


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
    alpha: Annotated[
        float | None, typer.Option("--alpha", help="Level of the CI tests (default 0.05).")
    ] = None,
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
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for discovery.json and graph.png (run default: "
            "RUN/causal/discovery_<method>; table default: none).",
        ),
    ] = None,
    config_file: ConfigFile = None,
    show_config: PrintConfig = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the graph as JSON.")] = False,
) -> None:
    """Causal discovery among the columns of a table, or among a run's latent dims, target
    and catalogue columns; edge marks and subsample stability."""
    from astrolatent.analysis.causal.discover import DiscoveryConfig, discover, skeleton_scores
    from astrolatent.tables import numeric_columns, read_table
    from astrolatent.workflows.causal import is_run, run_discovery, write_discovery

    config = resolve(
        DiscoveryConfig,
        config_file,
        {
            "method": method,
            "test": test,
            "alpha": alpha,
            "n_bootstrap": n_bootstrap,
            "max_samples": max_samples,
            "random_state": seed,
        },
        source="discover options",
    )
    print_config(config, when=show_config)
    method, n_bootstrap = config.method, config.n_bootstrap
    columns = parse_columns(variables)
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task(f"{method} fits", total=1 + n_bootstrap)

        def advance(k: int) -> None:
            bar.advance(task, k)

        if source.is_dir() and not is_run(source):
            raise InputFileError(
                source, "a folder, but not a galaxy run (no config.yaml and latents.parquet)"
            )
        if is_run(source):
            dims = _parse_dims(latent_dims)
            graph, groups = run_discovery(
                source, columns, config, model=model, latent_dims=dims, progress=advance
            )
            folder = out or source / "causal" / f"discovery_{method}"
        else:
            if len(columns) < 2:
                raise ConfigError("--vars: name at least two columns of the table")
            values = numeric_columns(read_table(source), columns, source=source)
            finite = np.isfinite(values).all(axis=1)
            if finite.sum() < len(values) and not as_json:
                console.print(f"dropped {len(values) - finite.sum()} rows with NaN or inf")
            graph = discover(values[finite], columns, config, progress=advance)
            groups = None
            folder = out
    extra = {}
    if truth is not None:
        extra["skeleton"] = skeleton_scores(graph.skeleton, _truth_adjacency(truth, graph.nodes))
    if folder is not None:
        write_discovery(graph, folder, groups=groups, extra=extra)
    if as_json:
        echo_json(
            {**graph.to_dict(), "groups": groups, **extra, "out": str(folder) if folder else None}
        )
        return
    _print_graph(graph, method, extra.get("skeleton"), folder)


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


def _truth_adjacency(path: Path, nodes: list[str]) -> np.ndarray:
    """The adjacency of a ``dag.json`` (``simulate dag``), reordered to ``nodes`` (the same
    set of variables)."""
    try:
        truth = json.loads(path.read_text())
        names, adjacency = truth["nodes"], np.asarray(truth["adjacency"], bool)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(
            path, f"not a DAG truth file with nodes and adjacency ({exc})"
        ) from None
    if sorted(nodes) != sorted(names):
        # a subset would be scored against the wrong truth: leaving nodes out makes the
        # ones kept dependent where the full graph has no edge between them
        raise InputFileError(
            path,
            f"--truth scores a discovery over all of its nodes {names}; --vars names {nodes}",
        )
    order = [names.index(n) for n in nodes]
    return adjacency[np.ix_(order, order)]


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
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")] = None,
    config_file: ConfigFile = None,
    show_config: PrintConfig = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the truth as JSON.")] = False,
) -> None:
    """Simulate a table from a planted causal DAG (the truth for ``discover --truth``)."""
    from astrolatent.simulate.dags import DAGSimulationConfig, write_dag

    config = resolve(
        DAGSimulationConfig,
        config_file,
        {
            "kind": kind,
            "n_nodes": n_nodes,
            "n_edges": n_edges,
            "n": n,
            "noise": noise,
            "random_state": seed,
        },
        source="simulate dag options",
    )
    print_config(config, when=show_config)
    table, truth = write_dag(out_dir, config)
    if as_json:
        echo_json({"table": str(table), "truth": str(truth), **json.loads(truth.read_text())})
        return
    edges = json.loads(truth.read_text())["edges"]
    console.print(
        f"wrote {table} ({config.n} rows, {config.n_nodes} nodes) and {truth}: "
        + ", ".join(f"{e['from']}->{e['to']}" for e in edges)
    )
