"""Benchmark: speed of ksg_mi_columns against scikit-learn, and accuracy of every MI estimator.

Speed: n samples x d latent columns against one label, synthetic with a known MI per
column, at each of --sizes (default 270,000 x 128, the size of the HARPS study, and
60,000 x 16). Our ``ksg_mi_columns`` runs on all columns with threads on every core;
scikit-learn's ``mutual_info_regression`` (same k = 3) runs serially (n_jobs=1, which is
also its default n_jobs=None) and with n_jobs=-1 (processes on every core). Both are warmed
up outside the timing (our compiled kernels, scikit-learn's worker processes). When
scikit-learn would not finish within --sklearn-budget seconds it runs on the first columns
only and its time is extrapolated linearly to all d columns (the cost is the same for every
column); the output says so. The values are compared column by column (ours clipped at 0
as scikit-learn clips): exact KSG on both sides, so they differ only through the 1e-10
tie-breaking jitter.

Accuracy: mean absolute error against analytic truth over ground-truth tasks (correlated
Gaussians, monotone transforms of them, independent pairs) at --accuracy-n samples, for
our KSG, GMM and histogram estimators and for scikit-learn.

    nice python benchmarks/mi.py                          # both sizes (several minutes)
    python benchmarks/mi.py --sizes 60000x16 --skip-accuracy   # the small size only
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.feature_selection import mutual_info_regression

from astrolatent.analysis.mi import GMMEstimator, HistogramEstimator, KSGEstimator, ksg_mi_columns


def gaussian_mi(rho: np.ndarray | float) -> np.ndarray | float:
    return -0.5 * np.log(1 - np.asarray(rho) ** 2)


def synthetic_latents(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X (n, d), y (n,), true MI (d,): column j is rho_j y + noise, every third one exp-transformed."""
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(n)
    rho = np.linspace(0.0, 0.95, d)
    X = np.empty((n, d))
    for j in range(d):
        X[:, j] = rho[j] * y + np.sqrt(1 - rho[j] ** 2) * rng.standard_normal(n)
        if j % 3 == 2:
            X[:, j] = np.exp(X[:, j])
    return X, y, gaussian_mi(rho)


def time_sklearn(
    X: np.ndarray, y: np.ndarray, *, n_jobs: int | None, budget: float
) -> tuple[np.ndarray, float, int]:
    """Values on the columns run, time extrapolated to all columns, number of columns run."""
    d = X.shape[1]
    # warm-up: start joblib's worker processes outside the timing
    mutual_info_regression(X[:200, :2], y[:200], n_neighbors=3, random_state=0, n_jobs=n_jobs)
    start = time.perf_counter()
    first = mutual_info_regression(X[:, :2], y, n_neighbors=3, random_state=0, n_jobs=n_jobs)
    per_column = (time.perf_counter() - start) / 2
    m = int(min(d, max(2, budget // per_column)))
    values = [first]
    if m > 2:
        start = time.perf_counter()
        values.append(
            mutual_info_regression(X[:, 2:m], y, n_neighbors=3, random_state=0, n_jobs=n_jobs)
        )
        per_column = (per_column * 2 + time.perf_counter() - start) / m
    return np.concatenate(values), per_column * d, m


def speed(n: int, d: int, budget: float, seed: int) -> tuple[float, float, float]:
    """Print the timings; return the ratios against n_jobs=1 and n_jobs=-1, and the max |diff|."""
    X, y, truth = synthetic_latents(n, d, seed)
    print(
        f"== speed: {n:,} samples x {d} latent columns x 1 label, k = 3, {os.cpu_count()} CPU cores =="
    )
    ksg_mi_columns(X[:1000, :2], y[:1000])  # warm-up: compile the kernels outside the timing
    start = time.perf_counter()
    ours = ksg_mi_columns(X, y, n_neighbors=3, random_state=0)
    t_ours = time.perf_counter() - start
    print(
        f"astrolatent ksg_mi_columns (threads over columns, all cores): {t_ours:8.2f} s for all {d} columns"
    )
    print(f"  mean |MI - truth| over columns: {np.mean(np.abs(ours - truth)):.4f} nats")
    ratios, diffs = [], []
    for n_jobs, label in ((1, "n_jobs=1 (= default n_jobs=None)"), (-1, "n_jobs=-1")):
        values, t_sk, m = time_sklearn(X, y, n_jobs=n_jobs, budget=budget)
        note = "" if m == d else f"  [EXTRAPOLATED linearly from {m} of {d} columns]"
        print(f"scikit-learn mutual_info_regression {label}: {t_sk:8.2f} s for {d} columns{note}")
        print(f"  speed ratio sklearn / ours: {t_sk / t_ours:6.1f}x")
        diffs.append(np.max(np.abs(np.maximum(ours[:m], 0) - values)))
        print(
            f"  max |ours (clipped at 0 as sklearn) - sklearn| over {m} columns: {diffs[-1]:.2e} nats"
        )
        ratios.append(t_sk / t_ours)
    return ratios[0], ratios[1], max(diffs)


def size(text: str) -> tuple[int, int]:
    """'270000x128' -> (270000, 128)."""
    try:
        n, d = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size {text!r} must be SAMPLESxCOLUMNS, e.g. 60000x16"
        ) from None
    return n, d


def accuracy_tasks(n: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    tasks = []
    for rho in (0.0, 0.3, 0.6, 0.9):
        x = rng.standard_normal(n)
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
        tasks.append((f"gaussian rho={rho}", x, y, float(gaussian_mi(rho))))
    for rho, fx, fy, name in (
        (0.6, np.exp, None, "exp(x), y"),
        (0.6, None, np.cbrt, "x, cbrt(y)"),
        (0.9, np.exp, np.cbrt, "exp(x), cbrt(y)"),
    ):
        x = rng.standard_normal(n)
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
        tasks.append(
            (f"{name} rho={rho}", fx(x) if fx else x, fy(y) if fy else y, float(gaussian_mi(rho)))
        )
    tasks.append(
        ("independent exp(x), uniform", np.exp(rng.standard_normal(n)), rng.uniform(size=n), 0.0)
    )
    return tasks


def accuracy(n: int, repeats: int, seed: int) -> None:
    estimators = {
        "ksg (k=3)": KSGEstimator(random_state=0).estimate,
        "gmm (BIC)": GMMEstimator(random_state=0).estimate,
        "hist 10 bins": HistogramEstimator(bins=10).estimate,
        "hist 20 bins": HistogramEstimator(bins=20).estimate,
        "sklearn (k=3)": lambda x, y: mutual_info_regression(
            x[:, None], y, n_neighbors=3, random_state=0
        )[0],
    }
    data_sets = [accuracy_tasks(n, seed + r) for r in range(repeats)]
    # signed errors, shape (repeats, tasks), per estimator
    errors = {
        name: np.array(
            [[estimate(x, y) - truth for _, x, y, truth in tasks] for tasks in data_sets]
        )
        for name, estimate in estimators.items()
    }
    print(
        f"\n== accuracy: n = {n:,}, {repeats} data sets per task; mean signed error (nats) per task =="
    )
    print(f"{'task':32s} {'truth':>7s} " + " ".join(f"{name:>13s}" for name in estimators))
    for t, (task, _, _, truth) in enumerate(data_sets[0]):
        row = " ".join(f"{np.mean(errors[name][:, t]):+13.4f}" for name in estimators)
        print(f"{task:32s} {truth:7.4f} {row}")
    mae = " ".join(f"{np.mean(np.abs(errors[name])):13.4f}" for name in estimators)
    print(f"{'MEAN ABSOLUTE ERROR':32s} {'':7s} {mae}")
    print("(scikit-learn clips negative estimates at 0; ours are unclipped, which costs a little")
    print(" on the independent tasks, where unclipped KSG scatters symmetrically around 0)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=size,
        nargs="+",
        default=[(270_000, 128), (60_000, 16)],
        help="speed-test sizes, SAMPLESxCOLUMNS (default: 270000x128 60000x16)",
    )
    parser.add_argument(
        "--sklearn-budget",
        type=float,
        default=150.0,
        help="seconds per scikit-learn timing before extrapolating",
    )
    parser.add_argument("--accuracy-n", type=int, default=5000, help="samples per accuracy task")
    parser.add_argument("--repeats", type=int, default=3, help="data sets per accuracy task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        summary = [(n, d, *speed(n, d, args.sklearn_budget, args.seed)) for n, d in args.sizes]
        print("\n== KSG speed summary (sklearn time / ours; same cores) ==")
        for n, d, serial, parallel, diff in summary:
            print(
                f"{n:>9,} x {d:<4d} vs n_jobs=1: {serial:6.1f}x   vs n_jobs=-1: {parallel:6.1f}x"
                f"   max |diff| {diff:.1e} nats"
            )
    if not args.skip_accuracy:
        accuracy(args.accuracy_n, args.repeats, args.seed)


if __name__ == "__main__":
    main()
