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

Two decoder options (issue 16; both off by default, and off in every checkpoint saved
before they existed): ``doppler`` decodes a rest-frame spectrum and shifts it by a velocity
latent with linear interpolation on the store's wavelength grid (:class:`DopplerConfig`;
optionally it first broadens it by a Gaussian whose width is another latent),
and ``dense_hidden`` adds a dense map from the latents to the pixels to the convolutional
decoder's output (line positions are fixed in wavelength; transposed convolutions share
them badly).

Nothing here does I/O; shapes are given as ``(N, L)`` with ``N`` spectra of ``L`` pixels.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
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

#: Speed of light, km/s.
C_KMS = 299_792.458
#: The dense head is refused above this many parameters (a linear map from 128 latents to
#: the 327,680 HARPS pixels takes 42.3 M, six times the published model).
MAX_DENSE_PARAMETERS = 50_000_000

ReconstructionKind = Literal["l1", "mse", "ivar"]
KLReduction = Literal["mean", "sum"]


class DopplerConfig(Config):
    """Rest-frame decoding and a Doppler shift by one latent (``architecture.doppler``).

    The decoder is given the latents with latent ``latent`` set to 0 and produces a
    rest-frame spectrum; latent ``latent`` is the velocity ``v = offset_kms + scale_kms *
    z`` (km/s: with the N(0, 1) prior, ``scale_kms`` is the prior's standard deviation),
    and the output pixel at wavelength ``lam`` is the rest-frame spectrum at
    ``lam / (1 + v/c)``, linearly interpolated (the edge pixels repeat beyond the grid).
    ``latent`` None is the last latent (a free one in a run with known labels); a run
    whose known labels include ``rv`` uses the tied rv latent with the labels' own
    standardisation instead (filled in when the run starts).

    ``broadening_kms`` (None: off) also broadens the rest-frame spectrum, before the shift,
    by a Gaussian of velocity dispersion ``sigma = broadening_kms * sqrt(sigmoid(z_b))``
    (km/s, between 0 and ``broadening_kms``) set by latent ``broadening_latent`` (None: the
    last latent that is not the velocity one): the width every line of a spectrum shares
    (rotation, macroturbulence), which a decoder of per-pixel patterns fits badly. Its
    variance, not its width, follows the sigmoid so that the gradient does not vanish at
    zero broadening.

    The grid (``wave_start``, ``wave_step`` in Angstrom, or in ln(lambda) when ``log_grid``)
    is read from the store when the run starts (:meth:`grid_of`).
    """

    latent: int | None = Field(default=None, ge=0)
    scale_kms: float = Field(default=100.0, gt=0.0)
    offset_kms: float = 0.0
    broadening_kms: float | None = Field(default=None, gt=0.0)
    broadening_latent: int | None = Field(default=None, ge=0)
    wave_start: float | None = Field(default=None, gt=0.0)
    wave_step: float | None = Field(default=None, gt=0.0)
    log_grid: bool = False

    @staticmethod
    def grid_of(wave: np.ndarray) -> dict:
        """``wave_start``, ``wave_step`` and ``log_grid`` of a linear or log-linear grid
        ``wave (L,)`` in Angstrom; ConfigError for any other grid."""
        wave = np.asarray(wave, dtype=np.float64)
        if wave.ndim != 1 or wave.size < 2 or not np.all(np.isfinite(wave)) or wave[0] <= 0:
            raise ConfigError("architecture.doppler needs a finite, positive wavelength grid")
        for log_grid, axis in ((False, wave), (True, np.log(wave))):
            step = np.diff(axis)
            if step[0] > 0 and np.all(np.abs(step - step.mean()) <= 1e-3 * step.mean()):
                return {
                    "wave_start": float(wave[0]),
                    "wave_step": float(step.mean()),
                    "log_grid": log_grid,
                }
        raise ConfigError(
            "architecture.doppler needs a linear or log-linear wavelength grid; the store's "
            f"grid ({wave[0]:.2f}-{wave[-1]:.2f} A, {wave.size} px) is neither"
        )

    def check_grid(self, wave: np.ndarray, source: str) -> None:
        """ConfigError when the grid set here is not that of ``wave (L,)`` (Angstrom), the
        grid of the store ``source`` (e.g. a configuration resolved on another store)."""
        grid = self.grid_of(wave)
        mine = (self.wave_start, self.wave_step, self.log_grid)
        if mine[2] != grid["log_grid"] or not np.allclose(
            mine[:2], (grid["wave_start"], grid["wave_step"]), rtol=1e-6, atol=0.0
        ):
            raise ConfigError(
                f"architecture.doppler: the configuration's wavelength grid (wave_start "
                f"{mine[0]}, wave_step {mine[1]}, log_grid {mine[2]}) is not that of {source} "
                f"(wave_start {grid['wave_start']}, wave_step {grid['wave_step']}, log_grid "
                f"{grid['log_grid']}); remove wave_start and wave_step to read it from the store"
            )


class ArchitectureConfig(Config):
    """Layout of a :class:`SpectrumVAE`.

    ``channels``/``kernels`` list the encoder's conv layers: all but the last have stride 2,
    the last has stride 1. The decoder mirrors them. ``input_length`` is the number of pixels
    the caller gives (the store's spectrum length); when ``pad`` is true the model zero-pads
    it to the next multiple of ``2**n_down`` (split evenly, the odd pixel on the right).

    ``doppler`` (None: off): see :class:`DopplerConfig`. ``dense_hidden`` (None: off): a
    dense head from the latents to the pixels, added to the convolutional decoder's output;
    0 is one linear layer (``(D + 1) * L`` parameters), ``H > 0`` has a hidden layer of H
    LeakyReLU units (``(D + 1) * H + (H + 1) * L``); refused above
    :data:`MAX_DENSE_PARAMETERS`.
    """

    input_length: int = Field(gt=0)
    latent_dim: int = Field(default=16, ge=1)
    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    negative_slope: float = Field(default=0.1, ge=0.0)
    pad: bool = True
    doppler: DopplerConfig | None = None
    dense_hidden: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _decoder_options(self) -> ArchitectureConfig:
        if self.doppler is not None and self.velocity_latent >= self.latent_dim:
            raise ValueError(
                f"doppler.latent={self.doppler.latent} is not a latent (latent_dim={self.latent_dim})"
            )
        b = self.broadening_latent
        if b is not None and (b >= self.latent_dim or b == self.velocity_latent):
            raise ValueError(
                f"doppler.broadening_latent={b} is not a latent other than the velocity's "
                f"({self.velocity_latent}) among latent_dim={self.latent_dim}"
            )
        if self.dense_parameters > MAX_DENSE_PARAMETERS:
            raise ValueError(
                f"dense_hidden={self.dense_hidden} gives a dense head of "
                f"{self.dense_parameters:,} parameters for {self.input_length:,} px, above "
                f"the limit of {MAX_DENSE_PARAMETERS:,}; use a smaller dense_hidden or none"
            )
        return self

    @property
    def velocity_latent(self) -> int:
        """Index of the velocity latent (``doppler`` only)."""
        if self.doppler is None or self.doppler.latent is None:
            return self.latent_dim - 1
        return self.doppler.latent

    @property
    def broadening_latent(self) -> int | None:
        """Index of the broadening latent (None without ``doppler.broadening_kms``)."""
        d = self.doppler
        if d is None or d.broadening_kms is None:
            return None
        if d.broadening_latent is not None:
            return d.broadening_latent
        last = self.latent_dim - 1
        return last - 1 if self.velocity_latent == last else last

    @property
    def dense_parameters(self) -> int:
        """Parameters of the dense head (0 without one)."""
        h, d, n = self.dense_hidden, self.latent_dim, self.input_length
        if h is None:
            return 0
        return (d + 1) * n if h == 0 else (d + 1) * h + (h + 1) * n

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
    labels); where it is NaN the decoder gets the encoder's sample, or its mean with
    ``tied_mean``.
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
        self.dense = _dense_head(config)
        if config.doppler is not None:
            self._check_grid(config.doppler)
        if config.doppler is not None and not config.doppler.log_grid:
            # wavelength over step, for the pixel displacement of a linear grid (not saved:
            # it follows from the configuration)
            start, step = config.doppler.wave_start, config.doppler.wave_step
            pixels = torch.arange(config.input_length, dtype=torch.float64)
            self.register_buffer(
                "_wave_over_step", (start / step + pixels).float(), persistent=False
            )
        if config.broadening_latent is not None:
            self._setup_broadening(config.doppler)
        self.reset_parameters()

    def _setup_broadening(self, d: DopplerConfig) -> None:
        """Anchors and per-pixel weights of :meth:`broaden` (not saved: they follow from the
        configuration). A pixel spans ``dv = c * dlambda / lambda`` km/s, so a dispersion of
        ``sigma`` km/s is a variance of ``sigma**2 * a`` px^2 with ``a = 1 / dv**2``: one
        value on a log-linear grid, a smooth function of the wavelength on a linear one.
        There the spectrum is broadened at anchors ``a_j`` spaced by a factor <= 1.1 and
        each pixel takes the linear interpolation in ``a`` between its two anchors."""
        n = self.config.input_length
        if d.log_grid:
            a = np.full(n, 1.0 / (C_KMS * math.expm1(d.wave_step)) ** 2)
        else:
            wave = d.wave_start + d.wave_step * np.arange(n, dtype=np.float64)
            a = (wave / (C_KMS * d.wave_step)) ** 2
        lo_a, hi_a = float(a.min()), float(a.max())
        steps = max(1, math.ceil(math.log(hi_a / lo_a) / math.log(1.1))) if hi_a > lo_a else 0
        anchors = lo_a * (hi_a / lo_a) ** (np.arange(steps + 1) / max(steps, 1))
        weight = np.zeros((steps + 1, n))
        if steps == 0:
            weight[0] = 1.0
        else:
            j = np.clip(np.searchsorted(anchors, a, side="right") - 1, 0, steps - 1)
            frac = (a - anchors[j]) / (anchors[j + 1] - anchors[j])
            weight[j, np.arange(n)] = 1.0 - frac
            weight[j + 1, np.arange(n)] = frac
        self._broadening_anchors = tuple(float(x) for x in anchors)
        self._broadening_pad = min(n, math.ceil(5.0 * d.broadening_kms * math.sqrt(hi_a)) + 1)
        self.register_buffer(
            "_broadening_weight", torch.from_numpy(weight).float(), persistent=False
        )

    @staticmethod
    def _check_grid(doppler: DopplerConfig) -> None:
        if doppler.wave_start is None or doppler.wave_step is None:
            raise ConfigError(
                "architecture.doppler needs the wavelength grid (wave_start, wave_step); "
                "it is filled in from the store when a run starts"
            )

    def reset_parameters(self) -> None:
        """He (Kaiming) normal initialisation for LeakyReLU, zero biases.

        PyTorch's default initialisation shrinks the signal by about sqrt(3) per layer: through
        the 30-odd layers of this family the decoded spectra of different inputs then differ by
        ~1e-10 at the start, and training sits on a plateau at the mean spectrum until the
        weights have grown. Here each conv layer keeps the variance of its input: the fan-in
        is ``c_in * k`` for a convolution and ``c_in * k / stride`` for a transposed one
        (each output pixel sees ``k / stride`` taps). The linear heads keep PyTorch's default;
        the dense head's output layer starts at 0 (the decoder starts as without it).
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
        if self.dense is not None:
            nn.init.zeros_(self.dense[-1].weight)
            nn.init.zeros_(self.dense[-1].bias)

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
        """Decoded flux ``(N, L)`` for latent vectors ``z`` of shape ``(N, D)``.

        With ``doppler``: the rest-frame spectrum of ``z`` (velocity latent, and broadening
        latent if any, set to 0), broadened by :meth:`broadening` when the option is on and
        shifted by the velocity latent's :meth:`velocity`.
        """
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"expected latents of shape (N, {self.config.latent_dim}), got {tuple(z.shape)}"
            )
        if self.config.doppler is None:
            return self.decode_rest(z)
        hidden = [self.config.velocity_latent]
        if self.config.broadening_latent is not None:
            hidden.append(self.config.broadening_latent)
        rest = self.decode_rest(z.index_fill(1, torch.tensor(hidden, device=z.device), 0.0))
        if self.config.broadening_latent is not None:
            rest = self.broaden(rest, self.broadening(z))
        return self.shift(rest, self.velocity(z))

    def decode_rest(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder without the Doppler shift: flux ``(N, L)`` for ``z (N, D)``."""
        h = self.fc_decode(z).view(
            z.shape[0], self.config.channels[-1], self.config.bottleneck_length
        )
        out = self.decoder(h).squeeze(1)
        left, right = self.config.padding
        if left or right:
            out = out[:, left : out.shape[1] - right]
        if self.dense is not None:
            out = out + self.dense(z)
        return out

    def velocity(self, z: torch.Tensor) -> torch.Tensor:
        """The velocity (km/s) ``(N,)`` of latents ``z (N, D)`` (``doppler`` only)."""
        d = self.config.doppler
        return d.offset_kms + d.scale_kms * z[:, self.config.velocity_latent]

    def broadening(self, z: torch.Tensor) -> torch.Tensor:
        """The broadening dispersion (km/s) ``(N,)`` of latents ``z (N, D)``
        (``doppler.broadening_kms`` only): ``broadening_kms * sqrt(sigmoid(z_b))``."""
        z_b = z[:, self.config.broadening_latent].float()
        return self.config.doppler.broadening_kms * torch.sigmoid(z_b).sqrt()

    def broaden(self, rest: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Rest-frame flux ``rest (N, L)`` convolved with a Gaussian of ``sigma (N,)`` km/s:
        multiplied in Fourier space by ``exp(-2 pi^2 f^2 var)`` (``var`` in px^2), on a copy
        padded by repeating the edge pixels; exact on a log-linear grid, interpolated
        between anchors on a linear one (:meth:`_setup_broadening`). Differentiable in
        ``sigma``: d(flux)/d(sigma^2) is the flux's second derivative, nonzero at 0."""
        n, pad = rest.shape[1], self._broadening_pad
        with torch.autocast(device_type=rest.device.type, enabled=False):
            padded = F.pad(rest.float().unsqueeze(1), (pad, pad), mode="replicate").squeeze(1)
            spectrum = torch.fft.rfft(padded)
            freq2 = torch.fft.rfftfreq(padded.shape[1], device=rest.device).square()
            var = sigma.float().square().unsqueeze(1)
            out = torch.zeros_like(rest, dtype=torch.float32)
            for j, a in enumerate(self._broadening_anchors):
                kernel = torch.exp(-2.0 * math.pi**2 * freq2 * (var * a))
                wide = torch.fft.irfft(spectrum * kernel, n=padded.shape[1])
                out = out + wide[:, pad : pad + n] * self._broadening_weight[j]
        return out.to(rest.dtype)

    def shift(self, rest: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        """Rest-frame flux ``rest (N, L)`` seen at ``velocity (N,)`` km/s: the output pixel at
        ``lam`` is ``rest`` at ``lam / (1 + v/c)``, linearly interpolated in pixels
        (differentiable in ``velocity``; beyond the grid the edge pixels repeat)."""
        d = self.config.doppler
        beta = (velocity.float() / C_KMS).unsqueeze(1)
        if d.log_grid:  # a constant shift of ln(1 + v/c) / dln(lambda) pixels
            disp = (-torch.log1p(beta) / d.wave_step).expand(-1, rest.shape[1])
        else:  # pixel i moves by -(lam_i / step) * beta / (1 + beta)
            disp = -self._wave_over_step * (beta / (1.0 + beta))
        whole = torch.floor(disp)
        frac = (disp - whole).to(rest.dtype)
        pixels = torch.arange(rest.shape[1], device=rest.device)
        lo = pixels + whole.long()
        hi = (lo + 1).clamp(0, rest.shape[1] - 1)
        lo = lo.clamp(0, rest.shape[1] - 1)
        return torch.lerp(rest.gather(1, lo), rest.gather(1, hi), frac)

    def forward(
        self,
        x: torch.Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        known: torch.Tensor | None = None,
        tied_mean: bool = False,
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
            inferred = mu[:, :k] if tied_mean else z[:, :k]
            tied = torch.where(torch.isfinite(given), given, inferred)
            z = torch.cat([tied, z[:, k:]], dim=1)
        return {"recon": self.decode(z), "mu": mu, "logvar": logvar, "z": z}


def _dense_head(config: ArchitectureConfig) -> nn.Sequential | None:
    """The dense head of ``config.dense_hidden`` (None when off)."""
    h, d, n = config.dense_hidden, config.latent_dim, config.input_length
    if h is None:
        return None
    if h == 0:
        return nn.Sequential(nn.Linear(d, n))
    return nn.Sequential(nn.Linear(d, h), nn.LeakyReLU(config.negative_slope), nn.Linear(h, n))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def reconstruction_loss(
    recon: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    *,
    kind: ReconstructionKind = "l1",
    ivar: torch.Tensor | None = None,
    pixel_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-spectrum reconstruction error ``(N,)``: a mean over the valid pixels only.

    ``l1``: mean |x - x'|; ``mse``: mean (x - x')^2; ``ivar``: inverse-variance weighted
    mean of (x - x')^2 with weights ``ivar`` normalised to mean 1 over each spectrum's valid
    pixels (so it stays on the MSE scale). ``pixel_weight (N, L)`` (e.g.
    :func:`line_weights`) multiplies the weights, normalised the same way. Masked pixels get
    weight 0 and are zeroed before the difference, so their values (even NaN) cannot change
    the loss.
    """
    weight = valid.to(recon.dtype)
    if pixel_weight is not None:
        weight = weight * pixel_weight.to(recon.dtype)
    if kind == "ivar":
        if ivar is None:
            raise ValueError("kind='ivar' needs the inverse variances")
        weight = weight * torch.where(valid, ivar, torch.zeros_like(ivar)).to(recon.dtype)
    diff = torch.where(valid, recon - torch.where(valid, target, torch.zeros_like(target)), 0.0)
    per_pixel = diff.abs() if kind == "l1" else diff.square()
    total = weight.sum(dim=1)
    return (per_pixel * weight).sum(dim=1) / total.clamp_min(torch.finfo(total.dtype).tiny)


def line_weights(
    target: torch.Tensor, valid: torch.Tensor, strength: float, *, window: int = 101
) -> torch.Tensor:
    """Per-pixel weights ``(N, L)`` that emphasise absorption lines: ``1 + strength * depth``,
    with ``depth = 1 - near / envelope`` clipped to [0, 1], ``near`` the mean of the valid
    pixels among a pixel's four neighbours (``i +- 1``, ``i +- 2``) and the envelope the
    running maximum over ``window`` px of the flux smoothed over 5 px (masked pixels count
    0). A line 10% deep weighs ``1 + 0.1 * strength`` against ~1 for the continuum.

    The pixel itself is left out: a weight that follows the pixel's own noise (a pixel that
    reads low weighs more) pulls the fit towards low readings, a bias of about
    ``-0.5 * strength * sigma**2`` per pixel (-0.004 in the continuum at S/N 50 and
    strength 20). The neighbours' noise is independent of the pixel's."""
    flux = torch.where(valid, target, torch.zeros_like(target)).unsqueeze(1).float()
    smooth = F.avg_pool1d(flux, 5, stride=1, padding=2, count_include_pad=False)
    envelope = F.max_pool1d(smooth, window, stride=1, padding=window // 2).squeeze(1)
    kernel = torch.tensor([[[1.0, 1.0, 0.0, 1.0, 1.0]]], device=flux.device)
    count = F.conv1d(valid.unsqueeze(1).float(), kernel, padding=2).clamp_min(1.0)
    near = (F.conv1d(flux, kernel, padding=2) / count).squeeze(1)
    depth = (1.0 - near / envelope.clamp_min(1e-6)).clamp(0.0, 1.0)
    return 1.0 + strength * depth


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
    mu: torch.Tensor,
    logvar: torch.Tensor,
    target: torch.Tensor,
    target_var: torch.Tensor,
    *,
    fixed_scale: bool = False,
    var_floor: float = 0.0,
) -> torch.Tensor:
    """Gaussian negative log likelihood (nats, without the constant) of the labels
    ``target (N, K)`` under ``q(z|x)`` of the first K latents, whose variance is widened by
    the labels' own ``target_var (N, K)``; NaN targets count 0. Per spectrum, ``(N,)``.

    ``fixed_scale``: the mean is fitted by its squared error over the label's variance
    (1 for standardised labels, plus ``target_var``), which a wide ``q`` cannot soften, and
    the variance by the likelihood with the mean held fixed (its gradient stops there):
    ``0.5 (d^2 / (1 + e^2) + sg(d)^2 / var + log var)`` with ``d = mu - y``.

    ``var_floor`` is added to every variance: a posterior fitted to a well-memorised
    label cannot shrink towards 0, where ``sg(d)^2 / var`` and its gradient blow up on the
    next spectrum it fits less well, and ``log var`` stays finite where a latent's
    ``exp(logvar)`` underflows."""
    k = target.shape[1]
    known = torch.isfinite(target)
    var = logvar[:, :k].exp() + target_var + var_floor
    diff = torch.where(known, mu[:, :k] - torch.where(known, target, 0.0), 0.0)
    if fixed_scale:
        nll = 0.5 * (diff.square() / (1.0 + target_var) + diff.detach().square() / var + var.log())
    else:
        nll = 0.5 * (diff.square() / var + var.log())
    return torch.where(known, nll, 0.0).sum(dim=1)


def _rbf_gram(x: torch.Tensor) -> torch.Tensor:
    """Gaussian Gram matrices ``(G, N, N)`` of ``x (G, N, a)``, each with the median of its
    squared distances as bandwidth (1 when all points coincide)."""
    d2 = torch.cdist(x, x).square()
    flat = d2.detach().flatten(1)
    positive = torch.where(flat > 0, flat, torch.nan)
    scale = torch.nan_to_num(positive.nanmedian(dim=1).values, nan=1.0)
    return torch.exp(-d2 / scale.clamp_min(1e-12)[:, None, None])


def _hsic_grams(kx: torch.Tensor, ky: torch.Tensor) -> torch.Tensor:
    """Biased HSIC ``(A, B)`` between every Gram matrix of ``kx (A, N, N)`` and ``ky (B, N, N)``."""
    n = kx.shape[1]
    kx = kx - kx.mean(dim=1, keepdim=True)
    kx = kx - kx.mean(dim=2, keepdim=True)
    return torch.einsum("aij,bij->ab", kx, ky) / (n - 1) ** 2


def hsic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The biased HSIC estimate (Gretton et al. 2005) between ``x (N, a)`` and ``y (N, b)``
    with Gaussian kernels of median-distance bandwidth: 0 for independent samples (up to
    an O(1/N) bias), larger the more they depend."""
    if x.shape[0] < 4:
        return x.new_zeros(())
    return _hsic_grams(_rbf_gram(x[None]), _rbf_gram(y[None]))[0, 0]


def hsic_columns(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`hsic` between every column of ``x (N, a)`` and every column of ``y (N, b)``,
    ``(a, b)``: one dependent pair shows in its own entry instead of being diluted in a
    joint kernel over all columns."""
    if x.shape[0] < 4:
        return x.new_zeros((x.shape[1], y.shape[1]))
    return _hsic_grams(_rbf_gram(x.T[..., None]), _rbf_gram(y.T[..., None]))


def kl_weight(step: int, *, start: int, end: int, beta: float) -> float:
    """The annealed KL weight: 0 until ``start``, linear to ``beta`` at ``end``, then ``beta``."""
    if step < start:
        return 0.0
    if step >= end:
        return float(beta)
    return float(beta) * (step - start) / (end - start)


__all__ = [
    "C_KMS",
    "HARPS_CHANNELS",
    "HARPS_KERNELS",
    "HARPS_LENGTH",
    "MAX_DENSE_PARAMETERS",
    "ArchitectureConfig",
    "DopplerConfig",
    "KLReduction",
    "ReconstructionKind",
    "SpectrumVAE",
    "count_parameters",
    "floored_kl",
    "hsic",
    "hsic_columns",
    "kl_per_dim",
    "kl_weight",
    "label_nll",
    "line_weights",
    "reconstruction_loss",
    "reduce_kl",
]
