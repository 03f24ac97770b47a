"""CLI command: ``run PIPELINE.yaml`` (simulate/ingest -> train -> encode -> analyze -> report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from astrolatent import api
from astrolatent.cli.common import (
    JsonFlag,
    configured,
    console,
    echo_json,
    progress_bar,
)


@configured(api.run_config, exclude=("pipeline",))
def run(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline configuration (YAML/JSON).")],
    force: Annotated[
        Literal["simulate", "ingest", "train", "encode", "analyze", "report"] | None,
        typer.Option(help="Rerun this stage and the ones after it (default: none)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder, replacing the file's `out` (relative to here)."),
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Run the whole chain from a configuration file; stages whose outputs are up to date are skipped.

    Relative paths in the file are relative to the file's folder. Ends with the report
    path and what each informative latent dimension tracks.
    """
    from astrolatent.pipeline import load_pipeline
    from astrolatent.runtime.trainer import quiet_lightning

    load_pipeline(pipeline, out=cfg.out)  # a bad file fails before Lightning is imported
    import lightning  # noqa: F401  (imported first: its import sets its loggers' levels)

    bar = progress_bar(
        disable=as_json, counts=False, label="[bold]{task.fields[stage]:<8}[/] {task.description}"
    )
    tasks: dict[str, int] = {}

    def progress(stage: str, message: str, done: float | None, total: float | None) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(message, total=None, stage=stage)
        bar.update(tasks[stage], description=message, completed=done or 0, total=total)

    with quiet_lightning(), bar:
        result = api.run_pipeline(pipeline, config=cfg, progress=progress)
    if as_json:
        echo_json(result.to_dict())
        return
    _print_pipeline(result)


def _print_pipeline(result) -> None:
    """Each stage's outcome, what the informative dims track, and the report's path."""
    from astrolatent.report.html import describe_tracks, dimension_labels

    for s in result.stages:
        if s.status == "skipped":
            console.print(f"[dim]{s.stage:<8} up to date, skipped[/]", highlight=False)
        else:
            console.print(
                f"[green]{s.stage:<8}[/] {s.message} ({s.seconds:.1f} s)", highlight=False
            )
    summary = result.summary
    if summary:
        inf = summary["informative"]
        console.print(
            f"\n[bold]{len(inf['agreed'])} informative dims[/] of {summary['n_latent']} "
            f"(dispersion: {inf['dispersion']['dims']}, KL rate: {inf['kl']['dims']})",
            highlight=False,
        )
        for dim, tracks in dimension_labels(summary).items():
            console.print(f"  dim {dim}: {describe_tracks(tracks, limit=1)}", highlight=False)
    console.print(f"report: [bold]{result.report}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command("run")(run)
