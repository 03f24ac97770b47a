"""The JSON files stages write, and how every other tool reads them.

One pydantic model per file (the keys readers rely on; other keys are kept as they are) and
one typed loader each. Each file carries a header (:func:`provenance`): its ``format_version``
(raised when its keys change), the astrolatent version, the command line and the seeds that
produced it. Writers go through :func:`write_summary` (the payload is checked against its
model, then written atomically); readers go through the loaders, which name the file and the
command that rebuilds it when a file is missing (:class:`~astrolatent.errors.RunError`), or
corrupt, from a newer format version, or lacks a key they need
(:class:`~astrolatent.errors.InputFileError`).

Files, their models and loaders (``docs/design.md`` has the table):
``STORE/summary.json`` :class:`StoreSummary` :func:`load_store_summary`; a spectrum run's
``train_summary.json`` :class:`SpectrumTrainSummary` :func:`load_train_summary`, a galaxy
run's :class:`GalaxyTrainSummary` :func:`load_galaxy_summary`; ``analysis/summary.json``
:class:`AnalysisSummary` :func:`load_summary`; ``data_summary.json`` :class:`DataSummary`
:func:`load_data_summary`; ``traversals.json`` (a list of :class:`Traversal`)
:func:`load_traversals`; ``decomposition.json`` :class:`Decomposition`
:func:`load_decomposition`; ``local.json`` :class:`LocalTests` :func:`load_local_tests`;
``discovery.json`` :class:`Discovery` :func:`load_discovery`; ``dag.json``
:class:`DAGTruth` :func:`load_dag_truth`; the pipeline's ``OUT/.stamps/STAGE.json``
:class:`StageStamp` :func:`load_stamp`.

The latents file records :class:`LatentsMetadata` in its Parquet metadata
(:func:`latents_metadata` builds it, :func:`read_latents_metadata` reads it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from astrolatent import __version__
from astrolatent.errors import InputFileError, RunError
from astrolatent.outputs.io import write_text_atomic
from astrolatent.outputs.layout import (
    ANALYSIS_DIR,
    ANALYSIS_SUMMARY,
    DATA_SUMMARY_FILE,
    LATENTS_METADATA_KEY,
    STORE_SUMMARY_FILE,
    TRAIN_SUMMARY_FILE,
    TRAVERSALS_FILE,
)

#: Format versions of the files (files without one are format 1). Raise one when the keys
#: of its file change. Analysis format 2 adds ``roles``, per-label ``best_informative_dim`` /
#: ``r_info_informative`` and, for runs with known labels, the ``known`` and ``free`` blocks;
#: 3: ``free.leakage`` is measured on draws of the latents (``max_mi``, ``dim``, ``r2``; it
#: was on the means, now ``max_mi_means``, ``dim_means``, ``r2_means``). Readers take all.
ANALYSIS_FORMAT_VERSION = 3
TRAIN_SUMMARY_FORMAT_VERSION = 1
INGEST_SUMMARY_FORMAT_VERSION = 1
#: 2: the default measure is "mmi" and the file says what its group atoms mean ("note").
DECOMPOSITION_FORMAT_VERSION = 2
CAUSAL_FORMAT_VERSION = 1
#: 2: the header (format version, astrolatent version, command, seeds) was added.
DATA_SUMMARY_FORMAT_VERSION = 2
DAG_FORMAT_VERSION = 2
STAMP_FORMAT_VERSION = 2
#: ``traversals.json`` is a bare list (format 1): a later format would be an object.
TRAVERSALS_FORMAT_VERSION = 1


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


# ---------------------------------------------------------------------------------------
# the models
# ---------------------------------------------------------------------------------------
class OutputFile(BaseModel):
    """The header of every JSON file a stage writes (absent in files written before it)."""

    model_config = ConfigDict(extra="allow")
    #: the format this astrolatent writes and reads (newer files are refused)
    FORMAT: ClassVar[int] = 1
    format_version: int = 1
    astrolatent_version: str | None = None
    command: str | None = None
    seeds: dict[str, int | None] = Field(default_factory=dict)


class StoreSummary(OutputFile):
    """``STORE/summary.json``: the counts of the last ingestion."""

    FORMAT: ClassVar[int] = INGEST_SUMMARY_FORMAT_VERSION
    n_files: int
    n_ok: int
    n_rejected: int
    n_quarantined: int


class SpectrumTrainSummary(OutputFile):
    """``RUN/train_summary.json`` of a spectrum run (``astrolatent train``)."""

    FORMAT: ClassVar[int] = TRAIN_SUMMARY_FORMAT_VERSION
    preset: str | None = None
    steps: int
    epochs: float
    stopped_by: str


class GalaxyTrainSummary(OutputFile):
    """``RUN/train_summary.json`` of a galaxy-estimator run (``astrolatent galaxy train``):
    the input ``columns``, the held-out ``metrics`` and one entry per trained model."""

    FORMAT: ClassVar[int] = TRAIN_SUMMARY_FORMAT_VERSION
    table: str | None = None
    target: str | None = None
    columns: list[str]
    images: str | None = None
    n_objects: int | None = None
    n_models: int | None = None
    latent_dim: int | None = None
    n_parameters: int | None = None
    cleaning: dict[str, Any] = Field(default_factory=dict)
    models: list[dict[str, Any]] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)


class _Informative(BaseModel):
    model_config = ConfigDict(extra="allow")
    dispersion: dict[str, Any]
    kl: dict[str, Any]
    agreed: list[int]


class AnalysisSummary(OutputFile):
    """``RUN/analysis/summary.json``: the keys other tools rely on (the rest is kept as is)."""

    FORMAT: ClassVar[int] = ANALYSIS_FORMAT_VERSION
    n_latent: int
    informative: _Informative
    labels: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _dims_in_range(self) -> AnalysisSummary:
        outside = [d for d in self.analysed_dims() if not 0 <= d < self.n_latent]
        if outside:
            raise ValueError(f"informative dims {outside} are not among the {self.n_latent}")
        return self

    def analysed_dims(self) -> list[int]:
        return analysed_dims(self.informative.model_dump())


class _Quarantined(BaseModel):
    model_config = ConfigDict(extra="allow")
    file: str
    reason: str


class DataSummary(OutputFile):
    """``RUN/analysis/data_summary.json``: the run's store as the report shows it (written
    by ``astrolatent analyze``; wavelengths in Angstrom)."""

    FORMAT: ClassVar[int] = DATA_SUMMARY_FORMAT_VERSION
    path: str
    n_spectra: int
    n_objects: int
    n_rejected: int
    n_quarantined: int
    length: int
    dtype: str
    wavelength_range: tuple[float, float]
    format: str | None = None
    preset: str | None = None
    rejection_reasons: dict[str, int] = Field(default_factory=dict)
    quarantined: list[_Quarantined] = Field(default_factory=list)
    preprocess: dict[str, Any] | None = None
    label_coverage: dict[str, int] = Field(default_factory=dict)


class _Wavelength(BaseModel):
    model_config = ConfigDict(extra="allow")
    wavelength: float  # Angstrom
    response: float  # max - min of the decoded flux over the sweep
    line: str | None = None


class Traversal(BaseModel):
    """One entry of ``RUN/analysis/traversals.json``: a dim's sweep ``values`` and its most
    responsive wavelengths."""

    model_config = ConfigDict(extra="allow")
    dim: int
    values: list[float] = Field(default_factory=list)
    top_wavelengths: list[_Wavelength] = Field(default_factory=list)


class Traversals(RootModel[list[Traversal]]):
    """``traversals.json``: a list (format 1, no header)."""

    FORMAT: ClassVar[int] = TRAVERSALS_FORMAT_VERSION


class Decomposition(OutputFile):
    """``decomposition.json`` of ``astrolatent galaxy decompose``: the four atoms and their
    ``*_err`` (nats; None when not computed), per class and per bin (``low``, ``high``)."""

    FORMAT: ClassVar[int] = DECOMPOSITION_FORMAT_VERSION
    redundancy: float | None
    unique1: float | None
    unique2: float | None
    synergy: float | None
    method: str
    n: int | None = None
    target: str | None = None
    x1: list[str] | str | None = None
    x2: list[str] | str | None = None
    note: str | None = None
    by_class: dict[str, dict[str, Any]] | None = None
    by_bin: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    figures: dict[str, str] = Field(default_factory=dict)


class LocalTests(OutputFile):
    """``local.json`` of ``astrolatent causal``: the settings and one summary per test."""

    FORMAT: ClassVar[int] = CAUSAL_FORMAT_VERSION
    target: str | None = None
    query: str | None = None
    condition: list[str] = Field(default_factory=list)
    n_evaluated: int | None = None
    n_neighbors: int | None = None
    alpha: float | None = None
    tests: dict[str, dict[str, Any]]


class _Edge(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    source: str = Field(alias="from")
    to: str
    type: str
    stability: float | None = None


class Discovery(OutputFile):
    """``discovery.json`` of ``astrolatent discover``: the graph's nodes and edges."""

    FORMAT: ClassVar[int] = CAUSAL_FORMAT_VERSION
    method: str
    nodes: list[str]
    edges: list[_Edge]


class _PlantedEdge(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    source: str = Field(alias="from")
    to: str
    weight: float
    function: str


class DAGTruth(OutputFile):
    """``dag.json`` of ``astrolatent simulate dag``: the planted graph (``adjacency[i][j]``:
    an edge from ``nodes[i]`` to ``nodes[j]``)."""

    FORMAT: ClassVar[int] = DAG_FORMAT_VERSION
    nodes: list[str]
    adjacency: list[list[bool]]
    edges: list[_PlantedEdge]

    @model_validator(mode="after")
    def _square(self) -> DAGTruth:
        n = len(self.nodes)
        if len(self.adjacency) != n or any(len(row) != n for row in self.adjacency):
            raise ValueError(f"adjacency is not {n} x {n} for the {n} nodes")
        return self

    def adjacency_array(self) -> np.ndarray:
        return np.asarray(self.adjacency, bool)


class LatentsMetadata(BaseModel):
    """What ``RUN/latents.parquet`` records in its Parquet metadata (key ``astrolatent``): the
    run, the store its spectra come from and that store's fingerprint when encoded (all None
    for latents written without it)."""

    model_config = ConfigDict(extra="allow")
    run: str | None = None
    store: str | None = None
    store_fingerprint: str | None = None
    latent_dim: int | None = None


class StageStamp(OutputFile):
    """``OUT/.stamps/STAGE.json``: a pipeline stage's state (``started`` or ``done``) and
    the key of the configuration it ran with."""

    FORMAT: ClassVar[int] = STAMP_FORMAT_VERSION
    stage: str
    key: str
    status: str


# ---------------------------------------------------------------------------------------
# writing and reading
# ---------------------------------------------------------------------------------------
F = TypeVar("F", bound=BaseModel)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_summary(
    path: str | Path, model: type[OutputFile] | type[Traversals], payload: dict | list
) -> Path:
    """Write ``payload`` as the JSON file of ``model`` at ``path`` (atomically).

    ``payload`` starts with the header of :func:`provenance` (format ``model.FORMAT``; a
    list, :class:`Traversals`, has none). What is written is validated against ``model``
    first: a writer that leaves out a key readers need fails here, not in a reader."""
    text = json.dumps(payload, indent=2, default=_json_default)
    checked = model.model_validate(json.loads(text))
    if isinstance(checked, OutputFile) and checked.format_version != model.FORMAT:
        raise ValueError(
            f"{path}: written as format {checked.format_version}; "
            f"{model.__name__} is format {model.FORMAT}"
        )
    return write_text_atomic(path, text)


def read_json(path: Path, rebuild: str) -> Any:
    """The JSON content of ``path``; errors name the file and the command ``rebuild``."""
    if not path.is_file():
        raise RunError(f"{path}: not found; run `{rebuild}` first")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"not valid JSON ({exc}); rerun `{rebuild}`") from None


def _problems(exc: ValidationError) -> str:
    """What a validation error found, in one line: the missing keys, then bad values."""
    where = [(".".join(map(str, e["loc"])) or "the file", e) for e in exc.errors()]
    missing = [loc for loc, e in where if e["type"] == "missing"]
    bad = [f"{loc}: {e['msg'].lower()}" for loc, e in where if e["type"] != "missing"]
    parts = ([f"lacks {', '.join(missing)}"] if missing else []) + bad[:3]
    return "; ".join(parts)


def load_file(model: type[F], path: str | Path, rebuild: str) -> F:
    """The JSON file at ``path`` as ``model``; ``rebuild`` is the command that writes it.

    Raises RunError when it does not exist and InputFileError when it is not valid JSON,
    comes from a newer format than ``model.FORMAT``, or lacks a key the model needs."""
    path = Path(path)
    payload = read_json(path, rebuild)
    version = payload.get("format_version", 1) if isinstance(payload, dict) else 1
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputFileError(
            path, f"format_version {version!r} is not a whole number; rerun `{rebuild}`"
        )
    if version > model.FORMAT:
        raise InputFileError(
            path,
            f"format {version} is newer than this astrolatent reads ({model.FORMAT}); "
            f"upgrade astrolatent or rerun `{rebuild}`",
        )
    if issubclass(model, OutputFile) and not isinstance(payload, dict):
        raise InputFileError(path, f"is not a JSON object; rerun `{rebuild}`")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InputFileError(path, f"{_problems(exc)}; rerun `{rebuild}`") from None


def load_store_summary(store: str | Path) -> StoreSummary:
    """``STORE/summary.json`` (``astrolatent ingest``)."""
    rebuild = f"astrolatent ingest INPUTS --store {store}"
    return load_file(StoreSummary, Path(store) / STORE_SUMMARY_FILE, rebuild)


def load_train_summary(run_dir: str | Path) -> SpectrumTrainSummary:
    """``RUN/train_summary.json`` of a spectrum run (``astrolatent train``)."""
    rebuild = f"astrolatent train STORE --run {run_dir}"
    return load_file(SpectrumTrainSummary, Path(run_dir) / TRAIN_SUMMARY_FILE, rebuild)


def load_galaxy_summary(run_dir: str | Path) -> GalaxyTrainSummary:
    """``RUN/train_summary.json`` of a galaxy-estimator run (``astrolatent galaxy train``)."""
    rebuild = f"astrolatent galaxy train TABLE --target TARGET --run {run_dir}"
    return load_file(GalaxyTrainSummary, Path(run_dir) / TRAIN_SUMMARY_FILE, rebuild)


def load_summary(run_dir: str | Path) -> dict:
    """``RUN/analysis/summary.json`` as a dict, checked against :class:`AnalysisSummary`.

    Raises RunError when it does not exist (``analyze`` has not run) and InputFileError
    when it is not valid JSON, comes from a newer format, or lacks the informative-dims or
    labels blocks.
    """
    path = Path(run_dir) / ANALYSIS_SUMMARY
    load_file(AnalysisSummary, path, f"astrolatent analyze {run_dir}")
    return json.loads(path.read_text())


def load_data_summary(run_dir: str | Path) -> DataSummary:
    """``RUN/analysis/data_summary.json`` (``astrolatent analyze``)."""
    path = Path(run_dir) / ANALYSIS_DIR / DATA_SUMMARY_FILE
    return load_file(DataSummary, path, f"astrolatent analyze {run_dir}")


def load_traversals(run_dir: str | Path) -> list[Traversal]:
    """``RUN/analysis/traversals.json`` (``astrolatent analyze``)."""
    path = Path(run_dir) / ANALYSIS_DIR / TRAVERSALS_FILE
    return load_file(Traversals, path, f"astrolatent analyze {run_dir}").root


def load_decomposition(path: str | Path) -> Decomposition:
    """A ``decomposition.json`` (``astrolatent galaxy decompose``)."""
    rebuild = f"astrolatent galaxy decompose --runs RUN1,RUN2,RUN12 --out {Path(path).parent}"
    return load_file(Decomposition, path, rebuild)


def load_local_tests(path: str | Path) -> LocalTests:
    """A ``local.json`` (``astrolatent causal``)."""
    rebuild = f"astrolatent causal RUN --query COLUMN --out {Path(path).parent}"
    return load_file(LocalTests, path, rebuild)


def load_discovery(path: str | Path) -> Discovery:
    """A ``discovery.json`` (``astrolatent discover``)."""
    return load_file(Discovery, path, f"astrolatent discover ... --out {Path(path).parent}")


def load_dag_truth(path: str | Path) -> DAGTruth:
    """A ``dag.json`` (``astrolatent simulate dag``)."""
    return load_file(DAGTruth, path, f"astrolatent simulate dag {Path(path).parent}")


def load_stamp(path: str | Path) -> StageStamp:
    """A pipeline stage's stamp (``astrolatent run``)."""
    stage = Path(path).stem
    return load_file(StageStamp, path, f"astrolatent run PIPELINE.yaml --force {stage}")


def latents_metadata(metadata: LatentsMetadata) -> dict[bytes, bytes]:
    """The Parquet schema metadata that records ``metadata`` in a latents file."""
    return {LATENTS_METADATA_KEY: metadata.model_dump_json(exclude_none=True).encode()}


def read_latents_metadata(path: str | Path) -> LatentsMetadata:
    """The metadata of the latents file ``path`` (``astrolatent encode``); an empty record
    for latents written without it."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        raw = (pq.read_schema(path).metadata or {}).get(LATENTS_METADATA_KEY)
        return LatentsMetadata.model_validate_json(raw) if raw else LatentsMetadata()
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        message = str(exc).splitlines()[0]
        raise InputFileError(
            path, f"unreadable latents metadata ({message}); rerun `astrolatent encode RUN`"
        ) from None


def p_at_floor(entry: dict) -> bool:
    """Whether a ``free.labels`` entry's p-value is its ``p_floor``: no permutation reached
    the observed value, so the p says only that it is at most that (False for summaries
    without ``p_floor``)."""
    p, floor = entry.get("p_value"), entry.get("p_floor")
    return p is not None and floor is not None and p <= floor


def analysed_dims(informative: dict) -> list[int]:
    """The dims an analysis works on (traversals, redundancy, disentanglement, the explorer's
    sliders): those both methods call informative, else those by dispersion."""
    return [int(d) for d in (informative.get("agreed") or informative["dispersion"]["dims"])]
