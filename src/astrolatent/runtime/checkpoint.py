"""Checkpoint and model files with a format version, for the spectrum and galaxy runs.

A file is ``torch.save({"format_version": ..., **payload})``, written atomically; reading
one of another version (or a broken or foreign file) fails with one line naming the file
and the command that writes a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from astrolatent.config import Config
from astrolatent.errors import RunError
from astrolatent.outputs.io import write_atomic

C = TypeVar("C", bound=Config)


def save_checkpoint(path: str | Path, *, format_version: int, **payload: Any) -> Path:
    """Write ``{"format_version", **payload}`` (state_dict, config, ...) atomically."""
    data = {"format_version": format_version, **payload}
    return write_atomic(Path(path), lambda tmp: torch.save(data, tmp))


def save_model(
    path: str | Path, model: nn.Module, config: Config, *, format_version: int, **extra: Any
) -> Path:
    """Write ``{"format_version", "config", "state_dict", **extra}``: the model's weights (on
    the CPU) with the configuration that builds it, for inference."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(
        path, format_version=format_version, config=config.to_dict(), state_dict=state, **extra
    )


def load_model(
    path: str | Path,
    config_type: type[C],
    build: Callable[[C, dict], nn.Module],
    *,
    format_version: int,
    rebuild: str,
) -> tuple[nn.Module, C, dict]:
    """The model in a file written by :func:`save_model` (on the CPU, in eval mode), its
    configuration and the file's whole payload. ``build(config, payload)`` makes the
    untrained model the weights load into; errors as :func:`load_checkpoint`, and RunError
    for a file without a configuration and weights or whose weights do not fit it."""
    payload = load_checkpoint(path, format_version=format_version, rebuild=rebuild)
    missing = [key for key in ("config", "state_dict") if key not in payload]
    if missing:
        raise RunError(f"{path}: not a model file (no {', '.join(missing)}); {rebuild}")
    config = config_type.from_dict(payload["config"], source=str(path))
    model = build(config, payload)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:  # weights of another layout than the configuration's
        first = str(exc).strip().splitlines()[0]
        raise RunError(
            f"{path}: the weights do not fit its configuration ({first}); {rebuild}"
        ) from None
    model.eval()
    return model, config, payload


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


__all__ = ["load_checkpoint", "load_model", "save_checkpoint", "save_model"]
