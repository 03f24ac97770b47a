"""The interactive latent explorer: a local web app over a trained, encoded run.

``astrolatent explore RUN`` serves it (on 127.0.0.1 by default): one slider per informative
latent (others can be added; the tied latents of a run with known labels in a group of
their own, read in their labels' units), the decoded spectrum redrawn as the sliders move, zoom to a
wavelength window, the nearest real spectra in latent space with their ids and labels, and a
latent-vs-label scatter whose points load that spectrum's latent position.

- :mod:`astrolatent.explorer.data`: :class:`ExplorerData`, the run loaded once, with the
  validated answers (decoding, neighbours, spectra, scatter data);
- :mod:`astrolatent.explorer.app`: :func:`create_app`, the FastAPI application;
- ``static/``: the page (HTML, one script, one style sheet; no external resources).
"""

from astrolatent.explorer.app import create_app
from astrolatent.explorer.data import ExplorerData, UnknownIdError

__all__ = ["ExplorerData", "UnknownIdError", "create_app"]
