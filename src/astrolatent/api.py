"""The Python API: one function per command of the spectrum chain, for notebooks and scripts.

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
    if isinstance(config, Config):
        layered = config.to_dict()
    elif isinstance(config, str | Path):
        layered = read_mapping(config)
    else:
        layered = dict(config or {})
    data = merge(dict(base or {}), layered)
    for key, value in options.items():
        if value is None:
            continue
        *parents, leaf = key.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value.to_dict() if isinstance(value, Config) else value
    return cls.from_dict(data, source=source)


# ---------------------------------------------------------------------------------------
# simulate -> ingest -> train -> encode
# ---------------------------------------------------------------------------------------
def simulate_config(
    *,
    config: str | Path | Mapping[str, Any] | None = None,
    n: int | None = None,
    seed: int | None = None,
    resolution: str | None = None,
    n_objects: int | None = None,
    tellurics: bool | None = None,
    ccd_gap: bool | None = None,
    labelled_fraction: float | None = None,
):
    """The effective ``simulate spectra`` configuration: defaults < ``config`` < options."""
    from astrolatent.simulate.spectra import SpectrumSimulationConfig

    return resolve(
        SpectrumSimulationConfig,
        config,
        {
            "n": n,
            "random_state": seed,
            "resolution": resolution,
            "n_objects": n_objects,
            "tellurics": tellurics,
            "ccd_gap": ccd_gap,
            "labelled_fraction": labelled_fraction,
        },
        source="simulate options",
    )


def simulate_spectra(out_dir: str | Path, *, progress=None, **options: Any):
    """``astrolatent simulate spectra``: ESO 1D FITS files, ``labels.csv`` and ``truth.csv``
    in ``out_dir`` (``options``: those of :func:`simulate_config`). Returns the simulation's
    output (``files``, ``labels``, ``truth``)."""
    from astrolatent.simulate.spectra import write_spectra

    return write_spectra(out_dir, simulate_config(**options), progress=progress)


def ingest_config(
    *,
    config: str | Path | Mapping[str, Any] | None = None,
    preset: str | None = None,
    format: str | None = None,
    labels: str | Path | None = None,
    id_column: str | None = None,
    grid: Any = None,
    pad_to: int | None = None,
    min_median: float | None = None,
    dtype: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    rows_per_task: int | None = None,
):
    """The effective ingest configuration: defaults < ``preset`` < ``config`` < options."""
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
    return resolve(
        IngestConfig,
        config,
        {
            "format": format,
            "labels": None if labels is None else str(labels),
            "id_column": id_column,
            "preprocess.grid": grid,
            "preprocess.pad_to": pad_to,
            "preprocess.min_median": min_median,
            "preprocess.dtype": dtype,
            "workers": workers,
            "scheduler": scheduler,
            "rows_per_task": rows_per_task,
        },
        base=base,
        source="ingest options",
    )


def ingest(
    inputs: Sequence[str | Path] | None = None,
    *,
    store: str | Path,
    overwrite: bool = False,
    progress=None,
    **options: Any,
):
    """``astrolatent ingest``: spectrum files into a chunked store (resumable). ``options``
    are those of :func:`ingest_config`; a preset that ships its data needs no ``inputs``.
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
            "data (preset='gaia-xp-apogee')"
        )
    return run_ingest(list(inputs), store, cfg, overwrite=overwrite, progress=progress)


def train(
    store: str | Path,
    *,
    run: str | Path,
    preset: str | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
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
    from astrolatent.training.config import with_known_labels
    from astrolatent.training.fit import fit

    overrides = read_mapping(config) if isinstance(config, str | Path) else config
    return fit(
        store,
        run,
        with_known_labels(dict(overrides) if overrides is not None else None, known_labels),
        preset=preset,
        max_steps=max_steps,
        max_minutes=max_minutes,
        resume=resume,
        progress=progress,
    )


def encode(
    run: str | Path,
    *,
    store: str | Path | None = None,
    out: str | Path | None = None,
    batch_size: int = 64,
    device: str = "auto",
    progress=None,
):
    """``astrolatent encode``: ``RUN/latents.parquet`` (id, ``mu_*``, ``logvar_*``, labels)."""
    from astrolatent.training.encode import encode as run_encode

    return run_encode(run, store, out=out, batch_size=batch_size, device=device, progress=progress)


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
        return pd.DataFrame(rows).set_index("label")

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
    float arrays; missing values become NaN. Raises InputFileError naming the file and the
    column."""
    import numpy as np
    import pandas as pd

    from astrolatent.errors import InputFileError
    from astrolatent.tables import read_table

    source = "table" if isinstance(table, pd.DataFrame) else table
    frame = table if isinstance(table, pd.DataFrame) else read_table(table)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputFileError(
            source, f"column(s) {missing} not found; available: {list(frame.columns)}"
        )
    out = {}
    for name in columns:
        series = frame[name]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise InputFileError(source, f"column {name!r} is not numeric (dtype {series.dtype})")
        out[name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def mi(
    table: str | Path | pd.DataFrame,
    *,
    x: Sequence[str],
    y: Sequence[str],
    z: Sequence[str] | None = None,
    sigma: float = 5.0,
    **options: Any,
):
    """``astrolatent mi``: I(x; y) (or I(x; y | z)) in nats between columns of a table, with
    error, permutation p-value and r_I (``to_dict()``). Rows with a non-finite x, and rows
    whose y or z is NaN, a sentinel (-9999, 9999) or beyond ``sigma`` standard deviations
    (0: no clipping) are dropped first. ``options`` are those of
    :func:`astrolatent.analysis.mi.mutual_information` (``estimator``, ``n_bootstrap``, ...)."""
    import numpy as np

    from astrolatent.analysis.mi import clean_labels, mutual_information
    from astrolatent.errors import InputFileError

    if not sigma >= 0:  # also NaN
        raise ConfigError(f"sigma={sigma}: must be 0 (no clipping) or positive")
    x, y, z = list(x), list(y), list(z or [])
    if not x or not y:
        raise ConfigError("x and y each need at least one column name")
    data = read_columns(table, list(dict.fromkeys(x + y + z)))
    xs = np.column_stack([data[c] for c in x])
    labels = np.column_stack([data[c] for c in y + z])
    keep = clean_labels(labels, sigma=sigma if sigma > 0 else None).mask & np.isfinite(xs).all(1)
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
        **options,
    )


def decompose(
    table: str | Path | pd.DataFrame,
    *,
    target: str,
    x1: Sequence[str],
    x2: Sequence[str],
    **options: Any,
):
    """``astrolatent decompose``: redundant, unique and synergistic information x1 and x2
    carry about ``target`` (nats; ``to_dict()``). ``options`` are those of
    :func:`astrolatent.analysis.pid.decompose` (``method``, ``n_bins``, ...)."""
    from astrolatent.analysis.pid import decompose as run_decompose
    from astrolatent.tables import read_table

    frame = read_table(table) if isinstance(table, str | Path) else table
    return run_decompose(frame, target=target, x1=list(x1), x2=list(x2), **options)


def report(run: str | Path, *, out: str | Path | None = None) -> Path:
    """``astrolatent report``: one self-contained HTML file; returns its path."""
    from astrolatent.report.html import build_report

    return build_report(run, out)


def run_pipeline(pipeline: str | Path, *, out: str | Path | None = None, force: str | None = None):
    """``astrolatent run``: the whole chain from a pipeline file; up-to-date stages are
    skipped, ``force`` reruns a stage and those after it."""
    from astrolatent.pipeline import load_pipeline
    from astrolatent.pipeline import run_pipeline as run_stages

    return run_stages(load_pipeline(pipeline, out=out), force=force, source=pipeline)


__all__ = [
    "Analysis",
    "analyze",
    "analyze_config",
    "decompose",
    "encode",
    "ingest",
    "ingest_config",
    "merge",
    "mi",
    "read_columns",
    "report",
    "resolve",
    "run_pipeline",
    "simulate_config",
    "simulate_spectra",
    "train",
]
