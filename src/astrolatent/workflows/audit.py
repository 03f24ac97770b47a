"""The audit of a run with known labels: what its free latents hold beyond the labels.

A run trained with ``--known-labels`` ties latent ``k`` to its ``k``-th known label; the
other latents are free. :func:`audit` gives the ``known`` and ``free`` blocks of
``summary.json`` (issue 16's contract):

- ``known``: for every known label, its tied dim and that dim's MI with the label (on the
  spectra that have the label);
- ``free.dims``: the informative free dims, counted over the free dims alone, without the
  dims held at the KL floor. Free bits let a dim keep ``floor`` nats of KL for nothing, and
  a dim can spend it on a posterior narrower than the prior while its mean barely moves,
  which carries no information; so a free dim is held at the floor when the information
  it can pass on, ``0.5 log(1 + Var(mu) / E[sigma^2])`` nats
  (:func:`~astrolatent.analysis.dimensions.channel_information`),
  is at most ``FLOOR_MARGIN`` x the floor;
- ``free.labels``: for every analysed label that is not known, the best free dim (MI
  corrected for testing every free dim), its conditional MI given the tied latents and a
  local-permutation p-value for it (Bonferroni-corrected over the free dims), beside
  ``p_floor``, the smallest p-value the permutations can give;
- ``free.leakage``: for every known label, the largest MI of a free latent with it (its
  p-value corrected over the free dims) and the cross-validated R^2 of a regressor from all
  free latents to it. These are measured on the latent variables, one draw of
  ``z = mu + sigma * eps`` per spectrum, because the question is what the free latents
  HOLD: a free dim whose mean follows a label over a few per cent of its posterior width
  passes on almost nothing of it (it holds at most its KL rate, I(z; y) <= I(z; x)), while
  KSG, blind to scale, finds the mean's full dependence. ``max_mi_means`` / ``dim_means`` /
  ``r2_means`` give the same measures on the posterior means beside them.
"""

from __future__ import annotations

import numpy as np

from astrolatent.analysis.baseline import cross_validated_r2
from astrolatent.analysis.dimensions import channel_information, count_informative
from astrolatent.analysis.mi import mutual_information
from astrolatent.outputs.summaries import analysed_dims
from astrolatent.workflows.analyze import AnalyzeConfig, LabelRows, label_block

#: a free dim that can pass on at most this many times the KL floor is "held at the floor"
FLOOR_MARGIN = 1.5
#: the latent draws get their own random stream, not one the analysis seeds alike
_DRAW_STREAM = 16


def latent_roles(n_latent: int, known: dict[str, int]) -> list[dict]:
    """``[{"dim", "role": "tied"|"free", "label": name|None}]`` for every dim."""
    label_of = {dim: name for name, dim in known.items()}
    return [
        {"dim": d, "role": "tied" if d in label_of else "free", "label": label_of.get(d)}
        for d in range(n_latent)
    ]


def informative_free_dims(
    mu: np.ndarray, logvar: np.ndarray, free: list[int], kl_floor: float, config: AnalyzeConfig
) -> list[int]:
    """The informative free dims (indices into all dims): counted on the free dims alone,
    dims held at the KL floor left out (see the module docstring)."""
    if not free:
        return []
    dims = count_informative(
        mu[:, free], logvar[:, free], threshold=config.dispersion_threshold, split=config.split
    )
    passed = channel_information(mu[:, free], logvar[:, free])
    return [
        free[j]
        for j in analysed_dims(dims.to_dict())
        if kl_floor <= 0 or passed[j] > FLOOR_MARGIN * kl_floor
    ]


def latent_draw(mu: np.ndarray, logvar: np.ndarray, seed: int) -> np.ndarray:
    """One seeded draw of the latent variables ``mu + exp(logvar / 2) * eps`` (n, D)."""
    eps = np.random.default_rng([seed, _DRAW_STREAM]).standard_normal(mu.shape)
    return mu + np.exp(0.5 * logvar) * eps


def audit(
    mu: np.ndarray,
    logvar: np.ndarray,
    known: dict[str, int],
    kl_floor: float,
    rows: dict[str, LabelRows],
    block: dict,
    config: AnalyzeConfig,
    rng: np.random.Generator,
) -> dict:
    """The ``known`` and ``free`` blocks for latents ``mu``/``logvar`` (n, D).

    known: label -> tied dim; rows: every analysed label's rows (known labels included);
    block: the ``labels`` block of these rows over all dims.
    """
    d = mu.shape[1]
    tied = sorted(known.values())
    free = [j for j in range(d) if j not in known.values()]
    out: dict = {"known": {}, "free": {"dims": [], "labels": {}, "leakage": {}}}
    for name, dim in known.items():
        if name in block:
            p = block[name]["per_dim"][dim]
            out["known"][name] = {
                "dim": dim,
                "r_info": p["r_info"],
                "mi": p["mi"],
                "mi_err": p["mi_err"],
                "n": block[name]["n"],
            }
    out["free"]["dims"] = informative_free_dims(mu, logvar, free, kl_floor, config)
    if not free:
        return out
    free_block, _ = label_block(mu[:, free], rows, config, rng)
    z = latent_draw(mu[:, free], logvar[:, free], config.random_state)
    known_rows = {name: lab for name, lab in rows.items() if name in known}
    drawn_block, _ = label_block(z, known_rows, config, rng)
    for name, b in free_block.items():
        best = free[b["best_dim"]]
        if name in known:
            lab, drawn = rows[name], drawn_block[name]
            out["free"]["leakage"][name] = {
                "max_mi": drawn["mi"],
                "p_value": drawn["p_value_fwer"],
                "dim": free[drawn["best_dim"]],
                "r2": cross_validated_r2(z[lab.rows], lab.values, random_state=config.random_state),
                "max_mi_means": b["mi"],
                "dim_means": best,
                "r2_means": cross_validated_r2(
                    mu[lab.rows][:, free], lab.values, random_state=config.random_state
                ),
                "n": b["n"],
            }
            continue
        out["free"]["labels"][name] = {
            "best_dim": best,
            "r_info": b["r_info"],
            "mi": b["mi"],
            "p_value_fwer": b["p_value_fwer"],
            **_conditional(mu, best, tied, rows[name], len(free), config, rng),
        }
    return out


def _conditional(
    mu: np.ndarray,
    dim: int,
    tied: list[int],
    lab: LabelRows,
    n_tests: int,
    config: AnalyzeConfig,
    rng: np.random.Generator,
) -> dict:
    """``cmi_given_known`` (nats) of a label and free dim ``dim`` given the tied latents, its
    error, its local-permutation p-value times ``n_tests`` (capped at 1) and ``p_floor``,
    the smallest p-value that many permutations can give: a p at its floor says only that
    no permutation reached the observed value."""
    x = mu[lab.rows, dim]
    result = mutual_information(
        x,
        lab.values,
        estimator="ksg"
        if config.estimator == "hist"
        else config.estimator,  # hist cannot condition
        n_neighbors=config.n_neighbors,
        n_bootstrap=config.n_bootstrap,
        n_permutations=config.n_permutations,
        random_state=int(rng.integers(2**32)),
        conditional=mu[lab.rows][:, tied] if tied else None,
    )
    p = result.p_value
    return {
        "cmi_given_known": result.mi,
        "cmi_err": result.mi_err,
        "p_value": None if not np.isfinite(p) else min(1.0, p * n_tests),
        "p_floor": p_floor(config.n_permutations, n_tests),
    }


def p_floor(n_permutations: int, n_tests: int) -> float | None:
    """The smallest corrected p-value of a permutation test: ``n_tests / (1 + n_permutations)``
    (capped at 1; None without permutations)."""
    return min(1.0, n_tests / (1 + n_permutations)) if n_permutations else None
