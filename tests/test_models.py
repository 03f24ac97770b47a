"""The spectrum VAE family and its loss terms: shapes, parameter counts, masking, KL, schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from astrolatent import models  # the package's public names
from astrolatent.errors import ConfigError
from astrolatent.models.vae import HARPS_LENGTH

#: torch on one thread in every test here (the cores are shared)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _convs(module: torch.nn.Module, kind: type) -> list:
    return [m for m in module.modules() if type(m) is kind]


def test_harps_full_is_the_published_layout():
    arch = models.ArchitectureConfig.harps_full()
    model = models.SpectrumVAE(arch)
    # METHOD.md A2: about 7.05 M parameters
    assert models.count_parameters(model) == 7_046_997
    assert round(models.count_parameters(model) / 1e6, 2) == 7.05
    enc = _convs(model.encoder, torch.nn.Conv1d)
    assert len(enc) == 15
    assert [c.out_channels for c in enc] == [
        16,
        16,
        16,
        32,
        32,
        32,
        64,
        64,
        64,
        128,
        128,
        128,
        256,
        512,
        512,
    ]
    assert [c.kernel_size[0] for c in enc] == [7, 5, 5] + [3] * 12
    assert [c.stride[0] for c in enc] == [2] * 14 + [1]
    assert all(c.padding[0] == (c.kernel_size[0] - 1) // 2 for c in enc)
    assert all(
        isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.1 for m in model.encoder[1::2]
    )
    dec = _convs(model.decoder, torch.nn.ConvTranspose1d)
    assert [c.out_channels for c in dec] == [
        512,
        256,
        128,
        128,
        128,
        64,
        64,
        64,
        32,
        32,
        32,
        16,
        16,
        16,
        1,
    ]
    assert [(c.kernel_size[0], c.stride[0], c.padding[0]) for c in dec] == [(3, 1, 1)] + [
        (4, 2, 1)
    ] * 14
    last = model.decoder[-1]
    assert (
        isinstance(last, torch.nn.Conv1d)
        and last.kernel_size == (3,)
        and last.in_channels == last.out_channels == 1
    )
    assert (model.fc_mu.in_features, model.fc_mu.out_features) == (10_240, 128)
    assert (model.fc_decode.in_features, model.fc_decode.out_features) == (128, 10_240)
    assert arch.padding == (0, 0) and arch.bottleneck_length == 20

    with torch.no_grad():
        x = torch.randn(1, HARPS_LENGTH)
        h = model.encoder(x.unsqueeze(1))
        assert h.shape == (1, 512, 20)
        out = model(x)
    assert out["recon"].shape == (1, HARPS_LENGTH)
    assert out["mu"].shape == out["logvar"].shape == out["z"].shape == (1, 128)


def test_harps_full_refuses_other_lengths():
    with pytest.raises(ValueError, match="not a multiple of 2\\*\\*14"):
        models.ArchitectureConfig(
            input_length=312_501, channels=(16,) * 15, kernels=(3,) * 15, pad=False
        )


@pytest.mark.parametrize(
    ("length", "n_down", "padded", "bottleneck"),
    [
        (6251, 3, 6256, 782),
        (343, 3, 344, 43),
        (128, 3, 128, 16),
        (32, 2, 32, 8),
        (50_000, 6, 50_048, 782),
    ],
)
def test_depth_follows_the_length_and_padding_is_invisible(length, n_down, padded, bottleneck):
    arch = models.ArchitectureConfig.for_length(length, latent_dim=5)
    assert arch.n_down == n_down and arch.padded_length == padded
    assert arch.bottleneck_length == bottleneck <= 1024
    model = models.SpectrumVAE(arch)
    if length <= 6251:
        with torch.no_grad():
            out = model(torch.randn(3, length))
        assert out["recon"].shape == (3, length) and out["mu"].shape == (3, 5)


def test_small_layouts_follow_the_published_channel_pattern():
    arch = models.ArchitectureConfig.for_length(6251)
    assert arch.channels == (16, 16, 16, 16)
    assert arch.kernels == (7, 5, 5, 3)
    assert arch.latent_dim == 16
    deep = models.ArchitectureConfig.for_length(327_680)
    assert deep.channels == (16, 16, 16, 32, 32, 32, 64, 64, 64, 64)
    with pytest.raises(ConfigError, match="too short"):
        models.ArchitectureConfig.for_length(12)


def test_shape_errors_name_the_expected_shape():
    model = models.SpectrumVAE(models.ArchitectureConfig.for_length(64, latent_dim=4))
    with pytest.raises(ValueError, match=r"\(N, 64\)"):
        model.encode(torch.zeros(2, 65))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        model.decode(torch.zeros(2, 3))


def test_sampling_noise_comes_from_the_generator():
    model = models.SpectrumVAE(models.ArchitectureConfig.for_length(64, latent_dim=4))
    x = torch.randn(2, 64)
    a = model(x, generator=torch.Generator().manual_seed(3))["z"]
    b = model(x, generator=torch.Generator().manual_seed(3))["z"]
    c = model(x, generator=torch.Generator().manual_seed(4))["z"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    out = model(x, sample=False)
    assert torch.equal(out["z"], out["mu"])


def test_reconstruction_is_a_mean_over_valid_pixels():
    target = torch.zeros(2, 4)
    recon = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, -1.0, 1.0, -1.0]])
    valid = torch.tensor([[True, True, False, False], [True, True, True, True]])
    l1 = models.reconstruction_loss(recon, target, valid, kind="l1")
    assert torch.allclose(l1, torch.tensor([1.5, 1.0]))
    mse = models.reconstruction_loss(recon, target, valid, kind="mse")
    assert torch.allclose(mse, torch.tensor([2.5, 1.0]))
    ivar = torch.tensor([[1.0, 3.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    weighted = models.reconstruction_loss(recon, target, valid, kind="ivar", ivar=ivar)
    assert torch.allclose(weighted, torch.tensor([(1 * 1 + 3 * 4) / 4, 1.0]))


@pytest.mark.parametrize("kind", ["l1", "mse", "ivar"])
def test_masked_pixels_cannot_change_the_loss(kind):
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(3, 50, generator=gen)
    recon = torch.randn(3, 50, generator=gen, requires_grad=True)
    ivar = torch.rand(3, 50, generator=gen) + 0.5
    valid = torch.rand(3, 50, generator=gen) > 0.3
    base = models.reconstruction_loss(recon, target, valid, kind=kind, ivar=ivar)
    base.sum().backward()
    assert torch.all(recon.grad[~valid] == 0)

    wild_target = torch.where(valid, target, torch.full_like(target, float("nan")))
    wild_recon = torch.where(valid, recon.detach(), torch.full_like(target, 1e6))
    wild_ivar = torch.where(valid, ivar, torch.full_like(ivar, float("inf")))
    again = models.reconstruction_loss(wild_recon, wild_target, valid, kind=kind, ivar=wild_ivar)
    assert torch.equal(again, base.detach())


def test_kl_matches_the_closed_form():
    mu = torch.tensor([[0.0, 1.0, -2.0]])
    logvar = torch.tensor([[0.0, 0.0, math.log(0.25)]])
    kl = models.kl_per_dim(mu, logvar)
    expected = [0.0, 0.5, 0.5 * (4 + 0.25 - 1 - math.log(0.25))]
    assert torch.allclose(kl, torch.tensor([expected]))
    assert torch.allclose(models.reduce_kl(kl, "sum"), torch.tensor([sum(expected)]))
    assert torch.allclose(models.reduce_kl(kl, "mean"), torch.tensor([sum(expected) / 3]))
    # Monte-Carlo check of KL(N(mu, s^2) || N(0, 1)) for one dim
    gen = torch.Generator().manual_seed(1)
    z = -2.0 + 0.5 * torch.randn(400_000, generator=gen, dtype=torch.float64)
    log_q = -0.5 * ((z + 2.0) / 0.5) ** 2 - math.log(0.5)
    log_p = -0.5 * z**2
    mc = (log_q - log_p).mean()  # the normalising constants cancel
    assert abs(float(mc) - expected[2]) < 0.01


def test_kl_weight_schedule():
    w = [
        models.kl_weight(s, start=5000, end=20000, beta=0.3)
        for s in (0, 4999, 5000, 12500, 20000, 10**6)
    ]
    assert w == pytest.approx([0.0, 0.0, 0.0, 0.15, 0.3, 0.3])
    steps = np.arange(0, 25000, 100)
    ramp = np.array([models.kl_weight(int(s), start=5000, end=20000, beta=0.3) for s in steps])
    assert np.all(np.diff(ramp) >= 0)
    inside = (steps > 5000) & (steps < 20000)
    assert np.allclose(ramp[inside], 0.3 * (steps[inside] - 5000) / 15000)
    assert models.kl_weight(10, start=10, end=10, beta=1.0) == 1.0
    assert models.kl_weight(9, start=10, end=10, beta=1.0) == 0.0


def test_initialisation_lets_the_input_reach_the_output():
    # with PyTorch's default init the decoded spectra of different inputs differ by ~1e-10
    # at the start (a plateau at the mean spectrum follows); He init keeps the signal
    torch.manual_seed(0)
    model = models.SpectrumVAE(models.ArchitectureConfig.for_length(6251))
    gen = torch.Generator().manual_seed(1)
    x = 1.0 + 0.1 * torch.randn(16, 6251, generator=gen)
    with torch.no_grad():
        recon = model.decode(model.encode(x)[0])
    assert recon.std(dim=0).mean() > 1e-4
    convs = [
        m for m in model.modules() if isinstance(m, torch.nn.Conv1d | torch.nn.ConvTranspose1d)
    ]
    assert all(torch.count_nonzero(m.bias.detach()) == 0 for m in convs)
