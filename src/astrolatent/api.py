"""The Python API: one function per command of the CLI, for notebooks and scripts.

Each function takes the command's arguments under the same names (``--max-steps`` is
``max_steps``, ``--config`` is ``config``) with the same meaning: an option given here
overrides the configuration file, which overrides the defaults of the configuration class
(the only place defaults live). Results are objects with ``to_dict()`` (and ``to_pandas()``
where a table is natural) and figure helpers that return matplotlib figures. Nothing heavy is
imported until a function runs (``import astrolatent.api`` does not load torch)::

    from astrolatent import api

    sim = api.simulate_spectra("sim", n=300, seed=0)
    api.ingest(["sim"], store="sim.store", labels="sim/labels.csv")
    api.train("sim.store", run="run1", max_steps=300)
    api.encode("run1")
    analysis = api.analyze("run1", n_permutations=20)
    analysis.to_pandas()           # one row per label: best latent, MI, r_I, references
    analysis.figure_mi()           # matplotlib figure: MI of every latent with every label
    api.report("run1")             # RUN/report/report.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from astrolatent.config import Config, read_mapping
from astrolatent.errors import ConfigError
from astrolatent.outputs.layout import ANALYSIS_DIR

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

C = TypeVar("C", bound=Config)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    """``base`` with ``override`` laid over it, mappings merged key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve(
    cls: type[C],
    config: str | Path | Mapping[str, Any] | C | None,
    options: Mapping[str, Any],
    *,
    base: Mapping[str, Any] | None = None,
    source: str = "options",
) -> C:
    """The effective configuration: ``cls`` defaults < ``base`` (a preset) < ``config`` (a
    file, mapping or instance) < the ``options`` that are not None (dotted keys such as
    ``"preprocess.pad_to"`` reach nested sections)."""
    data = merge(dict(base or {}), _layer(config))
    for key, value in options.items():
        if value is None:
            continue
        *parents, leaf = key.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        if isinstance(value, Config):
            value = value.to_dict()
        node[leaf] = str(value) if isinstance(value, Path) else value
    return cls.from_dict(data, source=source)


def _layer(config: str | Path | Mapping[str, Any] | Config | None) -> dict:
    """A configuration argument (a file, mapping or instance; None: empty) as a mapping."""
    if isinstance(config, Config):
        return config.to_dict()
    if isinstance(config, str | Path):
        return read_mapping(config)
    return dict(config or {})


def _configure(
    cls: type[C], config: str | Path | Mapping[str, Any] | C | None, options: dict, command: str
) -> C:
    """:func:`resolve` for a command whose ``seed`` option is the class's ``random_state``."""
    if "seed" in options:
        options["random_state"] = options.pop("seed")
    return resolve(cls, config, options, source=f"{command} options")


#: A configuration argument: a YAML/JSON file, a mapping or a configuration instance.
ConfigArg = str | Path | Mapping[str, Any] | Config | None


# ---------------------------------------------------------------------------------------
# simulate -> ingest -> train -> encode
# ---------------------------------------------------------------------------------------
def simulate_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``simulate spectra`` configuration (the fields of
    :class:`~astrolatent.simulate.spectra.SpectrumSimulationConfig`, ``seed`` for
    ``random_state``): defaults < ``config`` < options."""
    from astrolatent.simulate.spectra import SpectrumSimulationConfig

    return _configure(SpectrumSimulationConfig, config, options, "simulate")


def simulate_spectra(out_dir: str | Path, *, progress=None, **options: Any):
    """``astrolatent simulate spectra``: ESO 1D FITS files, ``labels.csv`` and ``truth.csv``
    in ``out_dir`` (``options``: those of :func:`simulate_config`). Returns the simulation's
    output (``files``, ``labels``, ``truth``)."""
    from astrolatent.simulate.spectra import write_spectra

    return write_spectra(out_dir, simulate_config(**options), progress=progress)


#: The ``ingest`` options that each set one field of the
#: :class:`~astrolatent.data.ingest.IngestConfig` (``grid`` and ``preset`` are parsed).
INGEST_FIELDS = {
    "format": "format",
    "labels": "labels",
    "id_column": "id_column",
    "pad_to": "preprocess.pad_to",
    "min_median": "preprocess.min_median",
    "dtype": "preprocess.dtype",
    "workers": "workers",
    "scheduler": "scheduler",
    "rows_per_task": "rows_per_task",
}


def ingest_config(
    *,
    config: ConfigArg = None,
    preset: str | None = None,
    grid: Any = None,
    **options: Any,
):
    """The effective ingest configuration: defaults < ``preset`` < ``config`` < options
    (``grid``: a GridConfig, a mapping, or ``"START,STOP,STEP[,linear|log]"``; the others:
    those of :data:`INGEST_FIELDS`)."""
    from astrolatent.data import presets
    from astrolatent.data.ingest import IngestConfig

    base = {}
    if preset is not None:
        p = presets.get(preset)
        base = {
            "format": p.reader,
            "reader_options": p.reader_options,
            "preprocess": p.preprocess.to_dict(),
            "preset": preset,
        }
    given = _fields(options, INGEST_FIELDS, "ingest")
    given["preprocess.grid"] = _parse_grid(grid)
    return resolve(IngestConfig, config, given, base=base, source="ingest options")


def _fields(options: Mapping[str, Any], fields: Mapping[str, str], command: str) -> dict:
    """``options`` under the (dotted) configuration fields that ``fields`` maps their
    names to; an option ``fields`` lacks is a ConfigError naming ``command``."""
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(f"{command} options: {unknown} unknown; choose from {sorted(fields)}")
    return {fields[name]: value for name, value in options.items()}


def _parse_grid(value: Any) -> Any:
    """``"START,STOP,STEP[,linear|log]"`` as a GridConfig; anything else as given."""
    from astrolatent.data.preprocess import GridConfig

    if not isinstance(value, str):
        return value
    parts = value.split(",")
    if len(parts) not in (3, 4):
        raise ConfigError(f"grid {value!r}: expected START,STOP,STEP[,linear|log]")
    try:
        start, stop, step = (float(p) for p in parts[:3])
    except ValueError:
        raise ConfigError(f"grid {value!r}: START, STOP and STEP must be numbers") from None
    scale = parts[3].strip() if len(parts) == 4 else "linear"
    return GridConfig.from_dict(
        {"start": start, "stop": stop, "step": step, "scale": scale}, source="grid"
    )


def ingest(
    inputs: Sequence[str | Path] | None = None,
    *,
    store: str | Path,
    overwrite: bool = False,
    verify: bool = False,
    progress=None,
    **options: Any,
):
    """``astrolatent ingest``: spectrum files into a chunked store (resumable). ``options``
    are those of :func:`ingest_config`; a preset that ships its data needs no ``inputs``.
    ``verify``: on resume, redo the tasks whose files changed (checksums every file).
    Returns the ingest summary (``to_dict()``; ``n_quarantined`` > 0 means some files were
    set aside with their reasons: ``astrolatent info STORE``)."""
    from astrolatent.data import presets
    from astrolatent.data.ingest import ingest as run_ingest

    cfg = ingest_config(**options)
    if not inputs and cfg.preset is not None:
        inputs = presets.get(cfg.preset).default_inputs()
    if not inputs:
        raise ConfigError(
            "no input given: name FITS files or folders, or use a preset that ships its "
            "data (--preset gaia-xp-apogee)"
        )
    return run_ingest(
        list(inputs), store, cfg, overwrite=overwrite, verify=verify, progress=progress
    )


def _train_overrides(config: ConfigArg, known_labels: list[str] | None) -> dict | None:
    """The mapping ``train`` merges over the preset: ``config`` (a file, mapping or
    configuration) with ``known_labels`` set when given."""
    from astrolatent.training.config import with_known_labels

    return with_known_labels(None if config is None else _layer(config), known_labels)


def train_config(
    store: str | Path,
    *,
    preset: str | None = None,
    config: ConfigArg = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    known_labels: str | Sequence[str] | None = None,
    **launch: Any,
):
    """The configuration a new ``train`` run on ``store`` would use (what ``astrolatent
    train --print-config`` prints): the preset (default: chosen from the spectrum length) <
    ``config`` < the budget, ``known_labels`` (a list or comma-separated) and the ``launch``
    options given (``devices``, ``num_nodes``: a positive count or ``"auto"``;
    ``accelerator``, ``precision``), which set the ``trainer`` section. Nothing is written."""
    from astrolatent.config import split_columns
    from astrolatent.data.store import SpectrumStore
    from astrolatent.errors import StoreError
    from astrolatent.training.fit import resolve_config

    if not Path(store).exists():
        raise StoreError(f"{store}: no such store; create one with `astrolatent ingest`")
    if isinstance(known_labels, str):
        known_labels = split_columns(known_labels)
    overrides = _train_overrides(config, known_labels)
    return resolve_config(
        SpectrumStore(store),
        _with_launch(overrides, launch),
        preset=preset,
        max_steps=max_steps,
        max_minutes=max_minutes,
    )


#: The launch options of ``train``, set in the ``trainer`` section.
LAUNCH_FIELDS = {name: name for name in ("devices", "num_nodes", "accelerator", "precision")}


def _with_launch(overrides: dict | None, launch: dict[str, Any]) -> dict | None:
    """``overrides`` with the launch options that were given (not None) under ``trainer``;
    ``devices`` and ``num_nodes`` as positive counts (or ``"auto"``)."""
    given = {k: v for k, v in _fields(launch, LAUNCH_FIELDS, "train").items() if v is not None}
    if not given:
        return overrides
    for name in ("devices", "num_nodes"):
        if name in given and given[name] != "auto":
            given[name] = _positive_int(str(given[name]), "--" + name.replace("_", "-"))
    overrides = dict(overrides or {})
    overrides["trainer"] = {**overrides.get("trainer", {}), **given}
    return overrides


def _positive_int(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a positive integer or auto") from None
    if value < 1:
        raise ConfigError(f"{option} {value}: must be at least 1")
    return value


def train(
    store: str | Path,
    *,
    run: str | Path,
    preset: str | None = None,
    config: ConfigArg = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    resume: bool = False,
    known_labels: list[str] | None = None,
    progress=None,
):
    """``astrolatent train``: the spectrum VAE on ``store``, written to the run directory
    ``run``. ``config`` is merged over the preset (e.g. another run's ``config.yaml``);
    ``known_labels`` ties one latent to each of these store labels (``--known-labels``).
    Returns the training summary (steps, losses, stop reason; ``to_dict()``)."""
    from astrolatent.training.fit import fit

    return fit(
        store,
        run,
        _train_overrides(config, known_labels),
        preset=preset,
        max_steps=max_steps,
        max_minutes=max_minutes,
        resume=resume,
        progress=progress,
    )


def encode_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``encode`` configuration (the fields of
    :class:`~astrolatent.training.encode.EncodeConfig`): defaults < ``config`` < options."""
    from astrolatent.training.encode import EncodeConfig

    return _configure(EncodeConfig, config, options, "encode")


def encode(run: str | Path, *, config: ConfigArg = None, progress=None, **options: Any):
    """``astrolatent encode``: ``RUN/latents.parquet`` (id, ``mu_*``, ``logvar_*``, labels);
    ``options``: ``store``, ``out``, ``batch_size``, ``device``. Returns the encoding's
    result (``path``, ``n_spectra``, ``latent_dim``; ``to_dict()``)."""
    from astrolatent.training.encode import encode as run_encode

    return run_encode(run, **encode_config(config=config, **options).to_dict(), progress=progress)


def reconstruct_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``reconstruct`` configuration (``ids``, ``store``, ``out``)."""
    from astrolatent.training.encode import ReconstructConfig

    return _configure(ReconstructConfig, config, options, "reconstruct")


def reconstruct(run: str | Path, *, config: ConfigArg = None, **options: Any):
    """``astrolatent reconstruct``: the given spectra (``ids``) encoded and decoded, saved
    as an ``.npz`` (``out``; default ``RUN/reconstructions.npz``). Returns the
    reconstruction (``ids``, ``l1``, arrays) and the file written."""
    from astrolatent.training.encode import reconstruct as run_reconstruct

    cfg = reconstruct_config(config=config, **options)
    result = run_reconstruct(run, cfg.ids, cfg.store)
    return result, result.save(Path(run) / "reconstructions.npz" if cfg.out is None else cfg.out)


# ---------------------------------------------------------------------------------------
# analyze
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Analysis:
    """What ``analyze`` found in a run: ``summary`` is ``RUN/analysis/summary.json``."""

    run: Path
    summary: dict

    @classmethod
    def load(cls, run: str | Path) -> Analysis:
        """The analysis ``astrolatent analyze RUN`` wrote earlier."""
        from astrolatent.outputs.summaries import load_summary

        return cls(Path(run), load_summary(run))

    def to_dict(self) -> dict:
        return self.summary

    @property
    def informative(self) -> dict:
        """Informative dims by dispersion and by KL rate, and the dims both agree on."""
        inf = self.summary["informative"]
        return {
            "dispersion": inf["dispersion"]["dims"],
            "kl": inf["kl"]["dims"],
            "agreed": inf["agreed"],
        }

    def to_pandas(self) -> pd.DataFrame:
        """One row per label: best latent, its MI (nats) with error, r_I, FWER p-value, and
        the references (all latents together, best principal component, ceiling)."""
        import pandas as pd

        s = self.summary
        pca = s.get("baseline_pca", {}).get("labels", {})
        joint, ceiling = s.get("all_latents", {}), s.get("ceiling", {})
        rows = [
            {
                "label": name,
                "best_dim": b["best_dim"],
                "mi": b["mi"],
                "mi_err": b["mi_err"],
                "r_info": b["r_info"],
                "p_value_fwer": b["p_value_fwer"],
                "all_latents_r": joint.get(name, {}).get("r"),
                "pca_best_r_info": pca.get(name, {}).get("r_info"),
                "ceiling_r": ceiling.get(name, {}).get("r"),
            }
            for name, b in s["labels"].items()
        ]
        columns = ["label", "best_dim", "mi", "mi_err", "r_info", "p_value_fwer"]
        columns += ["all_latents_r", "pca_best_r_info", "ceiling_r"]
        return pd.DataFrame(rows, columns=columns).set_index("label")  # no labels: no rows

    def per_dim(self) -> pd.DataFrame:
        """MI of every latent dim with every label (``analysis/mi_per_dim.csv``)."""
        import pandas as pd

        return pd.read_csv(self.run / ANALYSIS_DIR / "mi_per_dim.csv")

    def figure_mi(self, *, value: str = "r_info") -> Figure:
        """Heat map of ``value`` (``r_info`` or ``mi``) per label and latent dim, significant
        cells (FWER) dotted."""
        from astrolatent import figures

        table = self.per_dim()
        grid = table.pivot(index="label", columns="dim", values=value)
        alpha = 0.05
        marks = table.pivot(index="label", columns="dim", values="p_value_fwer") < alpha
        return figures.mi_heatmap(
            grid.to_numpy(float),
            list(grid.index),
            title=f"{value} of each latent with each label",
            colorbar=value,
            marks=marks.to_numpy(),
        )

    def figure_informative(self) -> Figure:
        """Per-dim scores of both counting methods with their cuts."""
        from astrolatent import figures

        inf = self.summary["informative"]
        methods = ("dispersion", "kl")
        return figures.informative_bars(
            {m: inf[m]["scores"] for m in methods},
            {m: inf[m]["threshold"] for m in methods},
            {m: inf[m]["dims"] for m in methods},
        )


def analyze_config(*, config: str | Path | Mapping[str, Any] | None = None, **options: Any):
    """The effective ``analyze`` configuration: defaults < ``config`` < options (the fields
    of :class:`~astrolatent.workflows.analyze.AnalyzeConfig`; ``seed`` is ``random_state``)."""
    from astrolatent.workflows.analyze import AnalyzeConfig

    if "seed" in options:
        options["random_state"] = options.pop("seed")
    if isinstance(options.get("labels"), str):
        options["labels"] = [c.strip() for c in options["labels"].split(",") if c.strip()]
    return resolve(AnalyzeConfig, config, options, source="analyze options")


def analyze(
    run: str | Path,
    *,
    config: str | Path | Mapping[str, Any] | None = None,
    progress=None,
    **options: Any,
) -> Analysis:
    """``astrolatent analyze``: what each latent dim knows (informative dims, MI with each
    label with error bars and p-values, PCA baseline, ceiling, traversals), written to
    ``RUN/analysis/``. ``options``: ``labels``, ``estimator``, ``n_bootstrap``,
    ``n_permutations``, ``max_samples``, ``split``, ``pca_baseline``, ``seed``, ..."""
    from astrolatent.workflows.analyze import analyze_run

    cfg = analyze_config(config=config, **options)
    return Analysis(Path(run), analyze_run(run, cfg, progress=progress))


# ---------------------------------------------------------------------------------------
# estimators on any table, the report, the pipeline
# ---------------------------------------------------------------------------------------
#: Fewest usable rows ``mi`` accepts.
MI_MIN_ROWS = 20


def read_columns(table: str | Path | pd.DataFrame, columns: list[str]) -> dict[str, np.ndarray]:
    """The numeric scalar ``columns`` of a CSV, Parquet or FITS table (or a DataFrame) as
    float arrays, by the rule of :func:`astrolatent.tables.numeric_columns` (missing values
    NaN). Raises InputFileError naming the file and the column."""
    import pandas as pd

    from astrolatent.tables import numeric_columns, read_table

    source = "table" if isinstance(table, pd.DataFrame) else table
    frame = table if isinstance(table, pd.DataFrame) else read_table(table)
    values = numeric_columns(frame, columns, source=source)
    return {name: values[:, j] for j, name in enumerate(columns)}


def mi_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``mi`` configuration (the fields of
    :class:`~astrolatent.analysis.mi.core.MIConfig`: ``x``, ``y``, ``conditional``,
    ``estimator``, ...; ``seed`` is ``random_state``)."""
    from astrolatent.analysis.mi.core import MIConfig

    return _configure(MIConfig, config, options, "mi")


def mi(table: str | Path | pd.DataFrame, *, config: ConfigArg = None, **options: Any):
    """``astrolatent mi``: I(x; y) (or I(x; y | conditional)) in nats between columns of a
    table, with error, permutation p-value and r_I (``to_dict()``). Rows with a non-finite
    x, and rows whose y or conditional column is NaN, a sentinel (-9999, 9999) or beyond
    ``sigma`` standard deviations (0: no clipping) are dropped first. ``options``: those
    of :func:`mi_config`."""
    import numpy as np

    from astrolatent.analysis.mi import clean_labels, mutual_information
    from astrolatent.errors import InputFileError

    cfg = mi_config(config=config, **options)
    x, y, z = cfg.x, cfg.y, cfg.conditional
    data = read_columns(table, list(dict.fromkeys(x + y + z)))
    xs = np.column_stack([data[c] for c in x])
    labels = np.column_stack([data[c] for c in y + z])
    sigma = cfg.sigma if cfg.sigma > 0 else None
    keep = clean_labels(labels, sigma=sigma).mask & np.isfinite(xs).all(1)
    if int(keep.sum()) < MI_MIN_ROWS:
        raise InputFileError(
            "table" if not isinstance(table, str | Path) else table,
            f"only {int(keep.sum())} of {keep.size} rows are usable for columns {x + y + z} "
            f"after dropping NaN, sentinel and clipped values; need at least {MI_MIN_ROWS}",
        )
    return mutual_information(
        xs[keep],
        labels[keep, : len(y)],
        conditional=labels[keep, len(y) :] if z else None,
        **cfg.model_dump(exclude={"x", "y", "conditional", "sigma"}),
    )


def decompose_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``decompose`` configuration (the fields of
    :class:`~astrolatent.analysis.pid.PIDConfig`; ``seed`` is ``random_state``)."""
    from astrolatent.analysis.pid import PIDConfig

    return _configure(PIDConfig, config, options, "decompose")


def decompose_rows(table: str | Path | pd.DataFrame, config) -> tuple[pd.DataFrame, int]:
    """The rows of ``table`` a decomposition with ``config`` uses (finite in the target and
    both sources) and how many were dropped; a bad column raises InputFileError naming the
    table."""
    from astrolatent.analysis.pid import select_columns
    from astrolatent.errors import InputFileError
    from astrolatent.tables import read_table

    frame = read_table(table) if isinstance(table, str | Path) else table
    try:
        return select_columns(frame, target=config.target, x1=config.x1, x2=config.x2)
    except ConfigError as exc:
        raise InputFileError("table" if frame is table else table, str(exc)) from exc


def decompose(table: str | Path | pd.DataFrame, *, config: ConfigArg = None, **options: Any):
    """``astrolatent decompose``: redundant, unique and synergistic information x1 and x2
    carry about ``target`` (nats; ``to_dict()``), over the rows finite in all of them.
    ``options``: those of :func:`decompose_config` (``target``, ``x1``, ``x2``,
    ``method``, ``n_bins``, ``n_bootstrap``, ``seed``)."""
    from astrolatent.analysis.pid import decompose as run_decompose

    cfg = decompose_config(config=config, **options)
    return run_decompose(decompose_rows(table, cfg)[0], **cfg.model_dump())


# ---------------------------------------------------------------------------------------
# causal tests and discovery, simulated DAGs
# ---------------------------------------------------------------------------------------
def causal_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``causal`` configuration (the fields of
    :class:`~astrolatent.workflows.causal.LocalTestConfig`)."""
    from astrolatent.workflows.causal import LocalTestConfig

    return _configure(LocalTestConfig, config, options, "causal")


def causal(run: str | Path, *, config: ConfigArg = None, progress=None, **options: Any):
    """``astrolatent causal``: local tests of a galaxy run's target against ``query`` among
    objects with nearby latents. Returns the result and the folder written."""
    from astrolatent.workflows.causal import run_local_tests

    return run_local_tests(run, causal_config(config=config, **options), progress=progress)


def discover_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``discover`` configuration (the fields of
    :class:`~astrolatent.analysis.causal.discover.DiscoveryConfig`)."""
    from astrolatent.analysis.causal.discover import DiscoveryConfig

    return _configure(DiscoveryConfig, config, options, "discover")


@dataclass(frozen=True)
class Discovery:
    """What ``discover`` found: the graph, the node groups of a run (None for a table),
    the skeleton scores against a planted truth (or None), the folder written (or None)
    and the rows dropped for NaN or inf (a table)."""

    graph: Any
    groups: dict | None
    skeleton: dict | None
    out: Path | None
    n_dropped: int = 0

    def to_dict(self) -> dict:
        extra = {} if self.skeleton is None else {"skeleton": self.skeleton}
        out = None if self.out is None else str(self.out)
        return {**self.graph.to_dict(), "groups": self.groups, **extra, "out": out}


def discover(
    source: str | Path,
    *,
    vars: Sequence[str] = (),
    model: int = 0,
    latent_dims: Sequence[int] | None = None,
    truth: str | Path | None = None,
    out: str | Path | None = None,
    config: ConfigArg = None,
    progress=None,
    **options: Any,
) -> Discovery:
    """``astrolatent discover``: causal discovery among the columns ``vars`` of a table, or
    among a galaxy run's latent dims (``latent_dims``; default all), target and catalogue
    ``vars``. ``truth``: a ``dag.json`` to score the skeleton against; ``out``: the folder
    for ``discovery.json`` and ``graph.png`` (a run's default
    ``RUN/causal/discovery_<method>``; a table's: none). ``options``: those of
    :func:`discover_config`."""
    import numpy as np

    from astrolatent.analysis.causal.discover import MIN_ROWS, skeleton_scores
    from astrolatent.analysis.causal.discover import discover as run_discover
    from astrolatent.errors import InputFileError
    from astrolatent.tables import numeric_columns, read_table
    from astrolatent.workflows.causal import (
        is_run,
        not_a_galaxy_run,
        run_discovery,
        write_discovery,
    )

    cfg = discover_config(config=config, **options)
    source, columns, groups, dropped = Path(source), list(vars), None, 0
    if source.is_dir() and not is_run(source):
        raise not_a_galaxy_run(source)
    if is_run(source):
        graph, groups = run_discovery(
            source, columns, cfg, model=model, latent_dims=latent_dims, progress=progress
        )
        out = out or source / "causal" / f"discovery_{cfg.method}"
    else:
        if len(columns) < 2:
            raise ConfigError("vars (--vars): name at least two columns of the table")
        values = numeric_columns(read_table(source), columns, source=source)
        finite = np.isfinite(values).all(axis=1)
        dropped = int(len(values) - finite.sum())
        if finite.sum() < MIN_ROWS:
            raise InputFileError(
                source,
                f"only {int(finite.sum())} of {len(values)} rows are finite in all of "
                f"{columns}; causal discovery needs at least {MIN_ROWS}",
            )
        graph = run_discover(values[finite], columns, cfg, progress=progress)
    skeleton = None
    if truth is not None:
        skeleton = skeleton_scores(graph.skeleton, _truth_adjacency(Path(truth), graph.nodes))
    extra = {} if skeleton is None else {"skeleton": skeleton}
    if out is not None:
        write_discovery(graph, out, groups=groups, extra=extra)
    return Discovery(graph, groups, skeleton, None if out is None else Path(out), dropped)


def _truth_adjacency(path: Path, nodes: list[str]) -> np.ndarray:
    """The adjacency of a ``dag.json`` (``simulate dag``), reordered to ``nodes`` (the same
    set of variables)."""
    import numpy as np

    from astrolatent.errors import InputFileError
    from astrolatent.outputs.summaries import load_dag_truth

    truth = load_dag_truth(path)
    if sorted(nodes) != sorted(truth.nodes):
        # a subset would be scored against the wrong truth: leaving nodes out makes the
        # ones kept dependent where the full graph has no edge between them
        raise InputFileError(
            path,
            f"--truth scores a discovery over all of its nodes {truth.nodes}; --vars names {nodes}",
        )
    order = [truth.nodes.index(n) for n in nodes]
    return truth.adjacency_array()[np.ix_(order, order)]


def simulate_dag_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``simulate dag`` configuration (the fields of
    :class:`~astrolatent.simulate.dags.DAGSimulationConfig`)."""
    from astrolatent.simulate.dags import DAGSimulationConfig

    return _configure(DAGSimulationConfig, config, options, "simulate dag")


def simulate_dag(out_dir: str | Path, *, config: ConfigArg = None, **options: Any):
    """``astrolatent simulate dag``: ``table.parquet`` from a planted causal DAG and its
    truth ``dag.json`` in ``out_dir``; returns both paths."""
    from astrolatent.simulate.dags import write_dag

    return write_dag(out_dir, simulate_dag_config(config=config, **options))


# ---------------------------------------------------------------------------------------
# galaxies
# ---------------------------------------------------------------------------------------
def galaxy_simulate_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``galaxy simulate`` configuration (the fields of
    :class:`~astrolatent.galaxies.config.GalaxySimulationConfig`)."""
    from astrolatent.galaxies.config import GalaxySimulationConfig

    return _configure(GalaxySimulationConfig, config, options, "galaxy simulate")


def galaxy_simulate(
    out_dir: str | Path,
    *,
    images: bool = True,
    config: ConfigArg = None,
    progress=None,
    **options: Any,
):
    """``astrolatent galaxy simulate``: a galaxy catalogue with planted relations (and
    Sersic image cutouts unless ``images=False``) in ``out_dir``."""
    from astrolatent.galaxies.simulate import write_galaxies

    cfg = galaxy_simulate_config(config=config, **options)
    return write_galaxies(out_dir, cfg, images=images, progress=progress)


def fetch_real_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``galaxy fetch-real`` configuration (``source``)."""
    from astrolatent.galaxies.real import FetchRealConfig

    return _configure(FetchRealConfig, config, options, "galaxy fetch-real")


def fetch_real(name: str, *, config: ConfigArg = None, progress=None, **options: Any):
    """``astrolatent galaxy fetch-real``: the packaged real catalogue ``name`` (``kcorrect``
    with fitted stellar masses, or ``mlz``) as a DataFrame."""
    from astrolatent.galaxies.real import fetch_real as run_fetch

    cfg = fetch_real_config(config=config, **options)
    return run_fetch(name, source=cfg.source, progress=progress)


def groups_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``galaxy groups`` configuration (``groups``: a file of extra groups)."""
    from astrolatent.galaxies.catalog import GroupsConfig

    return _configure(GroupsConfig, config, options, "galaxy groups")


def groups(table: str | Path, *, config: ConfigArg = None, **options: Any) -> dict:
    """``astrolatent galaxy groups``: the column groups (usable as ``inputs``) a catalogue
    provides, group -> columns."""
    from astrolatent.galaxies.catalog import available_groups, load_groups
    from astrolatent.tables import read_table

    cfg = groups_config(config=config, **options)
    extra = load_groups(cfg.groups) if cfg.groups else None
    return available_groups(list(read_table(table).columns), groups=extra)


#: The ``galaxy train`` options that each set one field of the
#: :class:`~astrolatent.galaxies.config.EstimatorConfig`.
GALAXY_TRAIN_FIELDS = {
    "target": "data.target",
    "images": "data.images",
    "cv_folds": "data.cv_folds",
    "bins": "pdf.n_bins",
    "latent_dim": "encoder.latent_dim",
    "contrastive": "contrastive.enabled",
    "max_epochs": "trainer.max_epochs",
    "max_minutes": "trainer.max_minutes",
    "seed": "trainer.seed",
    "threads": "trainer.num_threads",
}


def galaxy_train_config(
    table: str | Path,
    *,
    config: ConfigArg = None,
    inputs: str | Sequence[str] | None = None,
    groups: str | Path | None = None,
    target_range: str | Sequence[float] | None = None,
    **options: Any,
):
    """The effective ``galaxy train`` configuration (an
    :class:`~astrolatent.galaxies.config.EstimatorConfig`): defaults < ``config`` < options.
    ``inputs``: column groups or columns (a list or comma-separated); ``groups``: a YAML/JSON
    file of extra column groups, added to the configuration's; ``target_range``: LOW,HIGH of
    the PDF bins (two numbers, or ``"LOW,HIGH"``); ``options``: those of
    :data:`GALAXY_TRAIN_FIELDS` (``seed``: of splits, weights and batches; ``threads``:
    torch CPU threads)."""
    from astrolatent.config import split_columns
    from astrolatent.galaxies.catalog import load_groups
    from astrolatent.galaxies.config import EstimatorConfig

    given = _fields(options, GALAXY_TRAIN_FIELDS, "galaxy train")
    layered = _layer(config)
    if groups is not None:
        extra = {**layered.get("data", {}).get("groups", {}), **load_groups(groups)}
        given["data.groups"] = extra
    if isinstance(inputs, str):
        inputs = split_columns(inputs)
    given["data.inputs"] = list(inputs) if inputs else None
    given["data.table"] = str(table)
    given["pdf.target_min"], given["pdf.target_max"] = _parse_range(target_range) or (None, None)
    return resolve(EstimatorConfig, layered, given, source="galaxy train options")


def _parse_range(value: str | Sequence[float] | None) -> tuple[float, float] | None:
    """``"LOW,HIGH"`` (or two numbers) as a pair of floats; None as None."""
    from astrolatent.config import split_columns

    if value is None:
        return None
    parts = split_columns(value) if isinstance(value, str) else list(value)
    try:
        low, high = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"--range {value!r}: expected LOW,HIGH (two numbers)") from None
    return low, high


def galaxy_train(
    table: str | Path, *, run: str | Path, config: ConfigArg = None, progress=None, **options: Any
):
    """``astrolatent galaxy train``: a PDF estimator of ``target`` from the catalogue
    ``table``, written to the run directory ``run`` (options: those of
    :func:`galaxy_train_config`). ``progress`` is called with a dict after each epoch
    (model, epoch, val_ce). Returns the training summary (``to_dict()``)."""
    from astrolatent.galaxies.train import fit_estimator

    cfg = galaxy_train_config(table, config=config, **options)
    return fit_estimator(cfg, run, progress=progress)


def galaxy_decompose_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``galaxy decompose`` configuration (the fields of
    :class:`~astrolatent.galaxies.decompose.RunDecompositionConfig`)."""
    from astrolatent.galaxies.decompose import RunDecompositionConfig

    return _configure(RunDecompositionConfig, config, options, "galaxy decompose")


def galaxy_decompose(*, config: ConfigArg = None, **options: Any):
    """``astrolatent galaxy decompose``: what two input sets tell about the target, from
    three runs (``runs``: RUN1,RUN2,RUN12), written to ``out``. Returns the decomposition
    and the folder written."""
    from astrolatent.galaxies.decompose import (
        decompose_runs,
        default_out_dir,
        write_decomposition,
    )

    cfg = galaxy_decompose_config(config=config, **options)
    paths = [Path(p) for p in cfg.runs]
    settings = cfg.model_dump(exclude={"runs", "by", "bins", "out"})
    result = decompose_runs(*paths, by=cfg.by or None, bins=cfg.bins or None, **settings)
    out_dir = Path(cfg.out) if cfg.out is not None else default_out_dir(*paths)
    write_decomposition(result, out_dir)
    return result, out_dir


# ---------------------------------------------------------------------------------------
# stores and runs: info, report, explore, export, the pipeline
# ---------------------------------------------------------------------------------------
def info_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``info`` configuration (nothing beyond the store)."""
    from astrolatent.data.store import InfoConfig

    return _configure(InfoConfig, config, options, "info")


def info(store: str | Path, *, config: ConfigArg = None) -> dict:
    """``astrolatent info``: counts, grid, preprocessing and label coverage of a store."""
    from astrolatent.data.store import SpectrumStore

    info_config(config=config)
    return SpectrumStore(store).info()


def report_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``report`` configuration (``out``: the HTML file)."""
    from astrolatent.report.html import ReportConfig

    return _configure(ReportConfig, config, options, "report")


def report(run: str | Path, *, config: ConfigArg = None, **options: Any) -> Path:
    """``astrolatent report``: one self-contained HTML file (``out``; default
    ``RUN/report/report.html``); returns its path."""
    from astrolatent.report.html import build_report

    return build_report(run, report_config(config=config, **options).out)


def explore_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``explore`` configuration (``host``, ``port``); needs the explorer
    extra (``pip install 'astrolatent[explorer]'``)."""
    from astrolatent.errors import require

    require("fastapi", "explorer", "the explorer")
    from astrolatent.explorer.app import ExploreConfig

    return _configure(ExploreConfig, config, options, "explore")


def export_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``export`` configuration (``formats``)."""
    from astrolatent.workflows.export import ExportConfig

    return _configure(ExportConfig, config, options, "export")


def export(run: str | Path, *, config: ConfigArg = None, **options: Any) -> list[Path]:
    """``astrolatent export``: the run's latents and analysis tables written beside
    themselves as FITS and/or VOTable; returns the files written."""
    from astrolatent.workflows.export import export_run

    return export_run(run, export_config(config=config, **options))[0]


def run_config(*, config: ConfigArg = None, **options: Any):
    """The effective ``run`` configuration (``force``, ``out``)."""
    from astrolatent.pipeline import RunConfig

    return _configure(RunConfig, config, options, "run")


def run_pipeline(pipeline: str | Path, *, config: ConfigArg = None, progress=None, **options: Any):
    """``astrolatent run``: the whole chain from a pipeline file; up-to-date stages are
    skipped, ``force`` reruns a stage and those after it; ``out`` replaces the file's."""
    from astrolatent.pipeline import load_pipeline
    from astrolatent.pipeline import run_pipeline as run_stages

    cfg = run_config(config=config, **options)
    stages = load_pipeline(pipeline, out=cfg.out)
    return run_stages(stages, force=cfg.force, source=pipeline, progress=progress)


__all__ = [
    "GALAXY_TRAIN_FIELDS",
    "INGEST_FIELDS",
    "Analysis",
    "Discovery",
    "analyze",
    "analyze_config",
    "causal",
    "causal_config",
    "decompose",
    "decompose_config",
    "decompose_rows",
    "discover",
    "discover_config",
    "encode",
    "encode_config",
    "explore_config",
    "export",
    "export_config",
    "fetch_real",
    "fetch_real_config",
    "galaxy_decompose",
    "galaxy_decompose_config",
    "galaxy_simulate",
    "galaxy_simulate_config",
    "galaxy_train",
    "galaxy_train_config",
    "groups",
    "groups_config",
    "info",
    "info_config",
    "ingest",
    "ingest_config",
    "merge",
    "mi",
    "mi_config",
    "read_columns",
    "reconstruct",
    "reconstruct_config",
    "report",
    "report_config",
    "resolve",
    "run_config",
    "run_pipeline",
    "simulate_config",
    "simulate_dag",
    "simulate_dag_config",
    "simulate_spectra",
    "train",
    "train_config",
]
