"""The Lightning trainer of a run, for the spectrum VAE and the galaxy estimators alike.

:func:`launch` turns a trainer section's accelerator and devices (and the launcher's
environment: torchrun, SLURM) into the Trainer's hardware arguments, refusing hardware
this machine lacks with a one-line error; :func:`make_trainer` builds the Trainer with
astrolatent's fixed choices (no Lightning checkpoints, bars or summaries; the time budget;
early stopping after a warm-up); :func:`stop_reason` says why a fit ended.
:func:`torch_settings` and :func:`quiet_lightning` scope torch's process-wide settings and
Lightning's chatter to a fit; :func:`seeded` seeds a new model's weights.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, Timer
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from astrolatent.errors import ConfigError
from astrolatent.runtime.config import TrainerConfig

#: Lightning's loggers of device banners and tips.
_LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch",
    "lightning.fabric",
    "lightning",
)


# ---------------------------------------------------------------------------------------
# hardware and launchers
# ---------------------------------------------------------------------------------------
def env_global_rank() -> int:
    """This process's global rank as the launcher set it (0 when not launched in parallel)."""
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    node = int(os.environ.get("NODE_RANK", "0") or 0)
    return local + node  # only its being 0 matters here


def check_hardware(accelerator: str, devices: int | str) -> None:
    """Raise ConfigError for an accelerator this machine lacks, or more devices than it has
    (on CPU each device is a process: more than the cores would only hang)."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"--accelerator {accelerator}: no CUDA GPU is available here; use cpu or auto"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--accelerator mps: no Apple GPU is available here; use cpu or auto")
    if not isinstance(devices, int):
        return
    have = (os.cpu_count() or 1) if accelerator == "cpu" else torch.cuda.device_count()
    if accelerator in ("cpu", "gpu", "cuda") and devices > have:
        kind = "CPU cores" if accelerator == "cpu" else "GPUs"
        raise ConfigError(f"--devices {devices}: this machine has {have} {kind}")


@dataclass(frozen=True)
class Launch:
    """The Trainer's hardware arguments, and whether a CUDA GPU is used (``gpu``)."""

    accelerator: str
    devices: int | str
    num_nodes: int
    strategy: str
    gpu: bool

    @property
    def local_processes(self) -> int:
        """Processes of this run on this machine."""
        if isinstance(self.devices, int):
            return self.devices
        return max(1, torch.cuda.device_count())


def _from_launcher(devices: int | str, nodes: int | str) -> tuple[int | str, int | str]:
    """``devices`` and ``nodes`` with ``auto`` filled from torchrun's or SLURM's variables."""
    env = os.environ
    if "LOCAL_WORLD_SIZE" in env and "WORLD_SIZE" in env and "RANK" in env:  # torchrun
        local, world = int(env["LOCAL_WORLD_SIZE"]), int(env["WORLD_SIZE"])
        devices = local if devices == "auto" else devices
        nodes = max(1, world // local) if nodes == "auto" else nodes
    elif int(env.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_NTASKS_PER_NODE" in env:
        per_node = int(env["SLURM_NTASKS_PER_NODE"].split("(")[0])
        devices = per_node if devices == "auto" else devices
        nodes = int(env.get("SLURM_NNODES", "1")) if nodes == "auto" else nodes
    return devices, nodes


def launch(accelerator: str, devices: int | str = 1, num_nodes: int | str = 1) -> Launch:
    """The hardware of a run: ``auto`` devices and nodes from the launcher, ``auto``
    accelerator without a GPU becomes ``cpu`` (one process); DDP when there is more than
    one process. Raises ConfigError for hardware this machine lacks."""
    wanted = devices
    devices, nodes = _from_launcher(devices, num_nodes)
    nodes = 1 if nodes == "auto" else int(nodes)
    gpu = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    if accelerator == "auto" and not gpu and not torch.backends.mps.is_available():
        accelerator = "cpu"
    if devices == "auto" and accelerator == "cpu":
        devices = 1
    check_hardware(accelerator, wanted)
    multi = (
        nodes > 1
        or (isinstance(devices, int) and devices > 1)
        or (devices == "auto" and gpu and torch.cuda.device_count() > 1)
    )
    return Launch(accelerator, devices, nodes, "ddp" if multi else "auto", gpu)


# ---------------------------------------------------------------------------------------
# the trainer
# ---------------------------------------------------------------------------------------
class WarmupEarlyStopping(EarlyStopping):
    """Early stopping (lower is better) that only starts counting at ``start_step``."""

    def __init__(self, *, start_step: int = 0, **kwargs: Any) -> None:
        super().__init__(mode="min", **kwargs)
        self.start_step = start_step

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step < self.start_step:
            return
        super().on_validation_end(trainer, pl_module)


def early_stopping(
    tc: TrainerConfig, monitor: str, *, start_step: int = 0, **kwargs: Any
) -> list[L.Callback]:
    """``[WarmupEarlyStopping on monitor]``, or ``[]`` when the trainer section sets no
    patience."""
    if tc.early_stopping_patience is None:
        return []
    return [
        WarmupEarlyStopping(
            start_step=start_step, monitor=monitor, patience=tc.early_stopping_patience, **kwargs
        )
    ]


def make_trainer(
    tc: TrainerConfig,
    hardware: Launch,
    run_dir: Path,
    callbacks: Sequence[L.Callback],
    **options: Any,
) -> L.Trainer:
    """A Lightning Trainer on ``hardware`` with the budget ``tc.max_minutes``, ``callbacks``
    and ``options`` (max_steps/max_epochs, logger, validation, ...). Lightning's own
    checkpoints, progress bars and model summaries are off (astrolatent writes its own) and
    there is no sanity validation; cuDNN benchmarking is on for GPU runs that need not be
    deterministic."""
    return L.Trainer(
        accelerator=hardware.accelerator,
        devices=hardware.devices,
        num_nodes=hardware.num_nodes,
        strategy=hardware.strategy,
        max_time=timedelta(minutes=tc.max_minutes) if tc.max_minutes else None,
        callbacks=list(callbacks),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=tc.deterministic,
        benchmark=None if tc.deterministic else hardware.gpu,
        default_root_dir=str(run_dir),
        **options,
    )


def stop_reason(trainer: L.Trainer) -> str:
    """Why a fit ended: ``interrupted``, ``early_stopping``, ``non_finite_loss`` (the
    monitored loss was not finite), ``max_steps``, ``max_epochs``, ``max_minutes`` or
    ``stopped``."""
    if trainer.interrupted:
        return "interrupted"
    for cb in trainer.callbacks:
        if isinstance(cb, EarlyStopping) and cb.stopping_reason != EarlyStoppingReason.NOT_STOPPED:
            if cb.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC:
                return "non_finite_loss"
            return "early_stopping"
    if 0 < trainer.max_steps <= trainer.global_step:
        return "max_steps"
    if trainer.max_epochs is not None and 0 < trainer.max_epochs <= trainer.current_epoch:
        return "max_epochs"
    for cb in trainer.callbacks:
        if isinstance(cb, Timer) and (cb.time_remaining() or 0) <= 0:
            return "max_minutes"
    return "stopped"


# ---------------------------------------------------------------------------------------
# process-wide settings
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def torch_settings(num_threads: int | None = None) -> Iterator[None]:
    """Use ``num_threads`` CPU threads (None: leave as is) inside the block, and restore the
    thread count and the deterministic-algorithms flag (which Lightning sets) afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """torch's CPU generator seeded with ``seed`` inside the block (a new model's weights)
    and restored afterwards, so building a model draws nothing from the caller's stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's device banners, tips and hints that do not apply to these runs."""
    loggers = [logging.getLogger(n) for n in _LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # loader workers are chosen on purpose (none on CPU, where they take the cores)
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            # accelerator="cpu" on a GPU machine is the configuration's choice
            warnings.filterwarnings("ignore", message=r".*GPU available but not used.*")
            # Lightning calls torch's deprecated pytree LeafSpec (torch >= 2.10)
            warnings.filterwarnings(
                "ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning
            )
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


__all__ = [
    "Launch",
    "WarmupEarlyStopping",
    "check_hardware",
    "early_stopping",
    "env_global_rank",
    "launch",
    "make_trainer",
    "quiet_lightning",
    "seeded",
    "stop_reason",
    "torch_settings",
]
