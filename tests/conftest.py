"""Shared fixtures: tiny spectrum files written in real archive formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from astrolatent.data.ingest import IngestConfig, ingest
from astrolatent.data.readers.eso1d import write_eso1d

LOW_WAVE = 3785.0 + 0.5 * np.arange(6251)


def absorption_spectrum(
    wave: np.ndarray, *, level: float = 1000.0, rv: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A flat continuum with a few Gaussian lines, Doppler shifted by rv (km/s), with noise."""
    rng = np.random.default_rng(seed)
    flux = np.full(wave.size, level)
    for centre in (4861.3, 5175.0, 5890.0, 6562.8):
        c = centre * (1 + rv / 299_792.458)
        flux *= 1 - 0.5 * np.exp(-0.5 * ((wave - c) / 1.5) ** 2)
    err = np.sqrt(flux)
    return flux + rng.normal(0, 1, wave.size) * err, err


@pytest.fixture
def eso_folder(tmp_path: Path) -> Path:
    """Twelve good ESO 1D files of 4 objects on the low-resolution grid."""
    folder = tmp_path / "eso"
    folder.mkdir()
    for i in range(12):
        flux, err = absorption_spectrum(LOW_WAVE, level=500.0 + 50 * i, rv=10.0 * i, seed=i)
        arc = f"ADP.2020-01-01T00:{i:02d}:00.000.fits"
        write_eso1d(folder / arc, LOW_WAVE, flux, err, arcfile=arc, object_name=f"STAR{i % 4}")
    return folder


TINY_LENGTH = 128
N_SPECTRA = 96


def write_tiny_spectra(
    folder: Path, n: int = N_SPECTRA, length: int = TINY_LENGTH, seed: int = 0
) -> Path:
    """ESO 1D files of ``n`` spectra (3 per object) whose lines move with ``rv`` and deepen with
    ``depth``; writes ``labels.csv`` (id, rv, depth) beside them and returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    wave = 5000.0 + 0.5 * np.arange(length)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rv, depth = rng.uniform(-150, 150), rng.uniform(0.2, 0.8)
        flux = np.full(length, 800.0)
        for frac in (0.2, 0.45, 0.7, 0.85):
            centre = (wave[0] + frac * (wave[-1] - wave[0])) * (1 + rv / 299_792.458)
            flux *= 1 - depth * np.exp(-0.5 * ((wave - centre) / 1.2) ** 2)
        err = np.sqrt(flux)
        arc = f"ADP.2021-01-01T00:00:{i:02d}.{i:03d}.fits"
        write_eso1d(
            folder / arc,
            wave,
            flux + rng.normal(0, 1, length) * err,
            err,
            arcfile=arc,
            object_name=f"STAR-{i // 3:02d}",
        )
        rows.append({"id": arc.removesuffix(".fits"), "rv": rv, "depth": depth})
    labels = folder.parent / f"{folder.name}-labels.csv"
    pd.DataFrame(rows).to_csv(labels, index=False)
    return labels


@pytest.fixture
def one_torch_thread():
    """Torch on one thread during the test (the machine's cores are shared), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    """A store of 96 spectra of 128 px (32 objects, 3 spectra each) with labels rv, depth."""
    root = tmp_path_factory.mktemp("tiny")
    labels = write_tiny_spectra(root / "fits")
    ingest(
        [root / "fits"],
        root / "store",
        IngestConfig(workers=1, labels=str(labels), rows_per_task=32),
    )
    return root / "store"


def train_tiny(store: Path, run: Path, *, max_steps: int, **sections: dict) -> Path:
    """Train a run briefly on a tiny store (batches of 8, a quarter held out) and encode it;
    ``sections`` add configuration sections (e.g. ``architecture``, ``known_labels``)."""
    from astrolatent.training.encode import encode
    from astrolatent.training.fit import fit

    options = {
        "optim": {"batch_size": 8},
        "trainer": {"val_every": 10, "checkpoint_every": 10, "log_every": 5},
        "data": {"val_fraction": 0.25},
        **sections,
    }
    fit(store, run, options, max_steps=max_steps)
    encode(run)
    return run


def tiny_analysis():
    """A quick ``analyze`` configuration for the tiny stores, on every spectrum: their 32
    objects alone are too few to analyse."""
    from astrolatent.workflows.analyze import AnalyzeConfig

    return AnalyzeConfig(
        n_bootstrap=4,
        n_permutations=20,
        ceiling_components=4,
        max_samples=200,
        one_per_object=False,
    )


@pytest.fixture(scope="session")
def analyzed_run(tiny_store, tmp_path_factory) -> Path:
    """A run trained briefly on ``tiny_store``, encoded and analysed (``RUN/analysis/``):
    the input of the report and the explorer."""
    from astrolatent.workflows.analyze import analyze_run

    run = tmp_path_factory.mktemp("analyzed") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_tiny(tiny_store, run, max_steps=30)
        analyze_run(run, tiny_analysis())
    finally:
        torch.set_num_threads(threads)
    return run
