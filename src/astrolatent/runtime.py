"""What every training in astrolatent shares (the spectrum VAE and the galaxy estimators):
checkpoint files with a format version, and Lightning kept quiet about what does not apply.

Runs themselves (folder marks, atomic writes, file names) are the outputs layer's; the two
Lightning modules, their data and their fit loops are their packages' own.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from astrolatent.errors import RunError
from astrolatent.outputs.io import write_atomic

#: Lightning's loggers of device banners and tips.
_LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch",
    "lightning.fabric",
    "lightning",
)


def save_checkpoint(path: str | Path, *, format_version: int, **payload: Any) -> Path:
    """Write ``{"format_version", **payload}`` (state_dict, config, ...) atomically."""
    data = {"format_version": format_version, **payload}
    return write_atomic(Path(path), lambda tmp: torch.save(data, tmp))


def load_checkpoint(path: str | Path, *, format_version: int, rebuild: str) -> dict:
    """The payload of a checkpoint written by :func:`save_checkpoint`.

    Raises RunError naming the file and the command ``rebuild`` that writes a new one when
    it is missing, unreadable, or of another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: not found; {rebuild}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a broken or foreign file
        raise RunError(
            f"{path}: not a checkpoint astrolatent can read ({exc}); {rebuild}"
        ) from None
    version = payload.get("format_version") if isinstance(payload, dict) else None
    if version != format_version:
        raise RunError(
            f"{path}: checkpoint format {version}, this astrolatent reads {format_version}; "
            f"{rebuild}"
        )
    return payload


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's device banners, tips and hints that do not apply to these runs."""
    loggers = [logging.getLogger(n) for n in _LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # loader workers are chosen on purpose (none on CPU, where they take the cores)
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            # accelerator="cpu" on a GPU machine is the configuration's choice
            warnings.filterwarnings("ignore", message=r".*GPU available but not used.*")
            # Lightning calls torch's deprecated pytree LeafSpec (torch >= 2.10)
            warnings.filterwarnings(
                "ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning
            )
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
