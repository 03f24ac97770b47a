"""Analysis of learned representations.

- :mod:`astrolatent.analysis.mi`: mutual information between latents and labels (nats).
- :mod:`astrolatent.analysis.dimensions`: which latent dimensions are informative.
- :mod:`astrolatent.analysis.disentangle`: disentanglement scores (MIG, SAP, DCI).
"""
