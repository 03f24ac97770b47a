"""Accuracy of every MI estimator on the bmi-style task families (analytic truth), in nats.

    PYTHONPATH=src python benchmarks/mi_families.py [--n 5000] [--seed 1] [--errors]

For each task of :data:`astrolatent.simulate.infotheory.TUNING_TASKS` (used to tune the
``auto`` estimator), :data:`HELD_OUT_TASKS` (never used to tune its first two steps; the
t-copula step was added to fix one of them) and :data:`NEW_HELD_OUT_TASKS` (added after
the whole rule was fixed, to check it) it prints the truth
and each estimator's estimate minus the truth, scikit-learn's
``mutual_info_regression`` (k = 3) where it applies (one-dimensional x), and for ``auto``
the choice it made; ``--errors`` adds auto's half-sampling error and permutation p-value
(30 and 100 replicates). A pass is |error| <= max(0.05, 10% of the truth).
"""

from __future__ import annotations

import argparse

from sklearn.feature_selection import mutual_info_regression

from astrolatent.analysis.mi import AutoEstimator, get_estimator, mutual_information
from astrolatent.simulate.infotheory import HELD_OUT_TASKS, NEW_HELD_OUT_TASKS, TUNING_TASKS

ESTIMATOR_NAMES = ("auto", "ksg", "gmm", "gaussian_copula", "t_copula", "hist")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--errors", action="store_true")
    args = parser.parse_args()
    header = ["task", "set", "truth", *ESTIMATOR_NAMES, "sklearn", "auto uses", "auto ok"]
    if args.errors:
        header += ["auto err", "auto p"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    sets = (("tune", TUNING_TASKS), ("held out", HELD_OUT_TASKS), ("new", NEW_HELD_OUT_TASKS))
    for label, tasks in sets:
        for task in tasks:
            x, y = task.sample(args.n, args.seed)
            cells = [task.name, label, f"{task.mi:.3f}"]
            auto = AutoEstimator(random_state=0)
            for name in ESTIMATOR_NAMES:
                est = auto if name == "auto" else get_estimator(name, random_state=0)
                one_d = x.shape[1] == 1 and y.shape[1] == 1
                if name == "hist" and not one_d:
                    cells.append("-")
                    continue
                cells.append(f"{est.estimate(x, y) - task.mi:+.3f}")
            if x.shape[1] == 1 and y.shape[1] == 1:
                sk = mutual_info_regression(x, y[:, 0], n_neighbors=3, random_state=0)[0]
                cells.append(f"{sk - task.mi:+.3f}")
            else:
                cells.append("-")
            ok = abs(float(cells[3])) <= max(0.05, 0.1 * task.mi)
            cells += [auto.choice_, "yes" if ok else "**no**"]
            if args.errors:
                r = mutual_information(x, y, estimator="auto", random_state=0)
                cells += [f"{r.mi_err:.3f}", f"{r.p_value:.3g}"]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
