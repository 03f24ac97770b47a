"""The last section of every report: the commands that repeat the run and its
configuration files.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from astrolatent.outputs.layout import (
    ANALYSIS_CONFIG,
    CONFIG_FILE,
    PIPELINE_FILE,
    STORE_CONFIG_FILE,
)
from astrolatent.report.markup import Section, esc, para, pre


def provenance_section(run_dir: Path, kind: str) -> Section:
    """The commands that repeat the run (``kind``: spectrum or galaxy run) and its
    configuration files: the run's, the analysis', the store's and the pipeline's."""
    body = ""
    pipeline = run_dir / PIPELINE_FILE
    if pipeline.is_file():
        source = (yaml.safe_load(pipeline.read_text()) or {}).get("source", PIPELINE_FILE)
        body += para("Produced by the pipeline command:") + pre(f"astrolatent run {source}")
    body += para(
        "Commands that repeat this run into a new run directory NEW_RUN (the configuration "
        "files below hold every option):"
    )
    body += pre("\n".join(_commands(run_dir, kind)))
    files = [(CONFIG_FILE, run_dir / CONFIG_FILE)]
    if kind == "spectrum run":
        files.append((str(ANALYSIS_CONFIG), run_dir / ANALYSIS_CONFIG))
        store = (yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {}).get("store")
        if store and (Path(store) / STORE_CONFIG_FILE).is_file():
            files.append((f"store {store}/{STORE_CONFIG_FILE}", Path(store) / STORE_CONFIG_FILE))
    if pipeline.is_file():
        files.append((PIPELINE_FILE, pipeline))
    for title, path in files:
        if path.is_file():
            body += f"<h3>{esc(title)}</h3>" + pre(path.read_text())
    return Section("provenance", "Commands and configuration", body)


def _commands(run_dir: Path, kind: str) -> list[str]:
    """Commands that repeat the run into a new run directory (NEW_RUN) with its settings."""
    run, new = str(run_dir), "NEW_RUN"
    cfg = yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {}
    if kind != "spectrum run":
        data = cfg.get("data", {})
        return [
            f"astrolatent galaxy train {data.get('table')} --target {data.get('target')} "
            f"--run {new} --config {run}/{CONFIG_FILE}",
            f"astrolatent report {new}",
        ]
    lines = [
        f"astrolatent train {cfg.get('store')} --run {new} --config {run}/{CONFIG_FILE}",
        f"astrolatent encode {new}",
    ]
    if (run_dir / ANALYSIS_CONFIG).is_file():
        lines.append(f"astrolatent analyze {new} --config {run}/{ANALYSIS_CONFIG}")
    lines.append(f"astrolatent report {new}")
    return lines
