"""Calibration runs for the VAE presets: train, encode, and measure what the latents know.

For each run: train with the given overrides (one thread, a wall-clock budget), encode
the store, then report per-latent dispersion (MAD of mu, METHOD.md A3) and, for every
factor of the truth table, the best single-latent |Spearman r| and |Pearson r| and the
held-out R^2 of a linear fit on all latents (how much of the factor the representation
holds at all, aligned or not; ``r_all_latents`` is its square root), the reconstruction
L1 at line pixels against the photon-noise floor there, and the CPU seconds per training
step (process time, so a shared machine does not inflate it as it does wall time).
Results go to ``RUN/calibration.json``.

    python benchmarks/calibrate_vae.py STORE TRUTH.csv RUN --minutes 10 \
        --set loss.beta=0.001 --set loss.kl_reduction=sum

Used to choose the preset defaults recorded in docs/training-calibration.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import pearsonr, spearmanr

from astrolatent.training.encode import encode
from astrolatent.training.fit import fit

FACTORS = ("teff", "logg", "feh", "rv", "vsini", "ebv", "snr", "airmass", "control")


def _parse_value(text: str) -> object:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def _overrides(items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        key, value = item.split("=", 1)
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = _parse_value(value)
    return out


def latent_report(
    latents: pd.DataFrame, truth: pd.DataFrame, *, mad_threshold: float = 0.02
) -> dict:
    mu_cols = [c for c in latents.columns if c.startswith("mu_")]
    mu = latents[mu_cols].to_numpy(np.float64)
    mad = np.median(np.abs(mu - np.median(mu, axis=0)), axis=0)
    active = np.flatnonzero(mad > mad_threshold)
    lv = latents[[c.replace("mu_", "logvar_") for c in mu_cols]].to_numpy(np.float64)
    rate = (0.5 * (mu**2 + np.exp(lv) - 1 - lv)).mean(axis=0)
    if truth is None:
        skip = {"id", "object", "row", "split"}
        names = [
            c
            for c in latents.columns
            if c not in skip
            and not c.startswith(("mu_", "logvar_"))
            and pd.api.types.is_numeric_dtype(latents[c])
        ]
        table = latents[["id", "split", *names]]
    else:
        names = [c for c in FACTORS if c in truth.columns]
        table = latents[["id", "split"]].merge(truth, on="id", how="left")
    train = (table["split"] == "train").to_numpy()
    val = ~train
    factors = {}
    for name in names:
        y = table[name].to_numpy(np.float64)
        ok = np.isfinite(y)
        if ok.sum() < 10 or np.nanstd(y) == 0:
            continue
        sp = [
            abs(spearmanr(mu[ok, d], y[ok])[0]) if mad[d] > 0 else 0.0 for d in range(mu.shape[1])
        ]
        pe = [abs(pearsonr(mu[ok, d], y[ok])[0]) if mad[d] > 0 else 0.0 for d in range(mu.shape[1])]
        best = int(np.nanargmax(sp))
        X = np.c_[mu, np.ones(len(mu))]
        coef, *_ = np.linalg.lstsq(X[train & ok], y[train & ok], rcond=None)
        resid = y[val & ok] - X[val & ok] @ coef
        r2 = 1 - resid.var() / y[val & ok].var()
        factors[name] = {
            "best_latent": best,
            "spearman": round(float(sp[best]), 3),
            "pearson": round(float(pe[best]), 3),
            "linear_r2_all_latents": round(float(r2), 3),
            "r_all_latents": round(float(np.sqrt(max(r2, 0.0))), 3),
        }
    return {
        "mad": [round(float(v), 4) for v in mad],
        "rate_nats": [round(float(v), 3) for v in rate],
        "n_active_mad": int(active.size),
        "active": active.tolist(),
        "factors": factors,
    }


def line_report(run: str | Path, latents: pd.DataFrame, n: int = 100) -> dict:
    """Masked L1 of the reconstructions at absorption-line pixels and elsewhere (val spectra).

    Lines are where the mean spectrum dips more than 5% below its running median (101 px):
    a model that learned only the continuum has a line L1 far above its continuum L1. The
    noise floor is the L1 a perfect model would leave, the mean |noise| = sqrt(2/pi) x the
    stored 1-sigma error (when the store has errors).
    """
    from scipy.ndimage import median_filter

    from astrolatent.data.store import SpectrumStore
    from astrolatent.training.encode import load_model, reconstruct

    ids = (
        latents.loc[latents["split"] == "val", "id"].head(n).tolist()
        or latents["id"].head(n).tolist()
    )
    rec = reconstruct(run, ids)
    mean = np.where(rec.valid, rec.flux, np.nan)
    mean = np.nanmean(mean, axis=0)
    mean = np.where(np.isfinite(mean), mean, np.nanmedian(mean))
    line = (1 - mean / median_filter(mean, 101)) > 0.05
    res = np.abs(rec.flux - rec.recon)
    valid = rec.valid
    out = {
        "l1_line_pixels": round(float(res[:, line][valid[:, line]].mean()), 5),
        "l1_other_pixels": round(float(res[:, ~line][valid[:, ~line]].mean()), 5),
        "line_pixel_fraction": round(float(line.mean()), 4),
    }
    err = SpectrumStore(load_model(run)[1].store).err
    if err is not None:
        floor = np.sqrt(2 / np.pi) * np.asarray(err.oindex[np.sort(rec.rows)])
        floor = floor[np.argsort(np.argsort(rec.rows))]
        out["noise_floor_line_pixels"] = round(float(floor[:, line][valid[:, line]].mean()), 5)
        out["noise_floor_other_pixels"] = round(float(floor[:, ~line][valid[:, ~line]].mean()), 5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument(
        "truth", help="truth table (CSV with id), or 'labels' for the store's labels"
    )
    parser.add_argument("run")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="override, e.g. loss.beta=0.001")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    summary = fit(
        args.store,
        args.run,
        _overrides(args.set),
        preset=args.preset,
        max_minutes=args.minutes,
        max_steps=args.steps,
    )
    cpu_per_step = (time.process_time() - cpu0) / max(1, summary.steps)
    result = encode(args.run)
    latents = pd.read_parquet(result.path)
    truth = None if args.truth == "labels" else pd.read_csv(args.truth)
    report = latent_report(latents, truth)
    report["lines"] = line_report(args.run, latents)
    report["overrides"] = args.set
    report["summary"] = {
        k: summary.to_dict()[k]
        for k in (
            "steps",
            "samples",
            "epochs",
            "samples_per_second",
            "final_train_loss",
            "final_val_loss",
            "n_active_latents",
            "val_kl_per_dim",
        )
    }
    report["seconds"] = time.perf_counter() - t0
    report["cpu_seconds_per_step"] = round(cpu_per_step, 4)
    Path(args.run, "calibration.json").write_text(json.dumps(report, indent=2))
    print(
        json.dumps(
            {k: report[k] for k in ("n_active_mad", "active", "factors", "overrides")}, indent=1
        )
    )
    print(json.dumps(report["summary"]))
    print(json.dumps({"lines": report["lines"], "cpu_seconds_per_step": cpu_per_step}))


if __name__ == "__main__":
    main()
