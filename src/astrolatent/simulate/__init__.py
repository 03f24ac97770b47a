"""Generators of synthetic data with known ground truth.

Interpretation tools are only trustworthy if they recover what was planted:

* :mod:`astrolatent.simulate.spectra`: stellar spectra (blackbody continuum, reddening,
  absorption lines at real wavelengths that depend on Teff, log g and [Fe/H], rotation,
  radial velocity, tellurics, noise), written as ESO 1D FITS files plus a labels table with
  hidden factors left out and a negative control added;
* :mod:`astrolatent.simulate.lines`: the line list and line model they use.
* :mod:`astrolatent.simulate.infotheory`: information-theory toys with analytic truth,
  the MI task families of the "Beyond Normal" benchmark and the canonical Gaussian PID
  cases.
"""

from astrolatent.simulate import spectra
from astrolatent.simulate.spectra import *  # noqa: F403 (the names of spectra.__all__)

__all__ = spectra.__all__
