"""One root exception with specific subclasses.

Library code raises these; the CLI turns them into one clear red line and an exit code.
Third-party errors (astropy, zarr, pandas) are translated at the boundary where they occur,
so that every message names the file or option and the problem.
"""

from __future__ import annotations


class AstrolatentError(Exception):
    """Root of every error astrolatent raises on purpose."""

    exit_code = 1


class ConfigError(AstrolatentError, ValueError):
    """An option or configuration value is impossible or inconsistent."""

    exit_code = 2


class PathError(AstrolatentError):
    """An error about one file or folder: the message starts with its path, then the reason."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class InputFileError(PathError):
    """An input file cannot be used: unreadable, not the expected format, or bad content."""

    exit_code = 3


class UnknownFormatError(InputFileError):
    """No registered reader recognises the file."""


class LabelError(AstrolatentError):
    """A label table is missing, malformed, or does not match the spectra."""

    exit_code = 3


class RunError(AstrolatentError):
    """A run directory is not a run, or lacks the output of a stage that has not run yet
    (the message names the command that writes it)."""

    exit_code = 4


class UnknownIdError(AstrolatentError):
    """A spectrum id that is not in the run's latents table."""

    exit_code = 2


class MissingExtraError(AstrolatentError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    exit_code = 2


def require(module: str, extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` unless ``module`` can be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(
            f"{what} needs the optional package {module!r}: "
            f"pip install 'astrolatent[{extra}]' (or 'astrolatent[all]')"
        )


class StoreError(AstrolatentError):
    """A spectrum store is missing, incomplete, or inconsistent with the requested operation."""

    exit_code = 4


class OutputFolderError(PathError):
    """An output folder is not astrolatent's to write into or remove (nothing was changed)."""

    exit_code = 6


class TrainingError(AstrolatentError):
    """Training cannot go on: the loss became non-finite, or the hardware request is impossible."""

    exit_code = 7
