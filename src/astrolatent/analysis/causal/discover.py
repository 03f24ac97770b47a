"""Global causal discovery (PC, FCI, GES, DirectLiNGAM) with one result type.

Every algorithm's output becomes a :class:`CausalGraph`: node names, and for every pair of
adjacent nodes the mark at each end of their edge (``tail``, ``arrow`` or ``circle``).
The edge types follow: ``-->`` (tail, arrow), ``---`` (tail, tail; PC/GES: orientation not
identified within the Markov equivalence class), ``<->`` (arrow, arrow; FCI: a latent
common cause), ``o->`` and ``o-o`` (FCI: the circle end is undetermined). A tail-circle
edge (FCI under selection bias) is reported as ``o-o``.

Algorithms (causal-learn and lingam):

* ``pc`` and ``fci`` use a conditional-independence test: ``fisherz`` (partial
  correlation; linear-Gaussian relations), or a nonparametric one, ``kci`` (kernel CI test,
  O(n^3) per test: run on subsamples, by default :data:`KERNEL_MAX_SAMPLES` rows) or
  ``rcit`` (randomised CI test, faster and less powerful);
* ``ges`` scores linear-Gaussian DAGs by BIC (its output is an equivalence class);
* ``lingam`` is DirectLiNGAM: a fully oriented DAG, identifiable only when the noise is
  non-Gaussian; edges are the non-zero coefficients of its adaptive-lasso fit.

Stability: the algorithm is re-run on ``n_bootstrap`` subsamples drawn without
replacement, each half of the rows used (subsampling rather than the classical bootstrap,
because duplicated rows fake dependence for kernel tests). An edge's ``stability`` is the
fraction of subsamples that hold the same edge type in the same direction; the
``skeleton_stability`` matrix is the fraction in which the two nodes are adjacent at all.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from astrolatent.config import Config
from astrolatent.errors import ConfigError, require

log = logging.getLogger(__name__)

Method = Literal["pc", "fci", "ges", "lingam"]
Test = Literal["fisherz", "kci", "rcit"]
#: Default subsample size for the kernel-based tests (rows).
KERNEL_MAX_SAMPLES = 400
#: Fewest rows causal discovery accepts.
MIN_ROWS = 10
#: causal-learn endpoint codes of ``GeneralGraph.graph`` (``graph[a, b]``: mark at ``a``).
_CAUSALLEARN_MARKS = {-1: "tail", 1: "arrow", 2: "circle"}
_EDGE_TYPES = {
    ("tail", "arrow"): "-->",
    ("tail", "tail"): "---",
    ("arrow", "arrow"): "<->",
    ("circle", "arrow"): "o->",
    ("circle", "circle"): "o-o",
    ("circle", "tail"): "o-o",
}
_SYMMETRIC = ("---", "<->", "o-o")


class DiscoveryConfig(Config):
    """Options of :func:`discover`.

    ``test`` applies to ``pc`` and ``fci`` only. ``max_samples`` caps the rows used (a
    seeded subsample without replacement); None uses every row with ``fisherz`` and
    :data:`KERNEL_MAX_SAMPLES` with the kernel tests. ``lingam_min_weight`` drops
    DirectLiNGAM coefficients of smaller absolute value (on standardised data).
    """

    method: Method = "pc"
    test: Test = "fisherz"
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    n_bootstrap: int = Field(20, ge=0, le=10_000)
    max_samples: int | None = Field(None, ge=10)
    lingam_min_weight: float = Field(0.0, ge=0.0)
    random_state: int = 0

    @model_validator(mode="after")
    def _test_applies(self) -> DiscoveryConfig:
        if self.method in ("ges", "lingam") and self.test != "fisherz":
            raise ValueError(
                f"test={self.test!r} applies to pc and fci only; {self.method} has its own "
                "score (leave test at fisherz)"
            )
        return self

    @property
    def sample_cap(self) -> int | None:
        """The resolved ``max_samples``."""
        if self.max_samples is None and self.test in ("kci", "rcit"):
            return KERNEL_MAX_SAMPLES
        return self.max_samples


@dataclass
class CausalGraph:
    """One causal graph over named nodes, whatever the algorithm.

    ``marks`` ``(p, p)`` of strings: ``marks[i, j]`` is the mark at node ``j`` of the edge
    between ``i`` and ``j`` (``"tail"``, ``"arrow"``, ``"circle"``), ``""`` when they are
    not adjacent. ``edge_stability`` ``(p, p)``: for an edge reported ``i -> j`` (or
    undirected with ``i < j``), the fraction of subsamples with the same edge at
    ``[i, j]``; ``skeleton_stability`` ``(p, p)`` symmetric: fraction adjacent. Both are
    None without subsampling.
    """

    nodes: list[str]
    marks: np.ndarray
    method: str
    edge_stability: np.ndarray | None = None
    skeleton_stability: np.ndarray | None = None
    settings: dict = field(default_factory=dict)

    @property
    def skeleton(self) -> np.ndarray:
        """Boolean ``(p, p)`` symmetric adjacency (ignoring marks)."""
        return self.marks != ""

    @property
    def adjacency(self) -> np.ndarray:
        """Integer ``(p, p)``: ``[i, j] = 1`` when ``i`` and ``j`` are adjacent and the edge
        does not exclude ``i`` as a cause of ``j``, i.e. unless it has an arrowhead at
        ``i`` and none at ``j``. So ``i --> j`` and ``i o-> j`` give ``[i, j] = 1, [j, i] =
        0``; ``---``, ``<->`` and ``o-o`` give 1 both ways (the edge types tell them apart)."""
        adjacent = self.skeleton
        into = self.marks.T == "arrow"  # arrowhead at i on edge i-j
        out_of = self.marks == "arrow"  # arrowhead at j
        return (adjacent & ~(into & ~out_of)).astype(int)

    def edges(self) -> list[dict]:
        """``[{"from", "to", "type", "stability"}]``, one per adjacent pair; directed types
        run from ``from`` to ``to``."""
        out = []
        for i, j in zip(*np.nonzero(np.triu(self.skeleton, 1)), strict=True):
            a, b, kind = _edge(self.marks, int(i), int(j))
            stab = None if self.edge_stability is None else float(self.edge_stability[a, b])
            out.append(
                {"from": self.nodes[a], "to": self.nodes[b], "type": kind, "stability": stab}
            )
        return out

    def to_dict(self) -> dict:
        """JSON-ready: nodes, adjacency, marks, edges, method, stability matrices, settings."""
        return {
            "method": self.method,
            "nodes": list(self.nodes),
            "adjacency": self.adjacency.tolist(),
            "marks": [[m or None for m in row] for row in self.marks.tolist()],
            "edges": self.edges(),
            "skeleton_stability": None
            if self.skeleton_stability is None
            else np.round(self.skeleton_stability, 4).tolist(),
            **self.settings,
        }


def _edge(marks: np.ndarray, i: int, j: int) -> tuple[int, int, str]:
    """``(from, to, type)`` of the edge between adjacent ``i < j``; symmetric types run
    from ``i`` to ``j``."""
    pair = (marks[j, i], marks[i, j])  # (mark at i, mark at j)
    if pair in _EDGE_TYPES:
        kind = _EDGE_TYPES[pair]
        return i, j, kind
    kind = _EDGE_TYPES[pair[::-1]]
    return (i, j, kind) if kind in _SYMMETRIC else (j, i, kind)


def _edge_keys(marks: np.ndarray) -> dict[tuple[int, int], str]:
    """Edges as ``{(from, to): type}`` (see :func:`_edge`)."""
    keys = {}
    for i, j in zip(*np.nonzero(np.triu(marks != "", 1)), strict=True):
        a, b, kind = _edge(marks, int(i), int(j))
        keys[(a, b)] = kind
    return keys


def marks_from_causallearn(graph: np.ndarray) -> np.ndarray:
    """Marks ``(p, p)`` from a causal-learn ``GeneralGraph.graph`` (``graph[a, b]`` is the
    endpoint at ``a``: -1 tail, 1 arrow, 2 circle, 0 no edge)."""
    graph = np.asarray(graph)
    marks = np.full(graph.shape, "", dtype=object)
    for code, name in _CAUSALLEARN_MARKS.items():
        marks[graph.T == code] = name
    return marks


def marks_from_weights(weights: np.ndarray, *, min_weight: float = 0.0) -> np.ndarray:
    """Marks of a DAG from weights ``(p, p)`` with ``weights[i, j] != 0`` for ``i -> j``."""
    edge = np.abs(np.asarray(weights)) > min_weight
    np.fill_diagonal(edge, False)
    marks = np.full(edge.shape, "", dtype=object)
    marks[edge] = "arrow"
    marks[edge.T] = "tail"
    return marks


def _fit_marks(data: np.ndarray, config: DiscoveryConfig, nodes: list[str]) -> np.ndarray:
    """Run the configured algorithm once; the marks of its graph. causal-learn's prints
    and its small-sample warning are captured here (logged at debug level)."""
    if config.method == "lingam":
        require("lingam", "causal", "causal discovery with DirectLiNGAM")
    else:
        require("causallearn", "causal", f"causal discovery with {config.method.upper()}")
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The number of features is much larger")
        if config.method == "pc":
            from causallearn.search.ConstraintBased.PC import pc

            result = pc(data, config.alpha, config.test, show_progress=False, node_names=nodes)
            marks = marks_from_causallearn(result.G.graph)
        elif config.method == "fci":
            from causallearn.search.ConstraintBased.FCI import fci

            graph, _ = fci(data, config.test, config.alpha, show_progress=False, node_names=nodes)
            marks = marks_from_causallearn(graph.graph)
        elif config.method == "ges":
            from causallearn.search.ScoreBased.GES import ges

            marks = marks_from_causallearn(ges(data, node_names=nodes)["G"].graph)
        else:
            import lingam

            model = lingam.DirectLiNGAM(random_state=config.random_state).fit(data)
            # lingam: adjacency_matrix_[i, j] != 0 means j -> i
            marks = marks_from_weights(
                model.adjacency_matrix_.T, min_weight=config.lingam_min_weight
            )
    if sink.getvalue().strip():
        log.debug("%s output: %s", config.method, sink.getvalue().strip())
    return marks


def discover(
    data: np.ndarray,
    nodes: Sequence[str],
    config: DiscoveryConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> CausalGraph:
    """Causal discovery among the columns of ``data``.

    Args:
        data: ``(n, p)`` finite values, one column per node (standardised here).
        nodes: the ``p`` node names.
        config: algorithm and options (:class:`DiscoveryConfig`; default PC with Fisher-z).
        progress: called with 1 after the main fit and after each subsample.

    Returns:
        the :class:`CausalGraph` of the fit on (up to ``max_samples`` rows of) the data,
        with subsample stabilities when ``n_bootstrap`` > 0.
    """
    config = config or DiscoveryConfig()
    data = np.asarray(data, dtype=np.float64)
    nodes = list(nodes)
    if data.ndim != 2 or data.shape[1] != len(nodes):
        raise ConfigError(f"data of shape {data.shape} does not match {len(nodes)} node names")
    if len(set(nodes)) != len(nodes):
        raise ConfigError(f"node names must be distinct: {nodes}")
    if len(nodes) < 2:
        raise ConfigError(f"causal discovery needs at least 2 variables, got {nodes}")
    if not np.isfinite(data).all():
        raise ConfigError("data hold NaN or infinite values; drop those rows first")
    std = data.std(axis=0)
    if (std == 0).any():
        constant = [n for n, s in zip(nodes, std, strict=True) if s == 0]
        raise ConfigError(f"constant variable(s) {constant}: remove them")
    data = (data - data.mean(axis=0)) / std
    n = len(data)
    if n < MIN_ROWS:
        raise ConfigError(f"causal discovery needs at least {MIN_ROWS} rows, got {n}")
    rank = np.linalg.matrix_rank(data)
    if rank < len(nodes):
        # the conditional-independence tests invert the correlation matrix
        weights = np.linalg.svd(data, full_matrices=False)[2][-1]
        involved = [nd for nd, w in zip(nodes, weights, strict=True) if abs(w) > 1e-6]
        raise ConfigError(
            f"variables {involved} are linearly dependent (rank {rank} < {len(nodes)}): "
            "drop one of them"
        )
    rng = np.random.default_rng(config.random_state)
    cap = config.sample_cap
    rows = np.sort(rng.choice(n, cap, replace=False)) if cap is not None and cap < n else None
    main = data if rows is None else data[rows]
    marks = _fit_marks(main, config, nodes)
    if progress is not None:
        progress(1)
    edge_stability = skeleton_stability = None
    half = len(main) // 2
    if config.n_bootstrap > 0:
        reported = _edge_keys(marks)
        p = len(nodes)
        edge_stability = np.zeros((p, p))
        skeleton_stability = np.zeros((p, p))
        for _ in range(config.n_bootstrap):
            sub = main[rng.choice(len(main), half, replace=False)]
            sub_marks = _fit_marks(sub, config, nodes)
            skeleton_stability += sub_marks != ""
            for key, kind in _edge_keys(sub_marks).items():
                if reported.get(key) == kind:
                    edge_stability[key] += 1
            if progress is not None:
                progress(1)
        edge_stability /= config.n_bootstrap
        skeleton_stability /= config.n_bootstrap
    settings = {
        "test": config.test if config.method in ("pc", "fci") else None,
        "alpha": config.alpha if config.method in ("pc", "fci") else None,
        "n": len(main),
        "n_rows": int(n),
        "n_bootstrap": config.n_bootstrap,
        "subsample_size": half if config.n_bootstrap else None,
        "random_state": config.random_state,
    }
    return CausalGraph(nodes, marks, config.method, edge_stability, skeleton_stability, settings)


def skeleton_scores(estimated: np.ndarray, truth: np.ndarray) -> dict:
    """Precision, recall and F1 of an estimated skeleton against the true one.

    Both are ``(p, p)`` adjacency matrices (directions ignored: an edge either way counts).
    """
    est = np.asarray(estimated, bool)
    true = np.asarray(truth, bool)
    if est.shape != true.shape:
        raise ConfigError(f"graphs of different sizes: {est.shape} vs {true.shape}")
    upper = np.triu(np.ones(est.shape, bool), 1)
    est = (est | est.T)[upper]
    true = (true | true.T)[upper]
    tp = int((est & true).sum())
    fp = int((est & ~true).sum())
    fn = int((~est & true).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


__all__ = [
    "KERNEL_MAX_SAMPLES",
    "MIN_ROWS",
    "CausalGraph",
    "DiscoveryConfig",
    "discover",
    "marks_from_causallearn",
    "marks_from_weights",
    "skeleton_scores",
]
