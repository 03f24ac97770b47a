"""Planted causal DAGs: tables with a known causal graph, to check causal discovery.

A DAG of ``n_nodes`` nodes ``x0, x1, ...`` gets exactly ``n_edges`` edges, drawn uniformly
among the pairs of a random causal order. Nodes are generated in that order::

    x_j = sum over parents i of  w_ij f_ij(x_i)  +  e_j,      then standardised,

with weights ``|w_ij|`` uniform in ``weight_range`` and a random sign, and noise ``e_j``
of unit variance (Gaussian or Laplace). For ``kind="linear"`` every ``f_ij`` is the
identity (a linear-Gaussian DAG with Gaussian noise: PC with Fisher-z is consistent, while
only the Markov equivalence class is identifiable); for ``kind="nonlinear"`` each edge gets
one of ``tanh(1.5 x)``, ``sin(2 x)`` or ``(x^2 - 1) / sqrt(2)`` (the square is not
monotonic, so partial correlations miss it and a nonparametric test is needed).
Standardising every node keeps the children's inputs on the scale the functions expect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from astrolatent.config import Config
from astrolatent.outputs import marks
from astrolatent.outputs.layout import DAG_TABLE_FILE, DAG_TRUTH_FILE
from astrolatent.outputs.summaries import DAGTruth, provenance, write_summary

log = logging.getLogger(__name__)

#: Edge functions of nonlinear DAGs, by name.
FUNCTIONS = {
    "identity": lambda x: x,
    "tanh": lambda x: np.tanh(1.5 * x),
    "sin": lambda x: np.sin(2.0 * x),
    "square": lambda x: (x**2 - 1.0) / np.sqrt(2.0),
}
_NONLINEAR = ("tanh", "sin", "square")


class DAGSimulationConfig(Config):
    """Options of :func:`simulate_dag`."""

    kind: Literal["linear", "nonlinear"] = "linear"
    n_nodes: int = Field(7, ge=2, le=200)
    n_edges: int = Field(9, ge=0)
    n: int = Field(5000, ge=10, le=10_000_000, description="number of samples")
    noise: Literal["gaussian", "laplace"] = "gaussian"
    weight_range: tuple[float, float] = (0.5, 1.5)
    random_state: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> DAGSimulationConfig:
        most = self.n_nodes * (self.n_nodes - 1) // 2
        if self.n_edges > most:
            raise ValueError(
                f"n_edges={self.n_edges} must be at most {most} for n_nodes={self.n_nodes}"
            )
        low, high = self.weight_range
        if not 0 < low <= high:
            raise ValueError(f"weight_range={self.weight_range} must satisfy 0 < low <= high")
        return self


@dataclass
class PlantedDAG:
    """A sampled DAG and its data.

    ``weights`` ``(p, p)``: ``weights[i, j] != 0`` means the edge ``nodes[i] -> nodes[j]``;
    ``functions`` maps ``(i, j)`` edges to the edge function's name; ``data`` ``(n, p)``.
    """

    nodes: list[str]
    weights: np.ndarray
    functions: dict[tuple[int, int], str]
    data: np.ndarray
    config: DAGSimulationConfig

    @property
    def adjacency(self) -> np.ndarray:
        """Boolean ``(p, p)``: ``[i, j]`` is True for the edge ``i -> j``."""
        return self.weights != 0

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.data, columns=self.nodes)

    def to_dict(self) -> dict:
        """The truth: nodes, edges (from, to, weight, function), adjacency, configuration."""
        edges = [
            {
                "from": self.nodes[i],
                "to": self.nodes[j],
                "weight": float(self.weights[i, j]),
                "function": self.functions[(i, j)],
            }
            for i, j in zip(*np.nonzero(self.adjacency), strict=True)
        ]
        return {
            "nodes": self.nodes,
            "edges": edges,
            "adjacency": self.adjacency.astype(int).tolist(),
            "config": self.config.to_dict(),
        }


def simulate_dag(config: DAGSimulationConfig) -> PlantedDAG:
    """Draw a DAG and ``config.n`` samples from it (see the module docstring)."""
    rng = np.random.default_rng(config.random_state)
    p = config.n_nodes
    order = rng.permutation(p)
    pairs = [(a, b) for a in range(p) for b in range(a + 1, p)]
    chosen = rng.choice(len(pairs), size=config.n_edges, replace=False)
    weights = np.zeros((p, p))
    functions: dict[tuple[int, int], str] = {}
    low, high = config.weight_range
    for k in sorted(chosen):
        a, b = pairs[k]
        i, j = order[a], order[b]
        weights[i, j] = rng.uniform(low, high) * rng.choice([-1.0, 1.0])
        functions[(int(i), int(j))] = (
            "identity" if config.kind == "linear" else str(rng.choice(_NONLINEAR))
        )
    data = np.zeros((config.n, p))
    for j in order:
        if config.noise == "gaussian":
            value = rng.standard_normal(config.n)
        else:
            value = rng.laplace(scale=1 / np.sqrt(2), size=config.n)
        for i in np.flatnonzero(weights[:, j]):
            value = value + weights[i, j] * FUNCTIONS[functions[(int(i), int(j))]](data[:, i])
        data[:, j] = (value - value.mean()) / value.std()
    nodes = [f"x{i}" for i in range(p)]
    return PlantedDAG(nodes, weights, functions, data, config)


def write_dag(out_dir: str | Path, config: DAGSimulationConfig) -> tuple[Path, Path]:
    """Simulate and write ``table.parquet`` (the samples) and ``dag.json`` (the truth,
    :meth:`PlantedDAG.to_dict`) into ``out_dir``; returns both paths."""
    out_dir = marks.claim(out_dir, "dag", (DAG_TABLE_FILE, DAG_TRUTH_FILE))
    dag = simulate_dag(config)
    table = out_dir / DAG_TABLE_FILE
    truth = out_dir / DAG_TRUTH_FILE
    dag.frame().to_parquet(table, index=False)
    header = provenance(format_version=DAGTruth.FORMAT, seeds={"random_state": config.random_state})
    write_summary(truth, DAGTruth, {**header, **dag.to_dict()})
    log.info(
        "wrote a %s DAG (%d nodes, %d edges) to %s",
        config.kind,
        config.n_nodes,
        config.n_edges,
        out_dir,
    )
    return table, truth


__all__ = ["FUNCTIONS", "DAGSimulationConfig", "PlantedDAG", "simulate_dag", "write_dag"]
