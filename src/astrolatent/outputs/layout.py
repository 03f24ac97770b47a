"""Every file name of a store and of a run, in one place.

A spectrum store (``astrolatent ingest``)::

    STORE/zarr.json  flux/ valid/ err/  metadata.parquet  quarantine.parquet  summary.json
         ingest.yaml  parts/

A spectrum run (``astrolatent train``, ``encode``, ``analyze``, ``report``)::

    RUN/config.yaml  model.pt  split.parquet  metrics.csv  train_summary.json  checkpoints/
        latents.parquet
        analysis/summary.json  config.yaml  data_summary.json  reconstructions.parquet
                 reconstructions.npz  traversals.json  dimensions.csv  mi_per_dim.csv
                 mi_per_dim_pca.csv  *.png
        report/report.html  figures/
        pipeline.yaml  (a run made by ``astrolatent run``)

A galaxy-estimator run (``astrolatent galaxy train``) has the same config, split, metrics,
summary and latents files (latent columns ``s_*``, one row per object and model), plus
``predictions.parquet``, ``pdf_examples.npz`` and ``decomposition/``, ``causal/`` folders
(``decomposition.json`` and ``pointwise.parquet``; ``local.json`` and ``local.parquet``,
``discovery.json`` and ``graph.png``).

Simulations: ``astrolatent simulate spectra`` writes ``truth.csv``, ``labels.csv`` and
``simulation.yaml`` beside its FITS files; ``galaxy simulate`` writes ``catalog.parquet``,
``truth.parquet``, ``simulation.yaml`` and ``images.npy``; ``simulate dag`` writes
``table.parquet`` and ``dag.json``. A pipeline (``astrolatent run``) keeps one stamp per stage in
``OUT/.stamps/STAGE.json``.
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
#: the key of the latents file's Parquet metadata that holds what astrolatent records
LATENTS_METADATA_KEY = b"astrolatent"
CHECKPOINT_DIR = "checkpoints"

# spectrum runs: analysis and report
ANALYSIS_DIR = "analysis"
SUMMARY_FILE = "summary.json"
ANALYSIS_SUMMARY = Path(ANALYSIS_DIR) / SUMMARY_FILE
DATA_SUMMARY_FILE = "data_summary.json"
RECONSTRUCTIONS_FILE = "reconstructions.parquet"
RECONSTRUCTION_EXAMPLES_FILE = "reconstructions.npz"
TRAVERSALS_FILE = "traversals.json"
ANALYSIS_CONFIG = Path(ANALYSIS_DIR) / CONFIG_FILE
DIMENSIONS_FILE = "dimensions.csv"
MI_PER_DIM_FILE = "mi_per_dim.csv"
MI_PER_DIM_PCA_FILE = "mi_per_dim_pca.csv"
#: figure stems of an analysis (``.png`` beside each)
INFORMATIVE_FIGURE = "informative_dims"
MI_KSG_FIGURE = "latent_mi_ksg"
#: figure stems per latent dim or label: ``TRAVERSAL_FIGURE.format(dim)``
TRAVERSAL_FIGURE = "traversal_dim{}"
MI_HIST_FIGURE = "latent_mi_hist_{}"
SCATTER_FIGURE = "scatter_{}"
REPORT_DIR = "report"
REPORT_FILE = "report.html"
#: the resolved pipeline configuration a run made by ``astrolatent run`` carries
PIPELINE_FILE = "pipeline.yaml"

# galaxy-estimator runs
PREDICTIONS_FILE = "predictions.parquet"
PDF_EXAMPLES_FILE = "pdf_examples.npz"
DECOMPOSITION_DIR = "decomposition"
DECOMPOSITION_FILE = "decomposition.json"
POINTWISE_FILE = "pointwise.parquet"
#: a decomposition's figures: ``STACK_FIGURE.format(column)``, ``GROUP_FIGURE.format(by)``
STACK_FIGURE = "stack_{}.png"
GROUP_FIGURE = "by_{}.png"
CAUSAL_DIR = "causal"
LOCAL_FILE = "local.json"
LOCAL_OBJECTS_FILE = "local.parquet"
R_HISTOGRAM_FIGURE = "r_hist.png"
R_MAP_FIGURE = "r_map.png"
DISCOVERY_FILE = "discovery.json"
GRAPH_FIGURE = "graph.png"

# simulations and pipelines
SIMULATION_TRUTH_FILE = "truth.csv"
SIMULATION_LABELS_FILE = "labels.csv"
SIMULATION_CONFIG_FILE = "simulation.yaml"
GALAXY_CATALOG_FILE = "catalog.parquet"
GALAXY_TRUTH_FILE = "truth.parquet"
GALAXY_IMAGES_FILE = "images.npy"
DAG_TABLE_FILE = "table.parquet"
DAG_TRUTH_FILE = "dag.json"
STAMP_DIR = ".stamps"
#: a pipeline stage's stamp in ``OUT/.stamps/``: ``STAMP_FILE.format(stage)``
STAMP_FILE = "{}.json"

# stores
#: the Zarr v3 group metadata of a store (a store's mark, see outputs.marks)
STORE_GROUP_FILE = "zarr.json"
STORE_METADATA_FILE = "metadata.parquet"
STORE_QUARANTINE_FILE = "quarantine.parquet"
STORE_SUMMARY_FILE = "summary.json"
STORE_CONFIG_FILE = "ingest.yaml"


def galaxy_model_file(index: int, n_models: int) -> str:
    """The file of model ``index`` of a galaxy run with ``n_models`` (cross-fitted) models."""
    return MODEL_FILE if n_models == 1 else f"model_fold{index}.pt"
