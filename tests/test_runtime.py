"""The shared training runtime: configuration sections, checkpoints, trainer and stop reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from astrolatent.errors import ConfigError, RunError
from astrolatent.galaxies.config import EstimatorConfig
from astrolatent.models.vae import ArchitectureConfig
from astrolatent.runtime import config as runtime_config
from astrolatent.training.config import TrainConfig, make_config

HERE = Path(__file__).parent
BEFORE = yaml.safe_load((HERE / "configs" / "before_runtime.yaml").read_text())
LENGTHS = {"lowres": 6251, "gaia-xp": 343, "harps-full": 327_680, "harps-published": 327_680}


def _same_values(expected: dict, got: dict, where: str = "") -> None:
    """Every key of ``expected`` is in ``got`` with the same value (others may add keys to
    sections they own, e.g. the architecture)."""
    for key, value in expected.items():
        assert key in got, f"{where}{key} is missing"
        if isinstance(value, dict):
            _same_values(value, got[key], f"{where}{key}.")
        else:
            assert got[key] == value, f"{where}{key}: {got[key]!r} != {value!r}"


@pytest.mark.parametrize("preset", sorted(LENGTHS))
@pytest.mark.parametrize("steps", [None, 300])
def test_spectrum_presets_resolve_as_before(preset, steps):
    section = "spectrum_presets" if steps is None else "spectrum_presets_300_steps"
    got = make_config(LENGTHS[preset], preset=preset, max_steps=steps).to_dict()
    _same_values(BEFORE[section][preset], got)


def test_class_defaults_of_both_kinds_are_as_before():
    arch = ArchitectureConfig.for_length(6251)
    spectrum = TrainConfig(preset="lowres", architecture=arch).to_dict()
    _same_values(BEFORE["spectrum_class_defaults"], spectrum)
    data = {"table": "catalog.parquet", "target": "logmass", "inputs": ["optical", "ebv"]}
    galaxy = EstimatorConfig(data=data).to_dict()
    _same_values(BEFORE["galaxy_class_defaults"], galaxy)
    # the sections the two kinds share keep each kind's own keys, no more
    for kind, cfg in (("spectrum", spectrum), ("galaxy", galaxy)):
        for section in ("optim", "trainer"):
            assert set(cfg[section]) == set(BEFORE[f"{kind}_class_defaults"][section]), kind


def test_config_files_written_before_load_with_the_same_values(tmp_path):
    # a spectrum run's config.yaml from the reference outputs (written before this change)
    path = HERE / "reference" / "run" / "config.yaml"
    _same_values(yaml.safe_load(path.read_text()), TrainConfig.load(path).to_dict())
    # a galaxy run's config.yaml as the earlier code wrote it
    old = tmp_path / "config.yaml"
    old.write_text(yaml.safe_dump(BEFORE["galaxy_class_defaults"], sort_keys=False))
    _same_values(BEFORE["galaxy_class_defaults"], EstimatorConfig.load(old).to_dict())


def test_shared_bounds_hold_in_both_kinds():
    data = {"table": "t.csv", "target": "y", "inputs": ["a"]}
    with pytest.raises(ConfigError, match="max_minutes"):
        EstimatorConfig(data=data, trainer={"max_minutes": 0})
    with pytest.raises(ConfigError, match="early_stopping_patience"):
        TrainConfig(
            preset="lowres",
            architecture=ArchitectureConfig.for_length(6251),
            trainer={"early_stopping_patience": 0},
        )
    with pytest.raises(ConfigError, match="batch_size"):
        EstimatorConfig(data=data, optim={"batch_size": 1})  # galaxies need pairs
    assert runtime_config.OptimConfig(batch_size=1).batch_size == 1


def test_checkpoint_format_version_and_rebuild_command(tmp_path):
    from astrolatent.runtime.checkpoint import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "m.pt", format_version=3, step=7)
    assert load_checkpoint(path, format_version=3, rebuild="x")["step"] == 7
    with pytest.raises(RunError, match=r"checkpoint format 3, this astrolatent reads 4; retrain"):
        load_checkpoint(path, format_version=4, rebuild="retrain")
    with pytest.raises(RunError, match="not found; retrain"):
        load_checkpoint(tmp_path / "none.pt", format_version=3, rebuild="retrain")
