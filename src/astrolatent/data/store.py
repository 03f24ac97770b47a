"""The spectrum store: a chunked, compressed Zarr group plus a Parquet metadata table.

Layout of a store directory::

    STORE/zarr.json            Zarr v3 group; attributes hold the format version, the
                               reader and preprocessing configuration and the plan fingerprint
    STORE/wave                 (L,) float64, wavelength of every stored pixel in Angstrom
    STORE/flux                 (N, L) float32 or float16, normalised flux (0 where invalid)
    STORE/valid                (N, L) bool, True where the pixel counts (weight 1)
    STORE/err                  (N, L) optional normalised 1-sigma errors
                               (these three: Blosc-LZ4 chunks of whole rows, chunk files
                               side by side, e.g. STORE/flux/c.ROW.0)
    STORE/parts/*.parquet      per-task metadata, written last by each task (resume marker)
    STORE/metadata.parquet     one row per stored row: row, id, object, file, checksum,
                               scale, snr, n_valid, status, reason, and the labels
    STORE/quarantine.parquet   files that could not be used, with the reason
    STORE/summary.json         counts written by the last ingestion

Why Zarr and not HDF5: several processes (a local pool or Dask workers on a cluster) write
disjoint row blocks of the same arrays at once without a lock, each chunk is its own object
so a killed writer can only leave whole-task work to redo, and readers open it lazily from
every data-loader worker. HDF5 needs a single writer (or MPI) for the same.
"""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path

import numcodecs
import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, BytesCodec
from zarr.codecs.bytes import Endian
from zarr.storage import LocalStore

from astrolatent.config import Config
from astrolatent.errors import StoreError

FORMAT_VERSION = 1


class InfoConfig(Config):
    """Options of ``astrolatent info``: none beyond the store (the class keeps the command
    like the others: ``--print-config`` and ``--config``)."""


#: Metadata columns astrolatent writes itself; label columns may not use these names.
RESERVED_COLUMNS = (
    "row",
    "id",
    "object",
    "file",
    "checksum",
    "scale",
    "snr",
    "n_valid",
    "status",
    "reason",
    # what readers record about a file (not labels): its flux unit as given, the aperture
    # read from a stack, the specutils loader used
    "flux_unit",
    "aperture",
    "specutils_format",
)
STATUSES = ("ok", "rejected", "quarantined")


class SpectrumStore:
    """Read access to a finished store. Opening is cheap; arrays are read lazily by row.

    Safe to open in every data-loader worker (nothing is loaded until asked for).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "zarr.json").is_file():
            raise StoreError(
                f"{self.path}: not a spectrum store (no zarr.json); create one with `astrolatent ingest`"
            )
        if not (self.path / "metadata.parquet").is_file():
            raise StoreError(
                f"{self.path}: ingestion has not finished (no metadata.parquet); re-run `astrolatent ingest` to resume"
            )
        self._group = zarr.open_group(str(self.path), mode="r")
        version = self.attrs.get("format_version")
        if version != FORMAT_VERSION:
            raise StoreError(
                f"{self.path}: store format version {version}, this astrolatent reads {FORMAT_VERSION}"
            )

    @classmethod
    def open(cls, path: str | Path) -> SpectrumStore:
        return cls(path)

    @cached_property
    def attrs(self) -> dict:
        return dict(self._group.attrs)

    @property
    def flux(self) -> zarr.Array:
        return self._group["flux"]

    @property
    def valid(self) -> zarr.Array:
        return self._group["valid"]

    @property
    def err(self) -> zarr.Array | None:
        return self._group["err"] if "err" in self._group else None

    @cached_property
    def wave(self) -> np.ndarray:
        """Wavelength of every pixel in Angstrom, shape ``(L,)``."""
        return np.asarray(self._group["wave"][:])

    @property
    def length(self) -> int:
        return int(self.flux.shape[1])

    @property
    def n_rows(self) -> int:
        return int(self.flux.shape[0])

    @cached_property
    def metadata(self) -> pd.DataFrame:
        """One row per stored row (ok, rejected and quarantined), indexed 0..n_rows-1."""
        return pd.read_parquet(self.path / "metadata.parquet")

    @property
    def labels(self) -> list[str]:
        """Names of the label columns in :attr:`metadata`."""
        return list(self.attrs.get("labels", []))

    def accepted_rows(self) -> np.ndarray:
        """Row indices of the accepted spectra (status ``ok``), sorted."""
        meta = self.metadata
        return meta.loc[meta["status"] == "ok", "row"].to_numpy(np.int64)

    def coverage(self, n_rows: int = 64) -> np.ndarray:
        """Pixels (L,) valid in at least one of the first ``n_rows`` accepted spectra: where a
        decoded spectrum means something (not padding or a masked range)."""
        rows = self.accepted_rows()[:n_rows]
        return np.asarray(self.valid.get_orthogonal_selection((rows, slice(None)))).any(axis=0)

    def read(self, rows: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Flux (float32) and validity mask of the given rows, shapes ``(len(rows), L)``.

        Rows are returned in the order asked for.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros((0, self.length), np.float32), np.zeros((0, self.length), bool)
        order = np.argsort(rows, kind="stable")
        uniq, inverse = np.unique(rows[order], return_inverse=True)
        flux = np.asarray(self.flux.get_orthogonal_selection((uniq, slice(None))), dtype=np.float32)
        valid = np.asarray(self.valid.get_orthogonal_selection((uniq, slice(None))))
        back = np.empty_like(order)
        back[order] = np.arange(rows.size)
        idx = inverse[back]
        return flux[idx], valid[idx]

    def info(self) -> dict:
        """Summary of the store (the payload of ``astrolatent info --json``)."""
        meta = self.metadata
        rejected = meta[meta["status"] == "rejected"]
        quarantine = self.quarantine()
        labels = self.labels
        return {
            "path": str(self.path),
            "n_spectra": int((meta["status"] == "ok").sum()),
            "n_rows": self.n_rows,
            "length": self.length,
            "dtype": str(self.flux.dtype),
            "chunks": list(self.flux.chunks),
            "has_errors": self.err is not None,
            "wavelength_range": [float(self.wave[0]), float(self.wave[-1])],
            "format": self.attrs.get("reader"),
            "formats": self.attrs.get("formats"),
            "grid_inference": self.attrs.get("grid_inference"),
            "preset": self.attrs.get("preset"),
            "preprocess": self.attrs.get("preprocess"),
            "n_objects": int(meta.loc[meta["status"] == "ok", "object"].nunique()),
            "n_rejected": len(rejected),
            "rejected": [{"id": r.id, "reason": r.reason} for r in rejected.itertuples()],
            "n_quarantined": len(quarantine),
            "quarantined": quarantine.to_dict(orient="records"),
            "labels": labels,
            "label_coverage": {
                name: int(meta.loc[meta["status"] == "ok", name].notna().sum()) for name in labels
            },
            "label_report": self.attrs.get("label_report"),
        }

    def quarantine(self) -> pd.DataFrame:
        """Files (or table rows) that could not be used: columns ``file``, ``reason``."""
        path = self.path / "quarantine.parquet"
        if not path.is_file():
            return pd.DataFrame({"file": pd.Series(dtype=str), "reason": pd.Series(dtype=str)})
        return pd.read_parquet(path)


def write_rows(group: zarr.Group, row0: int, blocks: dict[str, np.ndarray]) -> None:
    """Write row blocks (name -> array ``(n, L)``) of the store's arrays from ``row0`` on.

    The store's own layout (a local directory, chunks of whole rows, Blosc-compressed
    little-endian bytes) is written chunk file by chunk file, as the Zarr v3 format defines
    them: zarr-python's asynchronous write path costs about twice the compression itself per
    chunk (docs/benchmarks.md, "Ingestion speed"). Any other array goes through zarr, writing
    every chunk (its default first compares each chunk with the fill value).
    """
    for name, block in blocks.items():
        array = group[name]
        if not _write_chunk_files(array, row0, block):
            array.with_config({"write_empty_chunks": True})[row0 : row0 + len(block)] = block


_SHUFFLE = {
    BloscShuffle.noshuffle: numcodecs.Blosc.NOSHUFFLE,
    BloscShuffle.shuffle: numcodecs.Blosc.SHUFFLE,
    BloscShuffle.bitshuffle: numcodecs.Blosc.BITSHUFFLE,
}


def _write_chunk_files(array: zarr.Array, row0: int, block: np.ndarray) -> bool:
    """Write whole row chunks of a local Blosc array as its chunk files; False (and nothing
    written) when the array or the block is laid out otherwise."""
    rows, width = array.chunks
    compressors = array.compressors if array.metadata.zarr_format == 3 else ()
    if not (
        isinstance(array.store, LocalStore)
        and len(compressors) == 1
        and isinstance(compressors[0], BloscCodec)
        and isinstance(array.serializer, BytesCodec)
        and sys.byteorder == "little"
        and array.serializer.endian in (None, Endian.little)
        and width == array.shape[1]
        and row0 % rows == 0
        and (len(block) % rows == 0 or row0 + len(block) == array.shape[0])
        and block.dtype == array.dtype
        and block.flags.c_contiguous
    ):
        return False
    codec = compressors[0]
    blosc = numcodecs.Blosc(
        cname=codec.cname.value,
        clevel=codec.clevel,
        shuffle=_SHUFFLE[codec.shuffle],
        blocksize=codec.blocksize,
    )
    folder = Path(array.store.root) / array.path
    for k in range(0, len(block), rows):
        chunk = block[k : k + rows]
        if len(chunk) < rows:  # the array's last chunk is stored at full size
            pad = np.full((rows - len(chunk), width), array.fill_value, block.dtype)
            chunk = np.concatenate([chunk, pad])
        key = array.metadata.encode_chunk_key(((row0 + k) // rows, 0))
        if "/" in key:  # the default separator: one folder per chunk row
            (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(blosc.encode(chunk))
    return True
