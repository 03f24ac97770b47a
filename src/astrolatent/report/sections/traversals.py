"""The latent traversals and the disentanglement scores of a spectrum run's report."""

from __future__ import annotations

from pathlib import Path

from astrolatent.outputs.layout import TRAVERSAL_FIGURE, TRAVERSALS_FILE
from astrolatent.outputs.summaries import Traversal
from astrolatent.report.markup import Figures, Section, esc, fmt, note, para, table


def traversal_section(sweeps: list[Traversal] | None, analysis: Path, figs: Figures) -> Section:
    """Each informative dim's traversal and its most responsive wavelengths (A), from
    ``analysis/traversals.json`` (``sweeps``, None when absent) and the figures in ``analysis``."""
    if sweeps is None:
        return Section(
            "traversals",
            "Latent traversals",
            note(f"no {TRAVERSALS_FILE}: the analysis had no model or no informative dimension"),
        )
    body = para(
        "Each informative dim swept from -3 to +3 sigma around the sample median (others "
        "fixed), decoded; bottom panels: the response (max - min of the decoded flux) with the "
        "most responsive wavelengths marked and known lines labelled."
    )
    for t in sweeps:
        body += f"<h3>dim {esc(t.dim)}</h3>"
        body += figs.existing(
            analysis / f"{TRAVERSAL_FIGURE.format(t.dim)}.png", f"Traversal of latent {t.dim}."
        )
        body += table(
            ["wavelength (A)", "response", "line"],
            [(fmt(w.wavelength, 2), w.response, w.line or "") for w in t.top_wavelengths],
        )
    return Section("traversals", "Latent traversals", body)


def disentanglement_section(summary: dict) -> Section:
    """MIG, SAP and DCI of the latents next to the PCA baseline, from ``summary``."""
    ours = summary.get("disentanglement")
    if ours is None:
        return Section(
            "disentanglement",
            "Disentanglement",
            note(
                "no disentanglement scores: they need at least 100 spectra with every "
                "analysed label and an informative dimension"
            ),
        )
    base = summary.get("baseline_pca", {}).get("disentanglement")

    def scores(block: dict | None) -> list[object]:
        if block is None:
            return ["-"] * 5
        dci = block["dci"]
        return [
            block["mig"],
            block["sap"],
            dci["disentanglement"],
            dci["completeness"],
            dci["informativeness"],
        ]

    names = ["MIG", "SAP", "DCI disentanglement", "DCI completeness", "DCI informativeness"]
    body = para(
        f"Scores of the latents {ours['dims']} against the labels {ours['labels']}, next to "
        "the same number of principal components of the spectra (higher is better)."
    )
    body += table(
        ["score", "latents", "PCA baseline"],
        [(n, a, b) for n, a, b in zip(names, scores(ours), scores(base), strict=True)],
    )
    return Section("disentanglement", "Disentanglement", body)
