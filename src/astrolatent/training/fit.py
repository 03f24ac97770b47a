"""``fit(store, run_dir, config)``: train the spectrum VAE on a store into a run directory.

Run directory::

    RUN/config.yaml              the resolved TrainConfig (store path and fingerprint included)
    RUN/split.parquet            row, id, object, split (train/val): the seeded object split
    RUN/checkpoints/last.ckpt    Lightning checkpoint for exact resume (written atomically)
    RUN/model.pt                 {"format_version", "config", "state_dict", "step"} for inference
    RUN/metrics.csv              long format: step, metric, value (train/*, val/*)
    RUN/tensorboard/             optional (trainer.tensorboard, needs tensorboard installed)
    RUN/train_summary.json       steps, samples, wall_seconds, samples_per_second, final losses...

Resume: ``fit(..., resume=True)`` continues from ``last.ckpt`` with the saved configuration
(only the budget may change). The data stream, the sampling noise and the optimiser state
all continue where the checkpoint left them, so a killed and resumed run reaches the same
weights as an uninterrupted one (bit for bit on CPU with the same world size).

Several processes (data parallel): the same command runs under any launcher Lightning knows.

* one machine, N GPUs: ``astrolatent train STORE --run RUN`` uses every visible GPU
  (``--devices N`` to choose); Lightning starts the other processes itself;
* torchrun: ``torchrun --no-python --nnodes=M --nproc_per_node=N [--rdzv-endpoint=HOST:PORT]
  astrolatent train STORE --run RUN`` (devices and nodes are read from the torchrun
  environment; with a Python entry point, ``torchrun ... script.py`` calling :func:`fit`);
* SLURM: ``srun`` one task per GPU (``#SBATCH --ntasks-per-node=N --gpus-per-node=N
  --nodes=M``) running ``astrolatent train STORE --run RUN``; devices and nodes are read
  from SLURM's variables. The store and the run directory must be on a shared file system.

Each process takes a disjoint slice of every global batch (``batch_size`` is per process);
rank 0 writes the run directory.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, Timer
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from astrolatent.data.store import SpectrumStore
from astrolatent.errors import AstrolatentError, ConfigError, StoreError, TrainingError
from astrolatent.models.vae import SpectrumVAE
from astrolatent.outputs import marks
from astrolatent.outputs.io import (
    write_atomic,
    write_json_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from astrolatent.outputs.layout import (
    CONFIG_FILE,
    LATENTS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SPLIT_FILE,
)
from astrolatent.outputs.layout import TRAIN_SUMMARY_FILE as SUMMARY_FILE
from astrolatent.outputs.summaries import TRAIN_SUMMARY_FORMAT_VERSION, provenance
from astrolatent.runtime import save_checkpoint
from astrolatent.training.config import FORMAT_VERSION, TrainConfig, make_config, resolve_doppler
from astrolatent.training.datamodule import (
    SpectrumDataModule,
    known_label_arrays,
    known_label_stats,
    split_by_object,
)
from astrolatent.training.module import VAEModule

log = logging.getLogger(__name__)

#: what a spectrum run holds (written by training and the commands that read the run)
RUN_OWNS = (
    *(MODEL_FILE, CONFIG_FILE, SPLIT_FILE, SUMMARY_FILE, METRICS_FILE, "checkpoints"),
    *("tensorboard", LATENTS_FILE, "analysis", "report", "causal", "pipeline.yaml"),
)


def claim_run(run_dir: str | Path, *, fresh: bool = False) -> Path:
    """Mark ``run_dir`` as a spectrum run (created if needed; ``fresh``: an earlier run's
    files in it removed). A run written before runs were marked is recognised by its
    ``config.yaml``, which must load as a TrainConfig; any other non-empty folder raises
    OutputFolderError."""
    return marks.claim(run_dir, "run", RUN_OWNS, legacy=_is_run, what="--run", fresh=fresh)


def _is_run(folder: Path) -> bool:
    try:
        TrainConfig.load(folder / CONFIG_FILE)
    except (AstrolatentError, OSError):
        return False
    return True


LAST_CKPT = Path("checkpoints") / "last.ckpt"
ACTIVE_KL_NATS = 0.05


@dataclass
class TrainSummary:
    """What a training run did (saved as ``RUN/train_summary.json``).

    ``steps``/``samples`` count the whole run (over resumes; samples over all processes);
    ``wall_seconds`` and ``samples_per_second`` cover this invocation's training only;
    ``training_seconds_total`` adds earlier invocations. Losses: ``final_train_loss`` is the
    mean optimised loss of the last (up to) 50 steps; ``final_val_loss`` the last validation
    loss (recon + beta x KL at the final weight), None without a validation set.
    """

    run_dir: str
    store: str
    preset: str
    steps: int
    samples: int
    epochs: float
    wall_seconds: float
    samples_per_second: float
    training_seconds_total: float
    final_train_loss: float | None
    final_val_loss: float | None
    best_val_loss: float | None
    stopped_by: str
    resumed_from_step: int | None
    world_size: int
    global_batch_size: int
    n_train: int
    n_val: int
    n_parameters: int
    latent_dim: int
    kl_weight: float
    val_kl_per_dim: list[float] | None
    n_active_latents: int | None
    device: str
    precision: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# launch environment
# ---------------------------------------------------------------------------------------
def env_global_rank() -> int:
    """This process's global rank as the launcher set it (0 when not launched in parallel)."""
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    node = int(os.environ.get("NODE_RANK", "0") or 0)
    return local + node  # only its being 0 matters here


def _check_hardware(accelerator: str, devices: int | str) -> None:
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


def _launch(trainer_config) -> dict[str, Any]:
    """accelerator, devices, num_nodes and strategy for the Trainer, from config and launcher."""
    tc = trainer_config
    devices, nodes = tc.devices, tc.num_nodes
    env = os.environ
    if "LOCAL_WORLD_SIZE" in env and "WORLD_SIZE" in env and "RANK" in env:  # torchrun
        local, world = int(env["LOCAL_WORLD_SIZE"]), int(env["WORLD_SIZE"])
        devices = local if devices == "auto" else devices
        nodes = max(1, world // local) if nodes == "auto" else nodes
    elif int(env.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_NTASKS_PER_NODE" in env:
        per_node = int(env["SLURM_NTASKS_PER_NODE"].split("(")[0])
        devices = per_node if devices == "auto" else devices
        nodes = int(env.get("SLURM_NNODES", "1")) if nodes == "auto" else nodes
    nodes = 1 if nodes == "auto" else int(nodes)
    accelerator = tc.accelerator
    gpu = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    if accelerator == "auto" and not gpu and not torch.backends.mps.is_available():
        accelerator = "cpu"
    if devices == "auto" and accelerator == "cpu":
        devices = 1
    _check_hardware(accelerator, tc.devices)
    multi = (
        nodes > 1
        or (isinstance(devices, int) and devices > 1)
        or (devices == "auto" and gpu and torch.cuda.device_count() > 1)
    )
    return {
        "accelerator": accelerator,
        "devices": devices,
        "num_nodes": nodes,
        "strategy": "ddp" if multi else "auto",
        "gpu": gpu,
    }


def _num_workers(setting: int | str, gpu: bool, local_processes: int) -> int:
    if setting != "auto":
        return int(setting)
    if not gpu:
        return 0
    cpus = os.cpu_count() or 1
    return max(0, min(4, cpus // max(1, local_processes) - 1))


# ---------------------------------------------------------------------------------------
# logger and callbacks
# ---------------------------------------------------------------------------------------
class RunLogger(Logger):
    """Appends metrics to ``RUN/metrics.csv`` as ``step,metric,value`` rows (rank 0 only).

    Rows are appended as they come, so a killed run keeps its log; on resume the rows past
    the checkpoint's step are dropped first (they are recomputed).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    @property
    def name(self) -> str:
        return "astrolatent"

    @property
    def version(self) -> int:
        return 0

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """The configuration is saved as config.yaml; nothing to do here."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        rows = [(k, float(v)) for k, v in metrics.items() if k != "epoch"]
        if not rows:
            return
        new = not self.path.is_file()
        with self.path.open("a") as fh:
            if new:
                fh.write("step,metric,value\n")
            for key, value in rows:
                fh.write(f"{int(step or 0)},{key},{value!r}\n")

    @staticmethod
    def truncate(path: Path, step: int) -> None:
        """Drop the rows logged after ``step`` (by a run killed after its last checkpoint)."""
        if not path.is_file():
            return
        frame = pd.read_csv(path)
        keep = frame[
            (frame["step"] < step)
            | ((frame["step"] == step) & frame["metric"].str.startswith("train/"))
        ]
        write_atomic(path, lambda tmp: keep.to_csv(tmp, index=False))


class WarmupEarlyStopping(EarlyStopping):
    """Early stopping on the validation loss that only starts counting after the KL warm-up."""

    def __init__(self, *, start_step: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_step = start_step

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step < self.start_step:
            return
        super().on_validation_end(trainer, pl_module)


class RunCallback(L.Callback):
    """Periodic atomic checkpoints, timing, the last validation loss and progress reports."""

    def __init__(
        self,
        run_dir: Path,
        *,
        checkpoint_every: int,
        progress: Callable[[dict], None] | None,
        progress_every: int,
        max_steps: int | None,
        max_seconds: float | None,
    ) -> None:
        self.run_dir = run_dir
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.progress_every = progress_every
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.training_seconds_before = 0.0
        self.best_val_loss: float | None = None
        self.last_val_loss: float | None = None
        self.last_val_step: int | None = None
        self.start_step = 0
        self.t_start: float | None = None
        self.t_end: float | None = None

    # state travels in the checkpoint (plain types only)
    def state_dict(self) -> dict[str, Any]:
        return {
            "training_seconds": self.training_seconds_before + self.elapsed(),
            "best_val_loss": self.best_val_loss,
            "last_val_loss": self.last_val_loss,
            "last_val_step": self.last_val_step,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.training_seconds_before = float(state_dict.get("training_seconds", 0.0))
        self.best_val_loss = state_dict.get("best_val_loss")
        self.last_val_loss = state_dict.get("last_val_loss")
        self.last_val_step = state_dict.get("last_val_step")

    def elapsed(self) -> float:
        if self.t_start is None:
            return 0.0
        return (self.t_end or time.perf_counter()) - self.t_start

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start_step = trainer.global_step
        self.t_start = time.perf_counter()
        self.t_end = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.t_end = time.perf_counter()

    def save(self, trainer: L.Trainer) -> None:
        path = self.run_dir / LAST_CKPT
        tmp = path.with_name(path.name + ".tmp")
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            tmp.replace(path)
        trainer.strategy.barrier("astrolatent-checkpoint")

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step
        if step % self.checkpoint_every == 0 or step % self.progress_every == 0:
            self.check_finite(step, pl_module)  # before a save could keep broken weights
        if step % self.checkpoint_every == 0:
            self.save(trainer)
        if (
            self.progress is not None
            and trainer.is_global_zero
            and (step % self.progress_every == 0 or step == self.max_steps)
        ):
            self.report(trainer, pl_module)

    def check_finite(
        self, step: int, pl_module: L.LightningModule, last: int | None = None
    ) -> None:
        """Raise TrainingError if one of the ``last`` training losses (default: those since
        the last check) was not finite."""
        loss = pl_module.recent_loss(last or self.progress_every)
        if loss is not None and not math.isfinite(loss):
            raise TrainingError(
                f"{self.run_dir}: training stopped at step {step}: the loss is {loss} "
                f"(non-finite); {LAST_CKPT} keeps the last finite state. Check the store for "
                "extreme values (astrolatent info) or lower optim.lr"
            )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val/loss")
        if value is None:
            return
        self.last_val_loss = float(value)
        self.last_val_step = trainer.global_step
        if math.isfinite(self.last_val_loss) and (
            self.best_val_loss is None or self.last_val_loss < self.best_val_loss
        ):
            self.best_val_loss = self.last_val_loss
        if self.progress is not None and trainer.is_global_zero and trainer.state.fn == "fit":
            self.report(trainer, pl_module)

    def report(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.progress(
            {
                "step": trainer.global_step,
                "max_steps": self.max_steps,
                "seconds": self.training_seconds_before + self.elapsed(),
                "max_seconds": self.max_seconds,
                "loss": pl_module.recent_loss(10),
                "val_loss": self.last_val_loss,
                "kl_weight": pl_module.kl_weight_at(trainer.global_step),
            }
        )


# ---------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------
def _save_config(config: TrainConfig, path: Path) -> None:
    import yaml

    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def _open_store(store: str | Path) -> SpectrumStore:
    path = Path(store)
    if not path.exists():
        raise StoreError(f"{path}: no such store; create one with `astrolatent ingest`")
    return SpectrumStore(path)


def build_model(config: TrainConfig) -> SpectrumVAE:
    """A freshly initialised model for ``config`` (weights seeded by ``trainer.seed``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.trainer.seed)
        return SpectrumVAE(config.architecture)


def resolve_config(
    store: SpectrumStore,
    config: TrainConfig | dict | None = None,
    *,
    preset: str | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
) -> TrainConfig:
    """The configuration a new run on ``store`` uses (see :func:`make_config`)."""
    fingerprint = store.attrs.get("fingerprint")
    if isinstance(config, TrainConfig):
        overrides = config.to_dict()
        if preset not in (None, "auto", config.preset):
            raise ConfigError(
                f"preset {preset!r} conflicts with the configuration's preset {config.preset!r}"
            )
        preset = config.preset
    else:
        overrides = dict(config or {})
    overrides["store"] = str(store.path.resolve())
    overrides["store_fingerprint"] = fingerprint
    return make_config(
        store.length,
        preset=preset,
        overrides=overrides,
        max_steps=max_steps,
        max_minutes=max_minutes,
    )


def _with_budget(
    config: TrainConfig, max_steps: int | None, max_minutes: float | None
) -> TrainConfig:
    if max_steps is None and max_minutes is None:
        return config
    if max_steps is not None and max_steps <= 0:
        raise ConfigError(f"max_steps={max_steps} must be a positive number of steps")
    if max_minutes is not None and max_minutes <= 0:
        raise ConfigError(f"max_minutes={max_minutes} must be positive")
    update = {}
    if max_steps is not None:
        update["max_steps"] = max_steps
    if max_minutes is not None:
        update["max_minutes"] = max_minutes
    trainer = config.trainer.model_copy(update=update)
    return config.model_copy(update={"trainer": trainer})


def _check_needs(cfg: TrainConfig, store_obj: SpectrumStore) -> None:
    """Refuse options the machine or the store cannot serve (before anything is written)."""
    if cfg.trainer.tensorboard and not (
        importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
    ):
        raise ConfigError(
            "trainer.tensorboard=true needs the tensorboard package: pip install tensorboard"
        )
    if cfg.loss.reconstruction == "ivar" and store_obj.err is None:
        raise StoreError(
            f"{store_obj.path}: loss.reconstruction='ivar' needs errors, and this store holds none"
        )


def _prepare_run(
    run_dir: Path,
    store_obj: SpectrumStore,
    cfg: TrainConfig,
    saved: TrainConfig | None,
    *,
    rank_zero: bool,
) -> tuple[pd.DataFrame, TrainConfig]:
    """The run's object split (saved with the run, recomputed identically by every rank) and
    the configuration with the known labels' standardisation; rank 0 marks the run folder
    and writes both."""
    # the object split: saved with the run, recomputed identically by every rank
    split_path = run_dir / SPLIT_FILE
    if saved is not None and split_path.is_file():
        split = pd.read_parquet(split_path)
    else:
        split = split_by_object(
            store_obj.metadata,
            val_fraction=cfg.data.val_fraction,
            random_state=cfg.data.split_seed
            if cfg.data.split_seed is not None
            else cfg.trainer.seed,
        )
    cfg = resolve_doppler(_standardise_known(cfg, store_obj, split), store_obj.wave)

    if rank_zero:
        claim_run(run_dir)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        if saved is None or cfg != saved:
            _save_config(cfg, run_dir / CONFIG_FILE)
        if not split_path.is_file():
            write_parquet_atomic(split_path, split)
    return split, cfg


def _datamodule(
    store_obj: SpectrumStore, split: pd.DataFrame, cfg: TrainConfig, launch: dict
) -> SpectrumDataModule:
    """Batches of the store's rows for this launch (loader workers per local process)."""
    local_processes = (
        launch["devices"]
        if isinstance(launch["devices"], int)
        else max(1, torch.cuda.device_count())
    )
    return SpectrumDataModule(
        store_obj.path,
        split,
        cfg.data,
        batch_size=cfg.optim.batch_size,
        seed=cfg.trainer.seed,
        with_errors=cfg.loss.reconstruction == "ivar",
        num_workers=_num_workers(cfg.data.num_workers, launch["gpu"], local_processes),
        pin_memory=launch["gpu"],
        known=known_label_arrays(store_obj, cfg.known_labels) if cfg.known_labels.names else None,
    )


def _resume_step(run_dir: Path, *, rank_zero: bool) -> int:
    """The step of the run's last checkpoint; rank 0 drops the metrics logged after it."""
    ckpt = torch.load(run_dir / LAST_CKPT, map_location="cpu", weights_only=True, mmap=True)
    step = int(ckpt["global_step"])
    if rank_zero:
        RunLogger.truncate(run_dir / METRICS_FILE, step)
    return step


def _run_config(
    store_obj: SpectrumStore,
    run_dir: Path,
    config: TrainConfig | dict | None,
    *,
    preset: str | None,
    max_steps: int | None,
    max_minutes: float | None,
    resume: bool,
    rank_zero: bool,
) -> tuple[TrainConfig | None, TrainConfig]:
    """The saved configuration of the run in ``run_dir`` (None for a new run) and the one to
    train with: the saved one with the new budget when resuming, else resolved for ``store``."""
    config_path = run_dir / CONFIG_FILE
    existing = config_path.is_file()
    saved = None
    if existing and not resume and rank_zero:
        raise ConfigError(
            f"{run_dir} already holds a training run; pass --resume to continue it or choose a new --run directory"
        )
    if existing:
        saved = TrainConfig.load(config_path)
        if resume and (
            preset not in (None, "auto", saved.preset) or (config is not None and rank_zero)
        ):
            log.warning(
                "resuming %s: its saved configuration is used; only the budget may change", run_dir
            )
        cfg = _with_budget(saved, max_steps, max_minutes)
        fingerprint = store_obj.attrs.get("fingerprint")
        if saved.store_fingerprint and fingerprint != saved.store_fingerprint:
            raise StoreError(
                f"{store_obj.path}: the store has changed since this run started (fingerprint "
                f"{str(fingerprint)[:12]} != {saved.store_fingerprint[:12]}); start a new run"
            )
        if saved.architecture.input_length != store_obj.length:
            raise StoreError(
                f"{store_obj.path}: spectra of {store_obj.length} px, but the run was trained on {saved.architecture.input_length} px"
            )
    else:
        if resume and rank_zero:
            raise ConfigError(
                f"--resume: {run_dir} holds no run to resume (no {CONFIG_FILE}); "
                "leave out --resume to start a new run there"
            )
        cfg = resolve_config(
            store_obj, config, preset=preset, max_steps=max_steps, max_minutes=max_minutes
        )
    return saved, cfg


def _trainer(
    cfg: TrainConfig, launch: dict, run_dir: Path, callbacks: list[L.Callback], *, n_val: int
) -> L.Trainer:
    """The Lightning trainer of a run: budget, validation, early stopping after the KL
    warm-up, the run's own logger (and TensorBoard), no Lightning checkpoints or bars."""
    tc = cfg.trainer
    cbs = list(callbacks)
    if tc.early_stopping_patience is not None and n_val:
        cbs.append(
            WarmupEarlyStopping(
                start_step=cfg.loss.kl_end,
                monitor="val/loss",
                mode="min",
                patience=tc.early_stopping_patience,
                check_on_train_epoch_end=False,
            )
        )
    loggers: list[Logger] = [RunLogger(run_dir / METRICS_FILE)]
    if tc.tensorboard:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(run_dir), name="tensorboard", version=""))

    return L.Trainer(
        accelerator=launch["accelerator"],
        devices=launch["devices"],
        num_nodes=launch["num_nodes"],
        strategy=launch["strategy"],
        precision=tc.precision,
        max_steps=tc.max_steps or -1,
        max_epochs=-1,
        max_time=timedelta(minutes=tc.max_minutes) if tc.max_minutes else None,
        val_check_interval=tc.val_every,
        check_val_every_n_epoch=None,
        limit_val_batches=1.0 if n_val else 0,
        num_sanity_val_steps=0,
        gradient_clip_val=cfg.optim.grad_clip,
        logger=loggers,
        log_every_n_steps=tc.log_every,
        callbacks=cbs,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        deterministic=tc.deterministic,
        benchmark=None if tc.deterministic else launch["gpu"],
        default_root_dir=str(run_dir),
    )


def _summary(
    trainer: L.Trainer,
    module: VAEModule,
    run_cb: RunCallback,
    cfg: TrainConfig,
    launch: dict,
    run_dir: Path,
    store_obj: SpectrumStore,
    *,
    n_train: int,
    n_val: int,
    resumed_from: int | None,
    stopped_by: str,
    t0: float,
) -> TrainSummary:
    """What a finished ``fit`` call did (steps, samples, losses, stop reason, speed)."""
    tc = cfg.trainer
    world = trainer.world_size
    steps = trainer.global_step
    global_batch = cfg.optim.batch_size * world
    this_steps = steps - run_cb.start_step
    seconds = run_cb.elapsed()
    kl = module.val_kl_per_dim
    return TrainSummary(
        run_dir=str(run_dir),
        store=str(store_obj.path),
        preset=cfg.preset,
        steps=steps,
        samples=steps * global_batch,
        epochs=steps * global_batch / max(1, n_train),
        wall_seconds=seconds,
        samples_per_second=this_steps * global_batch / seconds if seconds > 0 else 0.0,
        training_seconds_total=run_cb.training_seconds_before + seconds,
        final_train_loss=module.recent_loss(),
        final_val_loss=run_cb.last_val_loss,
        best_val_loss=run_cb.best_val_loss,
        stopped_by=stopped_by,
        resumed_from_step=resumed_from,
        world_size=world,
        global_batch_size=global_batch,
        n_train=n_train,
        n_val=n_val,
        n_parameters=sum(p.numel() for p in module.model.parameters()),
        latent_dim=cfg.architecture.latent_dim,
        kl_weight=module.kl_weight_at(steps),
        val_kl_per_dim=None if kl is None else [round(float(v), 5) for v in kl],
        n_active_latents=None if kl is None else int((kl > ACTIVE_KL_NATS).sum()),
        device=f"{launch['accelerator']} x {world}",
        precision=tc.precision,
        extra={
            "invocation_seconds": time.perf_counter() - t0,
            "active_kl_threshold_nats": ACTIVE_KL_NATS,
        },
    )


def fit(
    store: str | Path,
    run_dir: str | Path,
    config: TrainConfig | dict | None = None,
    *,
    preset: str | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    resume: bool = False,
    progress: Callable[[dict], None] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> TrainSummary:
    """Train on ``store`` into ``run_dir`` and return the summary.

    Args:
        store: a finished spectrum store.
        run_dir: the run directory (created; must not hold another run unless ``resume``).
        config: a full :class:`TrainConfig`, a partial mapping merged over the preset, or None.
        preset: ``auto`` (default), ``harps-full``, ``lowres`` or ``gaia-xp``.
        max_steps, max_minutes: the budget (optimiser steps; minutes of training, counted
            over resumes); given ones replace the configuration's.
        resume: continue the run in ``run_dir`` from its last checkpoint.
        progress: called on rank 0 with a dict (step, max_steps, seconds, max_seconds, loss,
            val_loss, kl_weight) every ``trainer.log_every`` steps and after validations.
        callbacks: extra Lightning callbacks.

    Raises:
        StoreError: the store is missing, unfinished, or changed since the run started.
        ConfigError: impossible options, ``run_dir`` holds a run and ``resume`` is false, or
            ``resume`` is true and ``run_dir`` holds no run.
    """
    t0 = time.perf_counter()
    store_obj = _open_store(store)
    run_dir = Path(run_dir)
    rank_zero = env_global_rank() == 0
    ckpt_path = run_dir / LAST_CKPT
    saved, cfg = _run_config(
        store_obj,
        run_dir,
        config,
        preset=preset,
        max_steps=max_steps,
        max_minutes=max_minutes,
        resume=resume,
        rank_zero=rank_zero,
    )
    resuming = resume and ckpt_path.is_file()
    _check_needs(cfg, store_obj)

    launch = _launch(cfg.trainer)  # refuses impossible hardware before anything is written
    split, cfg = _prepare_run(run_dir, store_obj, cfg, saved, rank_zero=rank_zero)
    n_train = int((split["split"] == "train").sum())
    n_val = int((split["split"] == "val").sum())

    tc = cfg.trainer
    model = build_model(cfg)
    module = VAEModule(model, cfg.loss, cfg.optim, seed=tc.seed, known=cfg.known_labels)
    if tc.compile:
        model.compile()
    dm = _datamodule(store_obj, split, cfg, launch)

    resumed_from = _resume_step(run_dir, rank_zero=rank_zero) if resuming else None
    run_cb = RunCallback(
        run_dir,
        checkpoint_every=tc.checkpoint_every,
        progress=progress,
        progress_every=tc.log_every,
        max_steps=tc.max_steps,
        max_seconds=tc.max_minutes * 60 if tc.max_minutes else None,
    )
    trainer = _trainer(cfg, launch, run_dir, [run_cb, *callbacks], n_val=n_val)
    with warnings.catch_warnings():
        # the worker count is chosen on purpose (none on CPU, where workers take the
        # model's cores); Lightning's generic hint about it does not apply
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if resuming else None)
        run_cb.check_finite(
            trainer.global_step, module, last=max(1, trainer.global_step - (resumed_from or 0))
        )
        if n_val and run_cb.last_val_step != trainer.global_step and not trainer.interrupted:
            trainer.validate(module, datamodule=dm, verbose=False)
    run_cb.save(trainer)

    stopped_by = _stopped_by(trainer, tc)
    if stopped_by == "non_finite_loss":
        raise TrainingError(
            f"{run_dir}: training stopped at step {trainer.global_step}: the validation loss "
            "is not finite; check the store for extreme values or lower optim.lr"
        )

    summary = _summary(
        trainer,
        module,
        run_cb,
        cfg,
        launch,
        run_dir,
        store_obj,
        n_train=n_train,
        n_val=n_val,
        resumed_from=resumed_from,
        stopped_by=stopped_by,
        t0=t0,
    )
    steps = summary.steps
    if trainer.is_global_zero:
        save_model(run_dir, model, cfg, step=steps)
        header = provenance(
            format_version=TRAIN_SUMMARY_FORMAT_VERSION,
            seeds={"seed": cfg.trainer.seed, "split_seed": cfg.data.split_seed},
        )
        write_json_atomic(run_dir / SUMMARY_FILE, {**header, **summary.to_dict()})
    return summary


def _standardise_known(
    config: TrainConfig, store: SpectrumStore, split: pd.DataFrame
) -> TrainConfig:
    """``config`` with the known labels' mean and std measured on the training split (a new
    run), or as saved (a resumed one)."""
    known = config.known_labels
    if not known.names or set(known.names) <= set(known.mean):
        return config
    train_rows = split.loc[split["split"] == "train", "row"].to_numpy()
    mean, std = known_label_stats(store, train_rows, known.names)
    return config.model_copy(
        update={"known_labels": known.model_copy(update={"mean": mean, "std": std})}
    )


def _stopped_by(trainer: L.Trainer, tc) -> str:
    """Why training ended: max_steps, max_minutes, early_stopping, non_finite_loss, interrupted."""
    if trainer.interrupted:
        return "interrupted"
    for cb in trainer.callbacks:
        if isinstance(cb, EarlyStopping) and cb.stopping_reason != EarlyStoppingReason.NOT_STOPPED:
            return (
                "non_finite_loss"
                if cb.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC
                else "early_stopping"
            )
    if tc.max_steps is not None and trainer.global_step >= tc.max_steps:
        return "max_steps"
    for cb in trainer.callbacks:
        if isinstance(cb, Timer) and (cb.time_remaining() or 0) <= 0:
            return "max_minutes"
    return "stopped"


def save_model(
    run_dir: str | Path, model: SpectrumVAE, config: TrainConfig, *, step: int | None = None
) -> Path:
    """Write ``RUN/model.pt``: format version, configuration and the model's state_dict."""
    path = Path(run_dir) / MODEL_FILE
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(
        path, format_version=FORMAT_VERSION, config=config.to_dict(), state_dict=state, step=step
    )


__all__ = ["TrainSummary", "build_model", "env_global_rank", "fit", "resolve_config", "save_model"]
