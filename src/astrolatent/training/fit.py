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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from astrolatent.data.store import SpectrumStore
from astrolatent.errors import AstrolatentError, ConfigError, StoreError, TrainingError
from astrolatent.models.vae import SpectrumVAE
from astrolatent.outputs import marks
from astrolatent.outputs.io import write_atomic, write_parquet_atomic
from astrolatent.outputs.layout import (
    ANALYSIS_DIR,
    CAUSAL_DIR,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LATENTS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PIPELINE_FILE,
    REPORT_DIR,
    SPLIT_FILE,
    TRAIN_SUMMARY_FILE,
)
from astrolatent.outputs.summaries import SpectrumTrainSummary
from astrolatent.runtime.checkpoint import save_model
from astrolatent.runtime.run import save_config, write_train_summary
from astrolatent.runtime.trainer import (
    Launch,
    early_stopping,
    env_global_rank,
    launch,
    make_trainer,
    quiet_lightning,
    seeded,
    stop_reason,
    torch_settings,
)
from astrolatent.training.config import (
    FORMAT_VERSION,
    TrainConfig,
    TrainerConfig,
    make_config,
    resolve_doppler,
)
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
    *(MODEL_FILE, CONFIG_FILE, SPLIT_FILE, TRAIN_SUMMARY_FILE, METRICS_FILE, CHECKPOINT_DIR),
    *("tensorboard", LATENTS_FILE, ANALYSIS_DIR, REPORT_DIR, CAUSAL_DIR, PIPELINE_FILE),
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


def _num_workers(setting: int | str, hardware: Launch) -> int:
    """Loader workers per process: ``setting``, or for ``auto`` none on CPU (they would take
    the model's cores) and up to 4 per process on GPUs."""
    if setting != "auto":
        return int(setting)
    if not hardware.gpu:
        return 0
    cpus = os.cpu_count() or 1
    return max(0, min(4, cpus // max(1, hardware.local_processes) - 1))


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
        """Drop the rows a checkpoint at global step ``step`` does not hold (logged by a run
        killed after it). Rows carry Lightning's step, the number of batches before the one
        logged, so the checkpoint holds those of steps < ``step``."""
        if not path.is_file():
            return
        frame = pd.read_csv(path)
        keep = frame[frame["step"] < step]
        write_atomic(path, lambda tmp: keep.to_csv(tmp, index=False))


class RunCallback(L.Callback):
    """Periodic atomic checkpoints, timing, the last validation loss and progress reports.

    Writes the training metrics every ``tc.log_every`` steps and at ``tc.max_steps``, and
    checkpoints every ``tc.checkpoint_every`` steps, always after the rows of the steps it
    holds: after the step's training rows, and at a step that validates, after the
    validation's rows (Lightning would write a step's rows after the callbacks' hooks, and
    does not repeat a validation on resume, so a kill between the two lost them).
    ``progress`` (rank 0) every ``tc.log_every`` steps, at ``tc.max_steps`` and after
    validations.
    """

    def __init__(
        self, run_dir: Path, tc: TrainerConfig, progress: Callable[[dict], None] | None
    ) -> None:
        self.run_dir = run_dir
        self.progress = progress
        self.checkpoint_every = tc.checkpoint_every
        self.progress_every = tc.log_every
        self.val_every = tc.val_every
        self.max_steps = tc.max_steps
        self.save_after_validation = False
        self.max_seconds = tc.max_minutes * 60 if tc.max_minutes else None
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
        self.save_after_validation = False
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
        log = step % self.progress_every == 0 or step == self.max_steps
        if step % self.checkpoint_every == 0 or log:
            self.check_finite(step, pl_module)  # before a save could keep broken weights
        if log:
            metrics = {k: float(v) for k, v in pl_module.step_metrics.items()}
            for logger in trainer.loggers:  # at Lightning's step: the batches before this one
                logger.log_metrics(metrics, step=step - 1)
        if self.save_after_validation:  # the last one's validation did not come
            self.save(trainer)
        if step % self.checkpoint_every == 0:
            if trainer.enable_validation and step % self.val_every == 0:
                self.save_after_validation = True
            else:
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
        if self.save_after_validation and trainer.state.fn == "fit":
            self.save(trainer)

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
def _open_store(store: str | Path) -> SpectrumStore:
    path = Path(store)
    if not path.exists():
        raise StoreError(f"{path}: no such store; create one with `astrolatent ingest`")
    return SpectrumStore(path)


def build_model(config: TrainConfig) -> SpectrumVAE:
    """A freshly initialised model for ``config`` (weights seeded by ``trainer.seed``)."""
    with seeded(config.trainer.seed):
        return SpectrumVAE(config.architecture)


def resolve_config(
    store: SpectrumStore | str | Path,
    config: TrainConfig | dict | None = None,
    *,
    preset: str | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
) -> TrainConfig:
    """The configuration a new run on ``store`` (a store or its path) uses (see
    :func:`make_config`)."""
    if not isinstance(store, SpectrumStore):
        store = _open_store(store)
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


def _check_schedule_length(saved: TrainConfig, cfg: TrainConfig, run_dir: Path) -> None:
    """A learning-rate schedule is laid out over the run's ``max_steps`` when it starts: a
    resume that changes them would run it past its end (cosine climbs again, one-cycle fails)
    or stop it before it comes down."""
    schedule, steps = saved.optim.schedule, saved.trainer.max_steps
    if schedule != "constant" and cfg.trainer.max_steps != steps:
        raise ConfigError(
            f"{run_dir}: --max-steps {cfg.trainer.max_steps} on --resume, but its {schedule} "
            f"learning rate was laid out over {steps} steps; resume with --max-steps {steps} "
            "(or without it), or start a new run"
        )


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


@dataclass
class _Run:
    """What one ``fit`` call trains: the store, the run folder, the resolved configuration,
    the object split, the hardware, and the step it resumes from (None: from scratch)."""

    run_dir: Path
    store: SpectrumStore
    cfg: TrainConfig
    split: pd.DataFrame
    hardware: Launch
    resumed_from: int | None

    @property
    def n_train(self) -> int:
        return int((self.split["split"] == "train").sum())

    @property
    def n_val(self) -> int:
        return int((self.split["split"] == "val").sum())


def _setup(
    store: str | Path,
    run_dir: Path,
    config: TrainConfig | dict | None,
    *,
    resume: bool,
    **budget: Any,
) -> _Run:
    """Resolve the configuration, refuse what cannot run (before anything is written), and
    prepare the run folder (rank 0) and the split (every rank)."""
    store_obj = _open_store(store)
    rank_zero = env_global_rank() == 0
    saved, cfg = _run_config(
        store_obj, run_dir, config, resume=resume, rank_zero=rank_zero, **budget
    )
    resuming = resume and (run_dir / LAST_CKPT).is_file()
    _check_needs(cfg, store_obj)
    tc = cfg.trainer
    hardware = launch(tc.accelerator, tc.devices, tc.num_nodes)
    split, cfg = _prepare_run(run_dir, store_obj, cfg, saved, rank_zero=rank_zero)
    resumed_from = _resume_step(run_dir, rank_zero=rank_zero) if resuming else None
    return _Run(run_dir, store_obj, cfg, split, hardware, resumed_from)


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
    if cfg.architecture.doppler is not None:  # a grid resolved on another store is refused
        cfg.architecture.doppler.check_grid(store_obj.wave, str(store_obj.path))

    if rank_zero:
        claim_run(run_dir)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        if saved is None or cfg != saved:
            save_config(run_dir, cfg)
        if not split_path.is_file():
            write_parquet_atomic(split_path, split)
    return split, cfg


def _datamodule(run: _Run) -> SpectrumDataModule:
    """Batches of the store's rows for this launch (loader workers per local process)."""
    cfg = run.cfg
    known = cfg.known_labels
    return SpectrumDataModule(
        run.store.path,
        run.split,
        cfg.data,
        batch_size=cfg.optim.batch_size,
        seed=cfg.trainer.seed,
        with_errors=cfg.loss.reconstruction == "ivar",
        num_workers=_num_workers(cfg.data.num_workers, run.hardware),
        pin_memory=run.hardware.gpu,
        known=known_label_arrays(run.store, known) if known.names else None,
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
        _check_schedule_length(saved, cfg, run_dir)
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


def _trainer(run: _Run, callbacks: list[L.Callback]) -> L.Trainer:
    """The Lightning trainer of a run: step budget, validation, early stopping after the KL
    warm-up, the run's own logger (and TensorBoard)."""
    cfg, tc = run.cfg, run.cfg.trainer
    if run.n_val:
        callbacks = [
            *callbacks,
            *early_stopping(
                tc, "val/loss", start_step=cfg.loss.kl_end, check_on_train_epoch_end=False
            ),
        ]
    loggers: list[Logger] = [RunLogger(run.run_dir / METRICS_FILE)]
    if tc.tensorboard:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(run.run_dir), name="tensorboard", version=""))
    return make_trainer(
        tc,
        run.hardware,
        run.run_dir,
        callbacks,
        precision=tc.precision,
        max_steps=tc.max_steps or -1,
        max_epochs=-1,
        val_check_interval=tc.val_every,
        check_val_every_n_epoch=None,
        limit_val_batches=1.0 if run.n_val else 0,
        gradient_clip_val=cfg.optim.grad_clip,
        logger=loggers,
        log_every_n_steps=tc.log_every,
        use_distributed_sampler=False,
    )


def _train(
    trainer: L.Trainer, module: VAEModule, dm: SpectrumDataModule, run: _Run, run_cb: RunCallback
) -> None:
    """Fit (from the last checkpoint when resuming), validate the final weights, and save
    the last checkpoint; TrainingError when a loss was not finite."""
    ckpt = str(run.run_dir / LAST_CKPT) if run.resumed_from is not None else None
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
    steps = trainer.global_step
    run_cb.check_finite(steps, module, last=max(1, steps - (run.resumed_from or 0)))
    if run.n_val and run_cb.last_val_step != steps and not trainer.interrupted:
        trainer.validate(module, datamodule=dm, verbose=False)
    run_cb.save(trainer)
    reason, tc = stop_reason(trainer), run.cfg.trainer
    if reason == "max_minutes" and run.cfg.optim.schedule != "constant":
        log.warning(
            "%s: the time cap (%g min) stopped the run at step %d of %d, before its %s "
            "learning rate had come down; --resume with a larger --max-minutes finishes it",
            run.run_dir,
            tc.max_minutes,
            steps,
            tc.max_steps,
            run.cfg.optim.schedule,
        )
    if reason == "non_finite_loss":
        raise TrainingError(
            f"{run.run_dir}: training stopped at step {steps}: the validation loss "
            "is not finite; check the store for extreme values or lower optim.lr"
        )


def _summary(
    trainer: L.Trainer, module: VAEModule, run_cb: RunCallback, run: _Run, *, t0: float
) -> TrainSummary:
    """What a finished ``fit`` call did (steps, samples, losses, stop reason, speed)."""
    cfg = run.cfg
    world = trainer.world_size
    steps = trainer.global_step
    global_batch = cfg.optim.batch_size * world
    this_steps = steps - run_cb.start_step
    seconds = run_cb.elapsed()
    kl = module.val_kl_per_dim
    return TrainSummary(
        run_dir=str(run.run_dir),
        store=str(run.store.path),
        preset=cfg.preset,
        steps=steps,
        samples=steps * global_batch,
        epochs=steps * global_batch / max(1, run.n_train),
        wall_seconds=seconds,
        samples_per_second=this_steps * global_batch / seconds if seconds > 0 else 0.0,
        training_seconds_total=run_cb.training_seconds_before + seconds,
        final_train_loss=module.recent_loss(),
        final_val_loss=run_cb.last_val_loss,
        best_val_loss=run_cb.best_val_loss,
        stopped_by=stop_reason(trainer),
        resumed_from_step=run.resumed_from,
        world_size=world,
        global_batch_size=global_batch,
        n_train=run.n_train,
        n_val=run.n_val,
        n_parameters=sum(p.numel() for p in module.model.parameters()),
        latent_dim=cfg.architecture.latent_dim,
        kl_weight=module.kl_weight_at(steps),
        val_kl_per_dim=None if kl is None else [round(float(v), 5) for v in kl],
        n_active_latents=None if kl is None else int((kl > ACTIVE_KL_NATS).sum()),
        device=f"{run.hardware.accelerator} x {world}",
        precision=cfg.trainer.precision,
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
    budget = {"preset": preset, "max_steps": max_steps, "max_minutes": max_minutes}
    run = _setup(store, Path(run_dir), config, resume=resume, **budget)
    cfg, tc = run.cfg, run.cfg.trainer
    model = build_model(cfg)
    module = VAEModule(model, cfg.loss, cfg.optim, seed=tc.seed, known=cfg.known_labels)
    if tc.compile:
        model.compile()
    run_cb = RunCallback(run.run_dir, tc, progress)
    with quiet_lightning(), torch_settings():
        trainer = _trainer(run, [run_cb, *callbacks])
        _train(trainer, module, _datamodule(run), run, run_cb)
    summary = _summary(trainer, module, run_cb, run, t0=t0)
    if trainer.is_global_zero:
        save_model(
            run.run_dir / MODEL_FILE, model, cfg, format_version=FORMAT_VERSION, step=summary.steps
        )
        seeds = {"seed": tc.seed, "split_seed": cfg.data.split_seed}
        write_train_summary(run.run_dir, SpectrumTrainSummary, summary.to_dict(), seeds=seeds)
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


__all__ = ["TrainSummary", "build_model", "claim_run", "fit", "resolve_config"]
