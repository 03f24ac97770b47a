"""Decoder options (issue 16): the Doppler shift of a rest-frame spectrum, the dense head,
the learning-rate schedule, and that older configurations and harps-published are unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from astrolatent.errors import ConfigError
from astrolatent.models.vae import (
    C_KMS,
    HARPS_LENGTH,
    ArchitectureConfig,
    DopplerConfig,
    SpectrumVAE,
    count_parameters,
    kl_per_dim,
    line_weights,
    reconstruction_loss,
)
from astrolatent.training.config import (
    PRESETS,
    LossConfig,
    OptimConfig,
    make_config,
    resolve_doppler,
)
from astrolatent.training.encode import encode, load_model
from astrolatent.training.fit import fit
from astrolatent.training.module import VAEModule

LENGTH = 512
START, STEP = 5000.0, 0.5


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _doppler_model(log_grid: bool = False, **arch) -> SpectrumVAE:
    step = np.log1p(STEP / START) if log_grid else STEP
    doppler = DopplerConfig(wave_start=START, wave_step=step, log_grid=log_grid)
    base = ArchitectureConfig.for_length(LENGTH, latent_dim=4)
    return SpectrumVAE(base.model_copy(update={"doppler": doppler, **arch}))


def _wave(log_grid: bool) -> np.ndarray:
    if log_grid:
        return START * np.exp(np.log1p(STEP / START) * np.arange(LENGTH))
    return START + STEP * np.arange(LENGTH)


def _line(wave: np.ndarray, centre: float, sigma: float = 1.2) -> np.ndarray:
    return 1.0 - 0.6 * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)


def _centre_px(flux: np.ndarray) -> float:
    """The line's centre in pixels: the centroid of its depth."""
    depth = 1.0 - flux
    return float((np.arange(flux.size) * depth).sum() / depth.sum())


@pytest.mark.parametrize("log_grid", [False, True])
@pytest.mark.parametrize("v", [-87.3, 12.5, 140.0])
def test_a_shifted_line_lands_at_lambda0_times_1_plus_v_over_c(log_grid, v):
    model = _doppler_model(log_grid)
    wave = _wave(log_grid)
    lam0 = 5120.3
    rest = torch.tensor(_line(wave, lam0), dtype=torch.float32)[None]
    out = model.shift(rest, torch.tensor([v])).numpy()[0]
    expected = np.interp(lam0 * (1 + v / C_KMS), wave, np.arange(LENGTH))
    assert abs(_centre_px(out) - expected) < 0.05
    # and the line moved (by 0.17 to 2.8 px): the test could fail
    assert abs(_centre_px(out) - _centre_px(rest.numpy()[0])) > 0.1


def test_zero_velocity_is_the_identity_and_edges_repeat():
    model = _doppler_model()
    rest = torch.rand(3, LENGTH)
    assert torch.equal(model.shift(rest, torch.zeros(3)), rest)
    # a large redshift reads beyond the left edge of the rest frame: the edge pixel repeats
    out = model.shift(rest, torch.full((3,), 3000.0))
    assert torch.equal(out[:, 0], rest[:, 0])


def test_gradients_reach_the_velocity_and_point_to_the_truth():
    model = _doppler_model()
    wave = _wave(False)
    rest = torch.tensor(_line(wave, 5100.0), dtype=torch.float32)[None]
    target = model.shift(rest, torch.tensor([40.0])).detach()
    for start, sign in ((10.0, -1.0), (70.0, 1.0)):
        v = torch.tensor([start], requires_grad=True)
        (model.shift(rest, v) - target).abs().sum().backward()
        assert v.grad is not None and float(v.grad) * sign > 0  # descent moves v toward 40
    # through the model: the encoder's velocity output gets a gradient from the loss
    x = torch.tensor(_line(wave, 5100.0), dtype=torch.float32).repeat(2, 1)
    out = model(x, sample=False)
    (out["recon"] - x).abs().mean().backward()
    weight = model.fc_mu.weight.grad
    assert weight is not None and weight[model.config.velocity_latent].abs().sum() > 0


def test_the_rest_frame_decoder_does_not_see_the_velocity():
    model = _doppler_model()
    z = torch.randn(5, 4)
    v = model.config.velocity_latent
    assert v == 3
    other = z.clone()
    other[:, v] = 0.0
    rest = model.decode_rest(other)
    assert torch.allclose(model.decode(z), model.shift(rest, model.velocity(z)))
    assert torch.allclose(model.velocity(z), 100.0 * z[:, v])


def _broadening_model(log_grid: bool, **doppler) -> SpectrumVAE:
    step = np.log1p(STEP / START) if log_grid else STEP
    config = DopplerConfig(
        wave_start=START, wave_step=step, log_grid=log_grid, broadening_kms=20.0, **doppler
    )
    base = ArchitectureConfig.for_length(LENGTH, latent_dim=4)
    return SpectrumVAE(base.model_copy(update={"doppler": config}))


def _lines(wave: np.ndarray, sigma_kms: float, sigma0_kms: float | None = None) -> np.ndarray:
    """Three lines of dispersion ``sigma_kms``; with ``sigma0_kms``, the equivalent widths of
    lines of that dispersion (a convolution keeps the equivalent width)."""
    flux = np.ones_like(wave)
    for centre in (5020.0, 5080.0, 5200.0):
        s = centre * sigma_kms / C_KMS
        depth = 0.5 if sigma0_kms is None else 0.5 * sigma0_kms / sigma_kms
        flux -= depth * np.exp(-0.5 * ((wave - centre) / s) ** 2)
    return flux


@pytest.mark.parametrize("log_grid", [False, True])
@pytest.mark.parametrize("sigma", [4.0, 9.0, 15.0])
def test_broadening_adds_its_dispersion_in_quadrature(log_grid, sigma):
    """Lines of 50 km/s broadened by ``sigma`` are lines of hypot(50, sigma) km/s of the
    same equivalent width (to 1e-4 of the continuum; the change itself is 10-100x that)."""
    model = _broadening_model(log_grid)
    wave = _wave(log_grid)
    rest = torch.tensor(_lines(wave, 50.0), dtype=torch.float32)[None]
    out = model.broaden(rest, torch.tensor([sigma])).numpy()[0]
    expected = _lines(wave, float(np.hypot(50.0, sigma)), 50.0)
    assert np.abs(out - expected).max() < 1e-4
    assert np.abs(rest.numpy()[0] - expected).max() > 1e-3
    assert torch.allclose(model.broaden(rest, torch.zeros(1)), rest, atol=1e-6)


def test_the_broadening_latent_is_hidden_from_the_decoder_and_sets_the_width():
    model = _broadening_model(False)
    assert (model.config.velocity_latent, model.config.broadening_latent) == (3, 2)
    z = torch.randn(5, 4)
    other = z.clone()
    other[:, 2:] = 0.0
    rest = model.broaden(model.decode_rest(other), model.broadening(z))
    assert torch.allclose(model.decode(z), model.shift(rest, model.velocity(z)), atol=1e-6)
    width = model.broadening(torch.tensor([[0.0, 0.0, -30.0, 0.0], [0.0, 0.0, 30.0, 0.0]]))
    assert width[0] < 1e-5 and width[1] == pytest.approx(20.0)
    # the width of a line is learnt: descent on the broadening latent alone finds the
    # planted one from either side
    wave = _wave(False)
    rest = torch.tensor(_lines(wave, 40.0), dtype=torch.float32)[None]
    target = model.broaden(rest, torch.tensor([12.0]))
    for start in (-3.0, 3.0):
        z_b = torch.tensor([[start]], requires_grad=True)
        opt = torch.optim.Adam([z_b], lr=0.1)
        for _ in range(300):
            opt.zero_grad()
            wide = model.broaden(rest, 20.0 * torch.sigmoid(z_b[:, 0]).sqrt())
            (wide - target).square().sum().backward()
            opt.step()
        assert float(20.0 * torch.sigmoid(z_b.detach()).sqrt()) == pytest.approx(12.0, abs=0.3)


def test_the_broadening_latent_is_configurable_and_checked():
    base = ArchitectureConfig.for_length(LENGTH, latent_dim=4)
    arch = ArchitectureConfig.from_dict(
        {**base.to_dict(), "doppler": {"latent": 1, "broadening_kms": 10.0}}
    )
    assert (arch.velocity_latent, arch.broadening_latent) == (1, 3)
    arch = ArchitectureConfig.from_dict(
        {**base.to_dict(), "doppler": {"broadening_kms": 10.0, "broadening_latent": 0}}
    )
    assert arch.broadening_latent == 0
    assert ArchitectureConfig.from_dict({**base.to_dict(), "doppler": {}}).broadening_latent is None
    for bad in (3, 4):  # the velocity's latent, and no latent at all
        with pytest.raises(ConfigError, match="broadening_latent"):
            ArchitectureConfig.from_dict(
                {**base.to_dict(), "doppler": {"broadening_kms": 10.0, "broadening_latent": bad}}
            )


def test_broadening_kl_cuts_the_price_of_width_information_not_of_a_common_width():
    model = _broadening_model(False)  # broadening latent 2 of 4
    kl = torch.rand(6, 4)
    extra = {"broadening_mean": torch.tensor(1.5)}
    plain = VAEModule(model, LossConfig(), OptimConfig())._objective(torch.zeros(6), kl, extra, 0.5)
    cheap = VAEModule(model, LossConfig(broadening_kl=0.1), OptimConfig())
    # dim 2 pays 0.1 of its KL, plus the batch mean's 0.5 * m^2 at the 0.9 it was spared
    expected = 0.5 * (kl.sum(dim=1) - 0.9 * kl[:, 2] + 0.9 * 0.5 * 1.5**2)
    assert torch.allclose(cheap._objective(torch.zeros(6), kl, extra, 0.5), expected)
    assert torch.allclose(plain, 0.5 * kl.sum(dim=1))
    with pytest.raises(ConfigError, match="broadening_kms"):
        make_config(LENGTH, overrides={"loss": {"broadening_kl": 0.1}})


def test_the_batch_mean_of_a_latent_pays_its_whole_kl_under_a_cut_broadening_kl():
    # KL averaged over a batch = s * KL + (1 - s) * m^2 / 2: for a posterior that only moves
    # its mean (every spectrum alike), the cut buys nothing; for spread around 0, all of it
    model = _broadening_model(False)
    module = VAEModule(model, LossConfig(broadening_kl=0.1), OptimConfig())
    mu = torch.zeros(8, 4)
    logvar = torch.zeros(8, 4)
    for values, price in ((torch.full((8,), 2.0), 1.0), (torch.tensor([2.0, -2.0] * 4), 0.1)):
        mu[:, 2] = values
        kl = kl_per_dim(mu, logvar)
        extra = {"broadening_mean": mu[:, 2].mean()}
        got = module._objective(torch.zeros(8), kl, extra, 1.0).mean()
        assert got == pytest.approx(price * kl[:, 2].mean().item())


def test_grid_of_reads_linear_and_log_grids_and_refuses_others():
    lin = DopplerConfig.grid_of(_wave(False))
    assert lin == {"wave_start": START, "wave_step": pytest.approx(STEP), "log_grid": False}
    log = DopplerConfig.grid_of(_wave(True))
    assert log["log_grid"] and log["wave_step"] == pytest.approx(np.log1p(STEP / START))
    with pytest.raises(ConfigError, match="neither"):
        DopplerConfig.grid_of(START + STEP * np.arange(LENGTH) ** 1.5)
    base = ArchitectureConfig.for_length(LENGTH)
    with pytest.raises(ConfigError, match="wavelength grid"):
        SpectrumVAE(base.model_copy(update={"doppler": DopplerConfig()}))
    with pytest.raises(ConfigError, match="not a latent"):
        ArchitectureConfig.from_dict({**base.to_dict(), "latent_dim": 4, "doppler": {"latent": 4}})


def test_dense_head_shapes_parameters_and_limit():
    base = ArchitectureConfig.for_length(LENGTH, latent_dim=4)
    n0 = count_parameters(SpectrumVAE(base))
    for hidden, extra in ((0, 5 * LENGTH), (8, 5 * 8 + 9 * LENGTH)):
        arch = base.model_copy(update={"dense_hidden": hidden})
        model = SpectrumVAE(arch)
        assert arch.dense_parameters == extra and count_parameters(model) == n0 + extra
        z = torch.randn(3, 4)
        assert model.decode(z).shape == (3, LENGTH)
        # the head starts at 0: the decoder starts as without it
        plain = SpectrumVAE(base)
        plain.load_state_dict(
            {k: v for k, v in model.state_dict().items() if not k.startswith("dense")}
        )
        assert torch.allclose(model.decode(z), plain.decode(z))
    harps = ArchitectureConfig.harps_full()
    linear = ArchitectureConfig.from_dict({**harps.to_dict(), "dense_hidden": 0})
    assert linear.dense_parameters == 129 * HARPS_LENGTH  # 42.3 M: allowed
    with pytest.raises(ConfigError, match="above the limit"):
        ArchitectureConfig.from_dict({**harps.to_dict(), "dense_hidden": 256})


def test_old_configs_load_and_harps_published_is_unchanged():
    old = ArchitectureConfig.for_length(LENGTH).to_dict()
    for key in ("doppler", "dense_hidden"):
        old.pop(key)
    arch = ArchitectureConfig.from_dict(yaml.safe_load(yaml.safe_dump(old)))
    assert arch.doppler is None and arch.dense_hidden is None
    model = SpectrumVAE(arch)
    assert not any(k.startswith("dense") for k in model.state_dict())
    SpectrumVAE(ArchitectureConfig.for_length(LENGTH)).load_state_dict(model.state_dict())

    cfg = make_config(HARPS_LENGTH, preset="harps-published")
    assert cfg.architecture.doppler is None and cfg.architecture.dense_hidden is None
    assert (cfg.loss.kl_reduction, cfg.loss.beta, cfg.optim.schedule) == ("mean", 0.3, "constant")
    assert count_parameters(SpectrumVAE(cfg.architecture)) == 7_046_997
    assert "doppler" not in PRESETS["harps-published"]["architecture"]
    for option in ({"dense_hidden": 0}, {"doppler": {}}):
        with pytest.raises(ConfigError, match="harps-published"):
            make_config(HARPS_LENGTH, preset="harps-published", overrides={"architecture": option})


def test_lowres_defaults_to_the_measured_decoder_and_can_turn_it_off():
    low = make_config(6251)
    assert low.architecture.doppler == DopplerConfig(scale_kms=100.0)
    assert (low.architecture.dense_hidden, low.loss.line_weight) == (0, 20.0)
    off = make_config(
        6251,
        overrides={
            "architecture": {"doppler": None, "dense_hidden": None},
            "loss": {"line_weight": 0},
        },
    )
    assert off.architecture.doppler is None and off.architecture.dense_hidden is None
    assert make_config(343).architecture.doppler is None  # gaia-xp: not measured, unchanged
    assert make_config(HARPS_LENGTH).architecture.doppler is None  # harps-full: unchanged


def test_schedule_needs_a_step_budget():
    with pytest.raises(ConfigError, match=r"max_steps.*set optim.schedule: constant"):
        make_config(6251, overrides={"optim": {"schedule": "cosine"}})
    cfg = make_config(6251, overrides={"optim": {"schedule": "onecycle"}}, max_steps=100)
    assert cfg.optim.schedule == "onecycle"


def test_a_known_rv_is_the_velocity_with_its_standardisation():
    cfg = make_config(LENGTH, overrides={"architecture": {"doppler": {}}})
    known = cfg.known_labels.model_copy(
        update={
            "names": ["teff", "rv"],
            "mean": {"teff": 5500.0, "rv": 3.0},
            "std": {"teff": 800.0, "rv": 55.0},
        }
    )
    resolved = resolve_doppler(cfg.model_copy(update={"known_labels": known}), _wave(False))
    d = resolved.architecture.doppler
    assert (d.latent, d.offset_kms, d.scale_kms) == (1, 3.0, 55.0)
    assert (d.wave_start, d.wave_step, d.log_grid) == (START, STEP, False)
    assert resolve_doppler(resolved, _wave(True)) is resolved  # resolved once
    free = resolve_doppler(cfg, _wave(False)).architecture
    assert free.doppler.latent is None and free.velocity_latent == 15


FAST = {
    "optim": {"batch_size": 8},
    "trainer": {"val_every": 10, "checkpoint_every": 10, "log_every": 5},
    "data": {"val_fraction": 0.25},
}


def test_a_run_with_every_option_trains_saves_and_encodes(tiny_store, tmp_path):
    run = tmp_path / "run"
    options = {
        **FAST,
        "architecture": {"doppler": {}, "dense_hidden": 0},
        "optim": {**FAST["optim"], "schedule": "cosine"},
        "loss": {"line_weight": 5.0},
        "known_labels": {"names": ["rv"], "independence_memory": 32},
    }
    summary = fit(tiny_store, run, options, max_steps=20)
    assert summary.steps == 20
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(ckpt["state_dict"]["hsic_seen"]) == 20 * 8  # the HSIC's memory travels with it
    model, cfg = load_model(run)
    d = cfg.architecture.doppler
    assert d.latent == 0 and d.wave_start == 5000.0 and d.wave_step == pytest.approx(0.5)
    assert d.scale_kms == pytest.approx(cfg.known_labels.std["rv"])
    assert model.dense is not None
    assert encode(run).n_spectra == 96
    # the cosine was laid out over 20 steps: a resume may not run it past its end
    saved = (run / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"--max-steps 30 on --resume.*laid out over 20 steps"):
        fit(tiny_store, run, max_steps=30, resume=True)
    assert (run / "config.yaml").read_text() == saved
    # resuming keeps the resolved configuration and the schedule
    assert fit(tiny_store, run, max_steps=20, resume=True).steps == 20
    assert load_model(run)[1].architecture == cfg.architecture


def test_a_grid_resolved_on_another_store_is_refused(tiny_store, tmp_path):
    # e.g. `train STORE --config OTHER_RUN/config.yaml`: the tiny store's grid is 5000 A + 0.5 A
    other = {"architecture": {"doppler": {"wave_start": 5100.0, "wave_step": 0.5}}}
    with pytest.raises(ConfigError, match=r"wavelength grid .*wave_start 5100.0.* is not that of"):
        fit(tiny_store, tmp_path / "run", {**FAST, **other}, max_steps=2)
    assert not (tmp_path / "run" / "config.yaml").exists()
    same = DopplerConfig(wave_start=5000.0, wave_step=0.5)
    same.check_grid(_wave(False), "store")  # the same grid passes
    with pytest.raises(ConfigError, match="log_grid True"):
        same.model_copy(update={"log_grid": True}).check_grid(_wave(False), "store")
    # encoding or reconstructing another store: the model's grid must be that store's
    from astrolatent.training.encode import _open_store

    shifted = make_config(128, overrides=other)
    with pytest.raises(ConfigError, match=f"is not that of {tiny_store}"):
        _open_store(tmp_path, shifted, tiny_store)
    own = make_config(128, overrides={"architecture": {"doppler": same.to_dict()}})
    assert _open_store(tmp_path, own, tiny_store)[0].length == 128


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def test_line_weights_do_not_pull_the_fit_towards_the_noise():
    # the weighted L1 fit of a flat continuum at S/N 33 is the weighted median of the
    # readings: unbiased only if a pixel's weight does not follow its own noise (weights
    # from the pixel itself read low pixels as line and pull the fit down by ~0.5 * 20 sigma^2)
    rng = np.random.default_rng(0)
    sigma = 0.03
    flux = torch.from_numpy(1.0 + sigma * rng.standard_normal((1, 200_000))).float()
    valid = torch.ones_like(flux, dtype=torch.bool)
    w = line_weights(flux, valid, 20.0)[0].numpy()
    assert _weighted_median(flux[0].numpy(), w) == pytest.approx(1.0, abs=0.1 * 20 * sigma**2)
    own = 1.0 + 20.0 * np.clip(1.0 - flux[0].numpy() / 1.0, 0.0, 1.0)  # the pixel's own depth
    assert _weighted_median(flux[0].numpy(), own) < 1.0 - 0.25 * 20 * sigma**2


def test_line_weights_emphasise_lines_and_keep_the_loss_scale():
    wave = _wave(False)
    flux = torch.tensor(1.3 * (1.0 - 0.2 * np.exp(-0.5 * ((wave - 5120.0) / 1.5) ** 2)))[None]
    valid = torch.ones_like(flux, dtype=torch.bool)
    w = line_weights(flux.float(), valid, 10.0)
    centre = int(np.argmin(np.abs(wave - 5120.0)))
    # the depth of the four neighbours (1 and 2 px = 0.5 and 1 A from the centre)
    near = 0.2 * np.mean(np.exp(-0.5 * (np.array([0.5, 0.5, 1.0, 1.0]) / 1.5) ** 2))
    assert float(w[0, centre]) == pytest.approx(1 + 10 * near, rel=0.01)
    assert float(w[0, 20]) == pytest.approx(1.0)
    # a constant error costs the same with or without the weights (normalised to mean 1)
    recon = flux.float() + 0.01
    plain = reconstruction_loss(recon, flux.float(), valid)
    weighted = reconstruction_loss(recon, flux.float(), valid, pixel_weight=w)
    assert torch.allclose(plain, weighted)
    # an error at the line costs more with them
    bump = flux.float().clone()
    bump[0, centre] += 0.1
    assert reconstruction_loss(bump, flux.float(), valid, pixel_weight=w) > 2 * reconstruction_loss(
        bump, flux.float(), valid
    )
