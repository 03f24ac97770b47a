"""Causal analysis in latent space (METHOD.md, B3).

- :mod:`~astrolatent.analysis.causal.local`: local tests of the target against a query
  variable in neighbourhoods of the latent S, optionally conditioned on other variables;
- :mod:`~astrolatent.analysis.causal.discover`: global causal discovery (PC, FCI, GES,
  DirectLiNGAM) returning one :class:`CausalGraph` type, with subsample edge stability;

Both are applied to galaxy-estimator runs by :mod:`astrolatent.workflows.causal`; their figures
are in :mod:`astrolatent.figures.causal`.
"""

from astrolatent.analysis.causal.discover import (
    CausalGraph,
    DiscoveryConfig,
    discover,
    skeleton_scores,
)
from astrolatent.analysis.causal.local import LocalTestResult, local_tests

__all__ = [
    "CausalGraph",
    "DiscoveryConfig",
    "LocalTestResult",
    "discover",
    "local_tests",
    "skeleton_scores",
]
