"""The sections of a spectrum run's report on MI with the labels: the table of each
label's best latent, the heat maps and error bars, and the best-latent scatter plots.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from astrolatent import figures
from astrolatent.outputs.layout import (
    MI_HIST_FIGURE,
    MI_KSG_FIGURE,
    MI_PER_DIM_FILE,
    SCATTER_FIGURE,
)
from astrolatent.report.markup import Figures, Section, analysis_alpha, fmt, note, para, pm, table


def mi_section(summary: dict, analysis: Path, figs: Figures) -> Section:
    """The best latent of each label (MI in nats, r_I, significance, the all-latents
    and PCA baselines, the ceiling), the MI heat maps and the MI profiles with error bars."""
    labels = summary.get("labels", {})
    if not labels:
        return Section(
            "mi", "Mutual information with labels", note("no label was analysed (no labels?)")
        )
    pca = summary.get("baseline_pca", {}).get("labels", {})
    joint = summary.get("all_latents", {})
    ceiling = summary.get("ceiling", {})
    rows = []
    for name, b in labels.items():
        rows.append(
            (
                name,
                b["n"],
                b["best_dim"],
                pm(b["mi"], b["mi_err"]),
                fmt(b["r_info"], 2),
                _informative_best(b),
                fmt(b["p_value_fwer"]),
                fmt(b["significant"]),
                str(b["significant_dims"]),
                fmt(joint[name]["r"], 2) if name in joint else "-",
                fmt(pca[name]["r_info"], 2) if name in pca else "-",
                fmt(ceiling[name]["r"], 2) if name in ceiling else "-",
            )
        )
    body = para(
        "Best latent per label: KSG mutual information (nats) with half-sampling error, "
        "informational correlation r_I = sqrt(1 - exp(-2 MI)), permutation p-value corrected "
        "for testing every latent (FWER); then cross-validated r of a regressor on all latents "
        "together (a label spread over several latents scores high here and low on r_I), the "
        "PCA baseline's best component, and the ceiling (a regressor on the spectra's "
        "principal components: what the spectra hold)."
    )
    body += table(
        [
            "label",
            "n",
            "best dim",
            "MI (nats)",
            "r_I",
            "best informative dim (r_I)",
            "p (FWER)",
            "significant",
            "significant dims",
            "all latents r",
            "PCA best r_I",
            "ceiling r",
        ],
        rows,
    )
    body += "<h3>Ours: KSG MI with significance</h3>"
    body += figs.existing(
        analysis / f"{MI_KSG_FIGURE}.png",
        "KSG MI (nats) of every latent with every label; dots: significant at the FWER level.",
    )
    per_dim_path = analysis / MI_PER_DIM_FILE
    if per_dim_path.is_file():
        frame = pd.read_csv(per_dim_path)
        alpha = analysis_alpha(analysis)
        for name, g in frame.groupby("label", sort=False):
            g = g.sort_values("dim")
            body += figs.new(
                figures.mi_profile(
                    g["mi"].to_numpy(),
                    g["mi_err"].to_numpy(),
                    g["p_value_fwer"].to_numpy() < alpha,
                    label=str(name),
                    title=f"{name}: MI per latent with half-sampling errors (orange: p_FWER < {alpha})",
                ),
                f"mi_errorbars_{name}",
                f"{name}: MI per latent dimension with error bars ({MI_PER_DIM_FILE}).",
            )
    body += "<h3>Published form: plug-in histogram MI, rows normalised</h3>"
    for name in labels:
        body += figs.existing(
            analysis / f"{MI_HIST_FIGURE.format(name)}.png",
            f"{name}: plug-in histogram MI for 5-160 bins, each row divided by its max over dims "
            "(no bias correction: the floor rises with the bin count).",
        )
    return Section("mi", "Mutual information with labels", body)


def _informative_best(block: dict) -> str:
    """A label's best informative dim and its r_I ("-" before format 2 or with none)."""
    dim = block.get("best_informative_dim")
    return "-" if dim is None else f"{dim} ({fmt(block['r_info_informative'], 2)})"


def scatter_section(summary: dict, analysis: Path, figs: Figures) -> Section:
    """Each label against its best latent (the analysis' scatter plots)."""
    body = "".join(
        figs.existing(
            analysis / f"{SCATTER_FIGURE.format(name)}.png",
            f"{name} against its best latent mu_{b['best_dim']} (r_I {fmt(b['r_info'], 2)}).",
        )
        for name, b in summary.get("labels", {}).items()
    )
    return Section("scatter", "Best latent per label", body or note("no scatter plots"))
