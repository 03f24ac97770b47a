"""The LightningModule: owns the training and validation steps, the optimiser and logging.

The model is injected (a pure :class:`~astrolatent.models.vae.SpectrumVAE`). The sampling
noise of every step comes from a generator seeded by ``(seed, step, rank)``, so a run
resumed from a checkpoint draws exactly the noise the uninterrupted run would have drawn,
without saving or restoring any global random state.
"""

from __future__ import annotations

from collections import deque

import lightning as L
import numpy as np
import torch
from torch import nn

from astrolatent.models.vae import (
    SpectrumVAE,
    floored_kl,
    hsic,
    hsic_columns,
    kl_per_dim,
    kl_weight,
    label_nll,
    line_weights,
    reconstruction_loss,
    reduce_kl,
)
from astrolatent.training.config import KnownLabelsConfig, LossConfig, OptimConfig

_TRAIN, _VAL = 0, 1


def step_seed(seed: int, kind: int, step: int, rank: int) -> int:
    """A 63-bit seed for the noise of one step (``kind`` 0 = train, 1 = validation)."""
    return int(
        np.random.SeedSequence([seed, kind, step, rank]).generate_state(2, np.uint64)[0]
        >> np.uint64(1)
    )


class FreeDimAdversary(nn.Module):
    """One small MLP per free dim: ``(N, F)`` free latents -> ``(N, F, K)``, each free dim's
    guess of the ``K`` tied latents from that dim alone."""

    def __init__(self, n_free: int, n_known: int, hidden: int, *, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)  # the run's seed, not the global state
        self.w1 = nn.Parameter(torch.randn(n_free, hidden, generator=gen) / 2.0)
        self.b1 = nn.Parameter(torch.zeros(n_free, hidden))
        self.w2 = nn.Parameter(torch.randn(n_free, hidden, n_known, generator=gen) / hidden**0.5)
        self.b2 = nn.Parameter(torch.zeros(n_free, n_known))

    def forward(self, free: torch.Tensor, *, frozen: bool = False) -> torch.Tensor:
        """The guesses; with ``frozen`` no gradient reaches the adversary's parameters."""
        w1, b1, w2, b2 = (p.detach() if frozen else p for p in (self.w1, self.b1, self.w2, self.b2))
        h = torch.nn.functional.leaky_relu(free[:, :, None] * w1 + b1, 0.1)
        return torch.einsum("nfh,fhk->nfk", h, w2) + b2


class VAEModule(L.LightningModule):
    """Trains a :class:`SpectrumVAE` with masked reconstruction + annealed KL.

    Logged metrics: ``train/loss`` (the optimised loss at the current KL weight),
    ``train/recon``, ``train/kl`` (nats per spectrum, summed over dims), ``train/kl_weight``;
    ``val/recon``, ``val/kl`` and ``val/loss`` = recon + beta x KL term at the FINAL weight,
    so validation losses compare across the warm-up (early stopping watches it).

    With ``known`` labels (batches then carry ``known`` and ``known_var``, standardised,
    ``(B, K)``), the loss adds ``weight`` x the tied latents' label loss
    (:func:`label_nll`, ``fixed_scale`` with ``known.label_loss``) and ``independence`` x
    the HSIC between the free latents' means and the tied latents given to the decoder
    (all free dims jointly, or summed over every free dim and tied latent with
    ``known.independence_kind`` ``per_dim``; logged as ``train/label_nll``,
    ``train/hsic`` and their ``val/`` twins, and part of both losses). Where a label is
    missing the decoder gets the tied latent's sample, or its mean with ``known.tied_mean``;
    the tied dims' KL counts only with ``known.tied_kl`` (it is still logged); the free
    dims' KL has the floor of :func:`floored_kl`, and, with ``known.conditional_prior``, is
    taken to the learned prior ``N(prior(z_tied), 1)``. With ``known.adversary`` a
    :class:`FreeDimAdversary` learns the tied latents from each drawn free dim (its squared
    error, ``train/adversary``, trains it alone) and the encoder pays ``adversary`` x the
    spread of its guesses (``train/adversary_spread``); neither is part of the validation
    loss.
    """

    def __init__(
        self,
        model: SpectrumVAE,
        loss: LossConfig,
        optim: OptimConfig,
        *,
        seed: int = 0,
        known: KnownLabelsConfig | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss_config = loss
        self.optim_config = optim
        self.seed = int(seed)
        self.known = known if known is not None and known.names else None
        # the conditional prior of the free latents (known_labels.conditional_prior)
        self.prior: nn.Linear | None = None
        if self.known is not None and self.known.conditional_prior:
            k = len(self.known.names)
            self.prior = nn.Linear(k, model.latent_dim - k)
            nn.init.zeros_(self.prior.weight)
            nn.init.zeros_(self.prior.bias)
        # plain types only, so checkpoints load with torch.load(weights_only=True)
        self.save_hyperparameters(
            {
                "architecture": model.config.to_dict(),
                "loss": loss.to_dict(),
                "optim": optim.to_dict(),
                "seed": self.seed,
                "known_labels": None if self.known is None else self.known.to_dict(),
            }
        )
        # the free means and tied latents of recent training spectra, the HSIC's reference
        # sample (known_labels.independence_memory); buffers, so a checkpoint keeps them
        memory = self.known.independence_memory if self.known is not None else 0
        if memory:
            k = len(self.known.names)
            self.register_buffer("hsic_free", torch.zeros(memory, model.latent_dim - k))
            self.register_buffer("hsic_tied", torch.zeros(memory, k))
            self.register_buffer("hsic_seen", torch.zeros((), dtype=torch.long))
        # guesses every tied latent from each free dim alone (known_labels.adversary)
        self.adversary: nn.Module | None = None
        if self.known is not None and self.known.adversary:
            k = len(self.known.names)
            self.adversary = FreeDimAdversary(
                model.latent_dim - k, k, self.known.adversary_hidden, seed=self.seed
            )
        self.recent_losses: deque[torch.Tensor] = deque(maxlen=50)
        self.step_metrics: dict[str, torch.Tensor | float] = {}
        self.val_kl_per_dim: np.ndarray | None = None
        self._val_kl_sum: torch.Tensor | None = None
        self._val_count: torch.Tensor | None = None

    # -- helpers -------------------------------------------------------------------------
    def _generator(self, kind: int, step: int) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(step_seed(self.seed, kind, step, self.global_rank))
        return gen

    def _terms(
        self, batch: dict, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Per-spectrum reconstruction ``(N,)``, KL ``(N, D)`` and, with known labels, the
        extra loss terms (``label_nll (N,)``, ``hsic ()``)."""
        known = batch.get("known") if self.known is not None else None
        tied_mean = known is not None and self.known.tied_mean
        out = self.model(batch["flux"], generator=gen, known=known, tied_mean=tied_mean)
        ivar = None
        if self.loss_config.reconstruction == "ivar":
            err = batch["err"]
            ivar = torch.where(err > 0, 1.0 / err.clamp_min(1e-30).square(), torch.zeros_like(err))
        strength = self.loss_config.line_weight
        recon = reconstruction_loss(
            out["recon"].float(),
            batch["flux"],
            batch["valid"],
            kind=self.loss_config.reconstruction,
            ivar=ivar,
            pixel_weight=line_weights(batch["flux"], batch["valid"], strength)
            if strength
            else None,
        )
        kl = kl_per_dim(out["mu"].float(), out["logvar"].float())
        extra: dict[str, torch.Tensor] = {}
        if known is not None:
            extra = self._known_terms(out, known, batch["known_var"], remember=self.training)
            if self.prior is not None:  # KL(N(mu, s^2) || N(m, 1)) = KL(N(mu - m, s^2) || N(0, 1))
                k = known.shape[1]
                mean = self.prior(out["z"][:, :k].float())
                kl_free = kl_per_dim(out["mu"][:, k:].float() - mean, out["logvar"][:, k:].float())
                kl = torch.cat([kl[:, :k], kl_free], dim=1)
        b = self.model.config.broadening_latent
        if b is not None:  # the width every spectrum of the batch shares
            extra["broadening_mean"] = out["mu"][:, b].float().mean()
        return recon, kl, extra

    def _known_terms(
        self, out: dict, known: torch.Tensor, known_var: torch.Tensor, *, remember: bool
    ) -> dict[str, torch.Tensor]:
        """The label NLL ``(N,)`` and the dependence penalty ``()`` between the free means
        and the tied latents given to the decoder (with the memory of recent spectra when
        ``remember`` and ``independence_memory`` is set)."""
        c, k = self.known, known.shape[1]
        mu, tied = out["mu"].float(), out["z"][:, :k].detach().float()
        free, gain = mu[:, k:], 1.0
        if remember and c.independence_memory:
            free, tied, gain = self._with_memory(free, tied)
        terms = {
            "label_nll": label_nll(
                mu,
                out["logvar"].float(),
                known,
                known_var,
                fixed_scale=c.label_loss == "fixed_scale",
                var_floor=c.tied_sd_floor**2,
            )
        }
        if c.independence_kind == "per_dim":
            terms["hsic"] = gain * hsic_columns(free, tied).sum()
        else:
            terms["hsic"] = gain * hsic(free, tied)
        if self.adversary is not None:
            drawn = out["z"][:, k:].float()
            # the adversary learns each label from each free dim (its own parameters only) ...
            guess = self.adversary(drawn.detach())
            terms["adversary"] = (guess - tied[:, None, :]).square().mean()
            # ... and the encoder is charged for the spread of the adversary's guess, which is
            # 0 when no free dim tells anything of a label's mean
            guess = self.adversary(drawn, frozen=True)
            terms["adversary_spread"] = (guess - guess.mean(dim=0, keepdim=True)).square().mean()
        return terms

    def _with_memory(
        self, free: torch.Tensor, tied: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """The batch stacked on the remembered spectra, the gradient's scale, and the batch
        written over the oldest ones."""
        size, n, seen = self.hsic_free.shape[0], free.shape[0], int(self.hsic_seen)
        kept = min(seen, size)
        both_free = torch.cat([free, self.hsic_free[:kept]])
        both_tied = torch.cat([tied, self.hsic_tied[:kept]])
        slots = (seen + torch.arange(n, device=free.device)) % size
        self.hsic_free[slots[-size:]] = free.detach()[-size:]
        self.hsic_tied[slots[-size:]] = tied[-size:]
        self.hsic_seen += n
        return both_free, both_tied, (n + kept) / n

    def _objective(
        self, recon: torch.Tensor, kl: torch.Tensor, extra: dict, weight: float
    ) -> torch.Tensor:
        """The per-spectrum loss ``(N,)`` at KL weight ``weight``."""
        b, s = self.model.config.broadening_latent, self.loss_config.broadening_kl
        if b is not None and s != 1.0:
            # a nat of line width costs s times the KL; the common part of the width (the
            # batch mean of its latent) pays in full, so a fixed filter cannot take it cheap
            kl = kl.clone()
            kl[:, b] = s * kl[:, b] + (1.0 - s) * 0.5 * extra["broadening_mean"].square()
        if self.known is None:
            return recon + weight * reduce_kl(kl, self.loss_config.kl_reduction)
        c, k = self.known, len(self.known.names)
        kl = floored_kl(kl, k, c.free_kl_floor)
        if not c.tied_kl:  # the tied dims are supervised: no pull towards N(0, 1)
            kl = torch.cat([torch.zeros_like(kl[:, :k]), kl[:, k:]], dim=1)
        kl_term = reduce_kl(kl, self.loss_config.kl_reduction)
        loss = (
            recon
            + weight * kl_term
            + c.weight * extra["label_nll"]
            + c.independence * extra["hsic"]
        )
        if self.adversary is not None and self.training:
            loss = loss + extra["adversary"] + c.adversary * extra["adversary_spread"]
        return loss

    def recent_loss(self, last: int | None = None) -> float | None:
        """Mean optimised loss of the last ``last`` (default all kept, up to 50) steps."""
        losses = list(self.recent_losses)[-last:] if last else list(self.recent_losses)
        if not losses:
            return None
        return float(torch.stack(losses).float().mean())

    def kl_weight_at(self, step: int) -> float:
        c = self.loss_config
        return kl_weight(step, start=c.kl_start, end=c.kl_end, beta=c.beta)

    # -- Lightning hooks ------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        step = self.global_step
        recon, kl, extra = self._terms(batch, self._generator(_TRAIN, step))
        weight = self.kl_weight_at(step)
        loss = self._objective(recon, kl, extra, weight).mean()
        # written to the loggers by the run's callback, before a checkpoint of this step
        # (Lightning would write them after the callbacks: a kill between would lose them)
        self.step_metrics = {
            "train/loss": loss.detach(),
            "train/recon": recon.mean().detach(),
            "train/kl": kl.sum(dim=1).mean().detach(),
            "train/kl_weight": weight,
            **{f"train/{k}": v.mean().detach() for k, v in extra.items()},
        }
        self.recent_losses.append(loss.detach())  # no host sync here (GPU)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_kl_sum = torch.zeros(
            self.model.latent_dim, device=self.device, dtype=torch.float64
        )
        self._val_count = torch.zeros((), device=self.device, dtype=torch.float64)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        recon, kl, extra = self._terms(batch, self._generator(_VAL, batch_idx))
        loss = self._objective(recon, kl, extra, self.loss_config.beta)
        n = batch["flux"].shape[0]
        self.log_dict(
            {
                "val/loss": loss.mean(),
                "val/recon": recon.mean(),
                "val/kl": kl.sum(dim=1).mean(),
                **{f"val/{k}": v.mean() for k, v in extra.items()},
            },
            on_step=False,
            on_epoch=True,
            batch_size=n,
            sync_dist=True,
        )
        self._val_kl_sum += kl.detach().sum(dim=0).double()
        self._val_count += n

    def on_validation_epoch_end(self) -> None:
        total = self.trainer.strategy.reduce(self._val_kl_sum, reduce_op="sum")
        count = self.trainer.strategy.reduce(self._val_count, reduce_op="sum")
        self.val_kl_per_dim = (total / count.clamp_min(1)).cpu().numpy()

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        c = self.optim_config
        # the model's parameters, then the conditional prior's and the adversary's (if any)
        optimizer = torch.optim.Adam(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        if c.schedule == "constant":
            return optimizer
        total = self.trainer.max_steps
        if c.schedule == "cosine":
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        else:
            schedule = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=c.lr, total_steps=total
            )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


__all__ = ["VAEModule", "step_seed"]
