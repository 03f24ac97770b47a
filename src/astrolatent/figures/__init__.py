"""Figures of an analysis: pure functions from numbers to matplotlib figures.

Each function returns a :class:`matplotlib.figure.Figure` and touches no files; the caller
saves it (:func:`save`). The Agg backend is used, so no display is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def save(fig: Figure, path: Path, *, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write ``fig`` as ``path`` with each suffix in ``formats``; close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        fig.savefig(target, dpi=120, bbox_inches="tight")
        out.append(target)
    plt.close(fig)
    return out


def informative_bars(
    scores: dict[str, np.ndarray], thresholds: dict[str, float], selected: dict[str, list[int]]
) -> Figure:
    """Per-dimension scores of each counting method (log scale), cut and selected dims marked."""
    fig, axes = plt.subplots(len(scores), 1, figsize=(9, 2.6 * len(scores)), squeeze=False)
    for ax, (name, values) in zip(axes[:, 0], scores.items(), strict=True):
        values = np.asarray(values, float)
        colours = ["tab:orange" if d in selected[name] else "tab:grey" for d in range(values.size)]
        ax.bar(np.arange(values.size), np.clip(values, 1e-6, None), color=colours)
        ax.set_yscale("log")
        if thresholds.get(name) is not None:
            ax.axhline(
                thresholds[name], color="k", ls="--", lw=1, label=f"cut {thresholds[name]:.3g}"
            )
            ax.legend(loc="upper right", fontsize=8)
        ax.set_ylabel(name)
        ax.set_xlabel("latent dimension")
        ax.set_title(f"{name}: {len(selected[name])} informative dims {selected[name]}", fontsize=9)
    fig.tight_layout()
    return fig


def mi_heatmap(
    matrix: np.ndarray,
    row_labels: Sequence[str],
    *,
    title: str,
    colorbar: str,
    marks: np.ndarray | None = None,
) -> Figure:
    """A (rows x latent dims) heat map; ``marks`` (same shape, bool) puts a dot on significant cells."""
    matrix = np.asarray(matrix, float)
    fig, ax = plt.subplots(
        figsize=(max(6, 0.35 * matrix.shape[1] + 2), 0.5 * matrix.shape[0] + 1.5)
    )
    im = ax.imshow(matrix, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xticks(range(matrix.shape[1]), [str(i) for i in range(matrix.shape[1])], fontsize=7)
    ax.set_xlabel("latent dimension")
    if marks is not None:
        rr, cc = np.nonzero(marks)
        ax.scatter(cc, rr, s=8, c="white", marker="o", label="significant")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=colorbar)
    fig.tight_layout()
    return fig


def label_scatter(x: np.ndarray, y: np.ndarray, *, xlabel: str, ylabel: str, title: str) -> Figure:
    """Latent value against label value for one (dim, label) pair, with a running median."""
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    ax.scatter(x, y, s=3, alpha=0.4, lw=0)
    if x.size >= 40:
        edges = np.quantile(x, np.linspace(0, 1, 21))
        mid = 0.5 * (edges[1:] + edges[:-1])
        med = [np.median(y[(x >= a) & (x <= b)]) for a, b in itertools.pairwise(edges)]
        ax.plot(mid, med, color="k", lw=1.5, label="running median")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def traversal_plot(
    wave: np.ndarray, spectra: np.ndarray, values: np.ndarray, top: list[dict], *, dim: int
) -> Figure:
    """Decoded spectra along a sweep of one latent dim, with the response and top lines marked."""
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(10, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    cmap = plt.get_cmap("coolwarm")
    for i, (spec, v) in enumerate(zip(spectra, values, strict=True)):
        ax.plot(
            wave,
            spec,
            color=cmap(i / max(1, len(values) - 1)),
            lw=0.7,
            label=f"z={v:+.2f}" if i in (0, len(values) - 1) else None,
        )
    ax.legend(fontsize=8, loc="lower right")
    ax.set_ylabel("normalised flux")
    ax.set_title(f"traversal of latent dim {dim}", fontsize=10)
    response = spectra.max(axis=0) - spectra.min(axis=0)
    ax2.plot(wave, response, color="k", lw=0.7)
    for t in top:
        ax2.axvline(t["wavelength"], color="tab:red", lw=0.6, alpha=0.7)
        if t.get("line"):
            ax2.annotate(
                t["line"], (t["wavelength"], t["response"]), fontsize=6, rotation=90, va="bottom"
            )
    ax2.set_ylabel("response")
    ax2.set_xlabel("wavelength (A)")
    fig.tight_layout()
    return fig


def curves(
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logy: bool = False,
) -> Figure:
    """Line plot of named (x, y) series (e.g. training curves)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name, lw=1)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def mi_profile(
    mi: np.ndarray, err: np.ndarray, significant: np.ndarray, *, label: str, title: str
) -> Figure:
    """MI (nats) of one label with every latent dim, with error bars; significant dims coloured."""
    mi, err = np.asarray(mi, float), np.asarray(err, float)
    dims = np.arange(mi.size)
    fig, ax = plt.subplots(figsize=(max(5, 0.3 * mi.size + 2), 2.8))
    colours = np.where(np.asarray(significant, bool), "tab:orange", "tab:grey")
    ax.bar(dims, mi, color=colours)
    ax.errorbar(dims, mi, yerr=np.nan_to_num(err), fmt="none", ecolor="k", lw=0.8, capsize=2)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(dims, [str(d) for d in dims], fontsize=7)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel(f"I(z; {label}) (nats)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def reconstruction_plot(
    wave: np.ndarray, flux: np.ndarray, recon: np.ndarray, valid: np.ndarray, *, title: str
) -> Figure:
    """One spectrum and its reconstruction (masked pixels left out), with the residual."""
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(10, 3.8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    shown = np.where(np.asarray(valid, bool), 1.0, np.nan)
    ax.plot(wave, flux * shown, color="k", lw=0.6, label="input")
    ax.plot(wave, recon * shown, color="tab:red", lw=0.6, alpha=0.8, label="reconstruction")
    ax.set_ylabel("normalised flux")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=9)
    ax2.plot(wave, (flux - recon) * shown, color="k", lw=0.5)
    ax2.axhline(0, color="tab:red", lw=0.5)
    ax2.set_ylabel("residual")
    ax2.set_xlabel("wavelength (A)")
    fig.tight_layout()
    return fig


def pdf_examples(
    centres: np.ndarray,
    probs: np.ndarray,
    truths: np.ndarray,
    titles: Sequence[str],
    *,
    xlabel: str,
) -> Figure:
    """Estimated PDFs ``(k, K)`` over bin ``centres`` with the true values marked."""
    k = len(probs)
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 2.8), squeeze=False)
    for ax, p, truth, title in zip(axes[0], probs, truths, titles, strict=True):
        ax.plot(centres, p, color="tab:blue", lw=1)
        ax.axvline(truth, color="k", ls="--", lw=1, label="truth")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("probability per bin")
    fig.tight_layout()
    return fig
