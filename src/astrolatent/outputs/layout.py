"""Every file name of a store and of a run, in one place.

A spectrum store (``astrolatent ingest``)::

    STORE/zarr.json  flux/ valid/ err/  metadata.parquet  quarantine.parquet  summary.json
         ingest.yaml  parts/

A spectrum run (``astrolatent train``, ``encode``, ``analyze``, ``report``)::

    RUN/config.yaml  model.pt  split.parquet  metrics.csv  train_summary.json  checkpoints/
        latents.parquet
        analysis/summary.json  config.yaml  data_summary.json  reconstructions.parquet
                 reconstructions.npz  traversals.json  *.csv  *.png
        report/report.html  figures/

A galaxy-estimator run (``astrolatent galaxy train``) has the same config, split, metrics,
summary and latents files (latent columns ``s_*``, one row per object and model), plus
``predictions.parquet``, ``pdf_examples.npz`` and ``decomposition/``, ``causal/`` folders.
"""

from __future__ import annotations

from pathlib import Path

# runs (spectrum and galaxy)
CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.pt"
SPLIT_FILE = "split.parquet"
METRICS_FILE = "metrics.csv"
TRAIN_SUMMARY_FILE = "train_summary.json"
LATENTS_FILE = "latents.parquet"
CHECKPOINT_DIR = "checkpoints"

# spectrum runs: analysis and report
ANALYSIS_DIR = "analysis"
SUMMARY_FILE = "summary.json"
ANALYSIS_SUMMARY = Path(ANALYSIS_DIR) / SUMMARY_FILE
DATA_SUMMARY_FILE = "data_summary.json"
RECONSTRUCTIONS_FILE = "reconstructions.parquet"
RECONSTRUCTION_EXAMPLES_FILE = "reconstructions.npz"
TRAVERSALS_FILE = "traversals.json"
REPORT_DIR = "report"
REPORT_FILE = "report.html"

# galaxy-estimator runs
PREDICTIONS_FILE = "predictions.parquet"
PDF_EXAMPLES_FILE = "pdf_examples.npz"
DECOMPOSITION_DIR = "decomposition"
DECOMPOSITION_FILE = "decomposition.json"
POINTWISE_FILE = "pointwise.parquet"
CAUSAL_DIR = "causal"
LOCAL_FILE = "local.json"
DISCOVERY_FILE = "discovery.json"

# stores
STORE_METADATA_FILE = "metadata.parquet"
STORE_QUARANTINE_FILE = "quarantine.parquet"
STORE_SUMMARY_FILE = "summary.json"
STORE_CONFIG_FILE = "ingest.yaml"


def galaxy_model_file(index: int, n_models: int) -> str:
    """The file of model ``index`` of a galaxy run with ``n_models`` (cross-fitted) models."""
    return MODEL_FILE if n_models == 1 else f"model_fold{index}.pt"
