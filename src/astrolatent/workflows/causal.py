"""Reading a galaxy-estimator run for causal analysis: latents of one model joined with the
target and catalogue columns of the run's table."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from astrolatent.analysis.causal.discover import CausalGraph, DiscoveryConfig, discover
from astrolatent.analysis.causal.local import LocalTestResult, local_tests
from astrolatent.config import Columns, Config
from astrolatent.errors import ConfigError, InputFileError
from astrolatent.galaxies.catalog import CleaningReport, clean_rows, require_rows
from astrolatent.galaxies.config import EstimatorConfig
from astrolatent.outputs import marks
from astrolatent.outputs.layout import (
    CAUSAL_DIR,
    CONFIG_FILE,
    DISCOVERY_FILE,
    GRAPH_FIGURE,
    LATENTS_FILE,
    LOCAL_FILE,
    LOCAL_OBJECTS_FILE,
    R_HISTOGRAM_FIGURE,
    R_MAP_FIGURE,
    SPLIT_FILE,
)
from astrolatent.outputs.summaries import Discovery, LocalTests, provenance, write_summary
from astrolatent.tables import read_table

log = logging.getLogger(__name__)

MIN_OBJECTS = 20


class LocalTestConfig(Config):
    """Options of ``astrolatent causal`` (:func:`run_local_tests`): the query column, the
    conditioning columns, which model's latent space, which objects to test (at most
    ``max_objects``, seeded), the neighbourhood size and permutations, the level, and the
    output folder (None: ``RUN/causal/local_<query>...``)."""

    query: str
    condition: Columns = Field(default_factory=list)
    model: int = Field(0, ge=0)
    evaluate: Literal["test", "val", "train"] = "test"
    max_objects: int | None = None
    n_neighbors: int = 100
    n_permutations: int = 200
    alpha: float = 0.05
    random_state: int = 0
    out: str | None = None


@dataclass
class RunObjects:
    """The usable objects of one model of a run.

    ``latents`` ``(n, d)``, ``latent_names`` (``s_0``..), ``values`` a frame of the target
    and the requested catalogue columns (``n`` rows), ``ids`` and ``roles``
    (train/val/test) ``(n,)``, and the cleaning ``report``.
    """

    run: Path
    model: int
    target: str
    ids: np.ndarray
    roles: np.ndarray
    latents: np.ndarray
    latent_names: list[str]
    values: pd.DataFrame
    report: CleaningReport


def is_run(path: str | Path) -> bool:
    """Whether ``path`` is a galaxy-estimator run directory (it holds latents and config,
    and is not marked as another kind of output, such as a spectrum run)."""
    path = Path(path)
    if not (path.is_dir() and (path / CONFIG_FILE).is_file() and (path / LATENTS_FILE).is_file()):
        return False
    mark = marks.read_mark(path)
    return mark is None or mark.get("kind") == "galaxy run"


def not_a_galaxy_run(path: str | Path) -> InputFileError:
    """The error for a folder that :func:`is_run` refuses, saying what it is instead."""
    path = Path(path)
    mark = marks.read_mark(path) if path.is_dir() else None
    if mark is not None and mark.get("kind") == "run":
        return InputFileError(
            path,
            "a spectrum run, not a galaxy run: the causal commands read a galaxy run "
            "(`astrolatent galaxy train`)",
        )
    return InputFileError(path, f"not a galaxy run directory (no {CONFIG_FILE}/{LATENTS_FILE})")


def load_run_objects(run: str | Path, columns: list[str], *, model: int = 0) -> RunObjects:
    """Latents of ``model`` joined (by table row) with the target and ``columns`` of the
    run's catalogue; rows with NaN or sentinel values in any of them are dropped."""
    run = Path(run)
    if not is_run(run):
        raise not_a_galaxy_run(run)
    config = EstimatorConfig.load(run / CONFIG_FILE)
    latents = pd.read_parquet(run / LATENTS_FILE)
    split = pd.read_parquet(run / SPLIT_FILE, columns=["id", "row", "model"])
    models = sorted(int(m) for m in latents["model"].unique())
    if model not in models:
        raise ConfigError(f"{run}: model={model} not in the run (models: {models})")
    latents = latents[latents["model"] == model].merge(
        split[split["model"] == model].drop(columns="model"), on="id", how="left"
    )
    table = read_table(config.data.table)
    target = config.data.target
    wanted = [target, *[c for c in columns if c != target]]
    frame = table.iloc[latents["row"].to_numpy()].reset_index(drop=True)
    values, keep, report = clean_rows(
        frame, wanted, sentinels=config.data.sentinels, source=config.data.table
    )
    require_rows(report, MIN_OBJECTS, source=config.data.table)
    names = [c for c in latents.columns if c.startswith("s_")]
    kept = latents[keep].reset_index(drop=True)
    return RunObjects(
        run=run,
        model=int(model),
        target=target,
        ids=kept["id"].to_numpy(),
        roles=kept["role"].to_numpy().astype(str),
        latents=kept[names].to_numpy(np.float64),
        latent_names=names,
        values=pd.DataFrame(values, columns=wanted),
        report=report,
    )


def local_dir_name(query: str, condition: Sequence[str]) -> str:
    """``local_<query>`` or ``local_<query>_given_<c1>+<c2>``."""
    return f"local_{query}" + (f"_given_{'+'.join(condition)}" if condition else "")


def run_local_tests(
    run: str | Path,
    config: LocalTestConfig,
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[LocalTestResult, Path]:
    """Local tests of a run's target against ``config.query`` in the latent space of
    ``config.model``.

    Neighbourhoods are drawn from the model's training objects; the ``config.evaluate``
    role's objects are tested (at most ``config.max_objects``, a seeded subsample). Writes
    into ``config.out`` (default ``RUN/causal/local_<query>[_given_<condition>]/``):
    ``local.json`` (settings and summaries), ``local.parquet`` (one row per evaluated
    object, with its ``id``), ``r_hist.png`` and ``r_map.png``. ``progress`` is called
    with the number of objects done. Returns the result and the folder.
    """
    query, condition = config.query, list(config.condition)
    if query in condition:
        raise ConfigError(f"the query {query!r} is also a conditioning column")
    objects = load_run_objects(run, [query, *condition], model=config.model)
    if query == objects.target:
        raise ConfigError(f"the query {query!r} is the run's target; choose another column")
    if objects.target in condition:
        raise ConfigError(f"cannot condition on the target {objects.target!r}")
    values = objects.values
    result = local_tests(
        objects.latents,
        values[objects.target].to_numpy(),
        values[query].to_numpy(),
        condition=values[condition].to_numpy() if condition else None,
        reference=objects.roles == "train",
        evaluate=_evaluated(objects, config),
        n_neighbors=config.n_neighbors,
        n_permutations=config.n_permutations,
        alpha=config.alpha,
        random_state=config.random_state,
        progress=progress,
    )
    result.objects.insert(0, "id", objects.ids[result.objects["index"].to_numpy()])
    result.objects = result.objects.drop(columns="index")
    result.settings = {
        "run": str(objects.run),
        "model": objects.model,
        "target": objects.target,
        "query": query,
        "condition": condition,
        "evaluate": config.evaluate,
        **result.settings,
    }
    out = (
        Path(config.out)
        if config.out is not None
        else (objects.run / CAUSAL_DIR / local_dir_name(query, condition))
    )
    _write_local_tests(result, out, target=objects.target, query=query, alpha=config.alpha)
    log.info("wrote local tests of %s to %s", query, out)
    return result, out


def _evaluated(objects: RunObjects, config: LocalTestConfig) -> np.ndarray:
    """The mask of the ``config.evaluate`` role's objects, at most ``config.max_objects``
    (a subsample seeded by ``config.random_state``)."""
    evaluate, max_objects = config.evaluate, config.max_objects
    evaluated = objects.roles == evaluate
    if not evaluated.any():
        raise ConfigError(
            f"{objects.run}: model {objects.model} has no usable {evaluate!r} objects; "
            "choose another evaluate role"
        )
    if max_objects is not None and evaluated.sum() > max_objects:
        rng = np.random.default_rng(config.random_state)
        keep = rng.choice(np.flatnonzero(evaluated), max_objects, replace=False)
        evaluated = np.zeros_like(evaluated)
        evaluated[keep] = True
    return evaluated


def _write_local_tests(
    result: LocalTestResult, out: Path, *, target: str, query: str, alpha: float
) -> None:
    """``local.json``, ``local.parquet`` and the two figures into ``out`` (claimed)."""
    from astrolatent.figures import save
    from astrolatent.figures.causal import r_histogram, r_map

    marks.claim(out, "causal", (LOCAL_FILE, LOCAL_OBJECTS_FILE, "r_*.png"), what="--out")
    seeds = {"random_state": result.settings.get("random_state")}
    write_summary(
        out / LOCAL_FILE,
        LocalTests,
        {**provenance(format_version=LocalTests.FORMAT, seeds=seeds), **result.to_dict()},
    )
    result.objects.to_parquet(out / LOCAL_OBJECTS_FILE, index=False)
    condition = "+".join(result.settings["condition"]) or None
    save(
        r_histogram(result.objects, result.summary, query=query, condition=condition),
        out / R_HISTOGRAM_FIGURE,
    )
    save(
        r_map(result.objects, target=target, query=query, alpha=alpha, condition=condition),
        out / R_MAP_FIGURE,
    )


def run_discovery(
    run: str | Path,
    columns: Sequence[str],
    config: DiscoveryConfig,
    *,
    model: int = 0,
    latent_dims: Sequence[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[CausalGraph, dict[str, str]]:
    """Causal discovery among the latent dims of ``model`` (all, or ``latent_dims``), the
    run's target and catalogue ``columns``, over all usable objects of the model.

    Returns the graph and the node groups (node -> ``latent``/``target``/``catalogue``).
    """
    objects = load_run_objects(run, list(columns), model=model)
    names = objects.latent_names
    dims = range(len(names)) if latent_dims is None else latent_dims
    bad = [d for d in dims if not 0 <= d < len(names)]
    if bad:
        raise ConfigError(f"latent dims {bad} out of range 0..{len(names) - 1}")
    latent_nodes = [names[d] for d in dims]
    latents = objects.latents[:, list(dims)]
    frame = objects.values
    data = np.column_stack([latents, frame.to_numpy()])
    nodes = [*latent_nodes, *frame.columns]
    groups = {n: "latent" for n in latent_nodes}
    groups.update({c: "catalogue" for c in frame.columns})
    groups[objects.target] = "target"
    graph = discover(data, nodes, config, progress=progress)
    graph.settings.update({"run": str(objects.run), "model": objects.model})
    return graph, groups


def write_discovery(
    graph: CausalGraph,
    out_dir: str | Path,
    *,
    groups: dict[str, str] | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``discovery.json`` (:meth:`CausalGraph.to_dict` plus ``groups`` and
    ``extra``) and ``graph.png`` into ``out_dir``; returns the folder."""
    from astrolatent.figures import save
    from astrolatent.figures.causal import graph_figure

    out = marks.claim(out_dir, "discovery", (DISCOVERY_FILE, GRAPH_FIGURE), what="--out")
    payload = {
        **provenance(
            format_version=Discovery.FORMAT,
            seeds={"random_state": graph.settings.get("random_state")},
        ),
        **graph.to_dict(),
        "groups": groups,
        **(extra or {}),
    }
    write_summary(out / DISCOVERY_FILE, Discovery, payload)
    save(graph_figure(graph, groups=groups), out / GRAPH_FIGURE)
    return out


__all__ = [
    "RunObjects",
    "is_run",
    "load_run_objects",
    "local_dir_name",
    "not_a_galaxy_run",
    "run_discovery",
    "run_local_tests",
    "write_discovery",
]
