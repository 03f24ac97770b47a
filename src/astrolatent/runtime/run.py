"""What a training writes into its run folder besides its own tables: the resolved
configuration (``config.yaml``) and the training summary (``train_summary.json``, with the
provenance header every output carries). Both are written atomically."""

from __future__ import annotations

from pathlib import Path

import yaml

from astrolatent.config import Config
from astrolatent.outputs.io import write_text_atomic
from astrolatent.outputs.layout import CONFIG_FILE, TRAIN_SUMMARY_FILE
from astrolatent.outputs.summaries import OutputFile, provenance, write_summary


def save_config(run_dir: str | Path, config: Config) -> Path:
    """Write ``RUN/config.yaml`` (keys in the configuration's order)."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    return write_text_atomic(Path(run_dir) / CONFIG_FILE, text)


def write_train_summary(
    run_dir: str | Path, model: type[OutputFile], summary: dict, *, seeds: dict[str, int | None]
) -> Path:
    """Write ``RUN/train_summary.json``: the provenance header (format version of ``model``,
    astrolatent version, command line, ``seeds``) followed by ``summary``, checked against
    ``model`` (the spectrum or galaxy train summary) before it is written."""
    header = provenance(format_version=model.FORMAT, seeds=seeds)
    return write_summary(Path(run_dir) / TRAIN_SUMMARY_FILE, model, {**header, **summary})


__all__ = ["save_config", "write_train_summary"]
