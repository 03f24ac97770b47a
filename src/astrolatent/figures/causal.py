"""Figures of the causal analyses: pure functions returning matplotlib figures (saved by
:func:`astrolatent.figures.save`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from astrolatent.analysis.causal.discover import CausalGraph
from astrolatent.figures import plt

_GROUP_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:grey")


def graph_figure(
    graph: CausalGraph, *, groups: Mapping[str, str] | None = None, title: str | None = None
) -> Figure:
    """The graph on a circle: arrowheads and open circles at the edge ends as marked,
    line width and opacity growing with the edge stability (labelled), nodes coloured by
    ``groups`` (node name -> group name)."""
    p = len(graph.nodes)
    angle = np.pi / 2 - 2 * np.pi * np.arange(p) / p
    pos = np.c_[np.cos(angle), np.sin(angle)]
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    names = sorted(set((groups or {}).values()))
    colour = {g: _GROUP_COLOURS[k % len(_GROUP_COLOURS)] for k, g in enumerate(names)}
    radius = 0.06
    for edge in graph.edges():
        a, b = graph.nodes.index(edge["from"]), graph.nodes.index(edge["to"])
        direction = (pos[b] - pos[a]) / np.linalg.norm(pos[b] - pos[a])
        start = pos[a] + direction * (radius + 0.015)
        end = pos[b] - direction * (radius + 0.015)
        stab = edge["stability"]
        width = 1.0 + 2.5 * (stab if stab is not None else 1.0)
        alpha = 0.35 + 0.65 * (stab if stab is not None else 1.0)
        tail_mark, head_mark = {
            "-->": ("-", ">"),
            "---": ("-", "-"),
            "<->": ("<", ">"),
            "o->": ("o", ">"),
            "o-o": ("o", "o"),
        }[edge["type"]]
        style = {("-", ">"): "-|>", ("<", ">"): "<|-|>", ("o", ">"): "-|>"}.get(
            (tail_mark, head_mark), "-"
        )
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                arrowstyle=style,
                mutation_scale=16,
                lw=width,
                alpha=alpha,
                color="k",
                shrinkA=0,
                shrinkB=0,
            )
        )
        for mark, point, sign in ((tail_mark, start, 1), (head_mark, end, -1)):
            if mark == "o":
                centre = point + sign * direction * 0.02
                ax.add_patch(
                    plt.Circle(centre, 0.02, fill=True, fc="white", ec="k", lw=1.2, zorder=3)
                )
        if stab is not None:
            mid = (start + end) / 2
            ax.text(
                *mid,
                f"{stab:.2f}",
                fontsize=7,
                ha="center",
                va="center",
                bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 0.5},
            )
    for k, name in enumerate(graph.nodes):
        group = (groups or {}).get(name)
        ax.add_patch(
            plt.Circle(pos[k], radius, fc=colour.get(group, "white"), ec="k", alpha=0.9, zorder=4)
        )
        ax.text(
            *(pos[k] * (1 + 1.6 * radius)),
            name,
            ha="left" if pos[k, 0] > 0.05 else "right" if pos[k, 0] < -0.05 else "center",
            va="bottom" if pos[k, 1] > 0.05 else "top" if pos[k, 1] < -0.05 else "center",
            fontsize=8,
            zorder=5,
        )
    for g in names:
        ax.scatter([], [], c=colour[g], s=80, label=g)
    if names:
        ax.legend(loc="lower left", fontsize=8, frameon=False)
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    test = graph.settings.get("test")
    ax.set_title(
        title
        or f"{graph.method}" + (f" ({test})" if test else "") + f", n = {graph.settings.get('n')}",
        fontsize=10,
    )
    return fig


def _panels(objects: pd.DataFrame, condition: str | None) -> list[tuple[str, str]]:
    """(column prefix, label) of each test present in ``objects``."""
    panels = [("", "given S")]
    if "cond_r" in objects:
        panels.append(("cond_", f"given S and {condition or 'the condition'}"))
    return panels


def r_histogram(
    objects: pd.DataFrame,
    summary: Mapping[str, dict],
    *,
    query: str,
    condition: str | None = None,
) -> Figure:
    """Histograms of the local Pearson r and of its permutation null, one panel per test
    (``condition``: the conditioning set's name, for the labels)."""
    panels = _panels(objects, condition)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (prefix, label) in zip(axes[0], panels, strict=True):
        key = "given_s" if not prefix else "given_s_and_condition"
        bins = np.linspace(-1, 1, 41)
        ax.hist(
            objects[prefix + "r_null"], bins=bins, alpha=0.5, color="grey", label="permutation null"
        )
        ax.hist(objects[prefix + "r"], bins=bins, alpha=0.6, color="tab:blue", label="r")
        s = summary[key]
        ax.set_title(
            f"r(Y, {query}) {label}: mean {s['mean_r']:+.3f}, "
            f"{100 * s['fraction_significant']:.0f}% p<alpha",
            fontsize=9,
        )
        ax.set_xlabel("local Pearson r")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def r_map(
    objects: pd.DataFrame,
    *,
    target: str,
    query: str,
    alpha: float,
    condition: str | None = None,
    n_bins: int = 12,
) -> Figure:
    """Local r against the target value: points (significant ones highlighted) and the
    binned mean, one panel per test."""
    panels = _panels(objects, condition)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False, sharey=True
    )
    y = objects["y"].to_numpy()
    edges = np.quantile(y, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, n_bins - 1)
    for ax, (prefix, label) in zip(axes[0], panels, strict=True):
        r = objects[prefix + "r"].to_numpy()
        sig = objects[prefix + "p"].to_numpy() < alpha
        ax.scatter(y[~sig], r[~sig], s=4, c="grey", alpha=0.4, label="p >= alpha")
        ax.scatter(y[sig], r[sig], s=6, c="tab:red", alpha=0.6, label="p < alpha")
        centres = [y[which == b].mean() for b in range(n_bins) if (which == b).any()]
        means = [r[which == b].mean() for b in range(n_bins) if (which == b).any()]
        ax.plot(centres, means, "k-o", ms=3, label="binned mean")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel(target)
        ax.set_title(f"r(Y, {query}) {label}", fontsize=9)
    axes[0, 0].set_ylabel("local Pearson r")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


__all__ = ["graph_figure", "r_histogram", "r_map"]
