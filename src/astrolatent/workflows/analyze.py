"""``analyze``: what a trained run's latents know, with error bars and significance.

Reads ``RUN/latents.parquet`` (written by ``astrolatent encode``), the run's store (for the
PCA baseline and the ceiling) and its model (for traversals), and writes ``RUN/analysis/``:

- ``summary.json`` (the contract other tools read: informative dims by both methods, per-label
  MI per latent with errors and p-values, disentanglement scores, the PCA baseline; and two
  references per label, each the cross-validated r of a regressor: ``all_latents``, from all
  latent means together, and ``ceiling``, from the spectra's principal components. A label
  with a weak best latent is then spread over several latents (high ``all_latents``), or
  missed by the network (low, under a high ``ceiling``), or barely in the spectra (both low));
- ``mi_per_dim.csv`` (every label x latent, for the latents and the PCA baseline),
  ``dimensions.csv`` (per-dim dispersion and KL rate), ``traversals.json``;
- figures: dispersion and KL bars, MI heat maps in the published form (plug-in histogram MI
  per bin count, each row normalised by its max) and ours (KSG MI with FWER-significant
  cells marked), best-latent scatter plots per label, traversal plots.

Significance: with the KSG estimator, p-values come from label permutations and are
corrected for testing every latent by the max-statistic method (``p_value_fwer``); with
the other estimators each latent is tested on its own and Bonferroni-corrected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from astrolatent import figures
from astrolatent.analysis.baseline import label_ceiling, pca_scores
from astrolatent.analysis.dimensions import count_informative, dispersion, kl_rate, redundancy
from astrolatent.analysis.disentangle import disentanglement_scores
from astrolatent.analysis.mi import (
    REFERENCE_BINS,
    clean_labels,
    histogram_mi_table,
    mutual_information,
    normalise_rows,
)
from astrolatent.analysis.mi.columns import mi_columns
from astrolatent.analysis.traversal import traverse
from astrolatent.config import Config
from astrolatent.errors import AstrolatentError, ConfigError, RunError
from astrolatent.outputs import marks
from astrolatent.outputs.io import write_npz_atomic, write_parquet_atomic
from astrolatent.outputs.layout import (
    ANALYSIS_DIR,
    CONFIG_FILE,
    DATA_SUMMARY_FILE,
    DIMENSIONS_FILE,
    INFORMATIVE_FIGURE,
    LATENTS_FILE,
    MI_HIST_FIGURE,
    MI_KSG_FIGURE,
    MI_PER_DIM_FILE,
    MI_PER_DIM_PCA_FILE,
    RECONSTRUCTION_EXAMPLES_FILE,
    RECONSTRUCTIONS_FILE,
    SCATTER_FIGURE,
    SUMMARY_FILE,
    TRAVERSAL_FIGURE,
    TRAVERSALS_FILE,
)
from astrolatent.outputs.summaries import (
    AnalysisSummary,
    DataSummary,
    Traversals,
    analysed_dims,
    provenance,
    write_summary,
)
from astrolatent.tables import describe_non_numeric, mixed_columns

log = logging.getLogger(__name__)

#: Spectra encoded and decoded for the report's reconstructions (a seeded random sample).
N_RECONSTRUCTED = 256

#: Label columns that are bookkeeping, not physics, and are never analysed by default.
_NOT_LABELS = ("row", "id", "object", "split", "gaiaedr3_source_id", "medflux")


class AnalyzeConfig(Config):
    """Options of ``astrolatent analyze`` (saved as ``RUN/analysis/config.yaml``)."""

    labels: list[str] | None = None
    estimator: Literal["ksg", "gmm", "hist"] = "ksg"
    n_neighbors: int = Field(default=3, ge=1)
    n_bootstrap: int = Field(default=20, ge=0)
    n_permutations: int = Field(default=100, ge=0)
    max_samples: int = Field(default=5000, ge=50)
    clip_sigma: float | None = 5.0
    alpha: float = Field(default=0.05, gt=0, lt=1)
    dispersion_threshold: float = Field(default=0.02, gt=0)
    split: Literal["threshold", "groups"] = "groups"
    pca_baseline: bool = True
    ceiling_components: int = Field(default=40, ge=1)
    traversal_sigma: float = Field(default=3.0, gt=0)
    traversal_steps: int = Field(default=9, ge=3)
    #: analyse one (seeded, random) spectrum of each object (the store's ``object`` column)
    #: where an object has several: repeat spectra of one star are near-duplicates, which
    #: the KSG estimator counts as neighbours at distance ~0, so they inflate MI and its
    #: permutation significance (even for a per-star label the spectra do not hold) and
    #: leak across the regressors' cross-validation folds. Spectra without an object name
    #: count as their own object.
    one_per_object: bool = True
    random_state: int = 0


#: where ``analyze`` writes its summary, relative to the run directory
#: what ``analyze`` writes in its folder (the only names astrolatent removes there)
ANALYSIS_OWNS = (
    *(CONFIG_FILE, SUMMARY_FILE, DIMENSIONS_FILE, "mi_per_dim*.csv", TRAVERSALS_FILE),
    *(DATA_SUMMARY_FILE, RECONSTRUCTIONS_FILE, RECONSTRUCTION_EXAMPLES_FILE),
    *(
        f"{INFORMATIVE_FIGURE}.*",
        f"{TRAVERSAL_FIGURE.format('*')}.*",
        "*_mi_ksg.*",
        "*_mi_hist_*.*",
    ),
    f"{SCATTER_FIGURE.format('*')}.*",
)


def claim_analysis(folder: str | Path, *, fresh: bool = False) -> Path:
    """Mark ``folder`` as an analysis folder (created if needed; ``fresh``: an earlier
    analysis's files removed). Raises OutputFolderError for a non-empty folder that is not
    an analysis's."""
    # an analysis folder written before folders were marked: its configuration loads
    legacy = marks.loads(AnalyzeConfig.load, CONFIG_FILE)
    return marks.claim(folder, "analysis", ANALYSIS_OWNS, legacy=legacy, fresh=fresh)


def latent_matrices(latents: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``mu`` and ``logvar`` arrays (n, D) from a latents table."""
    mu_cols = sorted((c for c in latents.columns if c.startswith("mu_")), key=lambda c: int(c[3:]))
    lv_cols = [f"logvar_{c[3:]}" for c in mu_cols]
    if not mu_cols or any(c not in latents.columns for c in lv_cols):
        raise ConfigError(
            "the latents table needs mu_0..mu_{D-1} and logvar_0..logvar_{D-1} columns"
        )
    return latents[mu_cols].to_numpy(float), latents[lv_cols].to_numpy(float)


def default_labels(latents: pd.DataFrame) -> list[str]:
    """Numeric label columns of a latents table (everything but ids, latents and errors)."""
    out = []
    for c in latents.columns:
        if c.startswith(("mu_", "logvar_")) or c in _NOT_LABELS or c.endswith("_err"):
            continue
        if pd.api.types.is_numeric_dtype(latents[c]) and latents[c].notna().sum() > 0:
            out.append(c)
        elif bad := mixed_columns(latents[[c]]).get(str(c)):
            log.warning(
                "label %r %s and is not analysed; clean the label table and re-ingest, or "
                "name it with --labels to read those cells as missing",
                c,
                describe_non_numeric(bad),
            )
    return out


@dataclass(frozen=True)
class LabelRows:
    """The rows one label is analysed on: its clean values (at most ``max_samples``, one
    draw shared by the latents, the PCA baseline and both regressors)."""

    values: np.ndarray  # (len(rows),) label values
    rows: np.ndarray  # indices into the latents table
    hygiene: dict  # what cleaning removed


def one_per_object(
    rows: np.ndarray, table: pd.DataFrame, config: AnalyzeConfig, rng: np.random.Generator
) -> np.ndarray:
    """``rows`` (indices into ``table``, sorted) keeping one seeded random row of each
    object of ``table["object"]`` (rows with an empty object name are all kept); ``rows``
    as they are without that column, with ``config.one_per_object`` off, or without repeats."""
    if not config.one_per_object or "object" not in table.columns or rows.size == 0:
        return rows
    objects = table["object"].to_numpy()[rows]
    named = np.flatnonzero(pd.notna(objects) & (objects != ""))
    objects = objects.astype(str)  # names of any type compare as text
    _, first = np.unique(objects[named], return_index=True)
    if first.size == named.size:  # every object once
        return rows
    order = rng.permutation(named)
    _, first = np.unique(objects[order], return_index=True)
    unnamed = np.setdiff1d(np.arange(rows.size), named, assume_unique=True)
    return rows[np.sort(np.concatenate([order[first], unnamed]))]


def label_rows(
    table: pd.DataFrame, labels: list[str], config: AnalyzeConfig, rng: np.random.Generator
) -> dict[str, LabelRows]:
    """Clean each label and draw its rows (one spectrum per object, see
    :attr:`AnalyzeConfig.one_per_object`); labels with < 50 usable values or constant are
    skipped with a warning."""
    out = {}
    for name in labels:
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(float)
        cleaned = clean_labels(values, sigma=config.clip_sigma)
        usable = np.flatnonzero(cleaned.mask)
        keep = one_per_object(usable, table, config, rng)
        hygiene = {**cleaned.to_dict(), "repeat_spectra_left_out": int(usable.size - keep.size)}
        if keep.size > config.max_samples:
            keep = np.sort(rng.choice(keep, config.max_samples, replace=False))
        if keep.size < 50:
            repeats = hygiene["repeat_spectra_left_out"]
            also = f" (one spectrum per object; {usable.size} with repeats: --every-spectrum)"
            log.warning(
                "label %s: only %d usable values%s, skipped",
                name,
                keep.size,
                also if repeats else "",
            )
            continue
        if np.ptp(values[keep]) == 0:
            log.warning(
                "label %s: constant (%g) over its usable values, skipped", name, values[keep][0]
            )
            continue
        out[name] = LabelRows(values[keep], keep, hygiene)
    return out


def label_block(
    codes: np.ndarray,
    labels: dict[str, LabelRows],
    config: AnalyzeConfig,
    rng: np.random.Generator,
) -> tuple[dict, pd.DataFrame]:
    """Per-label MI of every column of ``codes`` (n, D): the ``labels`` block of summary.json."""
    block: dict = {}
    rows = []
    d = codes.shape[1]
    for name, lab in labels.items():
        keep = lab.rows
        x, y = codes[keep], lab.values
        if config.estimator == "ksg":
            res = mi_columns(
                x,
                y,
                n_neighbors=config.n_neighbors,
                n_bootstrap=config.n_bootstrap,
                n_permutations=config.n_permutations,
                random_state=int(rng.integers(2**32)),
            )
            per_dim = res.per_dim()
        else:
            per_dim = []
            for j in range(d):
                r = mutual_information(
                    x[:, j],
                    y,
                    estimator=config.estimator,
                    n_bootstrap=config.n_bootstrap,
                    n_permutations=config.n_permutations,
                    random_state=int(rng.integers(2**32)),
                )
                per_dim.append(
                    {
                        "dim": j,
                        "mi": r.mi,
                        "mi_err": r.mi_err,
                        "r_info": r.r_info,
                        "p_value": r.p_value,
                        "p_value_fwer": min(1.0, r.p_value * d),
                    }
                )
        mi = np.array([p["mi"] for p in per_dim])
        order = np.argsort(mi)[::-1]
        best = per_dim[order[0]]
        block[name] = {
            "n": int(keep.size),
            "hygiene": lab.hygiene,
            "best_dim": int(order[0]),
            "mi": best["mi"],
            "mi_err": best["mi_err"],
            "r_info": best["r_info"],
            "p_value": best["p_value"],
            "p_value_fwer": best["p_value_fwer"],
            "significant": bool(best["p_value_fwer"] < config.alpha),
            "gap_to_second": float(mi[order[0]] - mi[order[1]]) if d > 1 else None,
            "second_dim": int(order[1]) if d > 1 else None,
            "significant_dims": [p["dim"] for p in per_dim if p["p_value_fwer"] < config.alpha],
            "per_dim": per_dim,
        }
        rows.extend({"label": name, **p} for p in per_dim)
    return block, pd.DataFrame(rows)


def _best_informative(block: dict, dims: list[int]) -> None:
    """Add ``best_informative_dim`` / ``r_info_informative`` (None without informative dims)
    to every label of ``block``: its best dim among ``dims``, the headline a person reads."""
    for entry in block.values():
        best = max((entry["per_dim"][j] for j in dims), key=lambda p: p["mi"], default=None)
        entry["best_informative_dim"] = None if best is None else int(best["dim"])
        entry["r_info_informative"] = None if best is None else best["r_info"]


def _all_finite_rows(table: pd.DataFrame, labels: list[str]) -> np.ndarray:
    values = table[labels].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    return np.flatnonzero(np.isfinite(values).all(axis=1))


def _informative_block(
    mu: np.ndarray,
    logvar: np.ndarray,
    config: AnalyzeConfig,
    rng: np.random.Generator,
    out_dir: Path,
    pool: np.ndarray,
) -> dict:
    """Informative dims by both counts, the redundancy among the analysed ones (MI on at
    most ``max_samples`` of the rows ``pool``), and the per-dim scores (``dimensions.csv``,
    ``informative_dims.png``)."""
    dims = count_informative(mu, logvar, threshold=config.dispersion_threshold, split=config.split)
    informative = dims.to_dict()
    chosen = analysed_dims(informative)
    d = mu.shape[1]
    sub = rng.choice(pool, min(pool.size, config.max_samples), replace=False)
    if len(chosen) >= 2:
        informative["redundancy"] = redundancy(
            mu[sub][:, chosen],
            list(range(len(chosen))),
            n_neighbors=config.n_neighbors,
            random_state=config.random_state,
        ).to_dict()
        informative["redundancy"]["dims"] = chosen
    pd.DataFrame(
        {
            "dim": range(d),
            "mad": dispersion(mu),
            "mean_abs_dev": dispersion(mu, method="meanad"),
            "kl_rate": kl_rate(mu, logvar),
        }
    ).to_csv(out_dir / DIMENSIONS_FILE, index=False)
    figures.save(
        figures.informative_bars(
            {"dispersion": informative["dispersion"]["scores"], "kl": informative["kl"]["scores"]},
            {
                "dispersion": informative["dispersion"]["threshold"],
                "kl": informative["kl"]["threshold"],
            },
            {"dispersion": informative["dispersion"]["dims"], "kl": informative["kl"]["dims"]},
        ),
        out_dir / INFORMATIVE_FIGURE,
    )
    return informative


def _baseline_block(
    spectra_scores: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    latents: pd.DataFrame,
    rows: dict[str, LabelRows],
    both: np.ndarray,
    chosen: list[int],
    config: AnalyzeConfig,
    out_dir: Path,
    *,
    analysed: list[str],
    d: int,
) -> dict:
    """The same analysis of the spectra's principal components (``baseline_pca``) and each
    label's ceiling: a regressor on ``ceiling_components`` components (``ceiling``)."""
    n = len(latents)
    k = max(d, config.ceiling_components)
    scores, evr = spectra_scores(np.arange(n), k)
    pca_block, pca_table = label_block(
        scores[:, :d], rows, config, np.random.default_rng(config.random_state)
    )
    pca_table.to_csv(out_dir / MI_PER_DIM_PCA_FILE, index=False)
    baseline: dict = {
        "n_components": d,
        "explained_variance_ratio": evr[:d].tolist(),
        "labels": pca_block,
    }
    if both.size >= 100:
        baseline["disentanglement"] = disentanglement_scores(
            scores[both][:, : max(2, len(chosen))],
            latents.iloc[both][analysed].to_numpy(float),
            random_state=config.random_state,
        )
    ceiling = {
        name: {
            **_regressor_r(scores[:, : config.ceiling_components], rows[name], config),
            "n_components": min(k, config.ceiling_components),
        }
        for name in analysed
    }
    return {"baseline_pca": baseline, "ceiling": ceiling}


def _traversals(
    decode: Callable[[np.ndarray], np.ndarray],
    mu: np.ndarray,
    chosen: list[int],
    wave: np.ndarray,
    valid: np.ndarray | None,
    config: AnalyzeConfig,
    out_dir: Path,
) -> dict[str, list]:
    """Decode sweeps of each analysed dim (``traversals.json`` and a figure each); returns
    each dim's most responsive wavelengths."""
    sweeps = traverse(
        decode,
        mu,
        chosen,
        wave,
        n_sigma=config.traversal_sigma,
        steps=config.traversal_steps,
        valid=valid,
    )
    write_summary(out_dir / TRAVERSALS_FILE, Traversals, [t.to_dict() for t in sweeps])
    for t in sweeps:
        figures.save(
            figures.traversal_plot(wave, t.spectra, t.values, t.top, dim=t.dim),
            out_dir / TRAVERSAL_FIGURE.format(t.dim),
        )
    return {str(t.dim): t.top for t in sweeps}


def analyze_latents(
    latents: pd.DataFrame,
    config: AnalyzeConfig,
    out_dir: Path,
    *,
    spectra_scores: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]] | None = None,
    decode: Callable[[np.ndarray], np.ndarray] | None = None,
    wave: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
    known: dict[str, int] | None = None,
    kl_floor: float = 0.0,
) -> dict:
    """Analyse a latents table; write tables and figures to ``out_dir``; return the summary.

    spectra_scores(rows, k): principal-component scores (len(rows), k) and explained
    variance of the spectra behind ``latents`` rows (the PCA baseline and ceiling are skipped
    without it); decode(z (m, D)) -> spectra (m, L) with ``wave`` (L,) and ``valid`` (L,)
    enables traversals. ``known`` (label -> tied dim) and ``kl_floor`` (nats, the free dims'
    KL floor) describe a run trained with known labels: the summary then gains the
    ``known`` and ``free`` blocks of :mod:`astrolatent.workflows.audit`, and the known
    labels are analysed whether or not ``config.labels`` names them.
    """
    step = progress or (lambda _msg: None)
    claim_analysis(out_dir)
    rng = np.random.default_rng(config.random_state)
    mu, logvar = latent_matrices(latents)
    n, d = mu.shape
    known = dict(known or {})
    labels = _labels_to_analyse(latents, config, known)
    config.save(out_dir / CONFIG_FILE)

    step("counting informative dimensions")
    pool = one_per_object(np.arange(n), latents, config, rng)
    informative = _informative_block(mu, logvar, config, rng, out_dir, pool)
    chosen = analysed_dims(informative)

    step("mutual information with labels")
    rows = label_rows(latents, labels, config, rng)
    block, table = label_block(mu, rows, config, rng)
    table.to_csv(out_dir / MI_PER_DIM_FILE, index=False)
    _mi_figures(mu, latents, block, config, out_dir)

    from astrolatent.workflows.audit import audit, latent_roles  # audit builds on this module

    audited: dict = {}
    if known:
        step("what the free latents hold beyond the known labels")
        audited = audit(mu, logvar, known, kl_floor, rows, block, config, rng)
        headline = sorted(set(known.values()) | set(audited["free"]["dims"]))
    else:
        headline = chosen
    _best_informative(block, headline)
    summary: dict = {
        **provenance(
            format_version=AnalysisSummary.FORMAT, seeds={"random_state": config.random_state}
        ),
        "n_latent": d,
        "n_spectra": n,
        "informative": informative,
        "roles": latent_roles(d, known),
        "labels": block,
        **audited,
    }
    analysed = list(block)
    step("labels from all latents together")
    summary["all_latents"] = {name: _regressor_r(mu, rows[name], config) for name in analysed}
    both = _all_finite_rows(latents, analysed) if analysed else np.array([], int)
    both = one_per_object(both, latents, config, rng)
    if len(analysed) and both.size >= 100 and len(chosen) >= 1:
        step("disentanglement scores")
        summary["disentanglement"] = _disentanglement(mu, latents, both, chosen, analysed, config)

    if spectra_scores is not None and config.pca_baseline:
        step("PCA baseline and ceiling")
        summary.update(
            _baseline_block(
                spectra_scores, latents, rows, both, chosen, config, out_dir, analysed=analysed, d=d
            )
        )

    if decode is not None and wave is not None and chosen:
        step("latent traversals")
        summary["traversals"] = _traversals(decode, mu, chosen, wave, valid, config, out_dir)

    write_summary(out_dir / SUMMARY_FILE, AnalysisSummary, summary)
    return summary


def _labels_to_analyse(
    latents: pd.DataFrame, config: AnalyzeConfig, known: dict[str, int]
) -> list[str]:
    """The configured labels (default: every numeric label column) and the known labels;
    ConfigError naming those the latents table lacks."""
    labels = list(config.labels or default_labels(latents))
    labels += [name for name in known if name not in labels and name in latents.columns]
    missing = [c for c in labels if c not in latents.columns]
    if missing:
        raise ConfigError(
            f"label(s) {', '.join(missing)} not in the latents table (labels there: {', '.join(default_labels(latents))})"
        )
    return labels


def _disentanglement(
    mu: np.ndarray,
    latents: pd.DataFrame,
    both: np.ndarray,
    chosen: list[int],
    analysed: list[str],
    config: AnalyzeConfig,
) -> dict:
    """MIG, SAP and DCI of the analysed dims (all dims with fewer than two) against the
    ``analysed`` labels, on the rows ``both`` where every label is finite."""
    dims = chosen if len(chosen) >= 2 else list(range(mu.shape[1]))
    return {
        "dims": dims,
        "labels": analysed,
        **disentanglement_scores(
            mu[both][:, dims],
            latents.iloc[both][analysed].to_numpy(float),
            random_state=config.random_state,
        ),
    }


def _regressor_r(features: np.ndarray, label: LabelRows, config: AnalyzeConfig) -> dict:
    """Cross-validated r of a regressor predicting the label from ``features`` (n, k) on the
    label's rows: ``{"r", "n"}``."""
    r = label_ceiling(features[label.rows], label.values, random_state=config.random_state)
    return {"r": r, "n": int(label.rows.size)}


def _mi_figures(
    mu: np.ndarray,
    latents: pd.DataFrame,
    block: dict,
    config: AnalyzeConfig,
    out_dir: Path,
) -> None:
    if not block:
        return
    names = list(block)
    ours = np.array([[p["mi"] for p in block[k]["per_dim"]] for k in names])
    marks = np.array(
        [[p["p_value_fwer"] < config.alpha for p in block[k]["per_dim"]] for k in names]
    )
    figures.save(
        figures.mi_heatmap(
            np.clip(ours, 0, None),
            names,
            title=f"KSG mutual information (nats); dots: significant at FWER {config.alpha}",
            colorbar="MI (nats)",
            marks=marks,
        ),
        out_dir / MI_KSG_FIGURE,
    )
    for name in names:
        values = pd.to_numeric(latents[name], errors="coerce").to_numpy(float)
        keep = clean_labels(values, sigma=config.clip_sigma).mask
        table = normalise_rows(histogram_mi_table(mu[keep], values[keep]))
        figures.save(
            figures.mi_heatmap(
                table,
                [f"{b} bins" for b in REFERENCE_BINS],
                title=f"{name}: plug-in histogram MI, rows normalised by their max (published form)",
                colorbar="MI / max over dims",
            ),
            out_dir / MI_HIST_FIGURE.format(name),
        )
        b = block[name]
        figures.save(
            figures.label_scatter(
                mu[keep, b["best_dim"]],
                values[keep],
                xlabel=f"mu_{b['best_dim']}",
                ylabel=name,
                title=f"{name}: best latent {b['best_dim']}, r_I = {b['r_info']:.2f}",
            ),
            out_dir / SCATTER_FIGURE.format(name),
        )


def analyze_run(
    run_dir: str | Path, config: AnalyzeConfig, *, progress: Callable[[str], None] | None = None
) -> dict:
    """Analyse a trained run (``RUN/latents.parquet`` from ``astrolatent encode``)."""
    from astrolatent.training.encode import decode, latents_store, load_model

    run_dir = Path(run_dir)
    path = run_dir / LATENTS_FILE
    if not path.is_file():
        raise RunError(f"{path}: not found; run `astrolatent encode {run_dir}` first")
    latents = pd.read_parquet(path)
    model, train_config = load_model(run_dir)
    store = latents_store(path, train_config.store)
    names = train_config.known_labels.names

    def spectra_scores(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        store_rows = latents["row"].to_numpy(np.int64)[rows]
        base = pca_scores(store, store_rows, n_components=min(k, store_rows.size, store.length))
        return base.scores, base.explained_variance_ratio

    summary = analyze_latents(
        latents,
        config,
        run_dir / ANALYSIS_DIR,
        spectra_scores=spectra_scores,
        decode=lambda z: decode(model, z),
        wave=store.wave,
        valid=store.coverage(),
        progress=progress,
        known={name: k for k, name in enumerate(names)},
        kl_floor=train_config.known_labels.free_kl_floor if names else 0.0,
    )
    if progress is not None:
        progress("data summary and reconstructions")
    write_summary(
        run_dir / ANALYSIS_DIR / DATA_SUMMARY_FILE,
        DataSummary,
        {**provenance(format_version=DataSummary.FORMAT), **data_summary(store)},
    )
    write_reconstructions(run_dir, latents, store.path, config.random_state)
    return summary


def data_summary(store) -> dict:
    """What the report shows of the analysed spectra's store: counts, coverage, rejections,
    preprocessing."""
    info = store.info()
    reasons = pd.Series([r["reason"] for r in info["rejected"]], dtype=object).value_counts()
    return {
        **{k: info[k] for k in ("path", "n_spectra", "n_objects", "n_rows", "length", "dtype")},
        **{k: info[k] for k in ("n_rejected", "n_quarantined", "format", "preset")},
        "wavelength_range": info["wavelength_range"],
        "rejection_reasons": {str(k): int(v) for k, v in reasons.items()},
        "quarantined": info["quarantined"],
        "preprocess": info["preprocess"],
        "label_coverage": info["label_coverage"],
    }


def write_reconstructions(
    run_dir: Path, latents: pd.DataFrame, store: str | Path, random_state: int
) -> None:
    """Encode and decode a seeded sample of the spectra of ``latents`` (from ``store``):
    ``analysis/reconstructions.parquet`` (id, masked L1 per spectrum) and
    ``analysis/reconstructions.npz`` (wave and the flux, reconstruction and validity of the
    typical and the worst of them; the median, 90th percentile and largest L1 of the
    sample, ``l1_summary``)."""
    from astrolatent.training.encode import reconstruct

    out = run_dir / ANALYSIS_DIR
    ids = latents["id"].astype(str).to_numpy()
    if ids.size > N_RECONSTRUCTED:
        rng = np.random.default_rng(random_state)
        ids = np.sort(rng.choice(ids, N_RECONSTRUCTED, replace=False))
    try:
        rec = reconstruct(run_dir, list(ids), store)
    except AstrolatentError as exc:
        log.warning("no reconstructions: %s", exc)
        return
    l1 = np.asarray(rec.l1, float)
    write_parquet_atomic(out / RECONSTRUCTIONS_FILE, pd.DataFrame({"id": rec.ids, "l1": l1}))
    picks = np.array([int(np.argmin(np.abs(l1 - np.median(l1)))), int(np.argmax(l1))])
    write_npz_atomic(
        out / RECONSTRUCTION_EXAMPLES_FILE,
        kind=np.array(["typical", "worst"]),
        id=np.asarray(rec.ids)[picks].astype(str),
        l1=l1[picks],
        wave=rec.wave,
        flux=rec.flux[picks],
        recon=rec.recon[picks],
        valid=rec.valid[picks],
        l1_summary=np.array([np.median(l1), np.quantile(l1, 0.9), np.max(l1)]),
    )
