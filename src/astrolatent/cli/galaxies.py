"""CLI commands of the galaxies area: ``galaxy simulate``, ``fetch-real``, ``groups``, ``train``,
``decompose``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from astrolatent.cli.common import (
    ConfigFile,
    PrintConfig,
    console,
    echo_json,
    parse_columns,
    print_config,
    progress_bar,
)
from astrolatent.errors import ConfigError
from astrolatent.outputs import marks

galaxy_app = typer.Typer(
    help="Galaxy catalogues, simulations with known truth, and PDF estimators of a target.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(galaxy_app, name="galaxy")


def _table_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    raise ConfigError(f"{path}: choose a .parquet or .csv output name")


@galaxy_app.command("simulate")
def simulate(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder for catalog.parquet, truth.parquet, images.npy.")
    ],
    n: Annotated[
        int | None,
        typer.Option("--n", help="Number of galaxies (after the r selection; default 1000)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (same seed, same files; default 0).")
    ] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Cutout size in pixels (default 64).")
    ] = None,
    bands: Annotated[
        str | None, typer.Option(help="Image bands, a subset of ugriz (default all five).")
    ] = None,
    r_limit: Annotated[
        float | None,
        typer.Option(
            help="Keep galaxies with observed r below this (AB mag; 99: all; default 17.77)."
        ),
    ] = None,
    images: Annotated[bool, typer.Option(help="Render the image cutouts.")] = True,
    config_file: ConfigFile = None,
    show_config: PrintConfig = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Simulate a galaxy catalogue (and Sersic image cutouts) with planted relations."""
    from astrolatent.api import resolve
    from astrolatent.galaxies.config import GalaxySimulationConfig
    from astrolatent.galaxies.simulate import write_galaxies

    config = resolve(
        GalaxySimulationConfig,
        config_file,
        {
            "n": n,
            "image_size": image_size,
            "bands": bands,
            "r_limit": r_limit,
            "random_state": seed,
        },
        source="galaxy simulate options",
    )
    print_config(config, when=show_config)
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task("rendering" if images else "simulating", total=config.n)
        output = write_galaxies(
            out_dir, config, images=images, progress=lambda k: bar.advance(task, k)
        )
    if as_json:
        echo_json(output.to_dict())
    else:
        extra = f", images: {output.images.name}" if output.images else ""
        console.print(
            f"wrote {output.n} galaxies to {output.out_dir} (catalog: {output.catalog.name}, "
            f"truth: {output.truth.name}{extra})"
        )


@galaxy_app.command("fetch-real")
def fetch_real(
    name: Annotated[Literal["kcorrect", "mlz"], typer.Argument(help="Which packaged catalogue.")],
    out: Annotated[Path, typer.Argument(help="Output table (.parquet or .csv).")],
    source: Annotated[
        Path | None,
        typer.Option(help="Read from this file/folder/sdist instead of the installed package."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Write a packaged real SDSS catalogue as a table (kcorrect: with fitted stellar masses)."""
    from astrolatent.galaxies import real

    fmt = _table_format(out)
    marks.output_file(out)  # before the download: a folder there fails now, not after it
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task(
            "fitting kcorrect templates" if name == "kcorrect" else "reading", total=None
        )
        frame = real.fetch_real(name, source=source, progress=lambda k: bar.advance(task, k))
    if fmt == "parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    docs = real.COLUMN_DOCS[name]
    if as_json:
        echo_json(
            {"out": str(out), "rows": len(frame), "columns": list(frame.columns), "docs": docs}
        )
        return
    table = Table(title=f"{out} ({len(frame)} rows)")
    table.add_column("columns")
    table.add_column("meaning")
    for cols, meaning in docs.items():
        table.add_row(cols, meaning)
    console.print(table)


@galaxy_app.command("groups")
def groups(
    table: Annotated[Path, typer.Argument(help="Catalogue: .csv, .parquet or .fits.")],
    groups_file: Annotated[
        Path | None, typer.Option("--groups", help="YAML/JSON file of extra column groups.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the column groups (usable as --inputs) that a catalogue provides."""
    from astrolatent.galaxies.catalog import available_groups, load_groups
    from astrolatent.tables import read_table

    frame = read_table(table)
    extra = load_groups(groups_file) if groups_file else None
    found = available_groups(list(frame.columns), groups=extra)
    if as_json:
        echo_json(found)
        return
    out = Table(title=str(table))
    out.add_column("group")
    out.add_column("columns")
    for name, columns in found.items():
        out.add_row(name, " ".join(columns))
    console.print(out)


def _parse_range(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    parts = parse_columns(value)
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--range {value!r}: expected LOW,HIGH (two numbers)") from None
    return low, high


@galaxy_app.command("train")
def train(
    table: Annotated[Path, typer.Argument(help="Catalogue: .csv, .parquet or .fits.")],
    target: Annotated[str, typer.Option("--target", help="Target column (e.g. logmass).")],
    run: Annotated[Path, typer.Option("--run", help="Run directory to create.")],
    inputs: Annotated[
        str, typer.Option("--inputs", help="Comma-separated column groups or columns.")
    ] = "",
    images: Annotated[
        Path | None, typer.Option("--images", help=".npy (N, C, S, S) images, row i = table row i.")
    ] = None,
    groups_file: Annotated[
        Path | None, typer.Option("--groups", help="YAML/JSON file of extra column groups.")
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="YAML/JSON estimator options (see config.yaml of a run)."),
    ] = None,
    target_range: Annotated[
        str | None, typer.Option("--range", help="LOW,HIGH of the PDF bins (default 6,12.5).")
    ] = None,
    bins: Annotated[
        int | None, typer.Option("--bins", help="Number of PDF bins (default 520).")
    ] = None,
    cv_folds: Annotated[
        int | None,
        typer.Option("--cv-folds", help="K >= 2: cross-fitting, every object held out once."),
    ] = None,
    latent_dim: Annotated[
        int | None, typer.Option("--latent-dim", help="Latent size (default 8 tabular, 16 images).")
    ] = None,
    contrastive: Annotated[
        bool | None,
        typer.Option("--contrastive/--no-contrastive", help="Supervised-contrastive training."),
    ] = None,
    max_epochs: Annotated[
        int | None, typer.Option("--max-epochs", help="Epochs per model.")
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Training minutes per model.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of splits, weights, batches.")
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="torch CPU threads.")] = None,
    show_config: PrintConfig = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Train a PDF estimator of the target and write the run directory."""
    from astrolatent.api import resolve
    from astrolatent.config import read_mapping
    from astrolatent.galaxies.catalog import load_groups
    from astrolatent.galaxies.config import EstimatorConfig
    from astrolatent.galaxies.train import fit_estimator

    options = read_mapping(config_file, what="options") if config_file is not None else {}
    groups = None
    if groups_file is not None:
        groups = {**options.get("data", {}).get("groups", {}), **load_groups(groups_file)}
    low, high = _parse_range(target_range) or (None, None)
    given = {
        "data.table": str(table),
        "data.target": target,
        "data.inputs": parse_columns(inputs) or None,
        "data.images": None if images is None else str(images),
        "data.groups": groups,
        "data.cv_folds": cv_folds,
        "pdf.target_min": low,
        "pdf.target_max": high,
        "pdf.n_bins": bins,
        "encoder.latent_dim": latent_dim,
        "contrastive.enabled": contrastive,
        "trainer.max_epochs": max_epochs,
        "trainer.max_minutes": max_minutes,
        "trainer.seed": seed,
        "trainer.num_threads": threads,
    }
    config = resolve(EstimatorConfig, options, given, source="galaxy train options")
    print_config(config, when=show_config)

    n_models = max(1, config.data.cv_folds)
    epochs = config.trainer.max_epochs
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task("training", total=n_models * epochs)

        def report(event: dict) -> None:
            done = event["model"] * epochs + event["epoch"]
            val = event.get("val_ce")
            text = f"model {event['model'] + 1}/{n_models}" + (
                f" val CE {val:.3f}" if val is not None else ""
            )
            bar.update(task, completed=done, description=text)

        summary = fit_estimator(config, run, progress=report)
    if as_json:
        echo_json(summary.to_dict())
        return
    _print_summary(summary)


def _print_summary(summary) -> None:
    cleaning = summary.cleaning
    if cleaning["n_dropped"]:
        console.print(f"dropped {cleaning['n_dropped']} of {cleaning['n_rows']} rows:")
        for col, why in cleaning["per_column"].items():
            console.print(f"  {col}: " + ", ".join(f"{v} {k}" for k, v in why.items() if v))
    m = summary.metrics
    if m:
        table = Table(title=f"held-out metrics ({m['n']} objects, target std {m['truth_std']:.3f})")
        for col in ("estimate", "bias", "sigma_MAD", "outliers"):
            table.add_column(col)
        for name in ("mean", "median", "mode"):
            s = m[name]
            table.add_row(
                name, f"{s['bias']:+.4f}", f"{s['sigma_mad']:.4f}", f"{s['outlier_fraction']:.3f}"
            )
        console.print(table)
        console.print(
            f"CRPS {m['crps']:.4f}; CE {m['ce']:.3f} nats vs prior {m['prior_ce']:.3f} "
            f"(mean pointwise MI {m['mi']:.3f} nats)"
        )
    stops = ", ".join(f"{r['epochs']} epochs ({r['stopped_by']})" for r in summary.models)
    console.print(f"trained {summary.n_models} model(s): {stops}; run: {summary.run_dir}")


@galaxy_app.command("decompose")
def decompose(
    runs: Annotated[
        str,
        typer.Option(
            "--runs", help="RUN1,RUN2,RUN12: runs trained on X1, on X2 and on both together."
        ),
    ],
    by: Annotated[
        str | None,
        typer.Option("--by", help="Table column to average per value of ('' for none)."),
    ] = "class",
    bins: Annotated[
        str | None,
        typer.Option(
            "--bins", help="Columns to average in bins of (default: the target and mag_r)."
        ),
    ] = None,
    n_bins: Annotated[int, typer.Option("--n-bins", help="Equal-count bins per column.")] = 6,
    common: Annotated[
        bool,
        typer.Option("--common", help="Keep the objects all three runs hold out (else: same)."),
    ] = False,
    method: Annotated[
        Literal["mmi", "pointwise"],
        typer.Option(
            "--method",
            help="mmi: minimum of the mean MIs (default, as in decompose); pointwise: the "
            "2025 study's per-object minimum (biased: low redundancy, negative synergy).",
        ),
    ] = "mmi",
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples for the errors.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default RUN12/decomposition/RUN1_vs_RUN2)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Decompose what two input sets tell about the target, from three trained runs.

    Minimum-MI decomposition (nats) of the runs on X1, on X2 and on both, overall, per
    class and in bins, with bootstrap errors: of the mean MIs (mmi) or of each galaxy's
    pointwise MIs, then averaged (pointwise). Per-galaxy pointwise terms are written
    either way.
    """
    from astrolatent.galaxies.decompose import decompose_runs, default_out_dir, write_decomposition

    paths = [Path(p) for p in parse_columns(runs)]
    if len(paths) != 3:
        raise ConfigError(f"--runs {runs!r}: give three runs RUN1,RUN2,RUN12 (X1, X2, both)")
    result = decompose_runs(
        *paths,
        by=by or None,
        bins=parse_columns(bins) if bins else None,
        n_bins=n_bins,
        common=common,
        method=method,
        n_bootstrap=bootstrap,
        random_state=seed,
    )
    out_dir = out if out is not None else default_out_dir(*paths)
    written = write_decomposition(result, out_dir)
    if as_json:
        echo_json({**result.to_dict(), "out": str(out_dir)})
        return
    r = result.result
    d = result.to_dict()
    names = {"x1": "+".join(result.x1), "x2": "+".join(result.x2)}
    table = Table(title=f"{result.target}: {names['x1']} vs {names['x2']} (nats, {r.method})")
    table.add_column("objects")
    table.add_column("n", justify="right")
    atoms = ("redundancy", "unique1", "unique2", "synergy")
    for atom in atoms:
        table.add_column(atom, justify="right")
    for name, row in {"all": d, **(d["by_class"] or {})}.items():
        cells = [
            f"{row[a]:+.3f}" + ("" if row[f"{a}_err"] is None else f"±{row[f'{a}_err']:.3f}")
            for a in atoms
        ]
        table.add_row(str(name), str(row["n"]), *cells)
    console.print(table)
    console.print(
        f"I({names['x1']}) {r.mi1:.3f}, I({names['x2']}) {r.mi2:.3f}, I(both) {r.mi12:.3f} "
        f"nats; unique1 = {names['x1']}, unique2 = {names['x2']}; wrote {len(written)} files "
        f"to {out_dir}"
    )
    if d["by_class"]:
        console.print(f"note: {d['note']}")
