"""The known-label loss options that keep the known labels out of the free latents (issue
16, second round): tied dims without KL, the tied mean given to the decoder, the
fixed-scale label loss, and the per-dim HSIC."""

from __future__ import annotations

import pytest
import torch

from astrolatent.models.vae import (
    ArchitectureConfig,
    SpectrumVAE,
    hsic,
    hsic_columns,
    label_nll,
)
from astrolatent.training.config import KnownLabelsConfig, LossConfig, OptimConfig
from astrolatent.training.module import VAEModule

K, D, L = 2, 6, 64


def _module(**known) -> VAEModule:
    torch.manual_seed(0)
    model = SpectrumVAE(ArchitectureConfig.for_length(L, latent_dim=D))
    config = KnownLabelsConfig(names=["a", "b"], **known)
    return VAEModule(model, LossConfig(), OptimConfig(), known=config)


def _batch(n: int = 8) -> dict:
    gen = torch.Generator().manual_seed(1)
    known = torch.randn(n, K, generator=gen)
    known[::2] = float("nan")  # half the spectra unlabelled
    return {
        "flux": 1.0 + 0.1 * torch.randn(n, L, generator=gen),
        "err": torch.full((n, L), 0.1),
        "valid": torch.ones(n, L, dtype=torch.bool),
        "known": known,
        "known_var": torch.zeros(n, K),
    }


def test_hsic_columns_finds_the_one_dependent_pair():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 3, generator=gen), torch.randn(256, 2, generator=gen)
    x[:, 1] = y[:, 0] ** 2 + 0.1 * x[:, 1]  # dependent, though uncorrelated
    m = hsic_columns(x, y)
    assert m.shape == (3, 2)
    others = torch.cat([m[0], m[2], m[1, 1:]])
    assert m[1, 0] > 10 * others.max(), m
    # each entry is the joint estimate of its two columns
    assert torch.allclose(m[2, 1], hsic(x[:, 2:3], y[:, 1:2]))
    assert torch.equal(hsic_columns(x[:3], y[:3]), torch.zeros(3, 2))


def test_fixed_scale_label_loss_keeps_the_mean_gradient_whatever_the_width():
    target = torch.tensor([[1.0, float("nan")]])
    target_var = torch.tensor([[0.25, 0.0]])
    for width in (0.0, 3.0):  # a wide q(z|x) does not soften the pull on the mean
        mu = torch.tensor([[3.0, 0.0]], requires_grad=True)
        logvar = torch.full((1, 2), width, requires_grad=True)
        loss = label_nll(mu, logvar, target, target_var, fixed_scale=True)
        var = torch.exp(torch.tensor(width)) + 0.25
        expected = 0.5 * (4.0 / 1.25 + 4.0 / var + torch.log(var))
        assert torch.allclose(loss, expected[None])
        loss.sum().backward()
        assert torch.allclose(mu.grad, torch.tensor([[2.0 / 1.25, 0.0]]))
        # the variance is fitted as by the plain likelihood
        ref_logvar = logvar.detach().clone().requires_grad_()
        label_nll(mu.detach(), ref_logvar, target, target_var).sum().backward()
        assert torch.allclose(logvar.grad, ref_logvar.grad)
    # the plain likelihood's pull on the mean shrinks as q widens
    mu = torch.tensor([[3.0, 0.0]], requires_grad=True)
    label_nll(mu, torch.full((1, 2), 3.0), target, target_var).sum().backward()
    assert mu.grad[0, 0] < 0.1 * 2.0 / 1.25


def test_defaults_are_the_measured_ones():
    c = KnownLabelsConfig(names=["a"])
    assert (c.label_loss, c.tied_kl, c.tied_mean) == ("fixed_scale", False, True)
    assert (c.independence, c.independence_kind) == (0.1, "joint")


def test_decoder_gets_the_tied_mean_where_the_label_is_missing():
    module, batch = _module(), _batch()
    gen = torch.Generator().manual_seed(2)
    out = module.model(batch["flux"], generator=gen, known=batch["known"], tied_mean=True)
    labelled = torch.isfinite(batch["known"][:, 0])
    assert torch.equal(out["z"][labelled, :K], batch["known"][labelled])
    assert torch.equal(out["z"][~labelled, :K], out["mu"][~labelled, :K])
    assert not torch.equal(out["z"][:, K:], out["mu"][:, K:])  # free dims still sampled
    out = module.model(batch["flux"], generator=gen, known=batch["known"])
    assert not torch.equal(out["z"][~labelled, :K], out["mu"][~labelled, :K])


@pytest.mark.parametrize("tied_kl", [True, False])
def test_tied_dims_carry_a_kl_only_with_tied_kl(tied_kl):
    module = _module(tied_kl=tied_kl, free_kl_floor=0.0)
    kl = torch.rand(4, D, requires_grad=True)
    extra = {"label_nll": torch.zeros(4), "hsic": torch.zeros(())}
    module._objective(torch.zeros(4), kl, extra, 1.0).sum().backward()
    assert bool((kl.grad[:, :K] > 0).all()) is tied_kl
    assert bool((kl.grad[:, K:] > 0).all())


def test_per_dim_hsic_sums_the_column_pairs():
    module, batch = _module(independence_kind="per_dim"), _batch()
    _, _, extra = module._terms(batch, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    out = module.model(batch["flux"], generator=gen, known=batch["known"], tied_mean=True)
    expected = hsic_columns(out["mu"][:, K:], out["z"][:, :K].detach()).sum()
    assert torch.allclose(extra["hsic"], expected)


def test_an_unsupervised_module_has_no_known_terms():
    torch.manual_seed(0)
    model = SpectrumVAE(ArchitectureConfig.for_length(L, latent_dim=D))
    module = VAEModule(model, LossConfig(), OptimConfig())
    batch = _batch()
    recon, kl, extra = module._terms(batch, torch.Generator().manual_seed(6))
    assert extra == {}
    expected = recon + 0.5 * kl.sum(dim=1)  # kl_reduction "sum"
    assert torch.allclose(module._objective(recon, kl, extra, 0.5), expected)
    # the decoder sees the same latents as before the known-label options existed
    out = model(batch["flux"], generator=torch.Generator().manual_seed(6))
    again = model(batch["flux"], generator=torch.Generator().manual_seed(6), tied_mean=True)
    assert torch.equal(out["z"], again["z"]) and not torch.equal(out["z"], out["mu"])


def test_a_run_saved_before_the_new_loss_keeps_its_loss_and_a_new_one_gets_the_defaults(
    tmp_path,
):
    import yaml

    from astrolatent.training.config import CONFIG_FORMAT_VERSION, TrainConfig, make_config

    fresh = make_config(6251, preset="lowres", overrides={"known_labels": {"names": ["rv"]}})
    assert fresh.format_version == CONFIG_FORMAT_VERSION == 3
    assert (fresh.known_labels.label_loss, fresh.known_labels.tied_kl) == ("fixed_scale", False)
    assert fresh.known_labels.tied_sd_floor == 0.05
    # written before these options existed: format 1 lacked all four, format 2 the floor
    lacking = {1: ("label_loss", "tied_kl", "tied_mean", "tied_sd_floor"), 2: ("tied_sd_floor",)}
    for version, keys in lacking.items():
        saved = fresh.to_dict()
        saved["format_version"] = version
        for key in keys:
            saved["known_labels"].pop(key)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
        old = TrainConfig.load(tmp_path / "config.yaml").known_labels
        assert old.tied_sd_floor == 0.0, version
        if version == 1:
            assert (old.label_loss, old.tied_kl, old.tied_mean) == ("nll", True, False)
        else:
            assert (old.label_loss, old.tied_kl, old.tied_mean) == ("fixed_scale", False, True)
    fresh.save(tmp_path / "new.yaml")  # a run saved now reloads as itself
    assert TrainConfig.load(tmp_path / "new.yaml") == fresh


def test_the_tied_variance_floor_keeps_the_label_loss_and_its_gradient_finite():
    """A tied posterior fitted to a memorised label shrinks until ``d^2 / var`` blows up on
    the next spectrum (a run diverged at step 5,250 of 12,000 this way), and an unlabelled
    spectrum's tied ``exp(logvar)`` can underflow to 0, whose ``log`` gives a NaN gradient
    through the mask. With the floor both stay finite; without it they do not."""
    target = torch.tensor([[0.5, float("nan")]])
    logvar = torch.tensor([[-30.0, -200.0]], requires_grad=True)  # var 1e-13; underflows
    mu = torch.tensor([[0.8, 0.0]], requires_grad=True)
    zero = torch.zeros(1, 2)
    floored = label_nll(mu, logvar, target, zero, fixed_scale=True, var_floor=0.05**2)
    floored.sum().backward()
    assert torch.isfinite(floored).all() and float(floored.detach()) < 0.5 * (0.09 / 0.05**2) + 1
    assert torch.isfinite(logvar.grad).all() and torch.isfinite(mu.grad).all()
    logvar.grad = mu.grad = None
    bare = label_nll(mu, logvar, target, zero, fixed_scale=True)
    bare.sum().backward()
    assert float(bare.detach()) > 1e10 and not torch.isfinite(logvar.grad).all()


def test_a_run_with_known_labels_caps_its_gradients_unless_told_otherwise():
    from astrolatent.training.config import KNOWN_LABELS_GRAD_CLIP, make_config

    known = {"known_labels": {"names": ["rv"]}}
    assert make_config(6251, preset="lowres", overrides=known).optim.grad_clip == 100.0
    assert KNOWN_LABELS_GRAD_CLIP == 100.0
    assert make_config(6251, preset="lowres").optim.grad_clip is None  # no known labels
    told = {**known, "optim": {"grad_clip": None}}
    assert make_config(6251, preset="lowres", overrides=told).optim.grad_clip is None
    told = {**known, "optim": {"grad_clip": 5.0}}
    assert make_config(6251, preset="lowres", overrides=told).optim.grad_clip == 5.0
    # a preset's own cap stays
    assert make_config(343, preset="gaia-xp", overrides=known).optim.grad_clip == 1.0


def test_a_run_with_known_labels_gets_a_hidden_layer_in_a_linear_dense_head():
    from astrolatent.models.vae import HARPS_LENGTH
    from astrolatent.training.config import KNOWN_LABELS_DENSE_HIDDEN, make_config

    known = {"known_labels": {"names": ["teff", "rv"]}}
    cfg = make_config(6251, preset="lowres", overrides=known)
    assert cfg.architecture.dense_hidden == KNOWN_LABELS_DENSE_HIDDEN == 64
    assert make_config(6251, preset="lowres").architecture.dense_hidden == 0  # unsupervised
    for told in (0, None, 16):  # the user's choice stays, off included
        over = {**known, "architecture": {"dense_hidden": told}}
        assert make_config(6251, preset="lowres", overrides=over).architecture.dense_hidden == told
    # a saved run's configuration, passed back, keeps the head it was trained with
    saved = make_config(
        6251, preset="lowres", overrides={**known, "architecture": {"dense_hidden": 0}}
    )
    again = make_config(6251, overrides=saved.to_dict())
    assert again.architecture.dense_hidden == 0
    # presets without a dense head keep none
    assert make_config(343, preset="gaia-xp", overrides=known).architecture.dense_hidden is None
    published = make_config(HARPS_LENGTH, preset="harps-published", overrides=known)
    assert published.architecture.dense_hidden is None


def test_the_hsic_memory_measures_each_batch_among_the_last_spectra():
    module = _module(independence_memory=12)
    first, second = _batch(), _batch(8)
    second["flux"] = second["flux"].flip(0)

    def latents(batch, seed):
        gen = torch.Generator().manual_seed(seed)
        out = module.model(batch["flux"], generator=gen, known=batch["known"], tied_mean=True)
        return out["mu"][:, K:].detach(), out["z"][:, :K].detach()

    _, _, extra = module._terms(first, torch.Generator().manual_seed(3))
    free1, tied1 = latents(first, 3)
    assert torch.allclose(extra["hsic"], hsic(free1, tied1))  # nothing remembered yet
    _, _, extra = module._terms(second, torch.Generator().manual_seed(4))
    free2, tied2 = latents(second, 4)
    both = hsic(torch.cat([free2, free1]), torch.cat([tied2, tied1]))
    assert torch.allclose(extra["hsic"], 2.0 * both)  # 8 + 8 spectra, the gradient scaled back
    # the memory holds the last 12 spectra: the second batch and the end of the first
    kept = {tuple(r.tolist()) for r in module.hsic_free}
    assert kept == {tuple(r.tolist()) for r in torch.cat([free2, free1[4:]])}
    assert int(module.hsic_seen) == 16
    # validation measures its batch alone and leaves the memory as it was
    module.eval()
    _, _, extra = module._terms(first, torch.Generator().manual_seed(3))
    assert torch.allclose(extra["hsic"], hsic(free1, tied1)) and int(module.hsic_seen) == 16
    assert "hsic_free" in module.state_dict()  # a checkpoint keeps it for the resume


def test_the_adversary_learns_the_labels_and_the_encoder_pays_for_its_guess():
    """The adversary fits each tied latent from each free dim with its own parameters only;
    the encoder pays ``adversary`` x the spread of those guesses (0 when the adversary
    guesses the same for every spectrum); validation losses leave both out."""
    module, batch = _module(adversary=0.5), _batch()
    module.train()
    _, _, extra = module._terms(batch, torch.Generator().manual_seed(3))
    head, w2 = module.model.fc_mu.weight, module.adversary.w2
    fit_head, fit_w2 = torch.autograd.grad(extra["adversary"], [head, w2], allow_unused=True)
    assert fit_head is None and fit_w2.abs().sum() > 0
    spread_head, spread_w2 = torch.autograd.grad(
        extra["adversary_spread"], [head, w2], allow_unused=True
    )
    assert spread_w2 is None
    assert spread_head[K:].abs().sum() > 0
    assert torch.equal(spread_head[:K], torch.zeros_like(head[:K]))  # tied: targets only
    with torch.no_grad():
        w2.zero_()
    _, _, flat = module._terms(batch, torch.Generator().manual_seed(3))
    assert float(flat["adversary_spread"].detach()) == 0.0
    n = len(batch["flux"])
    recon, kl = torch.zeros(n), torch.zeros(n, D)
    train_loss = module._objective(recon, kl, extra, 1.0)
    module.eval()
    assert torch.allclose(
        train_loss - module._objective(recon, kl, extra, 1.0),
        extra["adversary"] + 0.5 * extra["adversary_spread"],
    )
