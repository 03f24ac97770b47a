"""The reconstructions section of a spectrum run's report (as ``astrolatent analyze`` wrote
them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from astrolatent import figures
from astrolatent.outputs.layout import RECONSTRUCTION_EXAMPLES_FILE, RECONSTRUCTIONS_FILE
from astrolatent.report.markup import Figures, Section, fmt, kv_table, note, para


def reconstruction_section(analysis: Path, figs: Figures) -> Section:
    """Masked L1 of the reconstructed sample and the typical and worst spectra, as
    ``astrolatent analyze`` wrote them."""
    csv, examples = analysis / RECONSTRUCTIONS_FILE, analysis / RECONSTRUCTION_EXAMPLES_FILE
    if not (csv.is_file() and examples.is_file()):
        return Section(
            "reconstructions",
            "Reconstructions",
            note(f"no {csv.name} (written by `astrolatent analyze`): no reconstructions"),
        )
    n = len(pd.read_parquet(csv, columns=["id"]))
    body = para(
        f"{n} spectra (a seeded random sample) encoded and decoded from their latent "
        f"means; masked mean |input - reconstruction| per spectrum in {csv.name}."
    )
    with np.load(examples) as rec:
        if "l1_summary" in rec:
            median, p90, worst = (float(v) for v in rec["l1_summary"])
            body += kv_table(
                [
                    ("spectra", n),
                    ("median L1", median),
                    ("90th percentile L1", p90),
                    ("worst L1", worst),
                ]
            )
        else:
            body += note(
                f"{examples.name} predates its L1 summary: rerun `astrolatent analyze` for it"
            )
        for i, label in enumerate(rec["kind"]):
            spectrum, err = str(rec["id"][i]), fmt(float(rec["l1"][i]), 4)
            body += figs.new(
                figures.reconstruction_plot(
                    rec["wave"],
                    rec["flux"][i],
                    rec["recon"][i],
                    rec["valid"][i],
                    title=f"{label}: {spectrum} (L1 {err})",
                ),
                f"reconstruction_{label}",
                f"A {label} reconstruction: {spectrum}, masked L1 {err}.",
            )
    return Section("reconstructions", "Reconstructions", body)
