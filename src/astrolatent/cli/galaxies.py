"""CLI commands of the galaxies area: ``galaxy simulate``, ``fetch-real``, ``groups``, ``train``,
``decompose``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from astrolatent import api
from astrolatent.cli.common import (
    JsonFlag,
    Seed,
    SimulationSeed,
    TableArg,
    configured,
    console,
    echo_json,
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
@configured(api.galaxy_simulate_config, exclude=("out_dir", "images"))
def simulate(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder for catalog.parquet, truth.parquet, images.npy.")
    ],
    n: Annotated[
        int | None,
        typer.Option("--n", help="Number of galaxies (after the r selection; default 1000)."),
    ] = None,
    seed: SimulationSeed = None,
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
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Simulate a galaxy catalogue (and Sersic image cutouts) with planted relations."""
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task("rendering" if images else "simulating", total=cfg.n)
        output = api.galaxy_simulate(
            out_dir, images=images, config=cfg, progress=lambda k: bar.advance(task, k)
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
@configured(api.fetch_real_config, exclude=("name", "out"))
def fetch_real(
    name: Annotated[Literal["kcorrect", "mlz"], typer.Argument(help="Which packaged catalogue.")],
    out: Annotated[Path, typer.Argument(help="Output table (.parquet or .csv).")],
    source: Annotated[
        Path | None,
        typer.Option(help="Read from this file/folder/sdist instead of the installed package."),
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Write a packaged real SDSS catalogue as a table (kcorrect: with fitted stellar masses)."""
    from astrolatent.galaxies.real import COLUMN_DOCS

    fmt = _table_format(out)
    marks.output_file(out)  # before the download: a folder there fails now, not after it
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task(
            "fitting kcorrect templates" if name == "kcorrect" else "reading", total=None
        )
        frame = api.fetch_real(name, config=cfg, progress=lambda k: bar.advance(task, k))
    if fmt == "parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    docs = COLUMN_DOCS[name]
    if as_json:
        echo_json(
            {"out": str(out), "rows": len(frame), "columns": list(frame.columns), "docs": docs}
        )
        return
    _print_table(f"{out} ({len(frame)} rows)", ("columns", "meaning"), docs)


@galaxy_app.command("groups")
@configured(api.groups_config, exclude=("table",))
def groups(
    table: TableArg,
    groups: Annotated[
        Path | None, typer.Option("--groups", help="YAML/JSON file of extra column groups.")
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """List the column groups (usable as --inputs) that a catalogue provides."""
    found = api.groups(table, config=cfg)
    if as_json:
        echo_json(found)
        return
    _print_table(str(table), ("group", "columns"), {k: " ".join(v) for k, v in found.items()})


def _print_table(title: str, headers: tuple[str, str], rows: dict[str, str]) -> None:
    """A two-column table of ``rows`` (key -> text)."""
    out = Table(title=title)
    for header in headers:
        out.add_column(header)
    for key, text in rows.items():
        out.add_row(key, text)
    console.print(out)


@galaxy_app.command("train")
@configured(api.galaxy_train_config, exclude=("run",))
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
    groups: Annotated[
        Path | None, typer.Option("--groups", help="YAML/JSON file of extra column groups.")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    *,
    cfg,
) -> None:
    """Train a PDF estimator of the target and write the run directory."""
    n_models = max(1, cfg.data.cv_folds)
    epochs = cfg.trainer.max_epochs
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task("training", total=n_models * epochs)

        def report(event: dict) -> None:
            done = event["model"] * epochs + event["epoch"]
            val = event.get("val_ce")
            text = f"model {event['model'] + 1}/{n_models}" + (
                f" val CE {val:.3f}" if val is not None else ""
            )
            bar.update(task, completed=done, description=text)

        summary = api.galaxy_train(table, run=run, config=cfg, progress=report)
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
@configured(api.galaxy_decompose_config)
def decompose(
    runs: Annotated[
        str | None,
        typer.Option(
            "--runs",
            help="RUN1,RUN2,RUN12: runs trained on X1, on X2 and on both together (required).",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="Table column to average per value of ('' for none; default class)."
        ),
    ] = None,
    bins: Annotated[
        str | None,
        typer.Option(
            "--bins", help="Columns to average in bins of (default: the target and mag_r)."
        ),
    ] = None,
    n_bins: Annotated[
        int | None, typer.Option("--n-bins", help="Equal-count bins per column (default 6).")
    ] = None,
    common: Annotated[
        bool | None,
        typer.Option(
            "--common/--no-common",
            help="Keep the objects all three runs hold out (default: they must be the same).",
        ),
    ] = None,
    method: Annotated[
        Literal["mmi", "pointwise"] | None,
        typer.Option(
            "--method",
            help="mmi: minimum of the mean MIs (default, as in decompose); pointwise: the "
            "2025 study's per-object minimum (biased: low redundancy, negative synergy).",
        ),
    ] = None,
    n_bootstrap: Annotated[
        int | None,
        typer.Option("--bootstrap", help="Bootstrap resamples for the errors (default 200)."),
    ] = None,
    seed: Seed = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default RUN12/decomposition/RUN1_vs_RUN2)."),
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Decompose what two input sets tell about the target, from three trained runs.

    Minimum-MI decomposition (nats) of the runs on X1, on X2 and on both, overall, per
    class and in bins, with bootstrap errors: of the mean MIs (mmi) or of each galaxy's
    pointwise MIs, then averaged (pointwise). Per-galaxy pointwise terms are written
    either way.
    """
    result, out_dir = api.galaxy_decompose(config=cfg)
    if as_json:
        echo_json({**result.to_dict(), "out": str(out_dir)})
        return
    _print_decomposition(result, out_dir)


def _print_decomposition(result, out_dir: Path) -> None:
    """The four atoms overall and per class, the three MIs, and where the files went."""
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
        f"nats; unique1 = {names['x1']}, unique2 = {names['x2']}; wrote the files to {out_dir}"
    )
    if d["by_class"]:
        console.print(f"note: {d['note']}")
