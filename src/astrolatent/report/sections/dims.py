"""The informative-dimensions section of a spectrum run's report (dispersion and KL rate)."""

from __future__ import annotations

from pathlib import Path

from astrolatent.outputs.layout import INFORMATIVE_FIGURE
from astrolatent.report.markup import Figures, Section, fmt, para, table


def informative_section(summary: dict, analysis: Path, figs: Figures) -> Section:
    """The informative dimensions by dispersion and by KL rate, where they disagree,
    their total correlation (nats) and the figure of the analysis."""
    inf = summary["informative"]
    disp, kl = set(inf["dispersion"]["dims"]), set(inf["kl"]["dims"])
    body = table(
        ["method", "threshold", "informative dims", "count"],
        [
            (
                "dispersion (MAD of the latent means)",
                inf["dispersion"]["threshold"],
                str(inf["dispersion"]["dims"]),
                len(disp),
            ),
            ("KL rate (nats)", inf["kl"]["threshold"], str(inf["kl"]["dims"]), len(kl)),
            ("both", "", str(inf["agreed"]), len(inf["agreed"])),
        ],
    )
    if disp != kl:
        body += para(
            f"The methods disagree on dims {sorted(disp ^ kl)}: "
            f"dispersion only {sorted(disp - kl)}, KL rate only {sorted(kl - disp)}."
        )
    else:
        body += para("Both methods select the same dimensions.")
    red = inf.get("redundancy")
    if red:
        body += para(
            f"Total correlation among the informative dims {red['dims']}: "
            f"{fmt(red['total_correlation'])} nats (0 when they are independent)."
        )
    body += figs.existing(
        analysis / f"{INFORMATIVE_FIGURE}.png",
        "Per-dimension dispersion and KL rate (log scale); orange: informative, dashed: cut.",
    )
    return Section("informative", "Informative dimensions", body)
