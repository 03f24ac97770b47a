"""CLI commands of the training area: ``train``, ``encode``, ``reconstruct``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from astrolatent import api
from astrolatent.cli.common import (
    JsonFlag,
    RunStore,
    TrainingRun,
    configured,
    console,
    echo_json,
    progress_bar,
)
from astrolatent.errors import ConfigError


@configured(api.train_config, exclude=("run", "resume"))
def train(
    store: Annotated[Path, typer.Argument(help="Spectrum store made by `astrolatent ingest`.")],
    run: Annotated[
        Path, typer.Option("--run", help="Run directory (created; --resume to continue one).")
    ],
    preset: Annotated[
        str | None,
        typer.Option(
            help="auto (default: from the spectrum length), harps-full, lowres or gaia-xp."
        ),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after this many optimiser steps.")
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop after this many minutes of training (over resumes).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run from its last checkpoint.")
    ] = False,
    known_labels: Annotated[
        str | None,
        typer.Option(
            "--known-labels",
            help="Comma-separated store labels, each tied to its own latent (e.g. teff,logg,feh,rv); the other latents stay free.",
        ),
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option(
            help="Processes per node: a number, or auto (all GPUs; read from torchrun/SLURM)."
        ),
    ] = None,
    num_nodes: Annotated[
        int | None, typer.Option(help="Number of nodes (default: from the launcher).")
    ] = None,
    accelerator: Annotated[str | None, typer.Option(help="auto, cpu, gpu, cuda or mps.")] = None,
    precision: Annotated[
        str | None, typer.Option(help="32 or bf16-mixed (16-mixed on old GPUs).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the training summary as JSON.")
    ] = False,
    *,
    cfg,
) -> None:
    """Train the spectrum VAE on a store (one CPU to many GPUs) and write a run directory.

    Several GPUs on one machine: all visible GPUs are used (--devices N to choose).
    torchrun: torchrun --no-python --nnodes M --nproc_per_node N astrolatent train STORE --run RUN.
    SLURM: srun one task per GPU (--ntasks-per-node = GPUs per node) running this command.
    Devices and nodes are read from torchrun/SLURM; optim.batch_size is per process.
    """
    from astrolatent.runtime.trainer import env_global_rank
    from astrolatent.training.fit import fit

    if resume:  # the run keeps its own configuration; only the budget may change
        launch = (devices, num_nodes, accelerator, precision)
        if known_labels is not None:
            raise ConfigError("--known-labels cannot change on --resume (the run keeps its own)")
        if any(v is not None for v in launch):
            raise ConfigError(
                "--devices/--num-nodes/--accelerator/--precision cannot change on --resume"
            )
    budget = {"preset": preset, "max_steps": max_steps, "max_minutes": max_minutes}
    rank_zero = env_global_rank() == 0  # other ranks of a parallel run stay quiet
    with _training_bar(disable=as_json or not rank_zero) as progress:
        config = None if resume else cfg
        summary = fit(store, run, config, resume=resume, progress=progress, **budget)
    if not rank_zero:
        return
    if as_json:
        echo_json(summary.to_dict())
        return
    _print_training(summary, run)


@contextlib.contextmanager
def _training_bar(*, disable: bool):
    """A progress bar over steps (or minutes, when only a time budget is set); yields the
    callback ``fit`` reports to, or None when disabled."""
    if disable:
        yield None
        return
    bar = progress_bar(counts=False)

    def progress(info: dict) -> None:
        total, done = info["max_steps"] or None, info["step"]
        if total is None and info["max_seconds"]:
            total, done = info["max_seconds"], min(info["seconds"], info["max_seconds"])
        loss = "" if info["loss"] is None else f"loss {info['loss']:.4g}"
        val = "" if info["val_loss"] is None else f"  val {info['val_loss']:.4g}"
        bar.update(
            task,
            total=total,
            completed=done,
            description=f"training  step {info['step']}  {loss}{val}",
        )

    with bar:
        task = bar.add_task("training", total=None)
        yield progress


def _print_training(summary, run: Path) -> None:
    val = "n/a" if summary.final_val_loss is None else f"{summary.final_val_loss:.4g}"
    train_loss = "n/a" if summary.final_train_loss is None else f"{summary.final_train_loss:.4g}"
    resumed = (
        f" (resumed at step {summary.resumed_from_step})"
        if summary.resumed_from_step is not None
        else ""
    )
    console.print(
        f"trained [bold]{summary.preset}[/] for {summary.steps} steps{resumed} "
        f"({summary.samples:,} samples, {summary.epochs:.1f} epochs, {summary.samples_per_second:.0f} samples/s on {summary.device}); "
        f"stopped by {summary.stopped_by}",
        highlight=False,
    )
    active = (
        ""
        if summary.n_active_latents is None
        else f"; {summary.n_active_latents}/{summary.latent_dim} latents active (KL > 0.05 nats)"
    )
    console.print(f"loss: train {train_loss}, validation {val}{active}", highlight=False)
    console.print(f"run directory: {run}", highlight=False)


@configured(api.encode_config, exclude=("run",))
def encode(
    run: TrainingRun,
    store: RunStore = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output Parquet file (default RUN/latents.parquet)."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Spectra per forward pass (default 64).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto (the default), cpu or cuda.")] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Write the latent means and log variances of every spectrum to RUN/latents.parquet."""
    result = api.encode(run, config=cfg)
    if as_json:
        echo_json(result.to_dict())
        return
    console.print(
        f"encoded {result.n_spectra:,} spectra into {result.latent_dim} latents in {result.seconds:.1f} s -> {result.path}",
        highlight=False,
    )


@configured(api.reconstruct_config, exclude=("run",))
def reconstruct(
    run: TrainingRun,
    ids: Annotated[
        str | None,
        typer.Option("--ids", help="Comma-separated spectrum ids (required, here or in --config)."),
    ] = None,
    store: RunStore = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output .npz (default RUN/reconstructions.npz).")
    ] = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Decode given spectra: writes wave, flux, valid, recon, mu, logvar and l1 to an .npz file."""
    result, path = api.reconstruct(run, config=cfg)
    payload = {"path": str(path), "ids": result.ids, "l1": [float(v) for v in result.l1]}
    if as_json:
        echo_json(payload)
        return
    from rich.table import Table

    table = Table("id", "masked L1", title=f"reconstructions -> {path}")
    for i, v in zip(result.ids, result.l1, strict=True):
        table.add_row(i, f"{v:.4g}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("train")(train)
    app.command("encode")(encode)
    app.command("reconstruct")(reconstruct)
