"""Typed training configuration and the presets that fill it in for a store.

A :class:`TrainConfig` says everything that decides what a run computes: the architecture,
the loss and its KL schedule, the optimiser, the data split and sampling, and the budget.
It is saved as ``RUN/config.yaml`` and a run directory is reproducible from it.

Presets (``harps-full``, ``harps-published``, ``lowres``, ``gaia-xp``) give the defaults;
``auto`` picks one from the store's spectrum length (327,680 px -> ``harps-full``, fewer
than 1,024 px -> ``gaia-xp``, else ``lowres``). A user's ``--config`` file is a partial mapping merged
over the preset (``{"loss": {"beta": 0.002}, "optim": {"batch_size": 64}}``), and the
budget options override both. How the defaults were chosen is recorded in
``docs/training-calibration.md``.

What ``beta`` means depends on how the two loss terms are averaged, so the config names the
averaging explicitly (``loss.kl_reduction``): ``mean`` averages the KL over latent dims (as
published, so each dim's nat costs ``beta / latent_dim``), ``sum`` adds them (each nat costs
``beta``, whatever the latent size). The reconstruction term is always a mean over the valid
pixels of each spectrum, so ``beta`` is "loss units per nat" on that per-pixel scale.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

from pydantic import Field, model_validator

from astrolatent.config import Config
from astrolatent.errors import ConfigError
from astrolatent.models.vae import (
    HARPS_LENGTH,
    ArchitectureConfig,
    DopplerConfig,
    KLReduction,
    ReconstructionKind,
)
from astrolatent.runtime import config as runtime_config
from astrolatent.runtime.config import Minutes

#: the format of checkpoints and model files
FORMAT_VERSION = 1
#: the format of a run's ``config.yaml``. 2: the known-label loss options (``label_loss``,
#: ``tied_kl``, ``tied_mean``) with new defaults; 3: ``tied_sd_floor``. An older run's
#: configuration loads with the loss it was trained with
CONFIG_FORMAT_VERSION = 3
#: the gradients' global-norm cap of a run with known labels where its preset has none and
#: the user sets none: about 10x the median norm of the lowres model (8-9 over 1,500 steps;
#: 99th percentile 55-60), so it cuts only spikes; two of five 12,000-step runs without it
#: diverged (at steps 2,450 and 5,250), see docs/training-calibration.md
KNOWN_LABELS_GRAD_CLIP = 100.0
#: the dense head's hidden layer of a run with known labels where its preset's head is
#: linear (``dense_hidden: 0``) and the user sets none: the head then forms non-linear
#: functions of the tied latents itself, which free dims otherwise hold for it (the teff
#: leak), see docs/training-calibration.md, "Where the teff leak sits"
KNOWN_LABELS_DENSE_HIDDEN = 64
#: what the ``known_labels`` section of a format-N configuration meant by the options it
#: did not have
KNOWN_LABELS_BEFORE = {
    1: {"label_loss": "nll", "tied_kl": True, "tied_mean": False, "tied_sd_floor": 0.0},
    2: {"tied_sd_floor": 0.0},
}


class LossConfig(Config):
    """Reconstruction + annealed KL.

    ``reconstruction``: ``l1`` (published), ``mse``, or ``ivar`` (inverse-variance weighted
    squared error, needs the store's errors). ``line_weight`` > 0 weighs each pixel by
    ``1 + line_weight * line depth`` (:func:`~astrolatent.models.vae.line_weights`, weights
    normalised to mean 1 per spectrum). ``kl_reduction``: see the module docstring.
    The KL weight is 0 for the first ``kl_start`` optimiser steps, rises linearly to ``beta``
    at ``kl_end`` and stays there. ``broadening_kl`` multiplies it on the broadening latent
    (``architecture.doppler.broadening_kms``): the price of a nat of line width.
    """

    reconstruction: ReconstructionKind = "l1"
    line_weight: float = Field(default=0.0, ge=0.0)
    kl_reduction: KLReduction = "sum"
    beta: float = Field(default=1e-3, ge=0.0)
    kl_start: int = Field(default=200, ge=0)
    kl_end: int = Field(default=1000, ge=0)
    broadening_kl: float = Field(default=1.0, ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> LossConfig:
        if self.kl_end < self.kl_start:
            raise ValueError(f"kl_end={self.kl_end} must not be before kl_start={self.kl_start}")
        return self


class OptimConfig(runtime_config.OptimConfig):
    """The shared optimiser section (Adam, ``batch_size`` per process), gradient clipping
    and the learning-rate schedule. ``grad_clip`` caps the gradients' global norm (None: no
    clipping; a run with known labels gets ``KNOWN_LABELS_GRAD_CLIP`` unless its preset or
    the user sets it). ``schedule``: the learning rate over the run's ``trainer.max_steps`` (which
    it then needs): ``constant`` (``lr`` throughout), ``cosine`` (from ``lr`` down to 0
    along half a cosine) or ``onecycle`` (torch's OneCycleLR: up from ``lr / 25`` to ``lr``
    over the first 30% of the steps, then down along a cosine).
    """

    schedule: Literal["constant", "cosine", "onecycle"] = "constant"
    grad_clip: float | None = Field(default=None, gt=0.0)


class DataConfig(Config):
    """Split and sampling.

    The validation set is a seeded random set of OBJECTS (no object in both sets) holding
    about ``val_fraction`` of the spectra (0 = no validation). ``balance_objects`` draws
    training spectra with weight 1/(number of spectra of the object). ``shuffle="chunks"``
    shuffles the order of store chunks and the rows within windows of ``shuffle_window``
    chunks, so each batch touches few chunks (cheap reads); ``"full"`` is a plain
    permutation. ``num_workers="auto"``: none on CPU (they would take cores from the
    model), up to 4 per process on GPUs.
    """

    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    split_seed: int | None = None
    balance_objects: bool = False
    shuffle: Literal["chunks", "full"] = "chunks"
    shuffle_window: int = Field(default=8, ge=1)
    num_workers: int | Literal["auto"] = "auto"
    cache_chunks: int = Field(default=12, ge=1)
    val_batch_size: int | None = Field(default=None, ge=1)
    max_val_batches: int | None = Field(default=None, ge=1)


class TrainerConfig(runtime_config.TrainerConfig):
    """Budget, validation, checkpoints, precision and devices.

    The run stops at ``max_steps`` optimiser steps or after ``max_minutes`` of training
    (counted over resumes), whichever comes first, or when the validation loss has not
    improved for ``early_stopping_patience`` validations after the KL warm-up. ``devices``
    and ``num_nodes`` are filled from the launcher (torchrun, SLURM) when left ``auto``.
    The other fields are the shared trainer section's (:mod:`astrolatent.runtime.config`).
    """

    max_steps: int | None = Field(default=None, gt=0)
    max_minutes: Minutes = 10.0
    val_every: int = Field(default=200, ge=1)
    checkpoint_every: int = Field(default=200, ge=1)
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    compile: bool = False
    devices: int | Literal["auto"] = "auto"
    num_nodes: int | Literal["auto"] = "auto"
    log_every: int = Field(default=10, ge=1)
    tensorboard: bool = False

    @model_validator(mode="after")
    def _budget(self) -> TrainerConfig:
        if self.max_steps is None and self.max_minutes is None:
            raise ValueError("give a budget: max_steps, max_minutes, or both")
        return self


class KnownLabelsConfig(Config):
    """Labels the run is told (``astrolatent train --known-labels teff,logg``).

    Latent ``k`` (for ``k < len(names)``) is TIED to ``names[k]``: on the spectra whose
    store row has that label (NaN = unlabelled) the encoder's ``q(z_k|x)`` is fitted to the
    standardised label (``weight`` loss units per nat of the label loss; a ``<name>_err``
    column, when the store has one, adds its variance), and the decoder is given the label
    itself; elsewhere the encoder infers it. The other latents are FREE: ``independence``
    weighs an HSIC penalty on the dependence between their means and the tied latents, and
    each free dim's batch-mean KL below ``free_kl_floor`` nats costs nothing (free bits),
    so free dims do not collapse. Labels are standardised with ``mean``/``std`` (label
    units), measured on the training split when the run starts and saved here, so encode
    and analyze can map the tied latents back: ``label = mean + std * z_k``.

    ``label_loss``: ``fixed_scale`` fits the tied mean by its squared error over the
    label's variance (1, standardised, plus the ``_err`` variance), which a wide ``q``
    cannot soften, and the tied variance by the Gaussian likelihood with the mean held
    (:func:`~astrolatent.models.vae.label_nll`); ``nll`` is the plain Gaussian likelihood
    of the label under ``q(z_k|x)``, met cheaply by widening ``q`` where the encoder cannot
    yet predict the label. ``tied_kl``: whether the tied dims also pay the KL to N(0, 1)
    (they are supervised; the KL keeps their posterior wide). ``tied_mean``: where the
    label is missing the decoder gets the tied latent's mean instead of a sample, so it
    is not given a noisy label that free dims then repeat. ``independence_kind``:
    ``joint`` (one kernel over all free dims against all tied latents) or ``per_dim`` (the
    sum of the HSIC of every free dim with every tied latent, which sees one leaking dim).

    ``tied_sd_floor`` (standardised label units) is added in quadrature to the tied
    posterior's width in the label loss: fitted to labels it has memorised, the posterior
    otherwise shrinks until the loss and its gradient blow up on the next spectrum it fits
    less well (a default run diverged at step 5,250 of 12,000 without it; 0.05, i.e. 5% of
    the label's spread, is below any label error we expect; with ``tied_mean`` the decoder
    is given the tied mean or the label, so the floor changes nothing it sees).

    ``independence_memory``: M > 0 measures the HSIC of each training batch together with
    the free means and tied latents of the last M training spectra (kept without
    gradients; only the batch is moved), so the penalty sees a dependence that one batch of
    16 is too small to show; the gradient each spectrum gets is scaled back to that of a
    batch-only HSIC ((B + M) / B). Validation measures the batch alone. 0: off.

    ``adversary``: A > 0 adds an adversary, one small MLP per free dim (``adversary_hidden``
    units) that learns each tied latent from that dim's draw alone; the encoder pays A x
    the spread (variance over the batch, averaged over dims and labels) of those guesses,
    which is 0 when no free dim tells anything of a label's mean. It learns over the whole
    run, so it sees a dependence that one batch's HSIC is too small to show, and it acts
    on the informative free dim, where the leak sits: the E(B-V) dim also made up for the
    inferred teff's error on unlabelled stars (docs/training-calibration.md, "Why the
    E(B-V) dim holds temperature"). 0: off.

    ``conditional_prior``: the free latents' prior is ``N(W z_tied + b, 1)`` instead of
    ``N(0, 1)``, with ``W, b`` learned (starting at 0) and ``z_tied`` the tied latents given
    to the decoder: free dims may then hold factors whose distribution depends on the
    labels. It contradicts the independence penalty, so set ``independence: 0`` with it.
    The logged KL is then the KL to this prior; ``analyze`` still measures KL rates against
    ``N(0, 1)``.

    Defaults, from step-budgeted runs on the lowres simulation with 20% of stars labelled
    (docs/training-calibration.md, "Known-label weights (issue 16)" and "Known labels
    without leakage (issue 16, second round)"): ``weight`` 1 (3 did not lift log g or
    [Fe/H]); ``label_loss`` ``fixed_scale``, ``tied_kl`` off and ``tied_mean`` on
    (together they put [Fe/H] on its tied latent, 0.71 -> 0.88 on the unlabelled stars of
    seed 0 and 0.47 -> 0.88 on a held-out simulation, and cut the teff leak into the free
    dims from 0.42-1.12 to 0.16-0.39 nats over three seeds); ``independence`` 0.1,
    ``joint`` (1 leaked more; ``per_dim`` at 0.1 lowered the rv leak but also the tied
    log g and [Fe/H] and the free E(B-V); at 1 it emptied the free dims).
    """

    names: list[str] = Field(default_factory=list)
    mean: dict[str, float] = Field(default_factory=dict)
    std: dict[str, float] = Field(default_factory=dict)
    weight: float = Field(default=1.0, ge=0.0)
    label_loss: Literal["nll", "fixed_scale"] = "fixed_scale"
    tied_kl: bool = False
    tied_mean: bool = True
    independence: float = Field(default=0.1, ge=0.0)
    independence_kind: Literal["joint", "per_dim"] = "joint"
    independence_memory: int = Field(default=0, ge=0)
    adversary: float = Field(default=0.0, ge=0.0)
    adversary_hidden: int = Field(default=32, ge=1)
    tied_sd_floor: float = Field(default=0.05, ge=0.0)
    free_kl_floor: float = Field(default=0.05, ge=0.0)
    conditional_prior: bool = False

    @model_validator(mode="after")
    def _distinct(self) -> KnownLabelsConfig:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"known_labels.names {self.names} names a label twice")
        return self


class TrainConfig(Config):
    """Everything a training run needs; saved as ``RUN/config.yaml``."""

    format_version: int = CONFIG_FORMAT_VERSION
    preset: str
    store: str | None = None
    store_fingerprint: str | None = None
    architecture: ArchitectureConfig
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    known_labels: KnownLabelsConfig = Field(default_factory=KnownLabelsConfig)

    @model_validator(mode="before")
    @classmethod
    def _older_formats(cls, data: object) -> object:
        """A saved configuration of an older format keeps the known-label loss it was
        trained with (resuming or encoding such a run must not switch to new defaults)."""
        if isinstance(data, dict):
            before = KNOWN_LABELS_BEFORE.get(data.get("format_version", CONFIG_FORMAT_VERSION))
            known = data.get("known_labels")
            if before and isinstance(known, dict) and known.get("names"):
                data = {**data, "known_labels": {**before, **known}}
        return data

    @model_validator(mode="after")
    def _room_for_free_latents(self) -> TrainConfig:
        k, d = len(self.known_labels.names), self.architecture.latent_dim
        if k and k >= d:
            raise ValueError(
                f"{k} known labels need more than {k} latents (latent_dim={d}): raise "
                "architecture.latent_dim so some latents stay free"
            )
        return self

    @model_validator(mode="after")
    def _broadening_kl_has_a_latent(self) -> TrainConfig:
        if self.loss.broadening_kl != 1.0 and self.architecture.broadening_latent is None:
            raise ValueError(
                "loss.broadening_kl weighs the broadening latent; set "
                "architecture.doppler.broadening_kms too"
            )
        return self

    @model_validator(mode="after")
    def _schedule_length(self) -> TrainConfig:
        if self.optim.schedule != "constant" and self.trainer.max_steps is None:
            raise ValueError(
                f"optim.schedule={self.optim.schedule!r} needs a step budget (trainer.max_steps); "
                "for a budget in minutes only, set optim.schedule: constant"
            )
        return self

    @property
    def nat_cost(self) -> float:
        """Loss units per nat of KL (in one latent dim) at full weight."""
        if self.loss.kl_reduction == "mean":
            return self.loss.beta / self.architecture.latent_dim
        return self.loss.beta


# ---------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------

_ARCH_KEYS = {
    "latent_dim",
    "base_channels",
    "max_channels",
    "double_every",
    "min_stages",
    "max_bottleneck",
    "min_bottleneck",
}
#: Decoder options (issue 16) any preset but ``harps-published`` takes beside its layout.
_DECODER_KEYS = {"doppler", "dense_hidden"}

#: Each preset: a description, how to build its architecture, and its default sections.
#: How the values were chosen (calibration runs, the per-nat cost argument) is recorded in
#: docs/training-calibration.md. ``harps-published`` keeps the published loss for
#: reproducing the 2021 study; ``harps-full`` uses the calibrated weight per nat.
PRESETS: dict[str, dict[str, Any]] = {
    "harps-full": {
        "description": "published HARPS layout (327,680 px, 15 conv layers, 512 x 20, 128 latents) with the calibrated KL weight",
        "architecture": {"latent_dim": 128},
        "loss": {
            "reconstruction": "l1",
            "kl_reduction": "sum",
            "beta": 5e-4,
            "kl_start": 5000,
            "kl_end": 20000,
        },
        "optim": {"lr": 1e-4, "batch_size": 32},
        "data": {"balance_objects": True},
        "trainer": {
            "max_steps": 1_500_000,
            "max_minutes": None,
            "val_every": 5000,
            "checkpoint_every": 1000,
            "log_every": 50,
        },
    },
    "lowres": {
        "description": "spectra of ~1,000-100,000 px (e.g. 0.5 A simulated spectra): depth follows the length, 16 latents, a Doppler-shifted rest-frame decoder with a dense head, line-weighted L1",
        "architecture": {"latent_dim": 16, "doppler": {"scale_kms": 100.0}, "dense_hidden": 0},
        "loss": {
            "reconstruction": "l1",
            "line_weight": 20.0,
            "kl_reduction": "sum",
            "beta": 5e-4,
            "kl_start": 100,
            "kl_end": 500,
        },
        "optim": {"lr": 1e-3, "batch_size": 16},
        "data": {},
        "trainer": {"max_minutes": 10.0, "val_every": 500, "checkpoint_every": 250},
    },
    "gaia-xp": {
        "description": "short smooth spectra (< 1,024 px, e.g. Gaia XP's 343 px): depth follows the length, 16 latents",
        "architecture": {"latent_dim": 16},
        "loss": {
            "reconstruction": "l1",
            "kl_reduction": "sum",
            "beta": 1e-3,
            "kl_start": 500,
            "kl_end": 2500,
        },
        "optim": {"lr": 1e-3, "batch_size": 64, "grad_clip": 1.0},
        "data": {},
        "trainer": {"max_minutes": 10.0, "val_every": 1000, "checkpoint_every": 1000},
    },
}
PRESETS["harps-published"] = {
    **PRESETS["harps-full"],
    "description": "harps-full with the published loss: KL averaged over the 128 dims, beta 0.3 (0.3/128 per nat)",
    "loss": {**PRESETS["harps-full"]["loss"], "kl_reduction": "mean", "beta": 0.3},
}


def available_presets() -> list[str]:
    return ["auto", *sorted(PRESETS)]


def auto_preset(length: int) -> str:
    """The preset ``auto`` picks for spectra of ``length`` pixels."""
    if length == HARPS_LENGTH:
        return "harps-full"
    if length < 1024:
        return "gaia-xp"
    return "lowres"


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _architecture(preset: str, length: int, spec: dict) -> ArchitectureConfig:
    spec = dict(spec)
    decoder = {k: spec.pop(k) for k in _DECODER_KEYS & set(spec)}
    used = sorted(k for k, v in decoder.items() if v is not None)
    if used and preset == "harps-published" and "channels" not in spec:
        raise ConfigError(
            f"preset 'harps-published' keeps the 2021 decoder; {', '.join(used)} "
            "is not available with it (use harps-full)"
        )
    arch = _layout(preset, length, spec)
    if not decoder:
        return arch
    return ArchitectureConfig.from_dict({**arch.to_dict(), **decoder}, source="architecture")


def _layout(preset: str, length: int, spec: dict) -> ArchitectureConfig:
    if "channels" in spec or "kernels" in spec:
        # a full layout (e.g. from a saved config.yaml)
        spec.setdefault("input_length", length)
        arch = ArchitectureConfig.from_dict(spec, source="architecture")
        if arch.input_length != length:
            raise ConfigError(
                f"architecture.input_length={arch.input_length} but the store's spectra have {length} px"
            )
        return arch
    unknown = set(spec) - _ARCH_KEYS - {"input_length"}
    if unknown:
        raise ConfigError(
            f"architecture: unknown option(s) {', '.join(sorted(unknown))}; give a full layout "
            f"(channels, kernels, ...) or some of {', '.join(sorted(_ARCH_KEYS))}"
        )
    if spec.get("input_length", length) != length:
        raise ConfigError(
            f"architecture.input_length={spec['input_length']} but the store's spectra have {length} px"
        )
    if preset in ("harps-full", "harps-published"):
        if length != HARPS_LENGTH:
            raise ConfigError(
                f"preset {preset!r} takes spectra of exactly {HARPS_LENGTH:,} px (the published "
                f"layout, no padding) but the store's spectra have {length:,} px; use preset "
                f"{auto_preset(length)!r} (or 'auto'), whose depth follows the length and which pads"
            )
        extra = set(spec) - {"latent_dim", "input_length"}
        if extra:
            raise ConfigError(
                f"preset {preset!r} has a fixed layout; only latent_dim may change, not {', '.join(sorted(extra))}"
            )
        return ArchitectureConfig.harps_full(latent_dim=int(spec.get("latent_dim", 128)))
    kwargs = {k: v for k, v in spec.items() if k in _ARCH_KEYS}
    try:
        return ArchitectureConfig.for_length(length, **kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"architecture: {exc}") from None


def scale_kl_schedule(loss: dict, max_steps: int | None) -> dict:
    """Shrink a preset's KL warm-up for short runs: it must end by half of ``max_steps``."""
    if max_steps is None:
        return loss
    end = int(loss.get("kl_end", 0))
    if end <= max_steps // 2 or end == 0:
        return loss
    factor = (max_steps // 2) / end
    out = dict(loss)
    out["kl_start"] = math.floor(int(loss.get("kl_start", 0)) * factor)
    out["kl_end"] = max(out["kl_start"], max_steps // 2)
    return out


def resolve_doppler(config: TrainConfig, wave: Any) -> TrainConfig:
    """``config`` with its Doppler decoder's grid read from ``wave (L,)`` (Angstrom) and, in a
    run whose known labels include ``rv``, the velocity tied to the rv latent with the
    labels' standardisation (``v = mean + std * z``); unchanged without ``doppler`` or when
    already resolved (a resumed run). Call after the known labels are standardised."""
    arch = config.architecture
    doppler = arch.doppler
    if doppler is None or doppler.wave_start is not None:
        return config
    update = DopplerConfig.grid_of(wave)
    known = config.known_labels
    if doppler.latent is None and "rv" in known.names:
        update.update(
            latent=known.names.index("rv"),
            offset_kms=known.mean["rv"],
            scale_kms=known.std["rv"],
        )
    doppler = DopplerConfig.from_dict(
        {**doppler.to_dict(), **update}, source="architecture.doppler"
    )
    arch = ArchitectureConfig.from_dict({**arch.to_dict(), "doppler": doppler.to_dict()})
    return config.model_copy(update={"architecture": arch})


def with_known_labels(overrides: dict | None, names: list[str] | None) -> dict | None:
    """``overrides`` with ``known_labels.names`` set to ``names`` (unchanged when None)."""
    if names is None:
        return overrides
    out = dict(overrides or {})
    out["known_labels"] = {**(out.get("known_labels") or {}), "names": list(names)}
    return out


def _check_known_options(known: dict) -> None:
    """Refuse known-label options that would change nothing: no label is known. A section
    that lists ``names`` (even empty, as every saved ``config.yaml`` does) is a whole
    configuration, not a request, and passes; ``mean``/``std`` are measured, not chosen."""
    if "names" in known:
        return
    given = KnownLabelsConfig.from_dict(known, source="known_labels")
    default = KnownLabelsConfig()
    changed = sorted(
        k for k in known if k not in ("mean", "std") and getattr(given, k) != getattr(default, k)
    )
    if changed:
        raise ConfigError(
            f"known_labels.{', known_labels.'.join(changed)} set, but no label is known: pass "
            "--known-labels NAMES (train.known_labels in a pipeline file), or drop the option(s)"
        )


def _known_label_defaults(merged: dict, overrides: dict) -> None:
    """What a run with known labels gets where neither its preset nor the user sets it: the
    gradient cap ``KNOWN_LABELS_GRAD_CLIP`` and, for a linear dense head, the hidden layer
    ``KNOWN_LABELS_DENSE_HIDDEN`` (``merged`` is changed in place)."""
    optim, arch = merged["optim"], merged["architecture"]
    if "grad_clip" not in overrides.get("optim", {}) and optim.get("grad_clip") is None:
        merged["optim"] = {**optim, "grad_clip": KNOWN_LABELS_GRAD_CLIP}
    if "dense_hidden" not in overrides.get("architecture", {}) and arch.get("dense_hidden") == 0:
        merged["architecture"] = {**arch, "dense_hidden": KNOWN_LABELS_DENSE_HIDDEN}


def make_config(
    length: int,
    *,
    preset: str | None = None,
    overrides: dict | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    store: str | None = None,
    store_fingerprint: str | None = None,
) -> TrainConfig:
    """The resolved configuration for spectra of ``length`` pixels.

    Order of precedence: budget arguments > ``overrides`` (a partial mapping, e.g. read from
    ``--config``) > the preset (``auto``/None picks one from the length). The KL warm-up of
    the preset is shrunk to end by half of ``max_steps`` when the run is shorter than
    that, unless the overrides set ``kl_start``/``kl_end`` themselves.
    """
    overrides = dict(overrides or {})
    if max_steps is not None and max_steps <= 0:
        raise ConfigError(f"max_steps={max_steps} must be a positive number of steps")
    if max_minutes is not None and max_minutes <= 0:
        raise ConfigError(f"max_minutes={max_minutes} must be positive")
    from_file = overrides.pop("preset", None)
    name = preset if preset not in (None, "auto") else from_file
    if name in (None, "auto"):
        name = auto_preset(length)
    if name not in PRESETS:
        raise ConfigError(
            f"unknown preset {name!r}; available presets: {', '.join(available_presets())}"
        )
    base = PRESETS[name]
    for key in ("format_version",):
        overrides.pop(key, None)
    unknown = set(overrides) - {
        "architecture",
        "loss",
        "optim",
        "data",
        "trainer",
        "known_labels",
        "store",
        "store_fingerprint",
    }
    if unknown:
        raise ConfigError(
            f"unknown configuration section(s) {', '.join(sorted(unknown))}; expected "
            "architecture, loss, optim, data, trainer, known_labels"
        )
    for section in ("architecture", "loss", "optim", "data", "trainer", "known_labels"):
        if section in overrides and not isinstance(overrides[section], dict):
            raise ConfigError(f"configuration section {section!r} must be a mapping")
    _check_known_options(overrides.get("known_labels") or {})
    merged = _deep_merge(
        {k: base[k] for k in ("architecture", "loss", "optim", "data", "trainer")}, overrides
    )
    if not merged.get("known_labels"):
        merged.pop("known_labels", None)
    elif merged["known_labels"].get("names"):
        _known_label_defaults(merged, overrides)
    trainer = dict(merged["trainer"])
    user_trainer = overrides.get("trainer", {})
    # a budget given as an argument replaces the preset's; a step budget alone also lifts
    # the preset's time budget (not one the user's file sets)
    if max_steps is not None:
        trainer["max_steps"] = max_steps
        if max_minutes is None and "max_minutes" not in user_trainer:
            trainer["max_minutes"] = None
    if max_minutes is not None:
        trainer["max_minutes"] = max_minutes
    merged["trainer"] = trainer
    user_loss = overrides.get("loss", {})
    if "kl_start" not in user_loss and "kl_end" not in user_loss:
        merged["loss"] = scale_kl_schedule(merged["loss"], trainer.get("max_steps"))
    arch = _architecture(name, length, merged.pop("architecture"))
    payload = {
        "preset": name,
        "store": store if store is not None else overrides.get("store"),
        "store_fingerprint": store_fingerprint
        if store_fingerprint is not None
        else overrides.get("store_fingerprint"),
        "architecture": arch.to_dict(),
        **merged,
    }
    return TrainConfig.from_dict(payload, source=f"training configuration (preset {name!r})")


__all__ = [
    "CONFIG_FORMAT_VERSION",
    "FORMAT_VERSION",
    "PRESETS",
    "DataConfig",
    "KnownLabelsConfig",
    "LossConfig",
    "OptimConfig",
    "TrainConfig",
    "TrainerConfig",
    "auto_preset",
    "available_presets",
    "make_config",
    "resolve_doppler",
    "scale_kl_schedule",
    "with_known_labels",
]
