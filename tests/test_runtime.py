"""The shared training runtime: configuration sections, checkpoints, trainer and stop reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from astrolatent.errors import ConfigError, RunError
from astrolatent.galaxies.config import EstimatorConfig
from astrolatent.models.vae import ArchitectureConfig
from astrolatent.runtime import config as runtime_config
from astrolatent.training.config import CONFIG_FORMAT_VERSION, TrainConfig, make_config

HERE = Path(__file__).parent
BEFORE = yaml.safe_load((HERE / "configs" / "before_runtime.yaml").read_text())
LENGTHS = {"lowres": 6251, "gaia-xp": 343, "harps-full": 327_680, "harps-published": 327_680}


def _same_values(expected: dict, got: dict, where: str = "") -> None:
    """Every key of ``expected`` is in ``got`` with the same value (others may add keys to
    sections they own, e.g. the architecture)."""
    for key, value in expected.items():
        assert key in got, f"{where}{key} is missing"
        if not where and key == "format_version":  # 2 since the known-label loss options
            assert got[key] in (value, CONFIG_FORMAT_VERSION), got[key]
            continue
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
    # the sections the two kinds share keep each kind's own keys, no more (the spectrum's
    # learning-rate schedule came later, with the decoder options)
    added = {("spectrum", "optim"): {"schedule"}}
    for kind, cfg in (("spectrum", spectrum), ("galaxy", galaxy)):
        for section in ("optim", "trainer"):
            before = set(BEFORE[f"{kind}_class_defaults"][section])
            assert set(cfg[section]) == before | added.get((kind, section), set()), kind


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


def test_model_file_without_weights_or_with_other_weights_is_refused(tmp_path):
    from torch import nn

    from astrolatent.config import Config
    from astrolatent.runtime.checkpoint import load_model, save_checkpoint, save_model

    class Width(Config):
        n: int = 2

    def build(config, _payload):
        return nn.Linear(config.n, config.n)

    good = save_model(tmp_path / "good.pt", nn.Linear(2, 2), Width(), format_version=1)
    assert load_model(good, Width, build, format_version=1, rebuild="x")[1].n == 2
    bare = save_checkpoint(tmp_path / "bare.pt", format_version=1, step=3)
    with pytest.raises(
        RunError, match=r"bare.pt: not a model file \(no config, state_dict\); retrain"
    ):
        load_model(bare, Width, build, format_version=1, rebuild="retrain")
    other = save_model(tmp_path / "other.pt", nn.Linear(3, 3), Width(), format_version=1)
    with pytest.raises(
        RunError, match=r"other.pt: the weights do not fit its configuration .*; retrain"
    ):
        load_model(other, Width, build, format_version=1, rebuild="retrain")


# ---------------------------------------------------------------------------------------
# hardware, trainer, stop reasons
# ---------------------------------------------------------------------------------------
def test_launch_reads_the_launcher_and_refuses_missing_hardware(monkeypatch):
    import torch

    from astrolatent.runtime.trainer import launch

    for var in ("LOCAL_WORLD_SIZE", "WORLD_SIZE", "RANK", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    one = launch("cpu")
    assert (one.accelerator, one.devices, one.num_nodes, one.strategy) == ("cpu", 1, 1, "auto")
    with pytest.raises(ConfigError, match="this machine has"):
        launch("cpu", devices=100_000)
    if not torch.cuda.is_available():
        assert launch("auto").accelerator in ("cpu", "auto")  # auto without CUDA: cpu (or mps)
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            launch("gpu")
    # torchrun: 2 processes on each of 2 nodes
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    ddp = launch("cpu", devices="auto", num_nodes="auto")
    assert (ddp.devices, ddp.num_nodes, ddp.strategy) == (2, 2, "ddp")


def test_torch_settings_restore_threads_and_determinism():
    import torch

    from astrolatent.runtime.trainer import torch_settings

    threads, flag = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with torch_settings(1):
        assert torch.get_num_threads() == 1
        torch.use_deterministic_algorithms(not flag)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == flag


def _toy_fit(tmp_path, *, val_losses=None, patience=None, **options):
    """Fit a one-weight model with the shared trainer; the validation loss of epoch k is
    ``val_losses[k]`` (default: falling). Returns the trainer."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from astrolatent.runtime.trainer import early_stopping, launch, make_trainer, quiet_lightning

    class Toy(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            return ((self.w - batch[0]) ** 2).mean()

        def validation_step(self, batch, batch_idx):
            epoch = self.current_epoch
            value = val_losses[epoch] if val_losses is not None else 1.0 / (1 + epoch)
            self.log("val/loss", torch.tensor(float(value)))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    loader = DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=4)
    tc = runtime_config.TrainerConfig(accelerator="cpu", early_stopping_patience=patience)
    with quiet_lightning():
        trainer = make_trainer(
            tc, launch("cpu"), tmp_path, early_stopping(tc, "val/loss"), logger=False, **options
        )
        trainer.fit(Toy(), train_dataloaders=loader, val_dataloaders=loader)
    return trainer


def test_stop_reasons(tmp_path):
    from astrolatent.runtime.trainer import stop_reason

    assert stop_reason(_toy_fit(tmp_path, max_epochs=2)) == "max_epochs"
    assert stop_reason(_toy_fit(tmp_path, max_steps=3, max_epochs=-1)) == "max_steps"
    flat = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
    stopped = _toy_fit(tmp_path, val_losses=flat, patience=2, max_epochs=8)
    assert stop_reason(stopped) == "early_stopping" and stopped.current_epoch == 4
    nan = _toy_fit(tmp_path, val_losses=[1.0, float("nan"), 1.0], patience=5, max_epochs=3)
    assert stop_reason(nan) == "non_finite_loss"


def test_config_sections_load_without_torch():
    import subprocess
    import sys

    code = "import astrolatent.galaxies.config, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
