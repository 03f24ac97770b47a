"""astrolatent: learn compact representations of astronomical data and measure what they know."""

from astrolatent.errors import AstrolatentError

__version__ = "0.1.0"
__all__ = ["AstrolatentError", "__version__"]
