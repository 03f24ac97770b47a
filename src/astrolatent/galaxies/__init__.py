"""Galaxy estimators: catalogues, simulations with known truth, PDF estimators of a target.

* :mod:`~astrolatent.galaxies.catalog`: magnitudes from fluxes, named column groups,
  sentinel/NaN cleaning with reports;
* :mod:`~astrolatent.galaxies.real`: the SDSS catalogues that ship in PyPI packages
  (kcorrect, MLZ);
* :mod:`~astrolatent.galaxies.simulate`: catalogues and Sersic image cutouts whose
  information paths about the stellar mass are planted and documented;
* :mod:`~astrolatent.galaxies.models`: pure ``nn.Module`` encoders and the PDF head;
* :mod:`~astrolatent.galaxies.metrics`: point estimates, bias, sigma_MAD, outliers, CRPS;
* :mod:`~astrolatent.galaxies.train`: Lightning training into a run directory
  (``fit_estimator``), with out-of-sample predictions for the MI decomposition;
* :mod:`~astrolatent.galaxies.decompose`: the pointwise minimum-MI decomposition of three
  trained runs (X1, X2, both), per galaxy, per class and in bins, with figures;
* :mod:`~astrolatent.galaxies.config`: the typed configurations.

Submodules are imported on demand (the training stack pulls in torch and Lightning).
"""
