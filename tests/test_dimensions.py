"""Informative latent dimensions with planted structure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from astrolatent.analysis.dimensions import (
    count_informative,
    dispersion,
    group_separation,
    kl_rate,
    redundancy,
    two_group_cut,
)
from astrolatent.errors import ConfigError

INFORMATIVE = [2, 5, 11, 19]


def planted_latents(
    n: int = 2000, n_dims: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Four informative dims (spread 0.05-1, small posterior variance); the rest collapsed to the prior."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 0.005, (n, n_dims))
    logvar = rng.normal(0.0, 0.01, (n, n_dims))
    mu[:, INFORMATIVE] = rng.standard_normal((n, len(INFORMATIVE))) * np.array(
        [1.0, 0.6, 0.15, 0.05]
    )
    logvar[:, INFORMATIVE] = rng.normal(-4.0, 0.3, (n, len(INFORMATIVE)))
    return mu, logvar


@pytest.mark.parametrize("method", ["mad", "meanad"])
@pytest.mark.parametrize("split", ["threshold", "groups"])
def test_both_methods_find_the_planted_dims(method, split):
    mu, logvar = planted_latents()
    if method == "meanad":  # the earlier variant's threshold 0.2 needs spreads above it
        mu[:, INFORMATIVE] *= 6
    result = count_informative(mu, logvar, method=method, split=split)
    assert result.dispersion.dims == INFORMATIVE
    assert result.kl.dims == INFORMATIVE
    assert result.agreed == INFORMATIVE
    if split == "threshold":
        assert result.dispersion.threshold == {"mad": 0.02, "meanad": 0.2}[method]
        assert result.kl.threshold == 0.01
    else:  # the group cut lies between the collapsed floor and the weakest informative dim
        scores = result.dispersion.scores
        assert (
            np.delete(scores, INFORMATIVE).max()
            < result.dispersion.threshold
            < scores[INFORMATIVE].min()
        )


def test_scores_and_dict_shape():
    mu, logvar = planted_latents()
    result = count_informative(mu, logvar)
    np.testing.assert_allclose(
        result.dispersion.scores[INFORMATIVE[0]], 0.6745, rtol=0.05
    )  # MAD of N(0, 1)
    collapsed = np.delete(result.dispersion.scores, INFORMATIVE)
    np.testing.assert_allclose(collapsed, 0.005 * 0.6745, rtol=0.1)
    # KL(N(mu, s^2) || N(0,1)) averaged: 0.5 (E mu^2 + E s^2 - E ln s^2 - 1)
    expected = 0.5 * (1.0 + np.exp(-4.0 + 0.045) + 4.0 - 1.0)
    assert result.kl.scores[INFORMATIVE[0]] == pytest.approx(expected, rel=0.05)
    payload = result.to_dict()
    assert set(payload) == {"dispersion", "kl", "agreed"}
    assert set(payload["dispersion"]) == {"dims", "scores", "threshold", "split", "separation"}
    assert len(payload["kl"]["scores"]) == mu.shape[1]
    json.dumps(payload, allow_nan=False)


def test_methods_can_disagree():
    mu, logvar = planted_latents()
    logvar[:, 0] = -3.0  # a dim whose posterior is narrow but whose mean never moves
    result = count_informative(mu, logvar)
    assert 0 in result.kl.dims and 0 not in result.dispersion.dims
    assert result.agreed == INFORMATIVE


def test_group_split_edge_cases():
    assert two_group_cut(np.full(10, 0.5)) is None  # all alike: no two groups
    assert two_group_cut([0.5]) is None
    assert two_group_cut([0.001, 0.0011, 0.5, 0.6]) == pytest.approx(np.sqrt(0.0011 * 0.5))
    assert two_group_cut([0.0, 0.0, 0.3]) == pytest.approx(
        np.sqrt(1e-12 * 0.3)
    )  # zero scores are floored
    # no two groups: fall back to the fixed threshold, all dims on one side
    rng = np.random.default_rng(1)
    mu = rng.standard_normal((500, 6))
    everything = count_informative(mu, np.full_like(mu, -2.0), split="groups")
    assert everything.dispersion.dims == list(range(6)) and everything.dispersion.threshold == 0.02
    assert everything.dispersion.split == "threshold"
    nothing = count_informative(0.001 * mu, np.zeros_like(mu), split="groups")
    assert nothing.dispersion.dims == [] and nothing.kl.dims == []


def test_groups_find_the_factors_when_collapsed_dims_keep_a_jitter():
    """A weak KL weight leaves the unused dims with a jitter (MAD ~0.1, rate ~0.1 nats) above
    both fixed thresholds, and no single large gap; the two groups are still far apart."""
    rng = np.random.default_rng(3)
    n, d, used = 3000, 16, [1, 4, 7, 9, 13]
    mu = rng.normal(0.0, 1.0, (n, d)) * rng.uniform(0.07, 0.2, d)
    logvar = rng.normal(-0.2, 0.05, (n, d))
    mu[:, used] = rng.standard_normal((n, len(used))) * np.array([0.9, 0.7, 0.6, 0.5, 0.35])
    logvar[:, used] = rng.normal(-3.0, 0.5, (n, len(used)))
    fixed = count_informative(mu, logvar, split="threshold")
    assert len(fixed.dispersion.dims) == d and len(fixed.kl.dims) == d
    groups = count_informative(mu, logvar, split="groups")
    assert groups.dispersion.dims == used and groups.kl.dims == used
    assert groups.dispersion.split == groups.kl.split == "groups"
    assert groups.dispersion.separation > 0.8 and groups.kl.separation > 0.8


def test_a_smooth_spread_is_cut_but_flagged(caplog):
    """Scores spread evenly in log have no groups: Otsu's cut still falls in the middle, and
    the separation is the even-spread value, 3/4 (the between-group share of a uniform
    variable's variance when it is split at its median), which triggers the warning."""
    scores = np.logspace(-1, 0, 16)
    assert two_group_cut(scores) == pytest.approx(np.sqrt(scores[7] * scores[8]))
    assert group_separation(scores) == pytest.approx(0.75, abs=0.01)
    assert group_separation([0.001, 0.0011, 0.5, 0.6]) > 0.99
    assert group_separation([0.5]) is None and group_separation(np.full(4, 0.5)) is None
    rng = np.random.default_rng(2)
    mu = rng.standard_normal((2000, 16)) * scores
    result = count_informative(mu, np.full_like(mu, -3.0), split="groups")
    assert result.dispersion.split == "groups" and result.dispersion.separation < 0.8
    assert "spread smoothly" in caplog.text


def test_validation():
    mu, logvar = planted_latents(n=100)
    with pytest.raises(ConfigError, match="method='iqr'"):
        count_informative(mu, logvar, method="iqr")
    with pytest.raises(ConfigError, match="split='otsu'"):
        count_informative(mu, logvar, split="otsu")
    with pytest.raises(ConfigError, match="logvar has shape"):
        kl_rate(mu, logvar[:, :2])
    with pytest.raises(ConfigError, match="meanad"):
        dispersion(mu, method="std")
    with pytest.raises(ConfigError, match="min_ratio"):
        two_group_cut([1.0, 2.0], min_ratio=1.0)


def test_redundant_copy_shows_high_pairwise_mi():
    mu, _ = planted_latents()
    rng = np.random.default_rng(2)
    mu[:, 7] = mu[:, 2] + 0.05 * rng.standard_normal(mu.shape[0])  # a near copy of dim 2
    independent = redundancy(mu, INFORMATIVE, random_state=0)
    assert np.nanmax(np.abs(independent.pairwise_mi)) < 0.05
    assert abs(independent.total_correlation) < 0.1
    assert np.all(np.isnan(np.diag(independent.pairwise_mi)))

    copied = redundancy(mu, [*INFORMATIVE, 7], random_state=0)
    assert copied.pairwise_mi[0, 4] > 2.0 and copied.pairwise_mi[4, 0] == copied.pairwise_mi[0, 4]
    assert copied.total_correlation > 1.0
    json.dumps(copied.to_dict(), allow_nan=False)
    with pytest.raises(ConfigError, match="fewer than 2"):
        redundancy(mu, [2])
    with pytest.raises(ConfigError, match="outside"):
        redundancy(mu, [2, 99])
