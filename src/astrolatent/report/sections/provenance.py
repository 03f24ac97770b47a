"""The last section of every report: the commands that repeat the run and its
configuration files.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from astrolatent.outputs.layout import ANALYSIS_DIR, CONFIG_FILE
from astrolatent.report.markup import Section, esc, para, pre

#: The resolved pipeline configuration a run made by ``astrolatent run`` carries.
PIPELINE_FILE = "pipeline.yaml"


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
    files = [("config.yaml", run_dir / "config.yaml")]
    if kind == "spectrum run":
        files.append(("analysis/config.yaml", run_dir / "analysis" / "config.yaml"))
        store = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("store")
        if store and (Path(store) / "ingest.yaml").is_file():
            files.append((f"store {store}/ingest.yaml", Path(store) / "ingest.yaml"))
    if pipeline.is_file():
        files.append((PIPELINE_FILE, pipeline))
    for title, path in files:
        if path.is_file():
            body += f"<h3>{esc(title)}</h3>" + pre(path.read_text())
    return Section("provenance", "Commands and configuration", body)


def _commands(run_dir: Path, kind: str) -> list[str]:
    """Commands that repeat the run into a new run directory (NEW_RUN) with its settings."""
    run, new = str(run_dir), "NEW_RUN"
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    if kind != "spectrum run":
        data = cfg.get("data", {})
        return [
            f"astrolatent galaxy train {data.get('table')} --target {data.get('target')} "
            f"--run {new} --config {run}/config.yaml",
            f"astrolatent report {new}",
        ]
    lines = [
        f"astrolatent train {cfg.get('store')} --run {new} --config {run}/config.yaml",
        f"astrolatent encode {new}",
    ]
    if (run_dir / ANALYSIS_DIR / CONFIG_FILE).is_file():
        lines.append(f"astrolatent analyze {new} --config {run}/{ANALYSIS_DIR}/{CONFIG_FILE}")
    lines.append(f"astrolatent report {new}")
    return lines
