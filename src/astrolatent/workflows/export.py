"""Export a run's tables (the latents and the analysis tables) as FITS and VOTable."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from astrolatent.config import Config
from astrolatent.errors import RunError
from astrolatent.outputs.layout import ANALYSIS_DIR, LATENTS_FILE
from astrolatent.tables import export_tables


class ExportConfig(Config):
    """Options of ``astrolatent export``: the formats to write beside each table (names of
    :data:`astrolatent.tables.EXPORT_FORMATS`)."""

    formats: list[str] = Field(default_factory=lambda: ["fits", "votable"])


def export_run(run: str | Path, config: ExportConfig | None = None) -> tuple[list[Path], int]:
    """Write ``RUN/latents.parquet`` and the ``RUN/analysis`` CSV tables in every format of
    ``config``; returns the files written and how many tables were read. Raises RunError
    for a folder that is not a run or holds no table yet."""
    config = config or ExportConfig()
    run = Path(run)
    if not run.is_dir():
        raise RunError(f"{run}: not a run directory")
    tables = [run / LATENTS_FILE, *sorted((run / ANALYSIS_DIR).glob("*.csv"))]
    tables = [t for t in tables if t.is_file()]
    if not tables:
        raise RunError(
            f"{run}: no {LATENTS_FILE} or analysis tables; run `astrolatent encode` first"
        )
    return export_tables(tables, config.formats), len(tables)
