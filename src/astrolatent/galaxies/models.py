"""Pure ``nn.Module`` building blocks of the galaxy estimators, and their loss terms.

An estimator is encoder -> latent S -> PDF head (Zhang et al. 2025): an MLP on tabular
inputs (photometry, morphology, redshift, ...) or a CNN on images, whose pooled features
are joined by any tabular inputs (e.g. E(B-V)) before the latent layer. The head gives the
logits of a softmax over the target's bins. Inputs are standardised inside the model with
buffers that travel in the ``state_dict``: tabular columns by a centre and scale, clipped
to +-``clip``; images (already sign(x) log(|x|+1) transformed) per channel.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from astrolatent.galaxies.config import EncoderConfig


def mlp(sizes: Sequence[int], negative_slope: float = 0.01) -> nn.Sequential:
    """``(N, sizes[0]) -> (N, sizes[-1])``: a Linear layer between each pair of consecutive
    ``sizes``, with LeakyReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        if layers:
            layers.append(nn.LeakyReLU(negative_slope))
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """An :func:`mlp` as a module: the tabular encoder (``[n_in, width x depth,
    latent_dim]``), the PDF head (``[latent_dim, head_width, n_bins]``) and the tabular
    decoder (``[latent_dim, width, width, n_out]``) of an estimator."""

    def __init__(self, sizes: Sequence[int], *, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.net = mlp(sizes, negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class InceptionBlock(nn.Module):
    """``(N, c_in, H, W) -> (N, c_out, H, W)``: parallel 1x1, 3x3, 5x5 convolutions and a
    3x3 max-pool + 1x1 branch, concatenated (Szegedy et al. 2015)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        quarter = c_out // 4
        sizes = [c_out - 3 * quarter, quarter, quarter, quarter]
        self.b1 = nn.Conv2d(c_in, sizes[0], 1)
        self.b3 = nn.Conv2d(c_in, sizes[1], 3, padding=1)
        self.b5 = nn.Conv2d(c_in, sizes[2], 5, padding=2)
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(c_in, sizes[3], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)


class CNNEncoder(nn.Module):
    """``(N, C, S, S)`` images and ``(N, n_extra)`` features -> ``(N, latent_dim)``.

    Each stage: a 3x3 convolution (or an :class:`InceptionBlock`) then a stride-2 3x3
    convolution, batch normalisation and LeakyReLU after each; then adaptive average pooling to 4x4, flattening,
    concatenation of the extra features, Linear(width) + LeakyReLU, Linear(latent_dim).
    The stages' ``channels``, ``inception``, ``width`` and ``negative_slope`` come from
    ``encoder`` (its ``latent_dim`` is not read).
    """

    def __init__(
        self,
        in_channels: int,
        latent_dim: int,
        encoder: EncoderConfig,
        *,
        n_extra: int = 0,
    ) -> None:
        super().__init__()
        negative_slope = encoder.negative_slope
        layers: list[nn.Module] = []
        c_prev = in_channels
        for c in encoder.channels:
            first = (
                InceptionBlock(c_prev, c)
                if encoder.inception
                else nn.Conv2d(c_prev, c, 3, padding=1)
            )
            layers += [
                first,
                nn.BatchNorm2d(c),
                nn.LeakyReLU(negative_slope),
                nn.Conv2d(c, c, 3, stride=2, padding=1),
                nn.BatchNorm2d(c),
                nn.LeakyReLU(negative_slope),
            ]
            c_prev = c
        layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = mlp([c_prev * 16 + n_extra, encoder.width, latent_dim], negative_slope)

    def forward(self, images: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(images)
        if extra is not None and extra.shape[1]:
            h = torch.cat([h, extra], dim=1)
        return self.head(h)


class ImageDecoder(nn.Module):
    """``(N, latent_dim) -> (N, C, S, S)``: Linear to ``(c_last, S/2^k, S/2^k)``, then k
    stride-2 transposed convolutions (channels reversed) and a 3x3 convolution to C.
    ``S`` must be divisible by 2^k (k = len(channels))."""

    def __init__(
        self,
        latent_dim: int,
        out_channels: int,
        image_size: int,
        *,
        channels: tuple[int, ...] | list[int] = (16, 32, 64),
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        k = len(channels)
        if image_size % 2**k:
            raise ValueError(f"image_size={image_size} must be divisible by 2^{k} = {2**k}")
        self.start = (channels[-1], image_size // 2**k, image_size // 2**k)
        self.fc = nn.Linear(latent_dim, channels[-1] * self.start[1] * self.start[2])
        layers: list[nn.Module] = []
        rev = list(channels[::-1])
        for c_in, c_out in zip(rev, [*rev[1:], rev[-1]], strict=True):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
            layers += [nn.LeakyReLU(negative_slope)]
        layers.append(nn.Conv2d(rev[-1], out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.negative_slope = negative_slope

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.fc(latent), self.negative_slope).view(-1, *self.start)
        return self.net(h)


class GalaxyEstimator(nn.Module):
    """Encoder -> latent S -> PDF logits, with input standardisation and an optional decoder.

    Args:
        n_tabular: number of tabular input columns (for image models: the extra features
            joined after the convolutions; may be 0).
        image_shape: ``(C, S, S)`` of the images, or None for a tabular (MLP) model.
        n_bins: bins of the target's PDF.
        latent_dim: size of the latent S (resolved: not None).
        encoder: the encoder's depth, width, channels, inception and negative_slope
            (its ``latent_dim`` is not read); default :class:`EncoderConfig`'s defaults.
        head_width: hidden width of the PDF head.
        decoder: build the reconstruction arm (supervised-contrastive training).
        clip: standardised tabular inputs are clipped to +-clip.

    Buffers (set with :meth:`set_standardisation`): ``tab_center``/``tab_scale``
    ``(n_tabular,)`` and ``img_center``/``img_scale`` ``(C,)``.
    """

    def __init__(
        self,
        *,
        n_tabular: int,
        image_shape: tuple[int, int, int] | None,
        n_bins: int,
        latent_dim: int,
        encoder: EncoderConfig | None = None,
        head_width: int = 64,
        decoder: bool = False,
        clip: float = 10.0,
    ) -> None:
        super().__init__()
        if image_shape is None and n_tabular < 1:
            raise ValueError("a tabular model needs at least one input column")
        self.image_shape = image_shape
        self.clip = clip
        encoder = encoder if encoder is not None else EncoderConfig()
        n_channels = image_shape[0] if image_shape else 0
        slope = encoder.negative_slope
        self.register_buffer("tab_center", torch.zeros(n_tabular))
        self.register_buffer("tab_scale", torch.ones(n_tabular))
        self.register_buffer("img_center", torch.zeros(n_channels))
        self.register_buffer("img_scale", torch.ones(n_channels))
        self.encoder: nn.Module
        self.decoder: nn.Module | None = None
        if image_shape is None:
            widths = [n_tabular, *[encoder.width] * encoder.depth, latent_dim]
            self.encoder = MLP(widths, negative_slope=slope)
            if decoder:
                self.decoder = MLP([latent_dim, encoder.width, encoder.width, n_tabular])
        else:
            self.encoder = CNNEncoder(n_channels, latent_dim, encoder, n_extra=n_tabular)
            if decoder:
                self.decoder = ImageDecoder(
                    latent_dim, n_channels, image_shape[1], channels=encoder.channels
                )
        self.head = MLP([latent_dim, head_width, n_bins], negative_slope=slope)

    def set_standardisation(
        self,
        tab_center: torch.Tensor,
        tab_scale: torch.Tensor,
        img_center: torch.Tensor | None = None,
        img_scale: torch.Tensor | None = None,
    ) -> None:
        """Store the input statistics (from the training objects) in the buffers."""
        self.tab_center.copy_(tab_center)
        self.tab_scale.copy_(tab_scale)
        if img_center is not None and img_scale is not None:
            self.img_center.copy_(img_center)
            self.img_scale.copy_(img_scale)

    @torch.no_grad()
    def set_prior(self, probabilities: torch.Tensor) -> None:
        """Start the PDF head at ``probabilities`` ``(n_bins,)`` (the label histogram): the
        last layer's bias becomes their log, so training starts at the prior."""
        self.head.net[-1].bias.copy_(torch.log(probabilities.clamp_min(1e-12)))

    def standardise(
        self, tabular: torch.Tensor, images: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Raw tabular ``(N, n_tabular)`` and log-transformed images -> standardised."""
        tab = ((tabular - self.tab_center) / self.tab_scale).clamp(-self.clip, self.clip)
        if images is None or self.image_shape is None:
            return tab, None
        img = (images - self.img_center[:, None, None]) / self.img_scale[:, None, None]
        return tab, img

    def encode_standardised(self, tab: torch.Tensor, img: torch.Tensor | None) -> torch.Tensor:
        """The latent ``(N, latent_dim)`` of standardised inputs."""
        if self.image_shape is None:
            return self.encoder(tab)
        return self.encoder(img, tab)

    def forward(
        self, tabular: torch.Tensor, images: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(latent (N, latent_dim), logits (N, n_bins))`` of raw inputs."""
        latent = self.encode_standardised(*self.standardise(tabular, images))
        return latent, self.head(latent)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """The reconstruction of the main input (images, else tabular), standardised."""
        if self.decoder is None:
            raise RuntimeError("this estimator was built without a decoder")
        return self.decoder(latent)


def soft_labels(target: torch.Tensor, centres: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(N,)`` targets -> ``(N, K)`` training distributions over bins of ``centres``:
    one-hot at the nearest bin when ``sigma`` is 0, else a normalised Gaussian of width
    ``sigma`` (target units) evaluated at the bin centres."""
    if sigma <= 0:
        index = torch.bucketize(target, (centres[1:] + centres[:-1]) / 2)
        return F.one_hot(index, centres.numel()).to(target.dtype)
    weights = torch.exp(-0.5 * ((centres[None, :] - target[:, None]) / sigma) ** 2)
    return weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-30)


def info_nce(a: torch.Tensor, b: torch.Tensor, *, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE (NT-Xent) of positive pairs ``(a_i, b_i)`` ``(N, D)``; every other
    object of the batch is a negative. Latents are L2-normalised first."""
    a = F.normalize(a, dim=1)
    b = F.normalize(b, dim=1)
    logits = a @ b.T / temperature
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def symmetric_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Mean over objects of (KL(p||q) + KL(q||p)) / 2 between two PDFs given as logits."""
    log_p = F.log_softmax(logits_p, dim=1)
    log_q = F.log_softmax(logits_q, dim=1)
    kl_pq = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    kl_qp = (log_q.exp() * (log_q - log_p)).sum(dim=1)
    return 0.5 * (kl_pq + kl_qp).mean()


def random_dihedral(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image ``(N, C, S, S)`` under a random one of the 8 flips/90-degree rotations."""
    choice = torch.randint(0, 8, (images.shape[0],), generator=generator, device="cpu")
    out = images.clone()
    for k in range(8):
        mask = (choice == k).to(images.device)
        if not bool(mask.any()):
            continue
        x = images[mask]
        if k >= 4:
            x = x.flip(-1)
        out[mask] = torch.rot90(x, k % 4, dims=(-2, -1))
    return out


__all__ = [
    "MLP",
    "CNNEncoder",
    "GalaxyEstimator",
    "ImageDecoder",
    "InceptionBlock",
    "info_nce",
    "mlp",
    "random_dihedral",
    "soft_labels",
    "symmetric_kl",
]
