"""Planted-factor study: the whole chain from the CLI on simulated spectra, over several seeds.

For each seed: ``astrolatent simulate spectra`` (labels teff, logg, feh, rv and the negative
control ``control``; ebv and vsini planted but hidden) -> ``ingest`` -> ``train`` (preset
``lowres`` defaults, a step budget so that the result does not depend on the machine's
load) -> ``encode`` -> ``analyze``. Then one table over the seeds: both counts of
informative dims, each labelled factor's best latent and r_I, whether the control is
significant for any latent after the correction for the number of latents, and MIG,
next to the PCA baseline, the labels predicted from all latents together, and the supervised
ceiling.

    python benchmarks/planted_factors.py OUT --seeds 1 2 3 --n 3000 --max-steps 6000

``--simulation FILE``: other simulator settings (a YAML of ``simulate spectra``'s options,
e.g. ``rv: [-60, 60]``); ``--spectra-per-star K``: K spectra of each star (default 1.25:
0.8 n stars); ``--train-config FILE``: training options over the preset's (a YAML as
``train --config`` reads, e.g. ``loss: {line_weight: 50}``; the seed is set here). The
hidden factors (ebv, vsini) are measured too, from the simulation's ``truth.csv``: the best
single latent's r_I (KSG, one spectrum per star, as ``analyze``).

Writes ``OUT/seed<k>/...`` (resumable: a seed whose analysis exists is not redone) and
prints the table as Markdown (also saved as ``OUT/planted_factors.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

LABELLED = ("teff", "logg", "feh", "rv")
#: planted factors the labels do not give, measured against truth.csv
HIDDEN = ("ebv", "vsini")
#: factors the simulation plants with a signal worth coding (docs/training-calibration.md:
#: teff, ebv, rv, [Fe/H], log g); vsini and airmass are planted but below any useful weight
PLANTED = 5


def _cli() -> str:
    return str(Path(sys.executable).with_name("astrolatent"))


def _run(args: list[str], log) -> None:
    log.write(f"$ {' '.join(args)}\n")
    log.flush()
    subprocess.run(args, check=True, stdout=log, stderr=subprocess.STDOUT)


def run_seed(
    out: Path,
    seed: int,
    *,
    n: int,
    max_steps: int,
    simulation: Path | None = None,
    per_star: float = 1.25,
    train_config: Path | None = None,
) -> dict:
    """Run the chain for one seed (skipping what is done) and return its timings."""
    al = _cli()
    spectra, store, run = out / "spectra", out / "store", out / "run"
    out.mkdir(parents=True, exist_ok=True)
    options = (yaml.safe_load(train_config.read_text()) or {}) if train_config else {}
    if not isinstance(options, dict) or not isinstance(options.get("trainer", {}), dict):
        raise SystemExit(f"{train_config}: expected a YAML mapping of training options")
    options.setdefault("trainer", {})["seed"] = seed
    (out / "seed.yaml").write_text(yaml.safe_dump(options))
    times: dict[str, float] = {}
    steps = [
        (
            "simulate",
            spectra / "labels.csv",
            [
                al,
                "simulate",
                "spectra",
                str(spectra),
                "--n",
                str(n),
                "--n-objects",
                str(int(n / per_star)),
                "--seed",
                str(seed),
                *(["--config", str(simulation)] if simulation else []),
            ],
        ),
        (
            "ingest",
            store / "metadata.parquet",
            [
                al,
                "ingest",
                str(spectra),
                "--store",
                str(store),
                "--labels",
                str(spectra / "labels.csv"),
                "--id-column",
                "id",
                "--workers",
                "1",
            ],
        ),
        (
            "train",
            run / "train_summary.json",
            [
                al,
                "train",
                str(store),
                "--run",
                str(run),
                "--preset",
                "lowres",
                "--max-steps",
                str(max_steps),
                "--max-minutes",
                "60",
                "--config",
                str(out / "seed.yaml"),
            ],
        ),
        ("encode", run / "latents.parquet", [al, "encode", str(run)]),
        ("analyze", run / "analysis" / "summary.json", [al, "analyze", str(run)]),
    ]
    with open(out / "log.txt", "a") as log:
        for name, done, args in steps:
            if done.exists():
                continue
            start = time.perf_counter()
            _run(args, log)
            times[name] = time.perf_counter() - start
    return times


def seed_row(out: Path) -> dict:
    summary = json.loads((out / "run" / "analysis" / "summary.json").read_text())
    train = json.loads((out / "run" / "train_summary.json").read_text())
    inf = summary["informative"]
    row = {
        "dispersion": len(inf["dispersion"]["dims"]),
        "kl": len(inf["kl"]["dims"]),
        "agreed": len(inf["agreed"]),
        "train_s": train["wall_seconds"],
        "steps": train["steps"],
        "mig": summary.get("disentanglement", {}).get("mig", float("nan")),
        "mig_pca": summary.get("baseline_pca", {})
        .get("disentanglement", {})
        .get("mig", float("nan")),
        "control_significant": summary["labels"]["control"]["significant_dims"],
    }
    row.update(hidden_r_info(out))
    for label in LABELLED:
        block = summary["labels"][label]
        row[label] = (block["best_dim"], block["r_info"], block["mi_err"])
        row[f"{label}_pca"] = summary["baseline_pca"]["labels"][label]["r_info"]
        for ref in ("all_latents", "ceiling"):
            row[f"{label}_{ref}"] = summary.get(ref, {}).get(label, {}).get("r", float("nan"))
    return row


def hidden_r_info(out: Path) -> dict[str, tuple[int, float]]:
    """The best single latent (mean) and its r_I for each hidden factor, one spectrum per star."""
    from astrolatent.analysis.mi.columns import mi_columns

    lat = pd.read_parquet(out / "run" / "latents.parquet")
    truth = pd.read_csv(out / "spectra" / "truth.csv", dtype={"id": str})
    one = lat.drop_duplicates("object").merge(truth[["id", *HIDDEN]], on="id", validate="1:1")
    mu = one[sorted((c for c in lat if c.startswith("mu_")), key=lambda c: int(c[3:]))]
    result = {}
    for name in HIDDEN:
        r_info = mi_columns(
            mu.to_numpy(float),
            one[name].to_numpy(float),
            n_bootstrap=0,
            n_permutations=0,
            random_state=0,
        ).r_info
        best = int(np.argmax(r_info))
        result[name] = (best, float(r_info[best]))
    return result


def table(rows: dict[int, dict]) -> str:
    head = (
        "| seed | informative (dispersion / KL / agreed) | "
        + " | ".join(f"{lab} best dim: r_I (PCA; all latents r; ceiling r)" for lab in LABELLED)
        + " | "
        + " | ".join(f"{lab} best dim: r_I" for lab in HIDDEN)
        + " | control significant in | MIG (PCA) | train |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for seed, r in rows.items():
        cells = [
            f"{seed}",
            f"{r['dispersion']} / {r['kl']} / {r['agreed']}",
            *(
                f"{r[lab][0]}: {r[lab][1]:.2f} ({r[f'{lab}_pca']:.2f}; "
                f"{r[f'{lab}_all_latents']:.2f}; {r[f'{lab}_ceiling']:.2f})"
                for lab in LABELLED
            ),
            *(f"{r[lab][0]}: {r[lab][1]:.2f}" for lab in HIDDEN),
            ", ".join(map(str, r["control_significant"])) or "none",
            f"{r['mig']:.3f} ({r['mig_pca']:.3f})",
            f"{r['steps']} steps, {r['train_s']:.0f} s",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"(planted factors with a codable signal: {PLANTED}; counts within +-1 pass)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--max-steps", type=int, default=6000)
    parser.add_argument("--simulation", type=Path, help="simulator settings (YAML)")
    parser.add_argument("--spectra-per-star", type=float, default=1.25)
    parser.add_argument("--train-config", type=Path, help="training options (YAML)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = {}
    for seed in args.seeds:
        times = run_seed(
            args.out / f"seed{seed}",
            seed,
            n=args.n,
            max_steps=args.max_steps,
            simulation=args.simulation,
            per_star=args.spectra_per_star,
            train_config=args.train_config,
        )
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()), flush=True)
        rows[seed] = seed_row(args.out / f"seed{seed}")
    text = table(rows)
    (args.out / "planted_factors.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
