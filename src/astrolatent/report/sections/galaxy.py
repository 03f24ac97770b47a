"""The sections of a galaxy estimator run's report (``astrolatent galaxy train``): the
summary, the held-out metrics and the predicted PDFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from astrolatent import figures
from astrolatent.outputs.layout import PDF_EXAMPLES_FILE, PREDICTIONS_FILE
from astrolatent.outputs.summaries import GalaxyTrainSummary
from astrolatent.report.markup import Figures, Section, fmt, kv_table, note, table


def overview_section(summary: GalaxyTrainSummary) -> Section:
    """The run at a glance, from its ``train_summary.json`` (``summary``)."""
    overview = kv_table(
        [
            ("catalogue", summary.table),
            ("target", summary.target),
            ("inputs", ", ".join(summary.columns)),
            ("images", summary.images or "none"),
            ("usable objects", summary.n_objects),
            ("models trained", summary.n_models),
            ("latent dimensions", summary.latent_dim),
            ("parameters per model", summary.n_parameters),
        ]
    )
    scalars = [(k, v) for k, v in summary.cleaning.items() if not isinstance(v, dict | list)]
    if scalars:
        overview += "<h3>Cleaning</h3>" + kv_table(scalars)
    return Section("summary", "Summary", overview)


def metrics_section(summary: GalaxyTrainSummary) -> Section:
    """Held-out metrics of the point estimates and the PDFs, and the models trained."""
    m = summary.metrics
    body = ""
    estimates = [k for k in ("mean", "median", "mode") if k in m]
    if estimates:
        body += table(
            ["point estimate", "bias", "sigma_MAD", "outlier fraction", "n"],
            [
                (k, m[k]["bias"], m[k]["sigma_mad"], m[k]["outlier_fraction"], m[k]["n"])
                for k in estimates
            ],
        )
        body += kv_table(
            (f"{k} {unit}", m[k])
            for k, unit in (
                ("crps", ""),
                ("ce", "(nats)"),
                ("prior_ce", "(nats)"),
                ("mi", "(nats, prior_ce - ce)"),
                ("truth_std", ""),
                ("n", ""),
            )
            if k in m
        )
    else:
        body += note("no held-out metrics (test_fraction = 0?)")
    models = summary.models
    if models:
        cols = [
            c
            for c in (
                "model",
                "n_train",
                "n_val",
                "n_test",
                "epochs",
                "best_epoch",
                "best_val_ce",
                "stopped_by",
                "seconds",
            )
            if c in models[0]
        ]
        body += "<h3>Models</h3>" + table(cols, [[r.get(c) for c in cols] for r in models])
    return Section("metrics", "Estimator metrics", body)


def predictions_section(run_dir: Path, summary: GalaxyTrainSummary, figs: Figures) -> Section:
    """Held-out PDF medians against the truth (``predictions.parquet``) and the
    PDF examples."""
    pred = pd.read_parquet(run_dir / PREDICTIONS_FILE)
    target = summary.target or "target"
    if pred.empty:
        return Section("pdfs", "Predictions and PDFs", note(f"{PREDICTIONS_FILE} is empty"))
    body = figs.new(
        figures.label_scatter(
            pred["truth"].to_numpy(float),
            pred["median"].to_numpy(float),
            xlabel=f"true {target}",
            ylabel=f"PDF median of {target}",
            title=f"held-out objects (n = {len(pred)})",
        ),
        "predictions",
        "Median of each held-out PDF against the truth (predictions.parquet).",
    )
    body += _pdf_examples(run_dir, target, figs)
    return Section("pdfs", "Predictions and PDFs", body)


def _pdf_examples(run_dir: Path, target: str, figs: Figures) -> str:
    """PDFs of four held-out objects of model 0 (best, two typical, worst by |median - truth|),
    as ``galaxy train`` wrote them."""
    path = run_dir / PDF_EXAMPLES_FILE
    if not path.is_file():
        return note(f"no {path.name} (written by `astrolatent galaxy train`): no PDF examples")
    with np.load(path) as ex:
        titles = [
            f"{kind}: id {i}, |median - truth| {fmt(float(e), 3)}"
            for kind, i, e in zip(ex["kind"], ex["id"], ex["error"], strict=True)
        ]
        fig = figures.pdf_examples(ex["centres"], ex["probs"], ex["truth"], titles, xlabel=target)
    return figs.new(
        fig, "pdf_examples", "Estimated PDFs of held-out objects (model 0) with the truth marked."
    )
