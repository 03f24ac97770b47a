"""Inference with a trained run: latents for a store, reconstructions, decoding latents.

* :func:`load_model` -> ``(model, config)`` from ``RUN/model.pt`` (or, for a run killed
  before it finished, from ``RUN/checkpoints/last.ckpt`` and ``RUN/config.yaml``);
* :func:`encode` writes ``RUN/latents.parquet``: one row per accepted spectrum with ``id``,
  ``object``, ``row``, ``split`` (train/val/"" when the spectrum was not in the run's
  store), ``mu_0..mu_{D-1}``, ``logvar_0..logvar_{D-1}`` and the store's label columns,
  streamed batch by batch (memory does not grow with the store);
* :func:`reconstruct` returns input and decoded spectra for given ids;
* :func:`decode` turns arbitrary latent vectors into spectra (for traversals, the explorer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from pydantic import Field

from astrolatent.config import Columns, Config
from astrolatent.data.store import SpectrumStore
from astrolatent.errors import ConfigError, StoreError
from astrolatent.models.vae import SpectrumVAE, reconstruction_loss
from astrolatent.outputs import marks
from astrolatent.outputs.layout import CONFIG_FILE, LATENTS_FILE, MODEL_FILE, SPLIT_FILE
from astrolatent.outputs.summaries import LatentsMetadata, latents_metadata, read_latents_metadata
from astrolatent.runtime.checkpoint import load_model as load_saved
from astrolatent.training.config import FORMAT_VERSION, TrainConfig
from astrolatent.training.datamodule import StoreBatchDataset
from astrolatent.training.fit import LAST_CKPT

log = logging.getLogger(__name__)


class EncodeConfig(Config):
    """Options of ``astrolatent encode``: spectra per forward pass, the device (``auto``: a
    GPU when there is one), the store to encode (None: the run's own) and the output file
    (None: ``RUN/latents.parquet``)."""

    batch_size: int = Field(64, ge=1)
    device: str = "auto"
    store: str | None = None
    out: str | None = None


class ReconstructConfig(Config):
    """Options of ``astrolatent reconstruct``: the spectrum ids, the store holding them
    (None: the run's own) and the output ``.npz`` (None: ``RUN/reconstructions.npz``)."""

    ids: Columns = Field(min_length=1)
    store: str | None = None
    out: str | None = None


def _device(device: str | torch.device | None) -> torch.device:
    """The torch device for ``device`` (``auto``: a GPU if there is one); ConfigError for a
    name torch does not know or a device this machine lacks."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"--device {device!r}: not a device name (cpu, cuda, cuda:1, mps)"
        ) from None
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPUs"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: no Apple GPU is available here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {device}: astrolatent runs on cpu, cuda or mps")
    return dev


def load_model(
    run_dir: str | Path, *, device: str | torch.device | None = "cpu"
) -> tuple[SpectrumVAE, TrainConfig]:
    """The trained model (in eval mode) and the run's configuration.

    Reads ``RUN/model.pt``; when a run was killed before writing it, the model comes from
    the last checkpoint instead. Raises :class:`ConfigError` if the run holds neither or
    was written by an incompatible astrolatent.
    """
    run_dir = Path(run_dir)
    if (run_dir / MODEL_FILE).is_file():
        model, config, _ = load_saved(
            run_dir / MODEL_FILE,
            TrainConfig,
            lambda cfg, _: SpectrumVAE(cfg.architecture),
            format_version=FORMAT_VERSION,
            rebuild=f"train a new run with `astrolatent train STORE --run NEW_RUN --config {run_dir}/{CONFIG_FILE}`",
        )
    elif (run_dir / LAST_CKPT).is_file() and (run_dir / CONFIG_FILE).is_file():
        config = TrainConfig.load(run_dir / CONFIG_FILE)
        ckpt = torch.load(run_dir / LAST_CKPT, map_location="cpu", weights_only=True)
        state = {
            k.removeprefix("model."): v
            for k, v in ckpt["state_dict"].items()
            if k.startswith("model.")
        }
        log.warning(
            "%s has no %s (unfinished run); using the checkpoint of step %s",
            run_dir,
            MODEL_FILE,
            ckpt.get("global_step"),
        )
        model = SpectrumVAE(config.architecture)
        model.load_state_dict(state)
        model.eval()
    else:
        raise ConfigError(
            f"{run_dir}: not a training run (no {MODEL_FILE}); train one with `astrolatent train`"
        )
    return model.to(_device(device)), config


def _resolve_model(
    run_or_model: str | Path | SpectrumVAE, device: str | torch.device | None
) -> SpectrumVAE:
    if isinstance(run_or_model, SpectrumVAE):
        return run_or_model
    model, _ = load_model(run_or_model, device=device)
    return model


def latents_store(latents_path: str | Path, train_store: str | None) -> SpectrumStore:
    """The store a latents file's spectra come from: the one ``encode`` recorded in it (a
    run may encode another store than its own), else the run's ``train_store``; refused when
    it is gone or has changed since the latents were written."""
    latents_path = Path(latents_path)
    recorded = read_latents_metadata(latents_path)
    store_path = recorded.store or train_store
    if not store_path:
        raise StoreError(f"{latents_path}: does not record the store its spectra come from")
    if not Path(store_path).exists():
        raise StoreError(
            f"{store_path}: the store of {latents_path} is gone; its spectra are read from it"
        )
    store = SpectrumStore(store_path)
    fingerprint = recorded.store_fingerprint
    if fingerprint and store.attrs.get("fingerprint") != fingerprint:
        raise StoreError(
            f"{store_path}: the store has changed since {latents_path} was written; "
            "re-run `astrolatent encode`"
        )
    return store


def _open_store(
    run_dir: Path, config: TrainConfig, store: str | Path | None
) -> tuple[SpectrumStore, bool]:
    """The store to encode and whether it is the run's own (unchanged) store; a store of
    another length, or (Doppler decoder) another wavelength grid, than the training's is
    refused."""
    if store is None:
        if config.store is None:
            raise StoreError(f"{run_dir}: the run does not record its store; pass --store")
        path = Path(config.store)
        if not path.exists():
            raise StoreError(f"{path}: the run's store is gone; pass --store")
        opened = SpectrumStore(path)
        if config.store_fingerprint and opened.attrs.get("fingerprint") != config.store_fingerprint:
            raise StoreError(
                f"{path}: the store has changed since the run was trained (fingerprint differs); "
                "pass --store explicitly to encode it anyway"
            )
        return opened, True
    path = Path(store)
    if not path.exists():
        raise StoreError(f"{path}: no such store; create one with `astrolatent ingest`")
    opened = SpectrumStore(path)
    same = (
        config.store_fingerprint is not None
        and opened.attrs.get("fingerprint") == config.store_fingerprint
    )
    if opened.length != config.architecture.input_length:
        raise StoreError(
            f"{path}: spectra of {opened.length} px, but the model was trained on "
            f"{config.architecture.input_length} px; ingest with the same grid (preset) as the training store"
        )
    if config.architecture.doppler is not None:  # the decoder shifts on the training grid
        config.architecture.doppler.check_grid(opened.wave, str(path))
    return opened, same


@dataclass
class EncodeResult:
    """What :func:`encode` wrote."""

    path: str
    store: str
    n_spectra: int
    latent_dim: int
    same_store: bool
    columns: list[str]
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _batches(rows: np.ndarray, chunk_rows: int, batch_size: int) -> list[np.ndarray]:
    """Sorted rows cut into batches that align with store chunks where possible."""
    size = max(1, batch_size)
    if chunk_rows > size:
        size = chunk_rows  # reading a whole chunk once beats reading it several times
    return [rows[i : i + size] for i in range(0, rows.size, size)]


@torch.inference_mode()
def _encode_block(
    model: SpectrumVAE, flux: np.ndarray, batch_size: int, dev: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Latent means and log variances (n, D) of the spectra ``flux`` (n, L), in batches."""
    mus, lvs = [], []
    for lo in range(0, len(flux), batch_size):
        mu, logvar = model.encode(torch.from_numpy(flux[lo : lo + batch_size]).to(dev))
        mus.append(mu.float().cpu().numpy())
        lvs.append(logvar.float().cpu().numpy())
    return np.concatenate(mus), np.concatenate(lvs)


def _accepted(store: SpectrumStore, run_dir: Path, same: bool) -> tuple[pd.DataFrame, pd.Series]:
    """The store's accepted spectra in row order, and each one's split in the run
    (train/val, or "" when the store is not the run's own)."""
    meta = store.metadata
    ok = meta[meta["status"] == "ok"].sort_values("row")
    if ok.empty:
        raise StoreError(f"{store.path}: the store holds no accepted spectra")
    split = pd.Series("", index=ok.index, dtype=object)
    if same and (run_dir / SPLIT_FILE).is_file():
        s = pd.read_parquet(run_dir / SPLIT_FILE).set_index("row")["split"]
        split = ok["row"].map(s).fillna("").astype(str)
    return ok, split


def _latent_frame(
    sel: pd.DataFrame, split: np.ndarray, mu: np.ndarray, logvar: np.ndarray, labels: list[str]
) -> pd.DataFrame:
    """One batch of latents.parquet: id, object, row, split, ``mu_*``, ``logvar_*``, labels."""
    d = mu.shape[1]
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "id": sel["id"].astype(str).to_numpy(),
                    "object": sel["object"].fillna("").astype(str).to_numpy(),
                    "row": sel["row"].to_numpy(np.int64),
                    "split": split,
                }
            ),
            pd.DataFrame(mu, columns=[f"mu_{i}" for i in range(d)]),
            pd.DataFrame(logvar, columns=[f"logvar_{i}" for i in range(d)]),
            sel[labels].reset_index(drop=True),
        ],
        axis=1,
    )


def encode(
    run_dir: str | Path,
    store: str | Path | None = None,
    *,
    out: str | Path | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> EncodeResult:
    """Write the latent means and log variances of every accepted spectrum to Parquet.

    Args:
        run_dir: a training run.
        store: the store to encode (default: the run's own store, which must be unchanged).
        out: output file (default ``RUN/latents.parquet``), written atomically.
        batch_size: spectra per forward pass.
        device: ``auto`` (GPU if available), ``cpu``, ``cuda``...
        progress: called as ``progress(done, total)`` after each batch.
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1")
    model, config = load_model(run_dir, device=_device(device))
    store_obj, same = _open_store(run_dir, config, store)
    ok, split = _accepted(store_obj, run_dir, same)
    labels = [c for c in store_obj.labels if c in ok.columns]
    path = Path(out) if out is not None else run_dir / LATENTS_FILE
    marks.output_file(path)
    tmp = path.with_name(path.name + ".tmp")
    dataset = StoreBatchDataset(store_obj.path, cache_chunks=2)
    dev = next(model.parameters()).device
    rows = ok["row"].to_numpy(np.int64)
    meta = latents_metadata(
        LatentsMetadata(
            run=str(run_dir),
            store=str(store_obj.path),
            store_fingerprint=store_obj.attrs.get("fingerprint"),
            latent_dim=model.latent_dim,
        )
    )
    writer: pq.ParquetWriter | None = None
    done = 0
    try:
        for batch_rows in _batches(rows, int(store_obj.flux.chunks[0]), batch_size):
            mu, logvar = _encode_block(model, dataset.read(batch_rows)["flux"], batch_size, dev)
            part = slice(done, done + batch_rows.size)
            frame = _latent_frame(ok.iloc[part], split.iloc[part].to_numpy(), mu, logvar, labels)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                schema = table.schema.with_metadata({**(table.schema.metadata or {}), **meta})
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.cast(writer.schema))
            done += batch_rows.size
            if progress is not None:
                progress(done, rows.size)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return EncodeResult(
        path=str(path),
        store=str(store_obj.path),
        n_spectra=int(done),
        latent_dim=model.latent_dim,
        same_store=same,
        columns=[*frame.columns],
        seconds=time.perf_counter() - t0,
    )


@torch.inference_mode()
def decode(
    run_or_model: str | Path | SpectrumVAE,
    z: np.ndarray,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = "cpu",
) -> np.ndarray:
    """Decoded spectra ``(k, L)`` (float32, the store's normalised flux) for latents ``z (k, D)``."""
    model = _resolve_model(run_or_model, device)
    z = np.asarray(z, dtype=np.float32)
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != model.latent_dim:
        raise ConfigError(f"z must have shape (k, {model.latent_dim}), got {z.shape}")
    dev = next(model.parameters()).device
    out = [
        model.decode(torch.from_numpy(z[i : i + batch_size]).to(dev)).float().cpu().numpy()
        for i in range(0, len(z), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, model.input_length), np.float32)


@dataclass
class Reconstruction:
    """Input and decoded spectra of some stored spectra (rows in the order asked).

    ``wave (L,)`` in Angstrom; ``flux``, ``valid``, ``recon`` ``(k, L)`` (recon decodes
    the latent mean); ``mu``, ``logvar`` ``(k, D)``; ``l1`` the masked mean |flux - recon|
    per spectrum.
    """

    ids: list[str]
    rows: np.ndarray
    wave: np.ndarray
    flux: np.ndarray
    valid: np.ndarray
    recon: np.ndarray
    mu: np.ndarray
    logvar: np.ndarray
    l1: np.ndarray

    def save(self, path: str | Path) -> Path:
        """Write all arrays to an ``.npz`` file."""
        path = Path(path)
        marks.output_file(path)
        np.savez_compressed(
            path,
            ids=np.array(self.ids, dtype=str),
            rows=self.rows,
            wave=self.wave,
            flux=self.flux,
            valid=self.valid,
            recon=self.recon,
            mu=self.mu,
            logvar=self.logvar,
            l1=self.l1,
        )
        return path


@torch.inference_mode()
def reconstruct(
    run_dir: str | Path,
    ids: Sequence[str],
    store: str | Path | None = None,
    *,
    device: str | torch.device | None = "cpu",
) -> Reconstruction:
    """Encode the spectra with the given ids and decode their latent means."""
    run_dir = Path(run_dir)
    ids = [str(i) for i in ids]
    if not ids:
        raise ConfigError("give at least one spectrum id")
    model, config = load_model(run_dir, device=device)
    store_obj, _ = _open_store(run_dir, config, store)
    meta = store_obj.metadata
    ok = meta[meta["status"] == "ok"]
    by_id = dict(zip(ok["id"].astype(str), ok["row"].astype(np.int64), strict=True))
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ConfigError(
            f"{len(missing)} id(s) are not accepted spectra of {store_obj.path}: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    rows = np.array([by_id[i] for i in ids], dtype=np.int64)
    flux, valid = store_obj.read(rows)
    dev = next(model.parameters()).device
    x = torch.from_numpy(flux).to(dev)
    mu, logvar = model.encode(x)
    recon = model.decode(mu)
    l1 = reconstruction_loss(recon, x, torch.from_numpy(valid).to(dev), kind="l1")
    return Reconstruction(
        ids=ids,
        rows=rows,
        wave=np.asarray(store_obj.wave),
        flux=flux,
        valid=valid,
        recon=recon.float().cpu().numpy(),
        mu=mu.float().cpu().numpy(),
        logvar=logvar.float().cpu().numpy(),
        l1=l1.float().cpu().numpy(),
    )


__all__ = [
    "LATENTS_FILE",
    "EncodeResult",
    "Reconstruction",
    "decode",
    "encode",
    "load_model",
    "reconstruct",
]
