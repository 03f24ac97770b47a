"""Known-label training weights (issue 16): train one run with known labels, measure it on truth.

Trains ``astrolatent.training.fit.fit`` on a store with ``--known-labels`` (default
teff,logg,feh,rv) for a FIXED number of optimiser steps (never a time budget: the result
must not depend on the machine's load), with ``--set KEY=VALUE`` overrides of the training
configuration (e.g. ``known_labels.weight=0.1``, ``trainer.seed=1``), encodes every spectrum
and measures the latents against the simulation's ``truth.csv`` on ONE spectrum per star
(the two spectra of a star are near-duplicates, which KSG counts as neighbours at distance
~0; see docs/results.md):

- tied latent: |Spearman r| and r_I (KSG MI, as ``analyze``) per known label, on the
  spectra whose store row has the label (labelled) and on the others (unlabelled);
- free latents: the best free dim's r_I for every other truth column asked for
  (``--hidden``, default ebv,vsini), the cross-validated R^2 to it from all free dims and
  from all latents, and the tied latents' r_I with it (where else it may have gone);
  leakage: the cross-validated R^2 from all free dims to each known label and the largest KSG MI (nats) of a free dim with it, of all free
  dims and of the informative ones, on the posterior means and on one draw of the latent
  variables (``*_drawn``, as the audit's leakage); what that largest MI reads for a
  permuted label over 20 permutations (``null_max_mi``: the estimator's noise floor);
  the informative free dims (the audit's count, dims held at the KL floor left out);
- what a hidden factor is worth to the decoder (``signal``, on 300 stars, in the store's
  median-normalised flux): the rms over pixels of the flux change the factor makes (the
  noiseless spectrum at its value against the same at its range's low end, re-simulated
  from the ``simulation.yaml`` beside ``truth.csv``; skipped without one), the decoded residual's component
  along that change (what of it the model leaves unfitted; noise alone gives
  ``noise_along``); the decoder's error against the noiseless spectrum (``model_error_rms``,
  beside the noise's ``noise_rms``) and its mean on continuum and line pixels (depth below
  2% / above 10% of a running envelope) in three S/N bins (``offset``: a fit pulled by its
  own noise reads low, more so at low S/N); and what knowing the factor is worth to the
  training loss (``loss_gain``, median over the stars, in loss units beside the run's
  ``nat_cost``, the price of a nat): the expected drop of the line-weighted L1 per pixel,
  for the store's noise, from the star's spectrum averaged over the factor's range (7
  values) to its spectrum at its own value (an upper bound: a decoder with an error of
  its own gains less; null for a loss other than ``l1``);
- CPU seconds per step (``time.process_time`` around the training).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/known_labels.py STORE TRUTH RUN \\
        --max-steps 3000 --set known_labels.weight=0.1 --set known_labels.independence=1

Prints one JSON line and writes ``RUN/known_calibration.json``. A run whose latents exist is
not retrained (only measured again).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.stats import norm, spearmanr

from astrolatent import api
from astrolatent.analysis.baseline import cross_validated_r2
from astrolatent.analysis.mi.base import informational_correlation
from astrolatent.analysis.mi.ksg import ksg_mi_columns
from astrolatent.data.store import SpectrumStore
from astrolatent.models.vae import line_weights
from astrolatent.simulate import SpectrumSimulationConfig, simulate_spectra
from astrolatent.training.config import with_known_labels
from astrolatent.training.encode import load_model
from astrolatent.training.fit import fit
from astrolatent.workflows.analyze import AnalyzeConfig
from astrolatent.workflows.audit import informative_free_dims, latent_draw


def overrides_from(pairs: list[str]) -> dict:
    """``["a.b=1", ...]`` -> ``{"a": {"b": 1}}`` (values read as YAML)."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def train(store: Path, run: Path, overrides: dict, max_steps: int) -> dict:
    """Train and encode ``run`` (skipped when its latents exist); the training's numbers."""
    stats_path = run / "known_training.json"
    if (run / "latents.parquet").exists() and stats_path.exists():
        return json.loads(stats_path.read_text())
    start = time.process_time()
    # the time cap is far above the step budget: the steps, not the load, end the run
    summary = fit(store, run, overrides, preset="lowres", max_steps=max_steps, max_minutes=240)
    cpu = time.process_time() - start
    api.encode(run)
    stats = {
        "steps": summary.steps,
        "stopped_by": summary.stopped_by,
        "cpu_s_per_step": cpu / max(summary.steps, 1),
        "final_val_loss": summary.final_val_loss,
    }
    stats_path.write_text(json.dumps(stats))
    return stats


def _r_info(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """r_I of each column of ``x`` (n, d) with ``y`` (n,) from KSG MI (k=3, as analyze)."""
    mi = ksg_mi_columns(x, y, n_neighbors=3, random_state=0, n_jobs=1)
    return mi, np.array([informational_correlation(m) for m in mi])


def measure(run: Path, truth: pd.DataFrame, hidden: list[str]) -> dict:
    """The tied, free and leakage numbers of ``run`` against ``truth`` (one row per id)."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    known = config["known_labels"]
    names = known["names"]
    lat = pd.read_parquet(run / "latents.parquet")
    mu_cols = sorted((c for c in lat if c.startswith("mu_")), key=lambda c: int(c[3:]))
    mu_all = lat[mu_cols].to_numpy(float)
    logvar_all = lat[[f"logvar_{c[3:]}" for c in mu_cols]].to_numpy(float)
    free = list(range(len(names), len(mu_cols)))
    one = lat.drop_duplicates("object").merge(
        truth, on="id", suffixes=("", "_true"), validate="one_to_one"
    )
    mu = one[mu_cols].to_numpy(float)
    drawn = latent_draw(mu, one[[f"logvar_{c[3:]}" for c in mu_cols]].to_numpy(float), 0)
    out: dict = {
        "n_stars": len(one),
        "informative_free_dims": informative_free_dims(
            mu_all, logvar_all, free, known["free_kl_floor"], AnalyzeConfig()
        ),
        "tied": {},
        "free": {},
        "leakage": {},
    }
    for k, name in enumerate(names):
        true = one[f"{name}_true"].to_numpy(float)
        labelled = np.isfinite(one[name].to_numpy(float))
        out["tied"][name] = {}
        for part, rows in (("labelled", labelled), ("unlabelled", ~labelled)):
            if rows.sum() < 10:  # e.g. no unlabelled stars in a fully labelled store
                continue
            _, r_i = _r_info(mu[rows][:, [k]], true[rows])
            rho = spearmanr(mu[rows, k], true[rows]).statistic
            out["tied"][name][part] = {
                "n": int(rows.sum()),
                "spearman": abs(float(rho)),
                "r_info": float(r_i[0]),
            }
        mi, _ = _r_info(mu[:, free], true)
        informative = [
            m for d, m in zip(free, mi, strict=True) if d in out["informative_free_dims"]
        ]
        mi_drawn, _ = _r_info(drawn[:, free], true)
        out["leakage"][name] = {
            "r2": cross_validated_r2(mu[:, free], true, random_state=0),
            "max_mi": float(mi.max()),
            "dim": free[int(mi.argmax())],
            "max_mi_informative": float(max(informative, default=0.0)),
            "r2_drawn": cross_validated_r2(drawn[:, free], true, random_state=0),
            "max_mi_drawn": float(mi_drawn.max()),
            "dim_drawn": free[int(mi_drawn.argmax())],
        }
    # what the largest of the free dims' MI reads when they hold nothing of the label
    rng = np.random.default_rng(0)
    null = [
        _r_info(drawn[:, free], rng.permutation(one[f"{names[0]}_true"].to_numpy(float)))[0].max()
        for _ in range(20)
    ]
    out["null_max_mi"] = {"mean": float(np.mean(null)), "q95": float(np.quantile(null, 0.95))}
    for name in hidden:
        _, r_i = _r_info(mu[:, free], one[name].to_numpy(float))
        target = one[name].to_numpy(float)
        _, r_i_tied = _r_info(mu[:, : len(names)], target)
        out["free"][name] = {
            "best_dim": free[int(r_i.argmax())],
            "r_info": float(r_i.max()),
            "r2_free": cross_validated_r2(mu[:, free], target, random_state=0),
            "r2_all": cross_validated_r2(mu, target, random_state=0),
            "r_info_tied": dict(zip(names, map(float, r_i_tied), strict=True)),
        }
    return out


def signal(run: Path, store: Path, sim_dir: Path, hidden: list[str], n: int = 300) -> dict:
    """What each hidden factor changes in the flux against what the decoder leaves unfitted
    (see the module docstring), on the first ``n`` stars (one spectrum each)."""
    config = SpectrumSimulationConfig(**yaml.safe_load((sim_dir / "simulation.yaml").read_text()))
    truth = pd.read_csv(sim_dir / "truth.csv", dtype={"id": str})
    lat = pd.read_parquet(run / "latents.parquet", columns=["id", "object", "row"])
    one = lat.drop_duplicates("object").head(n).sort_values("row")
    rows = one["row"].to_numpy()
    factors = one[["id"]].merge(truth, on="id", validate="one_to_one")
    snr = factors["snr"].to_numpy()
    factors = factors.assign(snr=1e7)  # noiseless
    spectra = SpectrumStore.open(store)
    if spectra.err is None:
        raise SystemExit(f"{store}: the store has no errors; the signal block needs them")
    flux = np.asarray(spectra.flux.oindex[rows, :], dtype=np.float32)
    valid = np.asarray(spectra.valid.oindex[rows, :], dtype=bool)
    err = np.asarray(spectra.err.oindex[rows, :], dtype=np.float32)
    model, train_config = load_model(run)
    with torch.no_grad():
        decoded = model.decode(model.encode(torch.from_numpy(flux))[0]).numpy()
    residual = np.where(valid, flux - decoded, 0.0)
    n_valid = valid.sum(axis=1)
    noise = np.sqrt((np.where(valid, err, 0.0) ** 2).sum(axis=1) / n_valid)

    def clean(table: pd.DataFrame) -> np.ndarray:
        f = simulate_spectra(config.model_copy(update={"n": len(table)}), truth=table).flux
        return f / np.median(f, axis=1, keepdims=True)

    base = clean(factors)
    # the decoder against the noiseless spectrum, on the store's scale (median of the flux)
    scale = np.nanmedian(np.where(valid, flux, np.nan), axis=1) / np.median(base, axis=1)
    error = np.where(valid, decoded - base * scale[:, None], 0.0)
    envelope = uniform_filter1d(maximum_filter1d(base, 51, axis=1), 51, axis=1)
    depth = 1.0 - base / envelope
    out: dict = {
        "n": len(one),
        "noise_rms": float(np.median(noise)),
        "model_error_rms": float(np.median(np.sqrt((error**2).sum(axis=1) / n_valid))),
        "offset": {},  # mean decoder - truth on continuum / line pixels, by S/N tercile
    }
    for part in np.array_split(np.argsort(snr), 3):
        cells = {}
        for where, px in (("continuum", depth < 0.02), ("lines", depth >= 0.1)):
            px = px[part] & valid[part]
            cells[where] = float((error[part] * px).sum() / px.sum())
        name = f"snr_{snr[part].min():.0f}_{snr[part].max():.0f}"
        out["offset"][name] = cells
    l1 = train_config.loss.reconstruction == "l1"  # what loss_gain's expectation is of
    weights = line_weights(
        torch.from_numpy(flux), torch.from_numpy(valid), train_config.loss.line_weight
    ).numpy()
    sd = np.maximum(np.where(valid, err, 1.0), 1e-12)
    for name in hidden:
        span = np.atleast_1d(getattr(config, name)).astype(float)
        low = float(span.min())
        change = np.where(valid, base - clean(factors.assign(**{name: low})), 0.0)
        size = np.sqrt((change**2).sum(axis=1))
        along = np.abs((residual * change).sum(axis=1)) / np.maximum(size, 1e-30)
        # the star without the factor: its spectrum averaged over the factor's range
        grid = np.linspace(span.min(), span.max(), 7)
        blind = np.mean([clean(factors.assign(**{name: v})) for v in grid], axis=0)
        delta = np.abs(base - blind) * scale[:, None] / sd
        # E|n + delta| - E|n| for n ~ N(0, sd^2), in units of sd, then the loss's weights
        excess = delta * (1 - 2 * norm.cdf(-delta)) + np.sqrt(2 / np.pi) * np.expm1(-0.5 * delta**2)
        w = np.where(valid, weights, 0.0)
        gain = (w * excess * sd).sum(axis=1) / w.sum(axis=1)
        out[name] = {
            "signal_rms": float(np.median(size / np.sqrt(n_valid))),
            "residual_along": float(np.median(along / np.sqrt(n_valid))),
            "noise_along": float(np.median(noise / np.sqrt(n_valid))),
            "loss_gain": float(np.median(gain)) if l1 else None,
        }
    out["nat_cost"] = train_config.nat_cost
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="spectrum store (astrolatent ingest)")
    parser.add_argument("truth", type=Path, help="the simulation's truth.csv")
    parser.add_argument("run", type=Path, help="run directory (created)")
    parser.add_argument("--known-labels", default="teff,logg,feh,rv")
    parser.add_argument("--hidden", default="ebv,vsini", help="truth columns never given")
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    names, hidden = args.known_labels.split(","), args.hidden.split(",")
    overrides = with_known_labels(overrides_from(args.set), names)
    stats = train(args.store, args.run, overrides, args.max_steps)
    truth = pd.read_csv(args.truth, dtype={"id": str})
    truth = truth[["id", *names, *hidden]].rename(columns={n: f"{n}_true" for n in names})
    result = {"run": str(args.run), "overrides": overrides, **stats}
    result.update(measure(args.run, truth, hidden))
    if (args.truth.parent / "simulation.yaml").is_file():  # only beside a simulation
        result["signal"] = signal(args.run, args.store, args.truth.parent, hidden)
    (args.run / "known_calibration.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
