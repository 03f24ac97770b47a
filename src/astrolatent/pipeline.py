"""``astrolatent run PIPELINE.yaml``: the whole chain from one configuration file.

Stages, in order: ``simulate`` (optional) -> ``ingest`` -> ``train`` -> ``encode`` ->
``analyze`` -> ``report``. Each calls the library function of its command. Everything goes
under the ``out`` folder (relative paths in the file are relative to the file's folder)::

    OUT/spectra/      simulated FITS files, labels.csv, truth.csv (simulate)
    OUT/store/        the spectrum store (ingest)
    OUT/run/          model, latents, analysis/, report/ (train, encode, analyze, report)
    OUT/.stamps/      one JSON stamp per finished stage

A stage is skipped when it is up to date: its stamp holds the same key and its outputs
exist. A stage's key hashes its own configuration and the stamp of the stage before it,
so changing a stage's options reruns that stage and every stage after it; ``force``
reruns a stage (and those after it) whatever the stamps say. A training stage that was
interrupted resumes from its last checkpoint when rerun with the same key.

Example (``examples/pipeline.yaml`` is the demo)::

    out: demo-output
    simulate: {n: 1500, n_objects: 1200, random_state: 1}
    ingest: {workers: 2}
    train: {max_minutes: 4}
    analyze: {n_permutations: 50, n_bootstrap: 10, max_samples: 1500}
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field

from astrolatent.config import Config, read_mapping
from astrolatent.data.ingest import IngestConfig
from astrolatent.errors import ConfigError, InputFileError
from astrolatent.outputs import marks
from astrolatent.outputs.layout import (
    ANALYSIS_DIR,
    ANALYSIS_SUMMARY,
    CONFIG_FILE,
    LATENTS_FILE,
    MODEL_FILE,
    PIPELINE_FILE,
    REPORT_DIR,
    REPORT_FILE,
    SIMULATION_LABELS_FILE,
    STAMP_DIR,
    STAMP_FILE,
    STORE_SUMMARY_FILE,
)
from astrolatent.outputs.summaries import (
    StageStamp,
    load_stamp,
    load_summary,
    provenance,
    write_summary,
)
from astrolatent.simulate.spectra import SpectrumSimulationConfig
from astrolatent.workflows.analyze import AnalyzeConfig

log = logging.getLogger(__name__)

StageName = Literal["simulate", "ingest", "train", "encode", "analyze", "report"]
STAGES: tuple[str, ...] = get_args(StageName)


class IngestStage(IngestConfig):
    """``ingest`` options plus its inputs (default: the simulated spectra and their labels;
    with ``preset: gaia-xp-apogee``, the spectra shipped with that preset)."""

    inputs: list[str] | None = None


class TrainStage(Config):
    """``train`` options: preset, budget, ``known_labels`` (store labels tied to their own
    latents, as ``astrolatent train --known-labels``), and ``options`` merged over the
    preset (the mapping ``astrolatent train --config`` reads, e.g. ``{loss: {beta: 0.002}}``)."""

    preset: str | None = None
    known_labels: list[str] | None = None
    max_steps: int | None = Field(default=None, gt=0)
    max_minutes: float | None = Field(default=None, gt=0)
    options: dict = Field(default_factory=dict)


class EncodeStage(Config):
    """``encode`` options."""

    batch_size: int = Field(default=64, ge=1)
    device: str = "auto"


class ReportStage(Config):
    """``report`` options (``out``: the HTML file; default ``RUN/report/report.html``)."""

    out: str | None = None


class RunConfig(Config):
    """Options of ``astrolatent run``: the stage to rerun with the ones after it (None:
    only stages that are not up to date) and the output folder (None: the file's ``out``)."""

    force: StageName | None = None
    out: str | None = None


class PipelineConfig(Config):
    """The whole chain (see the module docstring); ``simulate`` is optional."""

    out: str
    simulate: SpectrumSimulationConfig | None = None
    ingest: IngestStage = Field(default_factory=IngestStage)
    train: TrainStage = Field(default_factory=TrainStage)
    encode: EncodeStage = Field(default_factory=EncodeStage)
    analyze: AnalyzeConfig = Field(default_factory=AnalyzeConfig)
    report: ReportStage = Field(default_factory=ReportStage)


@dataclass
class Layout:
    """Where the stages read and write."""

    out: Path
    spectra: Path
    store: Path
    run: Path
    report: Path
    stamps: Path

    @classmethod
    def of(cls, config: PipelineConfig) -> Layout:
        out = Path(config.out)
        run = out / "run"
        report = Path(config.report.out) if config.report.out else run / REPORT_DIR / REPORT_FILE
        return cls(out, out / "spectra", out / "store", run, report, out / STAMP_DIR)


def load_pipeline(path: str | Path, *, out: str | Path | None = None) -> PipelineConfig:
    """Read a pipeline file; relative paths in it become relative to its folder.

    ``out`` (relative to the current directory) replaces the file's ``out``. Raises
    ConfigError for unknown options, missing input paths and impossible combinations.
    """
    path = Path(path)
    data = read_mapping(path, what="pipeline configuration")
    base = path.parent

    def anchored(value: str) -> str:
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else base / p)

    if out is not None:
        data["out"] = str(out)
    elif isinstance(data.get("out"), str):
        data["out"] = anchored(data["out"])
    ingest = data.get("ingest")
    if isinstance(ingest, dict):
        ingest = dict(ingest)
        if isinstance(ingest.get("inputs"), list):
            ingest["inputs"] = [anchored(str(p)) for p in ingest["inputs"]]
        if isinstance(ingest.get("labels"), str):
            ingest["labels"] = anchored(ingest["labels"])
        data["ingest"] = ingest
    report = data.get("report")
    if isinstance(report, dict) and isinstance(report.get("out"), str):
        data["report"] = {**report, "out": anchored(report["out"])}
    config = PipelineConfig.from_dict(data, source=str(path))
    check(config)
    return config


def check(config: PipelineConfig) -> None:
    """Raise ConfigError for inputs that do not exist, a chain with no spectra, or training
    options the trainer would refuse."""
    from astrolatent.data import presets
    from astrolatent.training.config import make_config, with_known_labels

    ing = config.ingest
    if config.simulate is None:
        if not ing.inputs and ing.preset is None:
            raise ConfigError(
                "ingest.inputs: give the spectrum files/folders to ingest "
                "(or add a simulate stage, or use ingest.preset: gaia-xp-apogee)"
            )
        if not ing.inputs and not presets.get(ing.preset).default_inputs():
            raise ConfigError(f"ingest.preset {ing.preset!r} ships no data: give ingest.inputs")
    elif ing.inputs:
        raise ConfigError(
            "ingest.inputs and simulate are both given: the simulated spectra are the inputs; "
            "remove one of them"
        )
    for p in ing.inputs or []:
        if not Path(p).exists():
            raise ConfigError(f"ingest.inputs: {p} does not exist")
    if ing.labels is not None and not Path(ing.labels).is_file():
        raise ConfigError(f"ingest.labels: {ing.labels} does not exist")
    if Path(config.out).exists() and not Path(config.out).is_dir():
        raise ConfigError(f"out: {config.out} exists and is not a folder")
    if config.report.out and Path(config.report.out).suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"report.out: {config.report.out} must be an .html file")
    # the training options are checked now, not after simulate and ingest: the preset and
    # every section but the architecture (whose layout follows the spectra's length)
    train = config.train
    try:
        make_config(
            8192,
            preset=train.preset,
            overrides=with_known_labels(
                {k: v for k, v in train.options.items() if k != "architecture"},
                train.known_labels,
            ),
            max_steps=train.max_steps,
            max_minutes=train.max_minutes,
        )
    except ConfigError as exc:
        raise ConfigError(f"train.preset/train.options: {exc}") from None


@dataclass
class StageResult:
    """What one stage did: ``ran`` or ``skipped``, in ``seconds``, with a one-line message."""

    stage: str
    status: Literal["ran", "skipped"]
    seconds: float
    message: str = ""


@dataclass
class PipelineResult:
    """The stages' results, the report path and the analysis summary (summary.json)."""

    stages: list[StageResult]
    report: Path
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "stages": [asdict(s) for s in self.stages],
            "report": str(self.report),
            "summary": self.summary,
        }


#: progress(stage, message, completed, total): completed/total None when unknown.
Progress = Callable[[str, str, float | None, float | None], None]


def _hash(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _stage_configs(config: PipelineConfig, layout: Layout) -> dict[str, dict | None]:
    return {
        "simulate": None if config.simulate is None else config.simulate.to_dict(),
        "ingest": {**config.ingest.to_dict(), "store": str(layout.store)},
        "train": {**config.train.to_dict(), "run": str(layout.run)},
        "encode": config.encode.to_dict(),
        "analyze": config.analyze.to_dict(),
        "report": {"out": str(layout.report)},
    }


def _outputs(stage: str, layout: Layout) -> list[Path]:
    return {
        "simulate": [layout.spectra / SIMULATION_LABELS_FILE],
        "ingest": [layout.store / STORE_SUMMARY_FILE],
        "train": [layout.run / MODEL_FILE],
        "encode": [layout.run / LATENTS_FILE],
        "analyze": [layout.run / ANALYSIS_SUMMARY],
        "report": [layout.report],
    }[stage]


def _is_stamps(folder: Path) -> bool:
    """A stamps folder written before folders were marked: only ``<stage>.json`` files."""
    return all(
        p.suffix in (".json", ".tmp") and p.name.split(".")[0] in STAGES for p in folder.iterdir()
    )


def _read_stamp(path: Path) -> dict | None:
    """The stamp at ``path`` as written (None if there is none; one that cannot be read is
    logged and the stage reruns)."""
    if not path.is_file():
        return None
    try:
        return load_stamp(path).model_dump(exclude_unset=True)
    except InputFileError as exc:
        log.warning("%s; the stage reruns", exc)
        return None


def _write_stamp(path: Path, stage: str, key: str, status: str, **more: float) -> dict:
    """Write the stamp of ``stage`` and return it as written."""
    payload = {
        **provenance(format_version=StageStamp.FORMAT),
        **{"stage": stage, "key": key, "status": status, **more},
    }
    write_summary(path, StageStamp, payload)
    return payload


def run_pipeline(
    config: PipelineConfig,
    *,
    force: str | None = None,
    source: str | Path | None = None,
    progress: Progress | None = None,
) -> PipelineResult:
    """Run the stages of ``config`` that are not up to date; return what each did.

    Args:
        config: the pipeline (paths already resolved, e.g. by :func:`load_pipeline`).
        force: a stage to rerun (with every stage after it) even when up to date.
        source: the pipeline file, recorded in ``RUN/pipeline.yaml`` for the report.
        progress: called as ``progress(stage, message, completed, total)`` during a stage.
    """
    if force is not None and force not in STAGES:
        raise ConfigError(f"--force {force!r}: not a stage; stages: {', '.join(STAGES)}")
    if force == "simulate" and config.simulate is None:
        raise ConfigError("--force simulate: this pipeline has no simulate stage")
    layout = Layout.of(config)
    if not layout.out.is_dir():  # an existing OUT may be the user's: only our sub-folders go
        marks.claim(layout.out, "pipeline", (STAMP_DIR, "spectra", "store", "run"), what="out")
    owns = (STAMP_FILE.format("*"),)
    marks.claim(layout.stamps, "stamps", owns, legacy=_is_stamps, what="the stamps folder")
    report = progress or (lambda *_: None)
    configs = _stage_configs(config, layout)
    results: list[StageResult] = []
    previous = ""  # the stamp of the stage before: a rerun upstream changes every key after it
    forced = False
    for stage in STAGES:
        if configs[stage] is None:
            continue
        forced = forced or stage == force
        key = _hash({"stage": stage, "config": configs[stage], "previous": previous})
        stamp_path = layout.stamps / STAMP_FILE.format(stage)
        stamp = _read_stamp(stamp_path)
        done = (
            stamp is not None
            and stamp.get("status") == "done"
            and stamp.get("key") == key
            and all(p.exists() for p in _outputs(stage, layout))
        )
        if done and not forced:
            results.append(StageResult(stage, "skipped", 0.0, "up to date"))
            log.info("%s: up to date, skipped", stage)
            previous = _hash(stamp)
            continue
        resume = (
            stage == "train"
            and not forced
            and stamp is not None
            and stamp.get("status") == "started"
            and stamp.get("key") == key
            and (layout.run / CONFIG_FILE).is_file()  # killed before the run began: start it
        )
        _write_stamp(stamp_path, stage, key, "started")
        t0 = time.perf_counter()
        if stage == "report":
            _record_pipeline(config, layout, source)
        message = _RUNNERS[stage](
            config, layout, resume, lambda msg, done, total, s=stage: report(s, msg, done, total)
        )
        seconds = time.perf_counter() - t0
        stamp = _write_stamp(stamp_path, stage, key, "done", finished=time.time(), seconds=seconds)
        previous = _hash(stamp)
        results.append(StageResult(stage, "ran", seconds, message))
        log.info("%s: %s (%.1f s)", stage, message, seconds)
    summary = load_summary(layout.run) if (layout.run / ANALYSIS_SUMMARY).is_file() else {}
    return PipelineResult(results, layout.report, summary)


def _record_pipeline(config: PipelineConfig, layout: Layout, source: str | Path | None) -> None:
    """``RUN/pipeline.yaml``: the resolved pipeline and the file it came from."""
    import yaml

    payload = {"source": str(source) if source else None, "pipeline": config.to_dict()}
    (layout.run / PIPELINE_FILE).write_text(yaml.safe_dump(payload, sort_keys=False))


StageProgress = Callable[[str, float | None, float | None], None]


def _simulate(config: PipelineConfig, layout: Layout, resume: bool, step: StageProgress) -> str:
    from astrolatent.simulate.spectra import claim_spectra_folder, write_spectra

    sim = config.simulate
    claim_spectra_folder(layout.spectra, fresh=True)
    done = 0

    def advance(k: int) -> None:
        nonlocal done
        done += k
        step("simulating", done, sim.n)

    output = write_spectra(layout.spectra, sim, progress=advance)
    return f"{len(output.files)} spectra in {output.out_dir}"


def _ingest(config: PipelineConfig, layout: Layout, resume: bool, step: StageProgress) -> str:
    from astrolatent.data import presets
    from astrolatent.data.ingest import ingest

    stage = config.ingest
    options = stage.model_dump(exclude={"inputs"}, exclude_unset=True)
    if config.simulate is not None:
        inputs: list[Any] = [layout.spectra]
        options.setdefault("labels", str(layout.spectra / SIMULATION_LABELS_FILE))
    else:
        inputs = list(stage.inputs or presets.get(stage.preset).default_inputs())
    if stage.preset is not None:
        options.pop("preset")
        ingest_config = IngestConfig.from_preset(stage.preset, **options)
    else:
        ingest_config = IngestConfig.from_dict(options, source="ingest stage")
    summary = ingest(
        inputs,
        layout.store,
        ingest_config,
        overwrite=True,
        progress=lambda done, total: step("ingesting", done, total),
    )
    if summary.n_quarantined:
        log.warning(
            "%d input files quarantined; see `astrolatent info %s`",
            summary.n_quarantined,
            layout.store,
        )
    return (
        f"{summary.n_ok} spectra accepted, {summary.n_rejected} rejected, "
        f"{summary.n_quarantined} quarantined -> {layout.store}"
    )


def _train(config: PipelineConfig, layout: Layout, resume: bool, step: StageProgress) -> str:
    from astrolatent.training.config import with_known_labels
    from astrolatent.training.fit import claim_run, fit

    if not resume and layout.run.exists():
        claim_run(layout.run, fresh=True)  # all it wrote comes from this stage or later ones
    t = config.train

    def progress(info: dict) -> None:
        total, done = info["max_steps"], info["step"]
        if not total and info["max_seconds"]:
            total, done = info["max_seconds"], min(info["seconds"], info["max_seconds"])
        loss = "" if info["loss"] is None else f" loss {info['loss']:.4g}"
        step(f"training step {info['step']}{loss}", done, total)

    summary = fit(
        layout.store,
        layout.run,
        with_known_labels(t.options or None, t.known_labels),
        preset=t.preset,
        max_steps=t.max_steps,
        max_minutes=t.max_minutes,
        resume=resume,
        progress=progress,
    )
    return (
        f"{summary.preset}: {summary.steps} steps, {summary.epochs:.1f} epochs, "
        f"stopped by {summary.stopped_by}; validation loss {summary.final_val_loss}"
    )


def _encode(config: PipelineConfig, layout: Layout, resume: bool, step: StageProgress) -> str:
    from astrolatent.training.encode import encode

    result = encode(
        layout.run,
        batch_size=config.encode.batch_size,
        device=config.encode.device,
        progress=lambda done, total: step("encoding", done, total),
    )
    return f"{result.n_spectra} spectra into {result.latent_dim} latents"


def _analyze(config: PipelineConfig, layout: Layout, resume: bool, step: StageProgress) -> str:
    from astrolatent.workflows.analyze import analyze_run, claim_analysis

    analysis = claim_analysis(layout.run / ANALYSIS_DIR, fresh=True)
    summary = analyze_run(layout.run, config.analyze, progress=lambda msg: step(msg, None, None))
    return f"{len(summary['labels'])} labels analysed -> {analysis}"


def _report(config: PipelineConfig, layout: Layout, resume: bool, step: StageProgress) -> str:
    from astrolatent.report.html import build_report

    step("writing the report", None, None)
    return str(build_report(layout.run, layout.report))


_RUNNERS: dict[str, Callable[[PipelineConfig, Layout, bool, StageProgress], str]] = {
    "simulate": _simulate,
    "ingest": _ingest,
    "train": _train,
    "encode": _encode,
    "analyze": _analyze,
    "report": _report,
}

__all__ = [
    "STAGES",
    "PipelineConfig",
    "PipelineResult",
    "StageResult",
    "load_pipeline",
    "run_pipeline",
]
