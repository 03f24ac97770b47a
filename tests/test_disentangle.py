"""Disentanglement scores: a planted axis-aligned code against its rotated (mixed) version."""

from __future__ import annotations

import numpy as np
import pytest

from astrolatent.analysis.disentangle import disentanglement_scores
from astrolatent.errors import ConfigError


@pytest.fixture(scope="module")
def codes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 2000
    labels = rng.standard_normal((n, 3))
    # each label in its own dim (with a non-monotonic one, as the RV case), plus 3 noise dims
    latents = np.column_stack(
        [labels[:, 0], np.tanh(labels[:, 1]), labels[:, 2] ** 2 * np.sign(labels[:, 2])]
    ) + 0.1 * rng.standard_normal((n, 3))
    latents = np.column_stack([latents, rng.standard_normal((n, 3))])
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    return latents, latents @ rotation, labels


def test_disentangled_code_beats_rotated_code(codes):
    aligned, rotated, labels = codes
    good = disentanglement_scores(aligned, labels, random_state=0)
    mixed = disentanglement_scores(rotated, labels, random_state=0)
    assert set(good) == {"mig", "sap", "dci"}
    assert set(good["dci"]) == {"disentanglement", "completeness", "informativeness"}
    assert good["mig"] > 0.5 and good["mig"] > mixed["mig"] + 0.3
    assert good["sap"] > 0.8 and good["sap"] > mixed["sap"] + 0.5
    assert good["dci"]["disentanglement"] > 0.9 > mixed["dci"]["disentanglement"] + 0.3
    assert good["dci"]["completeness"] > mixed["dci"]["completeness"] + 0.3
    # both codes hold the same information, only its arrangement differs
    assert good["dci"]["informativeness"] > 0.9 and mixed["dci"]["informativeness"] > 0.7


def test_single_label_and_validation(codes):
    aligned, _, labels = codes
    one = disentanglement_scores(aligned[:500], labels[:500, 0], random_state=0)
    assert np.isnan(one["dci"]["disentanglement"]) and one["mig"] > 0.5
    with pytest.raises(ConfigError, match="at least 2"):
        disentanglement_scores(aligned[:, :1], labels)
    with pytest.raises(ConfigError, match="rows"):
        disentanglement_scores(aligned, labels[:10])
    with pytest.raises(ConfigError, match="constant"):
        disentanglement_scores(aligned, np.ones((aligned.shape[0], 1)))
