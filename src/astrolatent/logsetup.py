"""Logging set-up for the CLI. Library modules only call ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def configure(verbosity: int = 0) -> None:
    """Route the ``astrolatent`` loggers to a rich handler on stderr.

    verbosity: 0 = warnings, 1 = info, 2 or more = debug.
    """
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logger = logging.getLogger("astrolatent")
    logger.handlers.clear()
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
