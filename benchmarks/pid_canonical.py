"""Canonical Gaussian PID cases against their analytic minimum-MI atoms, in nats.

    PYTHONPATH=src python benchmarks/pid_canonical.py [--n 5000] [--seed 7]

For each case of :data:`astrolatent.simulate.infotheory.PID_CASES`, plain, with monotone
transforms of the target and of every source column (``transform``), and with 3-column
sources (transformed), it prints the truth and the atoms of: ``mmi`` (the default), the
pointwise measure summarised from the same classifiers (``pointwise``, the 2025 study's
measure), ``gaussian`` (closed form on the sample covariance), and the classifier MIs'
bias I_est - I_true for I(Y;X1), I(Y;X2), I(Y;X1,X2) with the default options and with
the earlier defaults (32 uniform bins over the robust range, raw inputs: ``old bins``).
A pass is every atom within max(0.05, 15% of the truth).
"""

from __future__ import annotations

import argparse

import numpy as np

from astrolatent.analysis.pid import ATOMS, MinimumMIPID, decompose, pid_from_covariance, summarise
from astrolatent.simulate.infotheory import PID_CASES, pid_case

SETUPS = ((1, False), (1, True), (3, True))


def _fmt(values) -> str:
    return " / ".join(f"{v:+.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    header = ["case", "sources", "truth R/U1/U2/S", "mmi (default)", "ok", "pointwise",
              "gaussian", "MI bias mmi", "MI bias old bins"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    old = MinimumMIPID(binning="uniform", rank_inputs=False)
    for case in PID_CASES:
        for dim, transform in SETUPS:
            table, cov = pid_case(
                case, args.n, dim1=dim, dim2=dim, transform=transform, random_state=args.seed
            )
            a = [c for c in table.columns if c.startswith("a")]
            b = [c for c in table.columns if c.startswith("b")]
            truth_r = pid_from_covariance(cov, n_x1=1)
            truth = np.array([getattr(truth_r, x) for x in ATOMS])
            mis = np.array([truth_r.mi1, truth_r.mi2, truth_r.mi12])
            runs = {}
            for name, method in (("mmi", "mmi"), ("old", old), ("gaussian", "gaussian")):
                runs[name] = decompose(
                    table, target="y", x1=a, x2=b, method=method, n_bootstrap=0, random_state=0
                )
            got = np.array([getattr(runs["mmi"], x) for x in ATOMS])
            ok = bool(np.all(np.abs(got - truth) <= np.maximum(0.05, 0.15 * np.abs(truth))))
            point = summarise(runs["mmi"].pointwise, n_bootstrap=0).loc["all", list(ATOMS)]
            gauss = [getattr(runs["gaussian"], x) for x in ATOMS]
            bias = [np.array([r.mi1, r.mi2, r.mi12]) - mis for r in (runs["mmi"], runs["old"])]
            label = f"{dim}+{dim} col" + (", transformed" if transform else "")
            cells = [case, label, _fmt(truth), _fmt(got), "yes" if ok else "**no**",
                     _fmt(point), _fmt(gauss), _fmt(bias[0]), _fmt(bias[1])]  # fmt: skip
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
