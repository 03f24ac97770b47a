"""Pure ``nn.Module`` models (no I/O): the spectrum VAE family and its loss terms."""

from astrolatent.models.vae import (
    ArchitectureConfig,
    SpectrumVAE,
    count_parameters,
    kl_per_dim,
    kl_weight,
    reconstruction_loss,
    reduce_kl,
)

__all__ = [
    "ArchitectureConfig",
    "SpectrumVAE",
    "count_parameters",
    "kl_per_dim",
    "kl_weight",
    "reconstruction_loss",
    "reduce_kl",
]
