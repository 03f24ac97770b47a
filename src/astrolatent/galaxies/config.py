"""Typed configurations of the galaxy area: simulation and estimator training.

Every configuration is a frozen, strict :class:`~astrolatent.config.Config`; a training run
saves its resolved :class:`EstimatorConfig` as ``RUN/config.yaml`` and inside ``model.pt``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from astrolatent.config import Config
from astrolatent.runtime import config as runtime_config
from astrolatent.runtime.config import Accelerator, Patience

#: Checkpoint layout version written into every ``model*.pt``.
FORMAT_VERSION = 1
#: Optical bands the simulator can render as images, in wavelength order.
SIM_BANDS = ("u", "g", "r", "i", "z")
#: Values that mean "no measurement" in survey catalogues.
DEFAULT_SENTINELS = (-9999.0, -999.0, -99.0, 99.0, 999.0, 9999.0)


class GalaxySimulationConfig(Config):
    """Options of :func:`astrolatent.galaxies.simulate.simulate_catalog` and friends.

    ``n`` galaxies pass the selection ``mag_r < r_limit`` (no selection when None); images
    are ``(len(bands), image_size, image_size)`` cutouts at ``pixel_scale`` arcsec/pixel.
    """

    n: int = Field(1000, ge=1, le=10_000_000)
    image_size: int = Field(64, ge=8, le=512)
    bands: str = "ugriz"
    pixel_scale: float = Field(0.396, gt=0, description="arcsec per pixel")
    r_limit: float | None = Field(17.77, description="selection on observed r (AB mag)")
    z_max: float = Field(0.25, gt=0.01, le=2.0)
    mass_mean: float = Field(10.0, ge=7.0, le=12.0, description="log10 M*/Msun")
    mass_sd: float = Field(0.6, gt=0.0, le=2.0, description="dex")
    inclination_bias: float = Field(
        0.1, ge=-1.0, le=1.0, description="dex added to the target per unit (cos i - 0.5)"
    )
    random_state: int = 0

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, value: str) -> str:
        unknown = [b for b in value if b not in SIM_BANDS]
        if not value or unknown or len(set(value)) != len(value):
            raise ValueError(
                f"bands={value!r} must be distinct letters from {''.join(SIM_BANDS)!r}"
            )
        return "".join(b for b in SIM_BANDS if b in value)


class EncoderConfig(Config):
    """The encoder: an MLP on tabular inputs, or a CNN on images (tabular inputs joining
    after the convolutions). ``latent_dim`` None resolves to 8 (MLP) or 16 (CNN)."""

    latent_dim: int | None = Field(None, ge=1, le=1024)
    depth: int = Field(4, ge=1, le=64, description="hidden layers of the MLP")
    width: int = Field(128, ge=4, le=4096)
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64])
    inception: bool = False
    negative_slope: float = Field(0.01, ge=0.0, lt=1.0)

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[int]) -> list[int]:
        if not value or any(c < 1 for c in value):
            raise ValueError(f"channels={value} must be a non-empty list of positive counts")
        return value


class PDFConfig(Config):
    """The PDF head: a softmax over ``n_bins`` equal bins of the target in
    ``[target_min, target_max]`` (target units).

    ``label_sigma_bins`` > 0 trains on one-hot labels smoothed by a Gaussian of that many
    bins (0: plain one-hot, as in Zhang et al. 2025). The default of 3 bins (0.0375 dex for
    the default mass bins) is a regulariser: on 1,050 simulated galaxies one-hot labels
    overfit to a held-out CE of 4.75 nats where 4-bin smoothing reached 3.64. Held-out CE
    and ``val/ce`` are always measured on the exact bin of the truth."""

    target_min: float = 6.0
    target_max: float = 12.5
    n_bins: int = Field(520, ge=2, le=100_000)
    label_sigma_bins: float = Field(3.0, ge=0.0)
    head_width: int = Field(64, ge=1, le=4096)
    prior_pseudocount: float = Field(
        0.5, gt=0.0, description="added to every bin of the training label histogram"
    )

    @model_validator(mode="after")
    def _range(self) -> PDFConfig:
        if not self.target_max > self.target_min:
            raise ValueError(
                f"target_max={self.target_max} must be above target_min={self.target_min}"
            )
        return self


class ContrastiveConfig(Config):
    """Supervised-contrastive training: loss = CE + w_rec * MSE(reconstruction) +
    w_con * InfoNCE(positive pairs, other objects as negatives) + w_cons * symmetric KL
    between the PDFs of each pair. Pairs: (x, its reconstruction) and, for images,
    (x, a random flip/90-degree rotation of x)."""

    enabled: bool = False
    w_rec: float = Field(1.0, ge=0.0)
    w_con: float = Field(0.1, ge=0.0)
    w_cons: float = Field(0.1, ge=0.0)
    temperature: float = Field(0.1, gt=0.0)


class DataConfig(Config):
    """Which table columns feed the estimator and how objects are split.

    ``inputs`` are group names (see :mod:`astrolatent.galaxies.catalog`) or column names;
    ``groups`` adds or overrides group definitions (name -> columns or fnmatch patterns).
    ``cv_folds`` >= 2 trains one model per fold so that every object gets an out-of-sample
    prediction; otherwise one seeded train/val/test split (``val_fraction``,
    ``test_fraction``). The validation objects (with cross-fitting ``val_fraction`` of each
    training part) drive early stopping, the learning-rate schedule and the choice of the
    best epoch.
    """

    table: str
    target: str
    inputs: list[str] = Field(default_factory=list)
    images: str | None = None
    groups: dict[str, list[str]] = Field(default_factory=dict)
    id_column: str = "id"
    sentinels: list[float] = Field(default_factory=lambda: list(DEFAULT_SENTINELS))
    cv_folds: int = Field(0, ge=0, le=100)
    val_fraction: float = Field(0.15, gt=0.0, lt=0.9)
    test_fraction: float = Field(0.15, ge=0.0, lt=0.9)
    augment: bool = Field(True, description="random flips/90-degree rotations of images")

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if not self.inputs and self.images is None:
            raise ValueError("give inputs (column groups) and/or images")
        if self.cv_folds == 1:
            raise ValueError("cv_folds=1 is not cross-fitting; use 0 (one split) or >= 2")
        if self.cv_folds == 0 and self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g} "
                "must stay below 0.9"
            )
        return self


class OptimConfig(runtime_config.OptimConfig):
    """The shared optimiser section (Adam) with a plateau schedule: the learning rate is
    multiplied by ``lr_decay`` after ``lr_patience`` epochs without a better validation
    loss. Batches hold at least 2 objects (batch normalisation, contrastive pairs)."""

    batch_size: Annotated[int, Field(ge=2)] = 64
    lr_decay: float = Field(0.2, gt=0.0, le=1.0)
    lr_patience: int = Field(3, ge=1)


class TrainerConfig(runtime_config.TrainerConfig):
    """The shared trainer section with an epoch budget and CPU threads. ``max_epochs``
    and ``max_minutes`` bound each model's training; ``early_stopping_patience`` counts
    epochs; ``num_threads`` sets torch's CPU threads during the fit (restored after it;
    None keeps torch's default). On a busy machine 1 thread is often several times faster."""

    max_epochs: int = Field(30, ge=1)
    early_stopping_patience: Patience = 6
    accelerator: Accelerator = "cpu"
    deterministic: bool = True
    num_threads: int | None = Field(None, ge=1, le=1024)


class EstimatorConfig(Config):
    """Everything a galaxy-estimator run needs; saved as ``RUN/config.yaml``."""

    data: DataConfig
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    pdf: PDFConfig = Field(default_factory=PDFConfig)
    contrastive: ContrastiveConfig = Field(default_factory=ContrastiveConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)


__all__ = [
    "DEFAULT_SENTINELS",
    "FORMAT_VERSION",
    "SIM_BANDS",
    "ContrastiveConfig",
    "DataConfig",
    "EncoderConfig",
    "EstimatorConfig",
    "GalaxySimulationConfig",
    "OptimConfig",
    "PDFConfig",
    "TrainerConfig",
]
