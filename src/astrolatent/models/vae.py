"""A 1D convolutional variational auto-encoder for spectra, and its loss terms.

The family follows Sedaghat et al. 2021 (METHOD.md A2): an encoder of stride-2 ``Conv1d``
stages with LeakyReLU(0.1) and one stride-1 stage, two linear heads giving the mean and
the log variance of ``q(z|x)``, and a mirrored decoder (a linear layer, a stride-1
``ConvTranspose1d``, stride-2 ``ConvTranspose1d`` stages that each double the length, and a
final ``Conv1d(1, 1, 3)`` with no activation).

:meth:`ArchitectureConfig.harps_full` is exactly the published layout (327,680 px, 15 conv
layers, a 512 x 20 bottleneck, 128 latents, 7,046,997 parameters).
:meth:`ArchitectureConfig.for_length` derives a smaller member whose depth follows the
input length; inputs whose length is not a multiple of ``2**n_down`` are zero-padded inside
the model (the padding is cut off the output, so callers always see their own length).

Nothing here does I/O; shapes are given as ``(N, L)`` with ``N`` spectra of ``L`` pixels.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.nn import functional as F

from astrolatent.config import Config
from astrolatent.errors import ConfigError

#: Encoder channels and kernels of the published HARPS model (METHOD.md A2).
HARPS_CHANNELS = (16, 16, 16, 32, 32, 32, 64, 64, 64, 128, 128, 128, 256, 512, 512)
HARPS_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3)
HARPS_LENGTH = 327_680

ReconstructionKind = Literal["l1", "mse", "ivar"]
KLReduction = Literal["mean", "sum"]


class ArchitectureConfig(Config):
    """Layout of a :class:`SpectrumVAE`.

    ``channels``/``kernels`` list the encoder's conv layers: all but the last have stride 2,
    the last has stride 1. The decoder mirrors them. ``input_length`` is the number of pixels
    the caller gives (the store's spectrum length); when ``pad`` is true the model zero-pads
    it to the next multiple of ``2**n_down`` (split evenly, the odd pixel on the right).
    """

    input_length: int = Field(gt=0)
    latent_dim: int = Field(default=16, ge=1)
    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    negative_slope: float = Field(default=0.1, ge=0.0)
    pad: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ArchitectureConfig:
        if len(self.channels) < 2:
            raise ValueError("channels needs at least two layers (one stride-2, one stride-1)")
        if len(self.kernels) != len(self.channels):
            raise ValueError(
                f"kernels has {len(self.kernels)} entries but channels has {len(self.channels)}"
            )
        if any(c < 1 for c in self.channels) or any(k < 1 or k % 2 == 0 for k in self.kernels):
            raise ValueError("channels must be positive and kernels positive odd numbers")
        factor = 2**self.n_down
        if not self.pad and self.input_length % factor:
            raise ValueError(
                f"input_length={self.input_length} is not a multiple of 2**{self.n_down}={factor}; "
                "this layout cannot take it without padding (set pad=true or use a preset that pads)"
            )
        if self.padded_length // factor < 1:
            raise ValueError(
                f"input_length={self.input_length} is too short for {self.n_down} stride-2 stages"
            )
        return self

    @property
    def n_down(self) -> int:
        """Number of stride-2 encoder stages (= stride-2 decoder stages)."""
        return len(self.channels) - 1

    @property
    def padded_length(self) -> int:
        factor = 2**self.n_down
        return -(-self.input_length // factor) * factor

    @property
    def padding(self) -> tuple[int, int]:
        """Zero pixels added (left, right) inside the model."""
        extra = self.padded_length - self.input_length
        return extra // 2, extra - extra // 2

    @property
    def bottleneck_length(self) -> int:
        return self.padded_length // 2**self.n_down

    @property
    def bottleneck_size(self) -> int:
        """Flattened size of the last encoder feature map (channels x length)."""
        return self.channels[-1] * self.bottleneck_length

    @classmethod
    def harps_full(cls, latent_dim: int = 128) -> ArchitectureConfig:
        """The published HARPS layout: 327,680 px in, 512 x 20 bottleneck, no padding."""
        return cls(
            input_length=HARPS_LENGTH,
            latent_dim=latent_dim,
            channels=HARPS_CHANNELS,
            kernels=HARPS_KERNELS,
            pad=False,
        )

    @classmethod
    def for_length(
        cls,
        length: int,
        *,
        latent_dim: int = 16,
        base_channels: int = 16,
        max_channels: int = 512,
        double_every: int = 3,
        min_stages: int = 3,
        max_bottleneck: int = 1024,
        min_bottleneck: int = 8,
    ) -> ArchitectureConfig:
        """A layout whose depth follows ``length``.

        The number of stride-2 stages is the smallest (at least ``min_stages``) that leaves
        at most ``max_bottleneck`` pixels at the bottleneck, but never so many that fewer
        than ``min_bottleneck`` remain. Channels start at ``base_channels`` and double every
        ``double_every`` stages up to ``max_channels``; kernels are 7, 5, 5, then 3; the
        stride-1 stage keeps the last width. With the defaults the stages are the published
        ones (16 x 3, 32 x 3, 64 x 3, 128 x 3, ...), cut where the length calls for it:
        6,251 px -> 3 stages and a 16 x 782 bottleneck; 343 px -> 3 stages, 16 x 43.

        Why not the published 14 stages' ratio (a 20-pixel bottleneck): a transposed-conv
        decoder places spectral lines only through its bottleneck map, and with few
        bottleneck pixels it needs a long training to learn line positions; see
        docs/training-calibration.md.
        """
        if length < 2 * min_bottleneck:
            raise ConfigError(
                f"spectra of {length} px are too short for a convolutional VAE "
                f"(need at least {2 * min_bottleneck} px for one stride-2 stage)"
            )
        n_down = max(1, min_stages)
        while -(-length // 2**n_down) > max_bottleneck:
            n_down += 1
        while n_down > 1 and -(-length // 2**n_down) < min_bottleneck:
            n_down -= 1
        widths = [
            min(max_channels, base_channels * 2 ** (i // double_every)) for i in range(n_down)
        ]
        widths.append(widths[-1])
        kernels = [7, 5, 5] + [3] * max(0, n_down + 1 - 3)
        return cls(
            input_length=length,
            latent_dim=latent_dim,
            channels=tuple(widths),
            kernels=tuple(kernels[: n_down + 1]),
        )


class SpectrumVAE(nn.Module):
    """The convolutional VAE. Input ``(N, L)`` flux, output a dict of tensors.

    ``forward(x)`` returns ``recon (N, L)``, ``mu (N, D)``, ``logvar (N, D)`` and ``z (N, D)``
    (``z = mu`` when ``sample`` is false). Noise comes from ``generator`` when given, so a
    training step can be made independent of the global random state. ``known (N, K)``,
    ``K <= D``, gives the first K latents where it is finite (NaN: not known): the decoder
    is given those values instead of the encoder's (the tied latents of a run with known
    labels).
    """

    def __init__(self, config: ArchitectureConfig) -> None:
        super().__init__()
        self.config = config
        slope = config.negative_slope
        chans, kers = config.channels, config.kernels
        enc: list[nn.Module] = []
        c_in = 1
        for i, (c_out, k) in enumerate(zip(chans, kers, strict=True)):
            stride = 2 if i < config.n_down else 1
            enc += [
                nn.Conv1d(c_in, c_out, k, stride=stride, padding=(k - 1) // 2),
                nn.LeakyReLU(slope),
            ]
            c_in = c_out
        self.encoder = nn.Sequential(*enc)
        flat = config.bottleneck_size
        self.fc_mu = nn.Linear(flat, config.latent_dim)
        self.fc_logvar = nn.Linear(flat, config.latent_dim)
        self.fc_decode = nn.Linear(config.latent_dim, flat)
        # decoder: stride-1 transpose conv at the bottleneck width, then the stride-2 stages
        # mapping each encoder stage's output width back to its input width
        enc_in = (1, *chans[: config.n_down])
        enc_out = chans[: config.n_down]
        dec: list[nn.Module] = [
            nn.ConvTranspose1d(chans[-1], chans[-1], 3, stride=1, padding=1),
            nn.LeakyReLU(slope),
        ]
        c_in = chans[-1]
        for i in reversed(range(config.n_down)):
            c_out = enc_in[i]
            dec += [nn.ConvTranspose1d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(slope)]
            c_in = c_out
        assert enc_out[0] == chans[0]
        dec.append(nn.Conv1d(1, 1, 3, padding=1))
        self.decoder = nn.Sequential(*dec)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) normal initialisation for LeakyReLU, zero biases.

        PyTorch's default initialisation shrinks the signal by about sqrt(3) per layer: through
        the 30-odd layers of this family the decoded spectra of different inputs then differ by
        ~1e-10 at the start, and training sits on a plateau at the mean spectrum until the
        weights have grown. Here each conv layer keeps the variance of its input: the fan-in
        is ``c_in * k`` for a convolution and ``c_in * k / stride`` for a transposed one
        (each output pixel sees ``k / stride`` taps). The linear heads keep PyTorch's default.
        """
        gain = nn.init.calculate_gain("leaky_relu", self.config.negative_slope)
        for module in [*self.encoder, *self.decoder]:
            if isinstance(module, nn.ConvTranspose1d):
                fan_in = module.in_channels * module.kernel_size[0] / module.stride[0]
            elif isinstance(module, nn.Conv1d):
                fan_in = module.in_channels * module.kernel_size[0]
            else:
                continue
            nn.init.normal_(module.weight, 0.0, gain / math.sqrt(fan_in))
            nn.init.zeros_(module.bias)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def input_length(self) -> int:
        return self.config.input_length

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log variance of ``q(z|x)``, each ``(N, D)``, for flux ``x`` of shape ``(N, L)``."""
        if x.ndim != 2 or x.shape[1] != self.config.input_length:
            raise ValueError(
                f"expected flux of shape (N, {self.config.input_length}), got {tuple(x.shape)}"
            )
        left, right = self.config.padding
        if left or right:
            x = F.pad(x, (left, right))
        h = self.encoder(x.unsqueeze(1)).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded flux ``(N, L)`` for latent vectors ``z`` of shape ``(N, D)``."""
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"expected latents of shape (N, {self.config.latent_dim}), got {tuple(z.shape)}"
            )
        h = self.fc_decode(z).view(
            z.shape[0], self.config.channels[-1], self.config.bottleneck_length
        )
        out = self.decoder(h).squeeze(1)
        left, right = self.config.padding
        if left or right:
            out = out[:, left : out.shape[1] - right]
        return out

    def forward(
        self,
        x: torch.Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        known: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        if sample:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + eps * torch.exp(0.5 * logvar)
        else:
            z = mu
        if known is not None and known.shape[1]:
            k = known.shape[1]
            given = known.to(z.dtype)
            tied = torch.where(torch.isfinite(given), given, z[:, :k])
            z = torch.cat([tied, z[:, k:]], dim=1)
        return {"recon": self.decode(z), "mu": mu, "logvar": logvar, "z": z}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def reconstruction_loss(
    recon: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    *,
    kind: ReconstructionKind = "l1",
    ivar: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-spectrum reconstruction error ``(N,)``: a mean over the valid pixels only.

    ``l1``: mean |x - x'|; ``mse``: mean (x - x')^2; ``ivar``: inverse-variance weighted
    mean of (x - x')^2 with weights ``ivar`` normalised to mean 1 over each spectrum's valid
    pixels (so it stays on the MSE scale). Masked pixels get weight 0 and are zeroed before
    the difference, so their values (even NaN) cannot change the loss.
    """
    weight = valid.to(recon.dtype)
    if kind == "ivar":
        if ivar is None:
            raise ValueError("kind='ivar' needs the inverse variances")
        weight = weight * torch.where(valid, ivar, torch.zeros_like(ivar)).to(recon.dtype)
    diff = torch.where(valid, recon - torch.where(valid, target, torch.zeros_like(target)), 0.0)
    per_pixel = diff.abs() if kind == "l1" else diff.square()
    total = weight.sum(dim=1)
    return (per_pixel * weight).sum(dim=1) / total.clamp_min(torch.finfo(total.dtype).tiny)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_d|x) || N(0, 1)) in nats for every spectrum and latent dim, shape ``(N, D)``."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def reduce_kl(kl: torch.Tensor, reduction: KLReduction) -> torch.Tensor:
    """Per-spectrum KL term ``(N,)`` from ``(N, D)``: ``mean`` over dims (as published) or ``sum``."""
    return kl.mean(dim=1) if reduction == "mean" else kl.sum(dim=1)


def floored_kl(kl: torch.Tensor, first_free: int, floor: float) -> torch.Tensor:
    """``kl (N, D)`` with free bits on dims ``first_free:``: a dim whose batch-mean KL is
    below ``floor`` nats counts ``floor`` for every spectrum (a constant: no pull to 0)."""
    if floor <= 0 or first_free >= kl.shape[1]:
        return kl
    free = kl[:, first_free:]
    below = free.mean(dim=0, keepdim=True) < floor
    free = torch.where(below, torch.full_like(free, floor), free)
    return torch.cat([kl[:, :first_free], free], dim=1)


def label_nll(
    mu: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor, target_var: torch.Tensor
) -> torch.Tensor:
    """Gaussian negative log likelihood (nats, without the constant) of the labels
    ``target (N, K)`` under ``q(z|x)`` of the first K latents, whose variance is widened by
    the labels' own ``target_var (N, K)``; NaN targets count 0. Per spectrum, ``(N,)``."""
    k = target.shape[1]
    known = torch.isfinite(target)
    var = logvar[:, :k].exp() + target_var
    diff = torch.where(known, mu[:, :k] - torch.where(known, target, 0.0), 0.0)
    nll = 0.5 * (diff.square() / var + var.log())
    return torch.where(known, nll, 0.0).sum(dim=1)


def _rbf_gram(x: torch.Tensor) -> torch.Tensor:
    d2 = torch.cdist(x, x).square()
    scale = d2.detach()[d2.detach() > 0].median() if bool((d2 > 0).any()) else d2.new_tensor(1.0)
    return torch.exp(-d2 / scale.clamp_min(1e-12))


def hsic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The biased HSIC estimate (Gretton et al. 2005) between ``x (N, a)`` and ``y (N, b)``
    with Gaussian kernels of median-distance bandwidth: 0 for independent samples (up to
    an O(1/N) bias), larger the more they depend."""
    n = x.shape[0]
    if n < 4:
        return x.new_zeros(())
    kx, ky = _rbf_gram(x), _rbf_gram(y)
    kx = kx - kx.mean(dim=0, keepdim=True)
    kx = kx - kx.mean(dim=1, keepdim=True)
    return (kx * ky).sum() / (n - 1) ** 2


def kl_weight(step: int, *, start: int, end: int, beta: float) -> float:
    """The annealed KL weight: 0 until ``start``, linear to ``beta`` at ``end``, then ``beta``."""
    if step < start:
        return 0.0
    if step >= end:
        return float(beta)
    return float(beta) * (step - start) / (end - start)


__all__ = [
    "HARPS_CHANNELS",
    "HARPS_KERNELS",
    "HARPS_LENGTH",
    "ArchitectureConfig",
    "KLReduction",
    "ReconstructionKind",
    "SpectrumVAE",
    "count_parameters",
    "floored_kl",
    "hsic",
    "kl_per_dim",
    "kl_weight",
    "label_nll",
    "reconstruction_loss",
    "reduce_kl",
]
