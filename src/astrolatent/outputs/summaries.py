"""The JSON summaries stages write, and how every other tool reads them.

Each summary carries a header (:func:`provenance`): its ``format_version`` (raised when its keys
change), the astrolatent version, the command line and the seeds that produced it. Readers
go through the typed loaders here, which name the file and the command that rebuilds it when a
file is missing, corrupt, from another format version, or lacks a key they need.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from astrolatent import __version__
from astrolatent.errors import InputFileError, RunError
from astrolatent.outputs.layout import ANALYSIS_SUMMARY

#: Format versions of the summaries (files without one are format 1). Raise one when the
#: keys of its file change. Analysis format 2 adds ``roles``, per-label
#: ``best_informative_dim`` / ``r_info_informative`` and, for runs with known labels, the
#: ``known`` and ``free`` blocks; readers take both.
ANALYSIS_FORMAT_VERSION = 2
TRAIN_SUMMARY_FORMAT_VERSION = 1
INGEST_SUMMARY_FORMAT_VERSION = 1
#: 2: the default measure is "mmi" and the file says what its group atoms mean ("note").
DECOMPOSITION_FORMAT_VERSION = 2
CAUSAL_FORMAT_VERSION = 1


def provenance(*, format_version: int, seeds: dict[str, int | None] | None = None) -> dict:
    """The header every summary holds: format version, astrolatent version, command, seeds."""
    return {
        "format_version": format_version,
        "astrolatent_version": __version__,
        "command": " ".join(
            Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv)
        ),
        "seeds": dict(seeds or {}),
    }


class _Informative(BaseModel):
    model_config = ConfigDict(extra="allow")
    dispersion: dict[str, Any]
    kl: dict[str, Any]
    agreed: list[int]


class AnalysisSummary(BaseModel):
    """``RUN/analysis/summary.json``: the keys other tools rely on (the rest is kept as is)."""

    model_config = ConfigDict(extra="allow")
    format_version: int = 1
    n_latent: int
    informative: _Informative
    labels: dict[str, dict[str, Any]]

    def analysed_dims(self) -> list[int]:
        return analysed_dims(self.informative.model_dump())


def read_json(path: Path, rebuild: str) -> Any:
    """The JSON content of ``path``; errors name the file and the command ``rebuild``."""
    if not path.is_file():
        raise RunError(f"{path}: not found; run `{rebuild}` first")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"not valid JSON ({exc}); rerun `{rebuild}`") from None


def load_summary(run_dir: str | Path) -> dict:
    """``RUN/analysis/summary.json`` as a dict, checked for the keys other tools read.

    Raises RunError when it does not exist (``analyze`` has not run) and InputFileError
    when it is not valid JSON, comes from a newer format, or lacks the informative-dims or
    labels blocks.
    """
    path = Path(run_dir) / ANALYSIS_SUMMARY
    rebuild = f"astrolatent analyze {run_dir}"
    payload = read_json(path, rebuild)
    if not isinstance(payload, dict):
        raise InputFileError(path, f"is not a JSON object; rerun `{rebuild}`")
    try:
        summary = AnalysisSummary.model_validate(payload)
    except ValidationError as exc:
        missing = [".".join(map(str, e["loc"])) for e in exc.errors()]
        raise InputFileError(path, f"lacks {', '.join(missing)}; rerun `{rebuild}`") from None
    if summary.format_version > ANALYSIS_FORMAT_VERSION:
        raise InputFileError(
            path,
            f"format {summary.format_version} is newer than this astrolatent reads "
            f"({ANALYSIS_FORMAT_VERSION}); upgrade astrolatent or rerun `{rebuild}`",
        )
    return payload


def analysed_dims(informative: dict) -> list[int]:
    """The dims an analysis works on (traversals, redundancy, disentanglement, the explorer's
    sliders): those both methods call informative, else those by dispersion."""
    return [int(d) for d in (informative.get("agreed") or informative["dispersion"]["dims"])]
