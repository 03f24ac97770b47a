"""The first sections of a spectrum run's report: the summary (what each informative
dimension tracks), the data and the training.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from astrolatent import figures
from astrolatent.outputs.layout import DATA_SUMMARY_FILE, METRICS_FILE, TRAIN_SUMMARY_FILE
from astrolatent.outputs.summaries import DataSummary, SpectrumTrainSummary, analysed_dims
from astrolatent.report.markup import (
    Figures,
    Section,
    esc,
    fmt,
    kv_table,
    note,
    para,
    pm,
    pre,
    table,
)


def dimension_labels(summary: dict) -> dict[int, list[dict]]:
    """For each informative dim of an analysis ``summary``, the labels it tracks: those whose
    MI with it is significant (FWER), as dicts ``label``, ``mi``, ``mi_err``, ``r_info`` (of
    this dim) and ``best`` (this dim has the label's largest MI among the informative dims);
    the labels it is best for come first, then by MI."""
    informative = summary["informative"]
    out: dict[int, list[dict]] = {d: [] for d in analysed_dims(informative)}
    for name, block in summary.get("labels", {}).items():
        per_dim = {int(p["dim"]): p for p in block["per_dim"] if int(p["dim"]) in out}
        if not per_dim:
            continue
        best = max(per_dim, key=lambda d: per_dim[d]["mi"])
        for d in block["significant_dims"]:
            if int(d) in per_dim:
                p = per_dim[int(d)]
                out[int(d)].append(
                    {
                        "label": name,
                        "mi": p["mi"],
                        "mi_err": p["mi_err"],
                        "r_info": p["r_info"],
                        "best": int(d) == best,
                    }
                )
    for rows in out.values():
        rows.sort(key=lambda r: (not r["best"], -r["mi"]))
    return out


def describe_tracks(rows: list[dict], *, limit: int = 2) -> str:
    """One line for a dim's :func:`dimension_labels` entry (its ``limit`` strongest labels)."""
    if not rows:
        return "no label (no significant MI)"
    parts = [
        f"{r['label']}{' (best informative dim)' if r['best'] else ''}: MI {pm(r['mi'], r['mi_err'])} "
        f"nats, r_I {fmt(r['r_info'], 2)}"
        for r in rows[:limit]
    ]
    more = f"; +{len(rows) - limit} more" if len(rows) > limit else ""
    return "; ".join(parts) + more


def summary_section(summary: dict, train: SpectrumTrainSummary | None) -> Section:
    """Key facts of the run and what each informative dimension tracks, from the
    analysis ``summary`` and the ``train_summary.json`` (``train``, None when absent)."""
    inf = summary["informative"]
    roles = dimension_labels(summary)
    items = [
        f"{fmt(summary['n_spectra'])} spectra encoded into {fmt(summary['n_latent'])} latent dimensions",
        f"informative dimensions: {len(inf['dispersion']['dims'])} by dispersion "
        f"{inf['dispersion']['dims']}, {len(inf['kl']['dims'])} by KL rate {inf['kl']['dims']}, "
        f"{len(inf['agreed'])} by both",
    ]
    if train is not None:
        items.append(
            f"trained ({esc(train.preset)}) for {fmt(train.steps)} steps, "
            f"{fmt(train.epochs, 1)} epochs; stopped by {train.stopped_by}"
        )
    body = '<ul class="keyfacts">' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"
    rows = [(dim, describe_tracks(tracks)) for dim, tracks in roles.items()]
    body += "<h3>What each informative dimension tracks</h3>"
    body += table(["dim", "labels with significant MI, strongest first"], rows)
    return Section("summary", "Summary", body)


def data_section(data: DataSummary | None) -> Section:
    """The store the run was trained on, from ``analysis/data_summary.json`` (``data``, None
    when absent)."""
    if data is None:
        return Section(
            "data",
            "Data",
            note(f"no {DATA_SUMMARY_FILE} (written by `astrolatent analyze`): no data summary"),
        )
    lo, hi = data.wavelength_range
    body = kv_table(
        [
            ("store", data.path),
            ("spectra accepted", data.n_spectra),
            ("objects", data.n_objects),
            ("spectra rejected", data.n_rejected),
            ("files quarantined", data.n_quarantined),
            ("pixels per spectrum", f"{fmt(data.length)} ({data.dtype})"),
            ("wavelength (A)", f"{fmt(lo, 2)} - {fmt(hi, 2)}"),
            ("format / preset", f"{data.format} / {data.preset}"),
        ]
    )
    if data.rejection_reasons:
        body += "<h3>Rejections</h3>" + table(["reason", "spectra"], data.rejection_reasons.items())
    if data.quarantined:
        shown = data.quarantined[:20]
        body += "<h3>Quarantined files</h3>" + table(
            ["file", "reason"], [(q.file, q.reason) for q in shown]
        )
        if len(data.quarantined) > 20:
            body += para(f"... and {len(data.quarantined) - 20} more ({DATA_SUMMARY_FILE})")
    body += "<h3>Labels (spectra with a value)</h3>" + table(
        ["label", "spectra"], data.label_coverage.items()
    )
    if data.preprocess:
        body += "<h3>Preprocessing</h3>" + pre(yaml.safe_dump(data.preprocess, sort_keys=False))
    return Section("data", "Data", body)


def training_section(run_dir: Path, train: SpectrumTrainSummary | None, figs: Figures) -> Section:
    """The training summary ``train`` and the curves of ``RUN/metrics.csv``."""
    if train is None:
        return Section(
            "training", "Training", note(f"no {TRAIN_SUMMARY_FILE}: the run did not finish")
        )
    keys = (
        "preset",
        "steps",
        "samples",
        "epochs",
        "n_train",
        "n_val",
        "n_parameters",
        "latent_dim",
        "kl_weight",
        "final_train_loss",
        "final_val_loss",
        "best_val_loss",
        "n_active_latents",
        "wall_seconds",
        "samples_per_second",
        "device",
        "stopped_by",
    )
    values = train.model_dump()
    body = kv_table((k, values[k]) for k in keys if k in values)
    metrics_path = run_dir / METRICS_FILE
    if metrics_path.is_file():
        frame = pd.read_csv(metrics_path)
        series = {
            name: (g["step"].to_numpy(), g["value"].to_numpy())
            for name, g in frame.groupby("metric")
            if name in ("train/loss", "val/loss", "train/recon", "val/recon")
        }
        if series:
            body += figs.new(
                figures.curves(
                    series,
                    xlabel="optimiser step",
                    ylabel="loss",
                    title="training curves (metrics.csv)",
                    logy=True,
                ),
                "training_curves",
                "Training and validation loss (reconstruction + weighted KL) and the reconstruction term.",
            )
    return Section("training", "Training", body)
