""" "What the spectra hold beyond your labels": the known/free audit of a run trained with
known labels.
"""

from __future__ import annotations

from pathlib import Path

from astrolatent.outputs.layout import TRAVERSAL_FIGURE
from astrolatent.outputs.summaries import p_at_floor
from astrolatent.report.markup import Figures, Section, analysis_alpha, para, pm, table


def beyond_labels_section(summary: dict, analysis: Path, figs: Figures) -> list[Section]:
    """ "What the spectra hold beyond your labels": the audit of a run with known labels
    (none for a run without)."""
    free = summary.get("free")
    if free is None:
        return []
    alpha = analysis_alpha(analysis)
    known = summary.get("known", {})
    body = para(
        "The run was told these labels, each tied to its own latent (supervised where the "
        "store has the label, inferred by the encoder elsewhere); measured on the spectra "
        "that have the label:"
    )
    body += table(
        ["known label", "tied dim", "r_I", "MI (nats)", "spectra"],
        [(k, v["dim"], v["r_info"], pm(v["mi"], v["mi_err"]), v["n"]) for k, v in known.items()],
    )
    dims = free.get("dims", [])
    body += para(
        f"Informative free dims (counted on the free dims alone; dims held at the KL floor "
        f"left out): {', '.join(map(str, dims)) if dims else 'none'}."
    )
    body += "<h3>Other labels in the free dims</h3>"
    body += para(
        "Best free dim of each label that was not given, and its conditional MI given the "
        "tied latents (what it adds to the known labels; p: local permutations, "
        "Bonferroni-corrected over the free dims)."
    )
    body += table(
        ["label", "best free dim", "r_I", "MI given the known (nats)", "p"],
        [
            (
                k,
                v["best_dim"],
                v["r_info"],
                pm(v["cmi_given_known"], v.get("cmi_err")),
                f"<= {v['p_value']:.3g} (no permutation reached it)"
                if p_at_floor(v)
                else v["p_value"],
            )
            for k, v in free.get("labels", {}).items()
        ],
    )
    body += "<h3>Leakage of the known labels into the free dims</h3>"
    body += para(
        "What the free latents hold of each known label, measured on one draw of the "
        "latent variables per spectrum (a dim whose mean follows a label over a small part "
        "of its posterior width passes on little of it); the same MI on the posterior "
        "means is beside it."
    )
    body += table(
        [
            "known label",
            "largest MI of a free latent (nats)",
            "dim",
            "p (over the free dims)",
            "R^2 from all free latents",
            "largest MI of a free mean (dim)",
            "verdict",
        ],
        [
            (
                k,
                v["max_mi"],
                v.get("dim", "-"),
                v["p_value"],
                v["r2"],
                f"{v['max_mi_means']:.3f} ({v['dim_means']})" if "max_mi_means" in v else "-",
                "leaks"
                if v["p_value"] is not None and v["p_value"] < alpha
                else "no leakage found",
            )
            for k, v in free.get("leakage", {}).items()
        ],
    )
    for dim in dims:
        body += figs.existing(
            analysis / f"{TRAVERSAL_FIGURE.format(dim)}.png", f"Traversal of free latent {dim}."
        )
    return [Section("beyond-labels", "What the spectra hold beyond your labels", body)]
