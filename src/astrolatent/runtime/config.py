"""The configuration sections every training has: the optimiser and the trainer.

The spectrum VAE (:mod:`astrolatent.training.config`) and the galaxy estimators
(:mod:`astrolatent.galaxies.config`) subclass these with their own defaults and add what
only they have (the spectrum trainer's step budget and devices, the galaxy optimiser's
plateau schedule, ...). A field's type and bounds are written once, here; a domain that
changes a default writes ``name: Type = value`` with the type below, so the bounds cannot
drift apart. Saved ``config.yaml`` files keep their keys.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from astrolatent.config import Config

#: Devices a training can run on (Lightning's accelerator names).
Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps"]
#: A training-time budget in minutes (None: no time budget).
Minutes = Annotated[float | None, Field(gt=0.0)]
#: Validations (spectra) or epochs (galaxies) without a better validation loss before the
#: run stops (None: no early stopping).
Patience = Annotated[int | None, Field(ge=1)]
#: Samples per optimiser step (per process).
BatchSize = Annotated[int, Field(ge=1)]


class OptimConfig(Config):
    """Adam: learning rate ``lr``, ``weight_decay`` (Adam's L2 term), ``batch_size``
    samples per optimiser step and process."""

    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    batch_size: BatchSize = 32


class TrainerConfig(Config):
    """Budget, early stopping, seed and devices.

    ``max_minutes`` bounds the training time; ``early_stopping_patience`` stops a run whose
    validation loss has not improved that many times in a row; ``seed`` seeds the weights,
    the batches and the sampling noise; ``deterministic`` asks torch for deterministic
    algorithms (slower on GPUs).
    """

    max_minutes: Minutes = None
    early_stopping_patience: Patience = None
    seed: int = 0
    accelerator: Accelerator = "auto"
    deterministic: bool = False


__all__ = ["Accelerator", "BatchSize", "Minutes", "OptimConfig", "Patience", "TrainerConfig"]
