"""Training galaxy estimators: ``fit_estimator(config, run_dir)`` -> a run directory.

Run directory::

    RUN/config.yaml            the resolved EstimatorConfig
    RUN/split.parquet          id, row (table row), model, role (train/val/test): every
                               object's role for every model trained
    RUN/model.pt               {"format_version", "config", "columns", "state_dict"}; with
                               cross-fitting one file per fold: model_fold{k}.pt
    RUN/metrics.csv            model, epoch, metric, value (train/loss, val/ce, lr, ...)
    RUN/predictions.parquet    held-out objects only (the test split, or every object once
                               with cross-fitting): id, model, truth, mean, median, mode,
                               ce = -ln q(true bin | x), prior_ce = -ln p(true bin) under the
                               model's training-label histogram, crps
    RUN/latents.parquet        id, model, role, s_0..s_{d-1}: the latent of every usable
                               object under every model (latent spaces of different models
                               are not comparable; compare objects within one model)
    RUN/train_summary.json     cleaning report, per-model training record, held-out metrics

``prior_ce - ce`` is the pointwise mutual information (nats) that the MI decomposition
consumes. Standardisation statistics of the inputs live in the model's buffers.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from astrolatent.errors import ConfigError, InputFileError
from astrolatent.galaxies import metrics
from astrolatent.galaxies.catalog import CleaningReport, clean_rows, require_rows, resolve_inputs
from astrolatent.galaxies.config import FORMAT_VERSION, EstimatorConfig
from astrolatent.galaxies.models import (
    GalaxyEstimator,
    info_nce,
    random_dihedral,
    soft_labels,
    symmetric_kl,
)
from astrolatent.outputs import marks
from astrolatent.outputs.io import write_atomic, write_npz_atomic
from astrolatent.outputs.layout import (
    CONFIG_FILE,
    LATENTS_FILE,
    METRICS_FILE,
    PDF_EXAMPLES_FILE,
    PREDICTIONS_FILE,
    SPLIT_FILE,
    galaxy_model_file,
)
from astrolatent.outputs.layout import TRAIN_SUMMARY_FILE as SUMMARY_FILE
from astrolatent.outputs.summaries import GalaxyTrainSummary
from astrolatent.runtime import trainer as runtime
from astrolatent.runtime.checkpoint import load_model, save_model
from astrolatent.runtime.run import save_config, write_train_summary
from astrolatent.tables import read_table

log = logging.getLogger(__name__)

#: what a galaxy run holds (written by training, the report and the causal commands)
RUN_OWNS = (
    *(CONFIG_FILE, SPLIT_FILE, METRICS_FILE, PREDICTIONS_FILE, LATENTS_FILE, SUMMARY_FILE),
    *(PDF_EXAMPLES_FILE, "model.pt", "model_fold*.pt", "report", "causal", "decomposition"),
)
MIN_ROWS = 20
_IMAGE_STAT_SAMPLE = 512
_PREDICT_BATCH = 512


def signed_log(x: np.ndarray) -> np.ndarray:
    """sign(x) log(|x| + 1), elementwise (the image pixel transform)."""
    return np.sign(x) * np.log1p(np.abs(x))


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------
@dataclass
class GalaxyData:
    """The usable objects of a table: ``n`` rows after cleaning.

    ``tabular`` ``(n, k)`` float32 raw inputs (``columns``), ``target`` ``(n,)``, ``ids``
    ``(n,)``, ``rows`` ``(n,)`` their row numbers in the table (and the image file), and
    ``images`` the whole ``(N_table, C, S, S)`` array (memory-mapped) or None.
    """

    ids: np.ndarray
    rows: np.ndarray
    tabular: np.ndarray
    target: np.ndarray
    columns: list[str]
    images: np.ndarray | None
    report: CleaningReport

    def image_batch(self, index: np.ndarray) -> np.ndarray | None:
        """Log-transformed images ``(len(index), C, S, S)`` float32 of objects ``index``;
        non-finite pixels become 0."""
        if self.images is None:
            return None
        rows = self.rows[index]
        order = np.argsort(rows)
        batch = np.empty((len(rows), *self.images.shape[1:]), dtype=np.float32)
        batch[order] = self.images[rows[order]]
        return signed_log(np.nan_to_num(batch, nan=0.0, posinf=0.0, neginf=0.0))


def load_data(config: EstimatorConfig) -> GalaxyData:
    """Read the table (and images), resolve the inputs and drop unusable rows (reported)."""
    dc, pdf = config.data, config.pdf
    frame = read_table(dc.table)
    columns = resolve_inputs(dc.inputs, list(frame.columns), groups=dc.groups)
    if dc.target in columns:
        raise ConfigError(
            f"the target {dc.target!r} is also an input (inputs {dc.inputs}); remove it"
        )
    values, keep, report = clean_rows(
        frame,
        [*columns, dc.target],
        sentinels=dc.sentinels,
        ranges={dc.target: (pdf.target_min, pdf.target_max)},
        source=dc.table,
    )
    require_rows(report, MIN_ROWS, source=dc.table)
    rows = np.flatnonzero(keep)
    if dc.id_column in frame.columns:
        ids = frame[dc.id_column].to_numpy()[keep]
    else:
        log.info("%s has no %r column; ids are row numbers", dc.table, dc.id_column)
        ids = rows.copy()
    images = None
    if dc.images is not None:
        images = _open_images(Path(dc.images), len(frame))
    return GalaxyData(
        ids=ids,
        rows=rows,
        tabular=values[:, :-1].astype(np.float32),
        target=values[:, -1],
        columns=columns,
        images=images,
        report=report,
    )


def _open_images(path: Path, n_rows: int) -> np.ndarray:
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        images = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"not a .npy array ({exc})") from None
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise InputFileError(path, f"expected images (N, C, S, S), got shape {images.shape}")
    if images.shape[0] != n_rows:
        raise InputFileError(
            path, f"{images.shape[0]} images for a table of {n_rows} rows (row i = image i)"
        )
    return images


def make_splits(
    n: int, *, cv_folds: int, val_fraction: float, test_fraction: float, random_state: int
) -> list[dict[str, np.ndarray]]:
    """Index sets ``{"train", "val", "test"}`` into ``n`` objects, one dict per model.

    With ``cv_folds`` >= 2 the test sets are the folds of a seeded permutation (every object
    is held out exactly once) and ``val_fraction`` of each remaining part is the validation
    set; otherwise one seeded split with ``test_fraction`` and ``val_fraction`` of ``n``.
    """
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(n)
    if cv_folds >= 2:
        if n < 2 * cv_folds:
            raise ConfigError(
                f"cv_folds={cv_folds} needs at least {2 * cv_folds} objects, have {n}"
            )
        out = []
        for test in np.array_split(perm, cv_folds):
            rest = rng.permutation(np.setdiff1d(perm, test))
            n_val = max(1, round(val_fraction * len(rest)))
            out.append(
                {
                    "train": np.sort(rest[n_val:]),
                    "val": np.sort(rest[:n_val]),
                    "test": np.sort(test),
                }
            )
        return out
    n_test = round(test_fraction * n)
    n_val = max(1, round(val_fraction * n))
    return [
        {
            "train": np.sort(perm[n_test + n_val :]),
            "val": np.sort(perm[n_test : n_test + n_val]),
            "test": np.sort(perm[:n_test]),
        }
    ]


class _GalaxyBatches(Dataset):
    """Batches ``(tabular (B, k), images (B, C, S, S) or (B, 0), target (B,))`` of objects
    ``index``: an item is a list of positions into ``index`` (from a BatchSampler)."""

    def __init__(self, data: GalaxyData, index: np.ndarray) -> None:
        self.data = data
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        j = self.index[np.asarray(positions)]
        images = self.data.image_batch(j)
        return (
            torch.from_numpy(self.data.tabular[j]),
            torch.empty(len(j), 0) if images is None else torch.from_numpy(images),
            torch.from_numpy(self.data.target[j].astype(np.float32)),
        )


class GalaxyDataModule(L.LightningDataModule):
    """Training and validation loaders over one model's split (seeded shuffling)."""

    def __init__(
        self, data: GalaxyData, split: dict[str, np.ndarray], *, batch_size: int, seed: int
    ) -> None:
        super().__init__()
        self.data = data
        self.split = split
        self.batch_size = batch_size
        self.seed = seed

    def _loader(self, role: str, *, shuffle: bool) -> DataLoader:
        dataset = _GalaxyBatches(self.data, self.split[role])
        if shuffle:
            n = len(dataset)
            generator = torch.Generator().manual_seed(self.seed)
            sampler = BatchSampler(
                RandomSampler(dataset, generator=generator),
                batch_size=min(self.batch_size, n),
                drop_last=n > self.batch_size,
            )
        else:
            sampler = BatchSampler(SequentialSampler(dataset), _PREDICT_BATCH, drop_last=False)
        return DataLoader(dataset, sampler=sampler, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)


# ---------------------------------------------------------------------------------------
# model and Lightning module
# ---------------------------------------------------------------------------------------
def build_estimator(
    config: EstimatorConfig, *, n_tabular: int, image_shape: tuple[int, int, int] | None
) -> GalaxyEstimator:
    """A freshly initialised estimator for ``config`` (weights seeded by ``trainer.seed``)."""
    ec = config.encoder
    if config.contrastive.enabled and image_shape is not None:
        k = len(ec.channels)
        if image_shape[1] % 2**k:
            raise ConfigError(
                f"contrastive training of images needs an image size divisible by 2^{k}; "
                f"images are {image_shape[1]} px (use fewer encoder.channels)"
            )
    with runtime.seeded(config.trainer.seed):
        return GalaxyEstimator(
            n_tabular=n_tabular,
            image_shape=image_shape,
            n_bins=config.pdf.n_bins,
            latent_dim=resolved_latent_dim(config, images=image_shape is not None),
            encoder=ec,
            head_width=config.pdf.head_width,
            decoder=config.contrastive.enabled,
        )


def resolved_latent_dim(config: EstimatorConfig, *, images: bool) -> int:
    """``encoder.latent_dim``, or the default: 16 for image models, 8 for tabular ones."""
    if config.encoder.latent_dim is not None:
        return config.encoder.latent_dim
    return 16 if images else 8


class EstimatorModule(L.LightningModule):
    """Owns the loss, the optimiser and the logging of a :class:`GalaxyEstimator`.

    Loss = CE(PDF, one-hot or smoothed labels), plus with ``config.contrastive.enabled``
    w_rec MSE(reconstruction) + w_con InfoNCE(pairs) + w_cons symmetric KL(pair PDFs).
    Logs per epoch ``train/loss``, ``train/ce`` (against the training labels) and
    ``val/ce`` (-ln q(bin of the truth), the held-out metric).
    """

    def __init__(self, model: GalaxyEstimator, config: EstimatorConfig, *, seed: int) -> None:
        super().__init__()
        self.model = model
        self.config = config
        edges = metrics.bin_edges(config.pdf.target_min, config.pdf.target_max, config.pdf.n_bins)
        self.register_buffer(
            "centres",
            torch.tensor(0.5 * (edges[1:] + edges[:-1]), dtype=torch.float32),
            persistent=False,
        )
        self.label_sigma = config.pdf.label_sigma_bins * float(edges[1] - edges[0])
        self.generator = torch.Generator().manual_seed(seed)
        self.is_image = model.image_shape is not None

    def _ce(self, logits: torch.Tensor, target: torch.Tensor, *, sigma: float) -> torch.Tensor:
        labels = soft_labels(target, self.centres, sigma)
        return -(labels * F.log_softmax(logits, dim=1)).sum(dim=1).mean()

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        tabular, images, target = batch
        images = images if self.is_image else None
        if images is not None and self.config.data.augment:
            images = random_dihedral(images, self.generator)
        tab, img = self.model.standardise(tabular, images)
        latent = self.model.encode_standardised(tab, img)
        logits = self.model.head(latent)
        ce = self._ce(logits, target, sigma=self.label_sigma)
        loss = ce
        cc = self.config.contrastive
        if cc.enabled:
            recon = self.model.decode(latent)
            mse = F.mse_loss(recon, tab if img is None else img)
            # positive pairs: x with its reconstruction, and (images) with a flip/rotation
            if img is None:
                views = [(recon, None)]
            else:
                views = [(tab, recon), (tab, random_dihedral(img, self.generator))]
            others = [self.model.encode_standardised(t, i) for t, i in views]
            con = sum(info_nce(latent, o, temperature=cc.temperature) for o in others) / len(others)
            cons = sum(symmetric_kl(logits, self.model.head(o)) for o in others) / len(others)
            loss = ce + cc.w_rec * mse + cc.w_con * con + cc.w_cons * cons
            self.log_dict(
                {"train/mse": mse, "train/contrastive": con, "train/consistency": cons},
                on_step=False,
                on_epoch=True,
                batch_size=len(target),
            )
        self.log("train/ce", ce, on_step=False, on_epoch=True, batch_size=len(target))
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(target))
        return loss

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        tabular, images, target = batch
        _, logits = self.model(tabular, images if self.is_image else None)
        self.log(
            "val/ce", self._ce(logits, target, sigma=0.0), on_epoch=True, batch_size=len(target)
        )

    def configure_optimizers(self) -> dict:
        oc = self.config.optim
        optimizer = torch.optim.Adam(self.parameters(), lr=oc.lr, weight_decay=oc.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=oc.lr_decay, patience=oc.lr_patience
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "val/ce"},
        }


class _RunRecorder(L.Callback):
    """Per-epoch metrics, the best weights (by val/ce) and progress reports."""

    def __init__(
        self, model_index: int, progress: Callable[[dict], None] | None, report: dict
    ) -> None:
        self.model_index = model_index
        self.progress = progress
        self.report = report
        self.rows: list[tuple[int, int, str, float]] = []
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        values = {k: float(v) for k, v in trainer.callback_metrics.items()}
        values["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.rows += [(self.model_index, epoch, k, v) for k, v in sorted(values.items())]
        val = values.get("val/ce")
        if val is not None and np.isfinite(val) and (self.best is None or val < self.best):
            self.best, self.best_epoch = val, epoch
            self.best_state = copy.deepcopy(pl_module.model.state_dict())
        if self.progress is not None:
            self.progress(
                {
                    **self.report,
                    "epoch": epoch,
                    "train_loss": values.get("train/loss"),
                    "val_ce": val,
                }
            )


# ---------------------------------------------------------------------------------------
# inference and run directory
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def predict(
    model: GalaxyEstimator, data: GalaxyData, index: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(probs (n, K), latents (n, d))`` float64/float32 of objects ``index`` (default all)."""
    index = np.arange(len(data.target)) if index is None else index
    model.eval()
    device = next(model.parameters()).device
    probs, latents = [], []
    for start in range(0, len(index), _PREDICT_BATCH):
        chunk = index[start : start + _PREDICT_BATCH]
        tab = torch.from_numpy(data.tabular[chunk]).to(device)
        images = data.image_batch(chunk)
        img = None if images is None else torch.from_numpy(images).to(device)
        latent, logits = model(tab, img)
        probs.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
        latents.append(latent.float().cpu().numpy())
    return np.concatenate(probs), np.concatenate(latents)


def _standardisation(model: GalaxyEstimator, data: GalaxyData, train: np.ndarray) -> None:
    """Robust tabular statistics (median, 1.4826 MAD; std where the MAD is 0) and image
    channel means/stds (up to 512 training images), stored in the model's buffers."""
    x = data.tabular[train].astype(np.float64)
    center = np.median(x, axis=0)
    scale = metrics.MAD_TO_SIGMA * np.median(np.abs(x - center), axis=0)
    scale = np.where(scale > 0, scale, x.std(axis=0))
    scale = np.where(scale > 0, scale, 1.0)
    img_center = img_scale = None
    if data.images is not None:
        rng = np.random.default_rng(0)
        sample = rng.choice(train, size=min(len(train), _IMAGE_STAT_SAMPLE), replace=False)
        imgs = data.image_batch(np.sort(sample)).astype(np.float64)
        img_center = torch.tensor(imgs.mean(axis=(0, 2, 3)), dtype=torch.float32)
        std = imgs.std(axis=(0, 2, 3))
        img_scale = torch.tensor(np.where(std > 0, std, 1.0), dtype=torch.float32)
    model.set_standardisation(
        torch.tensor(center, dtype=torch.float32),
        torch.tensor(scale, dtype=torch.float32),
        img_center,
        img_scale,
    )


def save_estimator(
    path: str | Path, model: GalaxyEstimator, config: EstimatorConfig, columns: list[str]
) -> Path:
    """Write ``{"format_version", "config", "state_dict", "columns", "image_shape"}``."""
    return save_model(
        path,
        model,
        config,
        format_version=FORMAT_VERSION,
        columns=list(columns),
        image_shape=list(model.image_shape) if model.image_shape else None,
    )


def load_estimator(path: str | Path) -> tuple[GalaxyEstimator, EstimatorConfig, list[str]]:
    """The estimator in a ``model*.pt`` file, its configuration and input columns."""
    model, config, payload = load_model(
        path,
        EstimatorConfig,
        _build_saved,
        format_version=FORMAT_VERSION,
        rebuild="train the run again with `astrolatent galaxy train`",
    )
    return model, config, list(payload["columns"])


def _build_saved(config: EstimatorConfig, payload: dict) -> GalaxyEstimator:
    """An untrained estimator shaped as the one saved in ``payload``."""
    shape = tuple(payload["image_shape"]) if payload["image_shape"] else None
    return build_estimator(config, n_tabular=len(payload["columns"]), image_shape=shape)


@dataclass
class EstimatorSummary:
    """What :func:`fit_estimator` did (saved as ``RUN/train_summary.json``).

    ``metrics`` are over the held-out predictions (see :func:`metrics.evaluate`); ``models``
    has one record per trained model (epochs, best epoch and val/ce, stop reason, seconds).
    """

    run_dir: str
    table: str
    target: str
    columns: list[str]
    images: str | None
    n_objects: int
    n_models: int
    latent_dim: int
    n_parameters: int
    cleaning: dict
    models: list[dict]
    metrics: dict
    wall_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _train_model(
    config: EstimatorConfig,
    data: GalaxyData,
    split: dict[str, np.ndarray],
    *,
    prior: np.ndarray,
    index: int,
    n_models: int,
    run_dir: Path,
    progress: Callable[[dict], None] | None,
) -> tuple[GalaxyEstimator, dict, list[tuple[int, int, str, float]]]:
    """Train model ``index`` on ``split``, its PDF head starting at ``prior`` ``(K,)``;
    returns it (best epoch's weights, on the CPU), its training record and its per-epoch
    metric rows."""
    tc = config.trainer
    t0 = time.perf_counter()
    image_shape = tuple(data.images.shape[1:]) if data.images is not None else None
    model = build_estimator(config, n_tabular=len(data.columns), image_shape=image_shape)
    _standardisation(model, data, split["train"])
    model.set_prior(torch.tensor(prior, dtype=torch.float32))
    seed = tc.seed + index
    torch.manual_seed(seed)
    module = EstimatorModule(model, config, seed=seed)
    report = {"model": index, "n_models": n_models, "max_epochs": tc.max_epochs}
    recorder = _RunRecorder(index, progress, report)
    with runtime.quiet_lightning():
        trainer = runtime.make_trainer(
            tc,
            runtime.launch(tc.accelerator),
            run_dir,
            [recorder, *runtime.early_stopping(tc, "val/ce")],
            max_epochs=tc.max_epochs,
            logger=False,
        )
        dm = GalaxyDataModule(data, split, batch_size=config.optim.batch_size, seed=seed)
        trainer.fit(module, datamodule=dm)
    if recorder.best_state is not None:
        model.load_state_dict(recorder.best_state)
    model.cpu()
    record = {
        "model": index,
        "n_train": len(split["train"]),
        "n_val": len(split["val"]),
        "n_test": len(split["test"]),
        "epochs": trainer.current_epoch,
        "best_epoch": recorder.best_epoch,
        "best_val_ce": recorder.best,
        "stopped_by": runtime.stop_reason(trainer),
        "seconds": time.perf_counter() - t0,
    }
    if progress is not None:
        progress({**report, "epoch": tc.max_epochs, "finished": True})
    return model, record, recorder.rows


def write_pdf_examples(
    path: Path, predictions: pd.DataFrame, probs: np.ndarray, edges: np.ndarray
) -> None:
    """The PDFs (``probs``, one row per held-out object of ``predictions``) of four objects:
    the best, two typical and the worst by |median - truth|, for the report."""
    err = (predictions["median"] - predictions["truth"]).abs().to_numpy()
    order = np.argsort(err)
    picks = np.array([order[0], order[len(order) // 3], order[2 * len(order) // 3], order[-1]])
    write_npz_atomic(
        path,
        kind=np.array(["best", "typical", "typical", "worst"]),
        id=predictions["id"].to_numpy()[picks].astype(str),
        error=err[picks],
        truth=predictions["truth"].to_numpy(float)[picks],
        centres=0.5 * (edges[1:] + edges[:-1]),
        probs=probs[picks],
    )


def _resolved(config: EstimatorConfig, data: GalaxyData) -> EstimatorConfig:
    """``config`` with absolute data paths and the latent size the data decide."""
    latent_dim = resolved_latent_dim(config, images=data.images is not None)
    paths = {"table": str(Path(config.data.table).resolve())}
    if config.data.images is not None:
        paths["images"] = str(Path(config.data.images).resolve())
    return config.model_copy(
        update={
            "data": config.data.model_copy(update=paths),
            "encoder": config.encoder.model_copy(update={"latent_dim": latent_dim}),
        }
    )


def _model_outputs(
    model: GalaxyEstimator,
    data: GalaxyData,
    split: dict[str, np.ndarray],
    m: int,
    prior: np.ndarray,
    edges: np.ndarray,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Model ``m``'s held-out predictions (point estimates, CE, prior CE, CRPS), their PDFs,
    and the latents of every object with its role."""
    probs, lat = predict(model, data)
    test = split["test"]
    truth = data.target[test]
    pred = pd.DataFrame(
        {
            "id": data.ids[test],
            "model": m,
            "truth": truth,
            **metrics.point_estimates(probs[test], edges),
            "ce": metrics.cross_entropies(probs[test], truth, edges),
            "prior_ce": -np.log(prior[metrics.bin_index(truth, edges)]),
            "crps": metrics.crps(probs[test], edges, truth),
        }
    )
    roles = np.empty(len(data.target), dtype=object)
    for role, idx in split.items():
        roles[idx] = role
    latents = pd.DataFrame(
        {
            "id": data.ids,
            "model": m,
            "role": roles.astype(str),
            **{f"s_{j}": lat[:, j] for j in range(lat.shape[1])},
        }
    )
    return pred, probs[test], latents


def _write_tables(
    run_dir: Path,
    predictions: list[pd.DataFrame],
    held_probs: list[np.ndarray],
    latents: list[pd.DataFrame],
    history: list[tuple[int, int, str, float]],
    edges: np.ndarray,
) -> dict:
    """Write the run's predictions, PDF examples, latents and metrics; return the held-out
    metrics of all models together."""
    pred_frame = pd.concat(predictions, ignore_index=True)
    write_atomic(run_dir / PREDICTIONS_FILE, lambda p: pred_frame.to_parquet(p, index=False))
    if len(predictions[0]):
        write_pdf_examples(run_dir / PDF_EXAMPLES_FILE, predictions[0], held_probs[0], edges)
    lat_frame = pd.concat(latents, ignore_index=True)
    write_atomic(run_dir / LATENTS_FILE, lambda p: lat_frame.to_parquet(p, index=False))
    hist = pd.DataFrame(history, columns=["model", "epoch", "metric", "value"])
    write_atomic(run_dir / METRICS_FILE, lambda p: hist.to_csv(p, index=False))
    held = {}
    if len(pred_frame):
        held = metrics.evaluate(
            np.concatenate(held_probs),
            pred_frame["truth"].to_numpy(),
            edges,
            prior_ce=pred_frame["prior_ce"].to_numpy(),
        )
    return held


def _start_run(
    run_dir: Path, config: EstimatorConfig, data: GalaxyData, splits: list[dict[str, np.ndarray]]
) -> None:
    """Mark the run folder and write its configuration and every object's role per model."""
    marks.claim(run_dir, "galaxy run", RUN_OWNS, what="--run")
    save_config(run_dir, config)
    split_frame = pd.concat(
        [
            pd.DataFrame({"id": data.ids[idx], "row": data.rows[idx], "model": m, "role": role})
            for m, split in enumerate(splits)
            for role, idx in split.items()
        ],
        ignore_index=True,
    )
    write_atomic(run_dir / SPLIT_FILE, lambda p: split_frame.to_parquet(p, index=False))


def _fit_models(
    config: EstimatorConfig,
    data: GalaxyData,
    splits: list[dict[str, np.ndarray]],
    run_dir: Path,
    progress: Callable[[dict], None] | None,
) -> tuple[list[dict], dict, int]:
    """Train, save and apply one model per split; write the run's tables. Returns the
    models' training records, the held-out metrics and the parameters of one model."""
    edges = metrics.bin_edges(config.pdf.target_min, config.pdf.target_max, config.pdf.n_bins)
    history: list[tuple[int, int, str, float]] = []
    records, predictions, latents, held_probs = [], [], [], []
    with runtime.torch_settings(config.trainer.num_threads):
        for m, split in enumerate(splits):
            seen = np.concatenate([split["train"], split["val"]])
            prior = metrics.prior_probabilities(
                data.target[seen], edges, pseudocount=config.pdf.prior_pseudocount
            )
            model, record, rows = _train_model(
                config,
                data,
                split,
                prior=prior,
                index=m,
                n_models=len(splits),
                run_dir=run_dir,
                progress=progress,
            )
            history += rows
            record["file"] = galaxy_model_file(m, len(splits))
            save_estimator(run_dir / record["file"], model, config, data.columns)
            records.append(record)
            pred, probs, lat = _model_outputs(model, data, split, m, prior, edges)
            predictions.append(pred)
            held_probs.append(probs)
            latents.append(lat)
    held = _write_tables(run_dir, predictions, held_probs, latents, history, edges)
    return records, held, sum(p.numel() for p in model.parameters())


def fit_estimator(
    config: EstimatorConfig,
    run_dir: str | Path,
    *,
    progress: Callable[[dict], None] | None = None,
) -> EstimatorSummary:
    """Train the estimator(s) of ``config`` and write the run directory ``run_dir``.

    Args:
        config: the full configuration (table, target, inputs, model, budget).
        run_dir: the run directory (created; one that holds a run is an error).
        progress: called after every epoch with a dict: ``model``, ``n_models``, ``epoch``,
            ``max_epochs``, ``train_loss``, ``val_ce``; and once per finished model with
            ``finished=True``.

    Returns:
        The :class:`EstimatorSummary`, also written as ``RUN/train_summary.json``.

    Raises:
        ConfigError: impossible options, or ``run_dir`` already holds a run.
        InputFileError: unreadable table/images, missing columns, too few usable rows.
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if (run_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a run; choose a new --run directory")
    data = load_data(config)
    config = _resolved(config, data)
    dc = config.data
    splits = make_splits(
        len(data.target),
        cv_folds=dc.cv_folds,
        val_fraction=dc.val_fraction,
        test_fraction=dc.test_fraction,
        random_state=config.trainer.seed,
    )
    if not any(len(split["test"]) for split in splits):
        log.warning("test_fraction=0 holds out no object: predictions.parquet will be empty")
    _start_run(run_dir, config, data, splits)
    records, held, n_parameters = _fit_models(config, data, splits, run_dir, progress)
    summary = EstimatorSummary(
        run_dir=str(run_dir),
        table=dc.table,
        target=dc.target,
        columns=data.columns,
        images=dc.images,
        n_objects=len(data.target),
        n_models=len(splits),
        latent_dim=config.encoder.latent_dim,
        n_parameters=n_parameters,
        cleaning=data.report.to_dict(),
        models=records,
        metrics=held,
        wall_seconds=time.perf_counter() - t0,
    )
    write_train_summary(
        run_dir, GalaxyTrainSummary, summary.to_dict(), seeds={"seed": config.trainer.seed}
    )
    return summary


__all__ = [
    "EstimatorModule",
    "EstimatorSummary",
    "GalaxyData",
    "GalaxyDataModule",
    "build_estimator",
    "fit_estimator",
    "load_data",
    "load_estimator",
    "make_splits",
    "predict",
    "resolved_latent_dim",
    "save_estimator",
    "signed_log",
]
