"""Data for training: the object-level split, a batch sampler and a store-backed dataset.

Nothing here loads the data set into memory. The dataset opens the store lazily in each
process (and each data-loader worker) and keeps a small LRU cache of decompressed store
chunks; the batch sampler orders rows so that consecutive batches touch few chunks.

The training stream is infinite and a pure function of ``(seed, world size, batch size,
step)``: batch ``k`` of rank ``r`` is the same whenever it is asked for. That is what makes
a resumed run continue exactly where the killed one stopped (the data module starts the
stream at the trainer's restored global step), and what gives every rank a disjoint share
of each epoch under data-parallel training.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler

from astrolatent.data.store import SpectrumStore
from astrolatent.errors import ConfigError, StoreError
from astrolatent.training.config import DataConfig, KnownLabelsConfig

log = logging.getLogger(__name__)


def split_by_object(
    metadata: pd.DataFrame, *, val_fraction: float, random_state: int
) -> pd.DataFrame:
    """Assign every accepted spectrum to ``train`` or ``val`` with no object in both.

    Objects are shuffled with ``random_state`` and moved to the validation set until it holds
    at least ``val_fraction`` of the spectra. Spectra with no object name count as their own
    object. Returns a frame with columns ``row, id, object, split`` sorted by row.
    """
    ok = metadata.loc[metadata["status"] == "ok", ["row", "id", "object"]].copy()
    ok = ok.sort_values("row").reset_index(drop=True)
    if ok.empty:
        raise StoreError("the store holds no accepted spectra to train on")
    obj = ok["object"].fillna("").astype(str).str.strip()
    key = obj.where(obj != "", "id:" + ok["id"].astype(str))
    ok["split"] = "train"
    if val_fraction > 0:
        counts = key.value_counts()
        if len(counts) < 2:
            raise ConfigError(
                f"all {len(ok)} spectra belong to one object ({counts.index[0]!r}), so no split by "
                "object is possible; set data.val_fraction=0 to train without validation"
            )
        names = np.array(sorted(counts.index))
        rng = np.random.default_rng(random_state)
        order = names[rng.permutation(names.size)]
        target = val_fraction * len(ok)
        chosen: list[str] = []
        total = 0
        for name in order[:-1]:  # keep at least one object for training
            if total >= target:
                break
            chosen.append(name)
            total += int(counts[name])
        ok.loc[key.isin(chosen).to_numpy(), "split"] = "val"
    ok["object"] = obj
    return ok[["row", "id", "object", "split"]]


def known_label_stats(
    store: SpectrumStore, train_rows: np.ndarray, names: list[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and standard deviation (label units) of each known label over the labelled
    training rows; a ConfigError names a label the store lacks or cannot standardise."""
    meta = store.metadata.set_index("row")
    mean, std = {}, {}
    for name in names:
        if name not in store.labels or name not in meta.columns:
            raise ConfigError(
                f"--known-labels: {name!r} is not a label of {store.path} "
                f"(labels there: {', '.join(store.labels) or 'none'})"
            )
        values = pd.to_numeric(meta.loc[train_rows, name], errors="coerce").to_numpy(float)
        values = values[np.isfinite(values)]
        if values.size < 2 or np.std(values) == 0:
            raise ConfigError(
                f"--known-labels: {name!r} has {values.size} labelled training spectra"
                + (" of one value" if values.size >= 2 else "")
                + "; a tied latent needs a label that varies"
            )
        mean[name], std[name] = float(np.mean(values)), float(np.std(values))
    return mean, std


def known_label_arrays(
    store: SpectrumStore, config: KnownLabelsConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised known labels and their variances, each ``(n_rows, K)`` float32, indexed by
    store row: ``(label - mean) / std`` (NaN where unlabelled) and ``(err / std)**2`` from the
    ``<name>_err`` column when the store has one (0 otherwise)."""
    meta = store.metadata.set_index("row").reindex(np.arange(store.n_rows))
    k = len(config.names)
    values = np.full((store.n_rows, k), np.nan, np.float32)
    var = np.zeros((store.n_rows, k), np.float32)
    for j, name in enumerate(config.names):
        std = config.std[name]
        raw = pd.to_numeric(meta[name], errors="coerce").to_numpy(float)
        values[:, j] = (raw - config.mean[name]) / std
        err_col = f"{name}_err"
        if err_col in meta.columns:
            err = pd.to_numeric(meta[err_col], errors="coerce").to_numpy(float)
            var[:, j] = np.where(np.isfinite(err), (err / std) ** 2, 0.0)
    return values, var


class StreamBatchSampler(Sampler[np.ndarray]):
    """An infinite, seeded, resumable stream of row batches for one rank.

    Every epoch is a fresh seeded order of ``rows`` (or, with ``weights``, a seeded draw of
    ``len(rows)`` rows with probability proportional to the weights). The epoch is cut into
    global batches of ``batch_size * world_size`` rows (the incomplete tail is dropped) and
    rank ``r`` takes the ``r``-th slice of each, so ranks never share a row within an epoch.
    ``start`` skips that many batches (the trainer's global step on resume).

    ``shuffle="chunks"``: the chunks of the store (``chunk_rows`` rows each) are put in a
    random order, grouped by ``window`` chunks, and the rows are shuffled within each group.
    """

    def __init__(
        self,
        rows: np.ndarray,
        *,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        weights: np.ndarray | None = None,
        shuffle: str = "chunks",
        chunk_rows: int = 1,
        window: int = 8,
    ) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.start = int(start)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.shuffle = shuffle
        self.chunk_rows = max(1, int(chunk_rows))
        self.window = max(1, int(window))
        global_batch = self.batch_size * self.world_size
        if self.rows.size < global_batch:
            raise ConfigError(
                f"batch_size={self.batch_size} x {self.world_size} process(es) needs at least "
                f"{global_batch} training spectra; the training split has {self.rows.size}"
            )
        self.batches_per_epoch = self.rows.size // global_batch

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The rows of ``epoch`` in stream order (all ranks, before the tail is dropped)."""
        rng = np.random.default_rng([self.seed, epoch])
        rows = self.rows
        if self.weights is not None:
            p = self.weights / self.weights.sum()
            rows = np.sort(rng.choice(rows, size=rows.size, replace=True, p=p))
        if self.shuffle == "full":
            return rows[rng.permutation(rows.size)]
        chunk = rows // self.chunk_rows
        uniq = np.unique(chunk)
        rank_of = np.empty(int(uniq.max()) + 1, dtype=np.int64)
        rank_of[uniq[rng.permutation(uniq.size)]] = np.arange(uniq.size)
        group = rank_of[chunk] // self.window
        noise = rng.random(rows.size)
        return rows[np.lexsort((noise, group))]

    def batch(self, index: int) -> np.ndarray:
        """Rows of this rank's batch number ``index`` of the stream."""
        epoch, k = divmod(index, self.batches_per_epoch)
        order = self._order(epoch)
        g = self.batch_size * self.world_size
        lo = k * g + self.rank * self.batch_size
        return order[lo : lo + self.batch_size]

    def _order(self, epoch: int) -> np.ndarray:
        if getattr(self, "_cached_epoch", None) != epoch:
            self._cached = self.epoch_order(epoch)
            self._cached_epoch = epoch
        return self._cached

    def __iter__(self) -> Iterator[np.ndarray]:
        index = self.start
        while True:
            yield self.batch(index)
            index += 1


class StoreBatchDataset(torch.utils.data.Dataset):
    """Reads whole batches of rows from a store: ``dataset[rows]`` -> a dict of tensors.

    The store is opened on first use in each process; decompressed chunks are kept in an
    LRU cache of ``cache_chunks`` entries. Items: ``flux`` float32 ``(B, L)``, ``valid``
    bool ``(B, L)``, ``row`` int64 ``(B,)``, with ``with_errors`` ``err`` float32, and with
    ``known = (values, var)`` (each ``(n_rows, K)``, see :func:`known_label_arrays`) the
    batch's rows of them as ``known`` and ``known_var``.
    """

    def __init__(
        self,
        store_path: str | Path,
        *,
        with_errors: bool = False,
        cache_chunks: int = 12,
        known: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.store_path = str(store_path)
        self.with_errors = with_errors
        self.cache_chunks = cache_chunks
        self.known = known
        self._store: SpectrumStore | None = None
        self._cache: OrderedDict[int, tuple[np.ndarray, ...]] = OrderedDict()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_store"] = None
        state["_cache"] = OrderedDict()
        return state

    @property
    def store(self) -> SpectrumStore:
        if self._store is None:
            self._store = SpectrumStore(self.store_path)
            if self.with_errors and self._store.err is None:
                raise StoreError(
                    f"{self.store_path}: the store holds no errors, needed by loss.reconstruction='ivar'"
                )
        return self._store

    def _chunk(self, index: int) -> tuple[np.ndarray, ...]:
        hit = self._cache.get(index)
        if hit is not None:
            self._cache.move_to_end(index)
            return hit
        store = self.store
        size = store.flux.chunks[0]
        sl = slice(index * size, min((index + 1) * size, store.n_rows))
        arrays = [np.asarray(store.flux[sl]), np.asarray(store.valid[sl])]
        if self.with_errors:
            arrays.append(np.asarray(store.err[sl]))
        entry = tuple(arrays)
        self._cache[index] = entry
        while len(self._cache) > self.cache_chunks:
            self._cache.popitem(last=False)
        return entry

    def read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64)
        store = self.store
        size = store.flux.chunks[0]
        n = rows.size
        flux = np.empty((n, store.length), np.float32)
        valid = np.empty((n, store.length), bool)
        err = np.empty((n, store.length), np.float32) if self.with_errors else None
        chunk = rows // size
        for c in np.unique(chunk):
            where = np.flatnonzero(chunk == c)
            entry = self._chunk(int(c))
            local = rows[where] - c * size
            flux[where] = entry[0][local]
            valid[where] = entry[1][local]
            if err is not None:
                err[where] = entry[2][local]
        out = {"flux": flux, "valid": valid, "row": rows}
        if err is not None:
            out["err"] = err
        if self.known is not None:
            out["known"], out["known_var"] = self.known[0][rows], self.known[1][rows]
        return out

    def __getitem__(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v) for k, v in self.read(rows).items()}

    def __len__(self) -> int:
        return self.store.n_rows


def _identity(batch: dict) -> dict:
    return batch


class SpectrumDataModule(L.LightningDataModule):
    """Train and validation loaders over a store, for one rank of ``world_size``.

    ``split`` is the frame of :func:`split_by_object`. The training loader is infinite (see
    :class:`StreamBatchSampler`) and starts at the trainer's global step, so Lightning needs
    ``use_distributed_sampler=False`` and step-based validation. Each rank validates its own
    contiguous share of the validation rows. ``known``: the known-label arrays the batches
    carry (see :class:`StoreBatchDataset`).
    """

    def __init__(
        self,
        store_path: str | Path,
        split: pd.DataFrame,
        config: DataConfig,
        *,
        batch_size: int,
        seed: int,
        with_errors: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
        known: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.known = known
        self.store_path = str(store_path)
        self.split = split
        self.config = config
        self.batch_size = batch_size
        self.seed = seed
        self.with_errors = with_errors
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self._chunk_rows: int | None = None

    @property
    def rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def chunk_rows(self) -> int:
        if self._chunk_rows is None:
            self._chunk_rows = int(SpectrumStore(self.store_path).flux.chunks[0])
        return self._chunk_rows

    def train_rows(self) -> np.ndarray:
        return self.split.loc[self.split["split"] == "train", "row"].to_numpy(np.int64)

    def val_rows(self) -> np.ndarray:
        return self.split.loc[self.split["split"] == "val", "row"].to_numpy(np.int64)

    def object_weights(self) -> np.ndarray:
        """1 / (number of training spectra of the object) for every training row."""
        train = self.split[self.split["split"] == "train"]
        counts = train["object"].where(train["object"] != "", "id:" + train["id"].astype(str))
        return 1.0 / counts.map(counts.value_counts()).to_numpy(np.float64)

    def sampler(self, *, start: int = 0, rank: int = 0, world_size: int = 1) -> StreamBatchSampler:
        return StreamBatchSampler(
            self.train_rows(),
            batch_size=self.batch_size,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            start=start,
            weights=self.object_weights() if self.config.balance_objects else None,
            shuffle=self.config.shuffle,
            chunk_rows=self.chunk_rows(),
            window=self.config.shuffle_window,
        )

    def _loader(self, sampler: object, *, persistent: bool) -> DataLoader:
        dataset = StoreBatchDataset(
            self.store_path,
            with_errors=self.with_errors,
            cache_chunks=self.config.cache_chunks,
            known=self.known,
        )
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=persistent and self.num_workers > 0,
            pin_memory=self.pin_memory,
            collate_fn=_identity,
        )

    def train_dataloader(self) -> DataLoader:
        rank, world = self.rank_world
        start = self.trainer.global_step if self.trainer is not None else 0
        return self._loader(self.sampler(start=start, rank=rank, world_size=world), persistent=True)

    def val_batches(self, rank: int = 0, world_size: int = 1) -> list[np.ndarray]:
        rows = np.sort(self.val_rows())
        share = np.array_split(rows, world_size)[rank]
        size = self.config.val_batch_size or self.batch_size
        batches = [share[i : i + size] for i in range(0, share.size, size)]
        if self.config.max_val_batches is not None:
            batches = batches[: self.config.max_val_batches]
        return batches

    def val_dataloader(self) -> DataLoader | list:
        rank, world = self.rank_world
        if self.val_rows().size == 0:
            return []
        batches = self.val_batches(rank, world)
        if not batches:
            raise ConfigError(
                f"the validation split has {self.val_rows().size} spectra, fewer than the "
                f"{world} processes; raise data.val_fraction"
            )
        return self._loader(batches, persistent=True)


__all__ = [
    "SpectrumDataModule",
    "StoreBatchDataset",
    "StreamBatchSampler",
    "known_label_arrays",
    "known_label_stats",
    "split_by_object",
]
