"""CLI commands for data: ``simulate spectra``, ``ingest``, ``info``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from astrolatent import api
from astrolatent.cli.common import (
    JsonFlag,
    SimulationSeed,
    configured,
    console,
    echo_json,
    progress_bar,
)

simulate_app = typer.Typer(
    help="Generate synthetic data with known ground truth.", no_args_is_help=True
)


@simulate_app.command("spectra")
@configured(api.simulate_config, exclude=("out_dir",))
def simulate_spectra(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder for the FITS files and the label/truth tables.")
    ],
    n: Annotated[int | None, typer.Option("--n", help="Number of spectra (default 1000).")] = None,
    seed: SimulationSeed = None,
    resolution: Annotated[
        str | None,
        typer.Option(help="low (0.5 A, 6,251 px; the default) or harps (0.01 A, 312,501 px)."),
    ] = None,
    n_objects: Annotated[
        int | None, typer.Option(help="Number of stars (fewer than --n gives repeat spectra).")
    ] = None,
    tellurics: Annotated[
        bool | None, typer.Option(help="Add telluric lines fixed in the observer frame (default).")
    ] = None,
    ccd_gap: Annotated[
        bool | None, typer.Option(help="Blank the HARPS CCD gap (5303.6-5338.0 A; default off).")
    ] = None,
    labelled_fraction: Annotated[
        float | None,
        typer.Option(
            help="Fraction of stars whose teff, logg, feh and rv labels.csv gives (truth.csv "
            "stays complete; default 1)."
        ),
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Simulate stellar spectra with known factors and write them as ESO 1D FITS files."""
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task("simulating", total=cfg.n)
        output = api.simulate_spectra(out_dir, config=cfg, progress=lambda k: bar.advance(task, k))
    payload = {
        "out_dir": str(output.out_dir),
        "n_files": len(output.files),
        "labels": str(output.labels),
        "truth": str(output.truth),
    }
    if as_json:
        echo_json(payload)
    else:
        console.print(
            f"wrote {len(output.files)} spectra to {output.out_dir} (labels: {output.labels.name}, truth: {output.truth.name})"
        )


@configured(api.ingest_config, exclude=("inputs", "store", "overwrite", "verify"))
def ingest(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(help="FITS files, folders, or .txt lists of paths.", show_default=False),
    ] = None,
    store: Annotated[
        Path, typer.Option("--store", help="Store directory (created, or resumed if it exists).")
    ] = ...,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Reader name for every file (default: each file identified by its content).",
        ),
    ] = None,
    preset: Annotated[str | None, typer.Option(help="harps, gaia-xp-apogee or spex-prism.")] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Label table (CSV/Parquet/FITS) to join on --id-column.")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option(help="Id column of the label table (default id).")
    ] = None,
    grid: Annotated[
        str | None,
        typer.Option(
            help="Target grid START,STOP,STEP[,linear|log] in Angstrom (log: step in dex)."
        ),
    ] = None,
    pad_to: Annotated[
        int | None, typer.Option(help="Zero-pad every spectrum to this many pixels.")
    ] = None,
    min_median: Annotated[
        float | None, typer.Option(help="Reject spectra whose median flux is <= this.")
    ] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 or float16.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default 1).")] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (tcp://host:8786) to run on a cluster."),
    ] = None,
    rows_per_task: Annotated[
        int | None, typer.Option(help="Rows per task (advanced; default from chunk size).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Rebuild a store made from other inputs or preprocessing.")
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            help="On resume, redo the tasks whose files changed (checksums; reads every file)."
        ),
    ] = False,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Read spectrum files, preprocess them, and write a chunked store (resumable).

    Exit code 0: every file was used; 5: finished, but some files were quarantined.
    """
    with progress_bar(disable=as_json) as bar:
        task = bar.add_task("ingesting", total=None)
        summary = api.ingest(
            inputs,
            store=store,
            config=cfg,
            overwrite=overwrite,
            verify=verify,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        echo_json(summary.to_dict())
    else:
        _print_ingest(summary)
    if summary.n_quarantined:
        raise typer.Exit(5)


def _print_ingest(summary) -> None:
    console.print(
        f"store {summary.store}: {summary.n_ok} spectra accepted, {summary.n_rejected} rejected, "
        f"{summary.n_quarantined} quarantined, from {summary.n_files} files in {summary.wall_seconds:.1f} s"
        + (
            f" ({summary.n_tasks_skipped} of {summary.n_tasks} tasks resumed)"
            if summary.n_tasks_skipped
            else ""
        )
    )
    if summary.label_report:
        r = summary.label_report
        console.print(
            f"labels: {r['n_matched']} spectra labelled; {r['n_unlabelled']} accepted spectra without labels; "
            f"{r['n_unknown_ids']} label rows with unknown ids"
        )
    if summary.n_quarantined:
        console.print(
            f"[yellow]see `astrolatent info {summary.store}` for the quarantined files and reasons[/]"
        )


@configured(api.info_config, exclude=("store",))
def info(
    store: Annotated[Path, typer.Argument(help="Store directory.")],
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Counts, grid, preprocessing and label coverage of a store."""
    payload = api.info(store, config=cfg)
    if as_json:
        echo_json(payload)
        return
    table = Table(title=f"store {payload['path']}", show_header=False)
    table.add_row("spectra accepted", str(payload["n_spectra"]))
    table.add_row("objects", str(payload["n_objects"]))
    table.add_row("rejected", str(payload["n_rejected"]))
    table.add_row("quarantined", str(payload["n_quarantined"]))
    table.add_row(
        "pixels per spectrum",
        f"{payload['length']:,} ({payload['dtype']}, chunks {payload['chunks']})",
    )
    lo, hi = payload["wavelength_range"]
    table.add_row("wavelength", f"{lo:.2f}-{hi:.2f} A")
    formats = ", ".join(f"{k} ({v} files)" for k, v in (payload.get("formats") or {}).items())
    table.add_row("format / preset", f"{formats or payload['format']} / {payload['preset']}")
    inferred = payload.get("grid_inference")
    if inferred:
        table.add_row(
            "grid inferred",
            f"{inferred['rule']}; from {len(inferred['files'])} files, "
            f"{len(inferred['skipped'])} skipped as invalid",
        )
    cov = ", ".join(f"{k} ({v})" for k, v in payload["label_coverage"].items()) or "none"
    table.add_row("labels (spectra with a value)", cov)
    console.print(table)
    _print_reasons("rejected", [(r["id"], r["reason"]) for r in payload["rejected"]])
    _print_reasons("quarantined", [(q["file"], q["reason"]) for q in payload["quarantined"]])


def _print_reasons(title: str, rows: list[tuple[str, str]], limit: int = 20) -> None:
    if not rows:
        return
    table = Table(title=f"{title} ({len(rows)})")
    table.add_column("id / file")
    table.add_column("reason")
    for name, reason in rows[:limit]:
        table.add_row(name, reason)
    if len(rows) > limit:
        table.add_row(f"... {len(rows) - limit} more", "(--json lists all)")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the data commands to the main app."""
    app.add_typer(simulate_app, name="simulate")
    app.command()(ingest)
    app.command()(info)
