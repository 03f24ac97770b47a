"""MI decomposition of trained galaxy estimators (METHOD.md B2).

Three estimator runs of one target (``astrolatent galaxy train``) -- on source X1, on X2,
and on X1 and X2 together -- hold for every held-out object the cross-entropy
``ce`` = CE_k = -ln q_k(bin of y | x) and ``prior_ce`` = h = -ln p(bin of y) under the label
histogram of the objects the model trained on (``RUN/predictions.parquet``).
:func:`decompose_runs` joins the three on ``id``, forms the pointwise mutual information
m_k = h - CE_k (nats) and decomposes them, with bootstrap errors, overall, per class (a
column of the table, e.g. ``class``) and in equal-count bins of any columns (e.g. the
target and ``mag_r``), by one of two methods (:func:`astrolatent.analysis.pid.summarise`):

- ``"mmi"`` (default, as in ``astrolatent decompose``): the minimum-MI PID of the group's
  mean terms, R = min(mean m1, mean m2), U_k = mean m_k - R,
  S = mean m12 - max(mean m1, mean m2). The atoms of the classes and bins are minima of
  their own means, so they do NOT average to the overall atoms.
- ``"pointwise"`` (the 2025 study): per object R = min(m1, m2), U1 = m1 - R,
  U2 = m2 - R, S = m12 - max(m1, m2) (signed), then means. Biased by construction
  (E min < min E): too little redundancy, too much unique information, negative synergy.

``pointwise.parquet`` holds the per-object pointwise terms either way.

Objects: the three runs must hold out the same objects (the same table rows after
cleaning, the same seed and split options: with cross-fitting every object once, else the
same test split) with the same truth. ``common=True`` keeps the objects that all three
hold out instead (e.g. when one input set has missing values that drop rows).

Prior: runs with the same objects, seed and split options train every fold on the same
objects, so their priors agree exactly. Otherwise h is the mean of the three runs' -ln p
(one common prior), and ``prior["max_abs_difference"]`` and ``["mean_abs_difference"]``
say how far apart they were. Only the redundancy depends on h (R = h - max(CE1, CE2)); the
unique and synergy terms do not.

Output folder (:func:`write_decomposition`; the CLI's default is
``RUN12/decomposition/<run1>_vs_<run2>/``)::

    decomposition.json   overall means and errors, by_class, by_bin, the runs' metrics
    pointwise.parquet    one row per object: id, the target, prior_ce, ce1, ce2, ce12,
                         m1, m2, m12, redundancy, unique1, unique2, synergy, group columns
    stack_<column>.png   the four terms stacked in bins of each binned column
    by_<column>.png      the four terms per class, with error bars
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from astrolatent.analysis.pid import (
    ATOMS,
    DEFAULT_METHOD,
    MIN_ROWS,
    SUMMARIES,
    PIDResult,
    pointwise_decomposition,
    summarise,
)
from astrolatent.config import Columns, Config
from astrolatent.errors import ConfigError, InputFileError
from astrolatent.galaxies.config import EstimatorConfig
from astrolatent.outputs import marks
from astrolatent.outputs.layout import (
    CONFIG_FILE,
    DECOMPOSITION_DIR,
    GROUP_FIGURE,
    POINTWISE_FILE,
    PREDICTIONS_FILE,
    STACK_FIGURE,
)
from astrolatent.outputs.layout import DECOMPOSITION_FILE as JSON_FILE
from astrolatent.outputs.layout import TRAIN_SUMMARY_FILE as SUMMARY_FILE
from astrolatent.outputs.summaries import (
    Decomposition,
    GalaxyTrainSummary,
    load_galaxy_summary,
    provenance,
    write_summary,
)
from astrolatent.tables import read_table

log = logging.getLogger(__name__)

#: Largest difference (nats) between the runs' -ln p(bin) counted as the same prior.
_PRIOR_TOLERANCE = 1e-9
_ROLES = ("1", "2", "12")


class RunDecompositionConfig(Config):
    """Options of ``astrolatent galaxy decompose``: the runs trained on X1, on X2 and on
    both (RUN1,RUN2,RUN12), the column to average per value of (``by``; None or ``""``:
    none), the columns to average in ``n_bins`` equal-count bins of (None: the target and
    mag_r), whether to keep only the objects all three runs hold out (``common``), the
    measure, the bootstrap and the output folder (None: ``RUN12/decomposition/RUN1_vs_RUN2``)."""

    runs: Columns
    by: str | None = "class"
    bins: Columns | None = None
    n_bins: int = 6
    common: bool = False
    method: Literal["mmi", "pointwise"] = DEFAULT_METHOD
    n_bootstrap: int = Field(200, ge=0)
    random_state: int = 0
    out: str | None = None

    @field_validator("runs")
    @classmethod
    def _three(cls, runs: list[str]) -> list[str]:
        if len(runs) != 3:
            raise ValueError(f"{runs}: give three runs RUN1,RUN2,RUN12 (X1, X2, both)")
        return runs


_COLOURS = {
    "redundancy": "tab:blue",
    "unique1": "tab:orange",
    "unique2": "tab:green",
    "synergy": "tab:red",
}


@dataclass(frozen=True)
class EstimatorRun:
    """What the decomposition reads from a galaxy run directory."""

    path: Path
    config: EstimatorConfig
    summary: GalaxyTrainSummary
    predictions: pd.DataFrame

    @property
    def columns(self) -> list[str]:
        """The tabular input columns the estimator saw."""
        return list(self.summary.columns)

    @property
    def sources(self) -> list[str]:
        """The input groups/columns as given to ``galaxy train``, plus ``images``."""
        return [*self.config.data.inputs, *(["images"] if self.config.data.images else [])]


def load_run(path: str | Path) -> EstimatorRun:
    """Read ``config.yaml``, ``train_summary.json`` and ``predictions.parquet`` of a run."""
    path = Path(path)
    if not path.is_dir():
        raise InputFileError(path, "not a galaxy run directory (not found)")
    for name in (CONFIG_FILE, SUMMARY_FILE, PREDICTIONS_FILE):
        if not (path / name).is_file():
            raise InputFileError(
                path, f"lacks {name}; is it a finished `astrolatent galaxy train` run?"
            )
    config = EstimatorConfig.load(path / CONFIG_FILE)
    summary = load_galaxy_summary(path)
    predictions = read_table(path / PREDICTIONS_FILE)
    missing = [c for c in ("id", "truth", "ce", "prior_ce") if c not in predictions.columns]
    if missing:
        raise InputFileError(path, f"{PREDICTIONS_FILE} lacks {missing}")
    bad = [
        c
        for c in ("truth", "ce", "prior_ce")
        if not np.isfinite(predictions[c].to_numpy(float)).all()
    ]
    if bad:
        raise InputFileError(
            path / PREDICTIONS_FILE, f"non-finite values in {bad}; retrain or drop those objects"
        )
    twice = predictions["id"].duplicated()
    if twice.any():
        raise InputFileError(
            path / PREDICTIONS_FILE,
            f"{int(twice.sum())} objects are predicted more than once (e.g. id "
            f"{predictions['id'][twice].iloc[0]}); ids must be unique",
        )
    return EstimatorRun(path, config, summary, predictions)


def _check_compatible(run1: EstimatorRun, run2: EstimatorRun, run12: EstimatorRun) -> None:
    """Three different runs; same target and PDF bins everywhere; the joint run sees both
    sources' inputs."""

    def bins(run: EstimatorRun) -> tuple:
        pdf = run.config.pdf
        return (run.config.data.target, pdf.target_min, pdf.target_max, pdf.n_bins)

    for run in (run1, run2):
        if bins(run) != bins(run12):
            raise InputFileError(
                run.path,
                f"target and bins (target, min, max, n_bins) {bins(run)} differ from "
                f"{bins(run12)} of the joint run {run12.path}; train all three alike",
            )
        lacking = [c for c in run.columns if c not in run12.columns]
        if run.config.data.images and not run12.config.data.images:
            lacking.append("images")
        if lacking:
            raise InputFileError(
                run12.path,
                f"the joint run lacks {lacking}, inputs of {run.path}; it must see the "
                "inputs of both sources",
            )
    paths = [r.path.resolve() for r in (run1, run2, run12)]
    if len(set(paths)) < 3:
        raise InputFileError(
            run1.path, f"--runs names the same run twice ({', '.join(map(str, paths))})"
        )


def join_runs(
    run1: EstimatorRun, run2: EstimatorRun, run12: EstimatorRun, *, common: bool = False
) -> tuple[pd.DataFrame, dict]:
    """Per-object cross-entropies of the three runs, joined on ``id``.

    Returns ``(frame, info)``: ``frame`` has columns id, truth, prior_ce (the common h),
    ce1, ce2, ce12 (nats), in the joint run's order; ``info`` has ``n_dropped`` (objects
    of each run left out with ``common``) and ``prior`` (how h was formed).

    Raises InputFileError when the runs hold out different objects (unless ``common``),
    disagree on an object's truth, or differ in target or bins.
    """
    runs = dict(zip(_ROLES, (run1, run2, run12), strict=True))
    _check_compatible(run1, run2, run12)
    ids = {role: pd.Index(run.predictions["id"]) for role, run in runs.items()}
    shared = ids["12"].intersection(ids["1"]).intersection(ids["2"])
    if not common:
        for role in ("1", "2"):
            if not ids[role].sort_values().equals(ids["12"].sort_values()):
                raise InputFileError(
                    runs[role].path,
                    f"holds out {len(ids[role])} objects and the joint run {run12.path} "
                    f"{len(ids['12'])}, {len(shared)} of them in all three runs; train the "
                    "three on the same rows with the same seed and split options, or keep "
                    "the shared objects (common=True, --common)",
                )
    if len(shared) < MIN_ROWS:
        raise InputFileError(
            run12.path,
            f"only {len(shared)} objects are held out by all three runs (at least "
            f"{MIN_ROWS} needed); cross-fitting (--cv-folds) holds out every object once",
        )
    frame = run12.predictions.loc[ids["12"].isin(shared), ["id", "truth"]].reset_index(drop=True)
    priors = []
    for role, run in runs.items():
        part = run.predictions.set_index("id").loc[frame["id"]]
        bad = ~np.isclose(part["truth"].to_numpy(), frame["truth"].to_numpy(), rtol=0, atol=1e-9)
        if bad.any():
            raise InputFileError(
                run.path,
                f"the truth of {int(bad.sum())} objects differs from the joint run's (e.g. "
                f"id {frame['id'][bad].iloc[0]}: {part['truth'].to_numpy()[bad][0]} vs "
                f"{frame['truth'][bad].iloc[0]}); are these runs of the same table?",
            )
        frame[f"ce{role}"] = part["ce"].to_numpy(dtype=np.float64)
        priors.append(part["prior_ce"].to_numpy(dtype=np.float64))
    priors = np.stack(priors)
    gaps = priors.max(axis=0) - priors.min(axis=0)
    spread = float(gaps.max())
    frame.insert(2, "prior_ce", priors.mean(axis=0))
    info = {
        "n_dropped": {f"x{role}": int(len(ids[role]) - len(shared)) for role in _ROLES},
        "prior": {
            "shared": spread <= _PRIOR_TOLERANCE,
            "h": "the runs' -ln p(bin of truth)"
            if spread <= _PRIOR_TOLERANCE
            else "mean of the three runs' -ln p(bin of truth)",
            "max_abs_difference": spread,
            "mean_abs_difference": float(gaps.mean()),
        },
    }
    if spread > _PRIOR_TOLERANCE:
        log.info("the runs' priors differ by up to %.3g nats; using their mean", spread)
    return frame, info


@dataclass
class RunDecomposition:
    """The decomposition of three estimator runs (all values in nats).

    ``result``: overall atoms and bootstrap errors (``result.method``: "mmi" or
    "pointwise"; ``result.pointwise``: the per-object table of pointwise terms).
    ``by_class``: the column grouped by (or None) and its :func:`summarise` table;
    ``by_bin``: binned column -> its :func:`summarise` table (equal-count bins).
    """

    result: PIDResult
    target: str
    runs: dict[str, dict]
    by: str | None
    by_class: pd.DataFrame | None
    by_bin: dict[str, pd.DataFrame] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    n_bootstrap: int = 0
    random_state: int | None = None

    @property
    def pointwise(self) -> pd.DataFrame:
        return self.result.pointwise

    @property
    def x1(self) -> list[str]:
        """The inputs of the run on X1 (from ``runs``)."""
        return self.runs["x1"]["inputs"]

    @property
    def x2(self) -> list[str]:
        """The inputs of the run on X2 (from ``runs``)."""
        return self.runs["x2"]["inputs"]

    def to_dict(self) -> dict:
        """JSON-safe: the atoms and ``*_err``, mi1/mi2/mi12, method, n, x1, x2, target,
        by, by_class {group: terms}, by_bin {column: [{low, high, terms}]}, note (what the
        group atoms mean), runs, prior."""

        def terms(row: pd.Series) -> dict:
            out = {"n": int(row["n"])}
            for atom in ATOMS:
                for key in (atom, f"{atom}_err"):
                    value = float(row[key])
                    out[key] = value if np.isfinite(value) else None
            return out

        by_class = None
        if self.by_class is not None:
            by_class = {str(k): terms(row) for k, row in self.by_class.iterrows()}
        by_bin = {
            col: [
                {"low": float(k.left), "high": float(k.right), **terms(row)}
                for k, row in table.iterrows()
            ]
            for col, table in self.by_bin.items()
        }
        return {
            **self.result.to_dict(),
            "target": self.target,
            "x1": self.x1,
            "x2": self.x2,
            "by": self.by,
            "by_class": by_class,
            "by_bin": by_bin,
            "note": GROUP_NOTES[self.result.method],
            "n_bootstrap": self.n_bootstrap,
            **self.info,
            "runs": self.runs,
        }


#: What the per-class and per-bin atoms of each method are.
GROUP_NOTES = {
    "mmi": "per-class and per-bin atoms are the minimum-MI PID of each group's mean "
    "pointwise MIs; they do not average to the overall atoms",
    "pointwise": "per-class and per-bin atoms are means of the pointwise terms; they "
    "average to the overall atoms; the pointwise minimum is biased (low redundancy, high "
    "unique, negative synergy)",
}


def _quantile_edges(values: pd.Series, n_bins: int) -> np.ndarray:
    finite = values.to_numpy(dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ConfigError(f"column {values.name!r} has no finite values to bin")
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size < 2:
        raise ConfigError(f"column {values.name!r} is constant ({edges[0]}); nothing to bin")
    return edges


def _group_columns(
    table: pd.DataFrame, run12: EstimatorRun, ids: pd.Series, columns: Sequence[str]
) -> dict[str, np.ndarray]:
    """Values of ``columns`` of the joint run's ``table`` for the objects ``ids`` (matched
    on the id column, or on row numbers when the table has none, as in training)."""
    if not columns:
        return {}
    source = run12.config.data.table
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputFileError(
            source,
            f"no column(s) {missing} to group by (columns: {', '.join(map(str, table.columns))})",
        )
    id_column = run12.config.data.id_column
    if id_column in table.columns:
        table = table.drop_duplicates(id_column).set_index(id_column)
    found = ids.isin(table.index)
    if not found.all():
        raise InputFileError(
            source,
            f"{int((~found).sum())} predicted objects (e.g. id {ids[~found].iloc[0]}) are "
            "not in the table the joint run was trained on",
        )
    rows = table.loc[ids.to_numpy(), list(columns)]
    return {c: rows[c].to_numpy() for c in columns}


def decompose_runs(
    run1: str | Path | EstimatorRun,
    run2: str | Path | EstimatorRun,
    run12: str | Path | EstimatorRun,
    *,
    by: str | None = "class",
    bins: Sequence[str] | None = None,
    n_bins: int = 6,
    common: bool = False,
    method: Literal["mmi", "pointwise"] = DEFAULT_METHOD,
    n_bootstrap: int = 200,
    random_state: int | np.random.Generator | None = 0,
) -> RunDecomposition:
    """Minimum-MI decomposition of the information X1 and X2 give on the target.

    Args:
        run1, run2, run12: galaxy run directories (or loaded runs) of estimators on X1, on
            X2 and on X1 and X2 together, all of the same target and bins.
        by: a column of the joint run's table to average per value of (e.g. ``class``);
            None for none. The default ``class`` is skipped when the table lacks it.
        bins: columns to average in ``n_bins`` equal-count bins of; the target's name
            means the truth. None: the target, and ``mag_r`` when the table has it.
        n_bins: bins per binned column (>= 1).
        common: keep the objects all three runs hold out instead of requiring the same.
        method: "mmi" (minimum of the mean MIs) or "pointwise" (means of the per-object
            minimum-MI terms, the 2025 study's measure; biased).
        n_bootstrap: bootstrap resamples of the objects for the errors (0: none).
        random_state: seed of the bootstrap.

    Returns:
        A :class:`RunDecomposition`; its errors cover the sampling of the objects, not the
        training of the estimators.
    """
    if n_bins < 1:
        raise ConfigError(f"n_bins={n_bins} must be at least 1")
    if method not in SUMMARIES:
        raise ConfigError(f"method={method!r} is not known; choose one of {list(SUMMARIES)}")
    runs = [r if isinstance(r, EstimatorRun) else load_run(r) for r in (run1, run2, run12)]
    joined, info = join_runs(*runs, common=common)
    target = runs[2].config.data.target
    frame, by, bins = _pointwise_frame(joined, runs[2], by, bins)
    rng = np.random.default_rng(random_state)
    resampling = {"method": method, "n_bootstrap": n_bootstrap, "random_state": rng}
    overall = summarise(frame, **resampling).iloc[0]
    result = PIDResult(
        *(float(overall[a]) for a in ATOMS),
        method=method,
        n=len(frame),
        **{f"{a}_err": float(overall[f"{a}_err"]) for a in ATOMS},
        pointwise=frame,
    )
    by_class = None if by is None else summarise(frame, by=by, **resampling)
    by_bin = {}
    for col in bins:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            raise ConfigError(
                f"column {col!r} is not numeric (dtype {frame[col].dtype}); bin a number"
            )
        by_bin[col] = summarise(
            frame, by=col, bins=_quantile_edges(frame[col], n_bins), **resampling
        )
    return RunDecomposition(
        result=result,
        target=target,
        runs=_run_info(runs),
        by=by,
        by_class=by_class,
        by_bin=by_bin,
        info=info,
        n_bootstrap=n_bootstrap,
        random_state=random_state if isinstance(random_state, int) else None,
    )


def _pointwise_frame(
    joined: pd.DataFrame, run12: EstimatorRun, by: str | None, bins: Sequence[str] | None
) -> tuple[pd.DataFrame, str | None, list[str]]:
    """The joined runs with each object's pointwise terms (nats) and the grouping columns
    of the joint run's table; returns it with ``by`` and ``bins`` resolved against the table
    (``class`` dropped when absent; default bins: the target and ``mag_r``)."""
    target = run12.config.data.target
    h = joined["prior_ce"]
    pointwise = pointwise_decomposition(h - joined["ce1"], h - joined["ce2"], h - joined["ce12"])
    frame = pd.concat(
        [joined.rename(columns={"truth": target}), pointwise.reset_index(drop=True)], axis=1
    )
    table = read_table(run12.config.data.table)
    if bins is None:
        bins = [target, *(["mag_r"] if "mag_r" in table.columns else [])]
    if by == "class" and "class" not in table.columns:
        by = None
    wanted = [c for c in dict.fromkeys([*([by] if by else []), *bins]) if c not in frame.columns]
    for col, values in _group_columns(table, run12, frame["id"], wanted).items():
        frame[col] = values
    return frame, by, list(bins)


def _run_info(runs: list[EstimatorRun]) -> dict[str, dict]:
    """What each run contributed (path, inputs, objects, held-out metrics), by role."""
    return {
        f"x{role}": {
            "path": str(run.path),
            "inputs": run.sources,
            "n_objects": len(run.predictions),
            "metrics": run.summary.metrics,
        }
        for role, run in zip(_ROLES, runs, strict=True)
    }


# ---------------------------------------------------------------------------------------
# figures and output folder
# ---------------------------------------------------------------------------------------
def _labels(decomp: RunDecomposition) -> dict[str, str]:
    return {
        "redundancy": "redundancy",
        "unique1": f"unique to {'+'.join(decomp.x1)}",
        "unique2": f"unique to {'+'.join(decomp.x2)}",
        "synergy": "synergy",
    }


def _ylabel(method: str) -> str:
    if method == "pointwise":
        return "mean pointwise information (nats)"
    return "information (nats; groups do not add up to all)"


def stack_figure(
    summary: pd.DataFrame,
    *,
    labels: dict[str, str],
    xlabel: str,
    title: str,
    method: str = DEFAULT_METHOD,
):
    """The four terms stacked per bin (positive parts up, negative parts down) with
    their sum, I(Y; X1, X2), as a line; ``summary`` from :func:`summarise` with bins,
    ``method`` its method (labels the axis)."""
    from astrolatent.figures import plt

    low = np.array([k.left for k in summary.index], dtype=np.float64)
    high = np.array([k.right for k in summary.index], dtype=np.float64)
    centre, width = 0.5 * (low + high), 0.9 * (high - low)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    up = np.zeros(len(summary))
    down = np.zeros(len(summary))
    for atom in ATOMS:
        v = summary[atom].to_numpy(dtype=np.float64)
        bottom = np.where(v >= 0, up, down)
        ax.bar(centre, v, width=width, bottom=bottom, color=_COLOURS[atom], label=labels[atom])
        up += np.clip(v, 0, None)
        down += np.clip(v, None, 0)
    total = summary[list(ATOMS)].sum(axis=1).to_numpy()
    ax.plot(centre, total, "k.-", lw=1, label="I(Y; X1, X2)")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_ylabel(method))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def class_figure(
    summary: pd.DataFrame, *, labels: dict[str, str], title: str, method: str = DEFAULT_METHOD
):
    """Grouped bars of the four terms per class with bootstrap error bars."""
    from astrolatent.figures import plt

    groups = [str(k) for k in summary.index]
    x = np.arange(len(groups))
    step = 0.8 / len(ATOMS)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(groups) + 2), 3.8))
    for j, atom in enumerate(ATOMS):
        err = summary[f"{atom}_err"].to_numpy(dtype=np.float64)
        ax.bar(
            x + (j - 1.5) * step,
            summary[atom].to_numpy(dtype=np.float64),
            width=step,
            yerr=np.where(np.isfinite(err), err, 0.0),
            capsize=2,
            color=_COLOURS[atom],
            label=labels[atom],
        )
    ax.set_xticks(x, [f"{g}\n(n={int(n)})" for g, n in zip(groups, summary["n"], strict=True)])
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel(_ylabel(method))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def default_out_dir(run1: str | Path, run2: str | Path, run12: str | Path) -> Path:
    """``RUN12/decomposition/<run1 name>_vs_<run2 name>``."""
    return (
        Path(run12)
        / DECOMPOSITION_DIR
        / f"{Path(run1).resolve().name}_vs_{Path(run2).resolve().name}"
    )


def write_decomposition(decomp: RunDecomposition, out_dir: str | Path) -> dict[str, Path]:
    """Write ``decomposition.json``, ``pointwise.parquet`` and the figures into ``out_dir``
    (created and marked; an earlier decomposition's files there are replaced; a folder that
    is not empty and not a decomposition's raises OutputFolderError). Returns name -> path."""
    from astrolatent.figures import save

    out_dir = marks.claim(
        out_dir,
        "decomposition",
        (JSON_FILE, POINTWISE_FILE, STACK_FIGURE.format("*"), GROUP_FIGURE.format("*")),
        what="--out",
        fresh=True,
    )  # figures of an earlier decomposition with other bins or groups go
    labels = _labels(decomp)
    method = decomp.result.method
    title = f"{decomp.target}: {'+'.join(decomp.x1)} vs {'+'.join(decomp.x2)} ({method})"
    written: dict[str, Path] = {}
    for col, table in decomp.by_bin.items():
        fig = stack_figure(
            table, labels=labels, xlabel=col, title=f"{title} (n={decomp.result.n})", method=method
        )
        written[f"stack_{col}"] = save(fig, out_dir / STACK_FIGURE.format(col))[0]
    if decomp.by_class is not None:
        r = decomp.result
        overall = {"n": r.n, **{k: getattr(r, k) for k in decomp.by_class.columns if k != "n"}}
        rows = pd.concat([decomp.by_class, pd.DataFrame(overall, index=["all"])])
        fig = class_figure(rows, labels=labels, title=title, method=method)
        written[f"by_{decomp.by}"] = save(fig, out_dir / GROUP_FIGURE.format(decomp.by))[0]
    decomp.pointwise.to_parquet(out_dir / POINTWISE_FILE, index=False)
    written["pointwise"] = out_dir / POINTWISE_FILE
    payload = {
        **provenance(
            format_version=Decomposition.FORMAT,
            seeds={"random_state": decomp.random_state},
        ),
        **decomp.to_dict(),
        "figures": {k: v.name for k, v in written.items()},
    }
    write_summary(out_dir / JSON_FILE, Decomposition, payload)
    written["json"] = out_dir / JSON_FILE
    return written


__all__ = [
    "DECOMPOSITION_DIR",
    "GROUP_NOTES",
    "JSON_FILE",
    "POINTWISE_FILE",
    "EstimatorRun",
    "RunDecomposition",
    "class_figure",
    "decompose_runs",
    "default_out_dir",
    "join_runs",
    "load_run",
    "stack_figure",
    "write_decomposition",
]
