"""Training the spectrum VAE: configuration, data module, Lightning module, fit, encode."""
