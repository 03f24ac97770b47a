"""Streaming, parallel, resumable ingestion of spectrum files into a store.

The plan: input files are expanded and sorted (so the row of every spectrum is fixed by the
inputs alone), counted, and cut into tasks of whole chunk rows. Each task reads its files,
preprocesses every spectrum, writes its row block of the Zarr arrays and then, last, its
metadata part (``parts/task-NNNNNN.parquet``, written atomically). A task whose part exists
is done; anything else is redone from scratch on the next run, so killing the process at any
moment and re-running gives the same store as an uninterrupted run. Memory is bounded by the
task size and the worker count, never by the data set.

Tasks run inline (1 worker), in a local process pool, or on a Dask distributed cluster
(``scheduler`` = its address; the store must then be on a file system all workers see).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import zarr
from pydantic import Field
from zarr.codecs import BloscCodec

from astrolatent import __version__
from astrolatent.config import Config
from astrolatent.data import checksum as checksum_api
from astrolatent.data import presets as preset_registry
from astrolatent.data import readers as readers_api
from astrolatent.data.labels import join_labels, load_labels
from astrolatent.data.preprocess import (
    GridConfig,
    PreprocessConfig,
    Preprocessor,
    Processed,
    check_content,
)
from astrolatent.data.store import (
    FORMAT_VERSION,
    RESERVED_COLUMNS,
    SpectrumStore,
    write_rows,
)
from astrolatent.errors import ConfigError, InputFileError, StoreError
from astrolatent.outputs import marks
from astrolatent.outputs.io import write_parquet_atomic
from astrolatent.outputs.layout import (
    STORE_CONFIG_FILE,
    STORE_METADATA_FILE,
    STORE_QUARANTINE_FILE,
    STORE_SUMMARY_FILE,
)
from astrolatent.outputs.summaries import (
    INGEST_SUMMARY_FORMAT_VERSION,
    StoreSummary,
    provenance,
    write_summary,
)

log = logging.getLogger(__name__)

FITS_SUFFIXES = tuple(
    base + comp for base in (".fits", ".fit", ".fts") for comp in ("", ".gz", ".bz2", ".fz")
)
#: Spectra read to infer a grid (spread evenly over the sorted inputs), and the most
#: files tried before giving up when none passes validation.
GRID_SAMPLE = 32
GRID_TRIES = 4 * GRID_SAMPLE
#: what ingestion writes in a store (the only names it ever removes there)
STORE_OWNS = (
    *("zarr.json", "flux", "valid", "err", "wave", "parts", STORE_CONFIG_FILE),
    *(STORE_METADATA_FILE, STORE_QUARANTINE_FILE, STORE_SUMMARY_FILE),
)
CHUNK_BYTES = 2 * 1024**2
TASK_BYTES = 32 * 1024**2
#: Stages whose time each task reports (``IngestSummary.stage_seconds``).
STAGES = ("read", "hash", "preprocess", "write")


class IngestConfig(Config):
    """Everything that decides the content of a store (saved as ``STORE/ingest.yaml``)."""

    format: str | None = None
    reader_options: dict = Field(default_factory=dict)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    preset: str | None = None
    labels: str | None = None
    id_column: str = "id"
    workers: int = Field(default=1, ge=1)
    scheduler: str | None = None
    rows_per_task: int | None = Field(default=None, ge=1)
    checksum: bool = True
    #: hash of the ``checksum`` column; a store keeps the one it was created with
    checksum_algorithm: Literal["xxh3-128", "blake3", "sha256"] = checksum_api.DEFAULT

    @classmethod
    def from_preset(cls, name: str, **overrides: object) -> IngestConfig:
        preset = preset_registry.get(name)
        base = {
            "format": preset.reader,
            "reader_options": preset.reader_options,
            "preprocess": preset.preprocess,
            "preset": name,
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(base, source=f"preset {name!r}")


@dataclass(frozen=True)
class Segment:
    """Spectra ``start:stop`` of one file, stored from row ``row0`` on."""

    path: str
    start: int
    stop: int
    row0: int
    reader: str = ""


@dataclass(frozen=True)
class Task:
    index: int
    row0: int
    row1: int
    segments: tuple[Segment, ...]


@dataclass
class IngestSummary:
    store: str
    n_files: int
    n_rows: int
    n_ok: int
    n_rejected: int
    n_quarantined: int
    n_tasks: int
    n_tasks_skipped: int
    wall_seconds: float
    label_report: dict | None
    #: seconds per stage (read, hash, preprocess, write), summed over the tasks run now
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], list[dict]]:
    """Files to ingest (sorted, unique) and the inputs that do not exist.

    An input is a FITS file, a folder (searched recursively for FITS files), or a text file
    (``.txt``/``.lst``) listing one path per line (relative to the list's folder).
    """
    files: set[Path] = set()
    missing: list[dict] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.update(
                p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(FITS_SUFFIXES)
            )
        elif path.is_file() and path.suffix.lower() in {".txt", ".lst"}:
            try:
                listed = path.read_text().splitlines()
            except (OSError, UnicodeDecodeError):
                missing.append({"file": str(path), "reason": "unreadable list of paths"})
                continue
            for line in listed:
                line = line.strip()
                if line and not line.startswith("#"):
                    sub, miss = expand_inputs(
                        [path.parent / line if not Path(line).is_absolute() else Path(line)]
                    )
                    files.update(sub)
                    missing.extend(miss)
        elif path.is_file():
            files.add(path)
        else:
            missing.append({"file": str(path), "reason": "file not found"})
    return _unique_files(files), missing


def _unique_files(files: set[Path]) -> list[Path]:
    """Sorted resolved paths, one per file: a file reached by two paths (a symbolic or hard
    link) is read once, under its first path in sorted order."""
    seen: set[tuple[int, int]] = set()
    out = []
    for path in sorted({p.resolve() for p in files}):
        st = path.stat()
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            out.append(path)
    return out


def identify_files(files: list[Path], config: IngestConfig) -> tuple[dict[Path, str], list[dict]]:
    """The reader of every file, and the files no reader claims (with the reasons).

    With ``config.format`` every file gets that reader; otherwise each file is identified
    by its own content, so one store may hold several formats.
    """
    if config.format is not None:
        return dict.fromkeys(files, config.format), []
    names: dict[Path, str] = {}
    unknown: list[dict] = []
    for path in files:
        try:
            names[path] = readers_api.identify(path)
        except InputFileError as exc:
            unknown.append({"file": str(path), "reason": exc.reason})
    return names, unknown


def _sample_order(n: int) -> list[int]:
    """Indices 0..n-1: GRID_SAMPLE spread evenly over the range first, then the rest."""
    first = list(dict.fromkeys(np.linspace(0, n - 1, min(n, GRID_SAMPLE)).round().astype(int)))
    chosen = set(first)
    return first + [i for i in range(n) if i not in chosen]


def _uniform(wave: np.ndarray) -> tuple[str, float] | None:
    """(scale, step) when the wavelengths are uniformly spaced in linear or log10."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_wave = np.log10(wave)
    for scale, coord in (("linear", wave), ("log", log_wave)):
        diff = np.diff(coord)
        tol = 1e-6 * abs(diff.mean()) + (1e-9 if scale == "linear" else 1e-12)
        if np.max(np.abs(diff - diff.mean())) <= tol:
            return scale, float(diff.mean())
    return None


def infer_grid(files: list[Path], names: dict[Path, str], config: IngestConfig) -> dict:
    """Infer the target grid from spectra that pass validation (never from one file alone).

    Up to GRID_SAMPLE files, spread evenly over the sorted inputs, are read and checked
    (finite, monotonic wavelengths, some finite flux); files that fail are skipped, with
    their reasons, and more are tried. The grid spans the median coverage (the lower
    medians of the first and last wavelengths). When every sampled spectrum is uniformly
    sampled with one step in linear (or log10) wavelength, the grid has that step;
    otherwise (sampling neither linear nor log-linear, as for SpeX prism spectra, or
    differing between files) it is log-linear at the median resolution, the median over
    spectra of their median log10 step, and spectra are resampled flux-conserving.

    Returns ``{"grid", "resample", "rule", "files", "skipped"}``; ``resample`` is None
    when the configured resampling stays.
    """
    spectra, used, skipped = [], [], []
    candidates = [f for f in files if f in names]
    for i in _sample_order(len(candidates)):
        if len(spectra) == GRID_SAMPLE or len(spectra) + len(skipped) == GRID_TRIES:
            break
        path = candidates[i]
        try:
            reader = readers_api.get(names[path], **config.reader_options)
            spectrum = check_content(reader.read(path, 0, 1)[0])
        except IndexError:
            skipped.append({"file": str(path), "reason": "holds no spectra"})
            continue
        except InputFileError as exc:
            skipped.append({"file": str(path), "reason": exc.reason})
            continue
        spectra.append(spectrum)
        used.append(path.name)
    if not spectra:
        reasons = "; ".join(f"{Path(s['file']).name}: {s['reason']}" for s in skipped[:3])
        raise ConfigError(
            f"none of the {len(files)} input files could be read as a spectrum"
            + (f" ({len(skipped)} tried; e.g. {reasons})" if reasons else "")
        )
    starts = np.sort([s.wave[0] for s in spectra])
    stops = np.sort([s.wave[-1] for s in spectra])
    mid = (len(spectra) - 1) // 2
    start, stop = float(starts[mid]), float(stops[mid])
    if stop <= start:
        raise ConfigError(
            f"the sampled spectra share no wavelength range (median start {start:.6g} A, "
            f"median end {stop:.6g} A); give a target grid (--grid START,STOP,STEP)"
        )
    kinds = [_uniform(s.wave) for s in spectra]
    first = kinds[0]
    shared = first is not None and all(
        k is not None and k[0] == first[0] and abs(k[1] - first[1]) <= 1e-6 * first[1]
        for k in kinds
    )
    if shared:
        scale, step = first
        rule = f"{scale} sampling with one step in all {len(spectra)} sampled spectra"
        resample = None
    else:
        scale = "log"
        with np.errstate(divide="ignore", invalid="ignore"):
            step = float(np.median([np.median(np.diff(np.log10(s.wave))) for s in spectra]))
        rule = (
            f"sampling not one uniform linear or log-linear step in the {len(spectra)} sampled "
            "spectra: log-linear at their median resolution, flux-conserving resampling"
        )
        resample = "flux-conserving"
    grid = GridConfig(start=start, stop=stop, step=step, scale=scale)
    return {
        "grid": grid,
        "resample": resample,
        "rule": rule + f"; median coverage {start:.6g}-{stop:.6g} A",
        "files": used,
        "skipped": skipped,
    }


def _chunk_rows(length: int, itemsize: int) -> int:
    rows = max(1, CHUNK_BYTES // (length * itemsize))
    return int(min(4096, 2 ** int(np.floor(np.log2(rows)))))


def _fingerprint(files: list[Path], config: IngestConfig) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    content = {
        k: v
        for k, v in config.to_dict().items()
        # the checksum algorithm is the store's own (older stores' fingerprints stay valid)
        if k not in {"labels", "id_column", "workers", "scheduler", "checksum_algorithm"}
    }
    h.update(json.dumps(content, sort_keys=True).encode())
    return h.hexdigest()


def _store_checksum(store: Path) -> str | None:
    """The checksum algorithm of a store's ``checksum`` column (None: no checksums);
    stores written before the attribute existed used SHA-256."""
    attrs = zarr.open_group(str(store), mode="r").attrs
    algorithm = attrs.get("checksum_algorithm", checksum_api.UNRECORDED)
    if algorithm is not None and algorithm not in checksum_api.ALGORITHMS:
        raise StoreError(
            f"{store}: checksum_algorithm {algorithm!r} is not one of "
            f"{', '.join(checksum_api.ALGORITHMS)}; rebuild the store with --overwrite"
        )
    return algorithm


@dataclass
class Plan:
    files: list[Path]
    reader: str
    config: IngestConfig
    length: int
    chunk_rows: int
    n_rows: int
    tasks: list[Task]
    quarantine: list[dict]
    fingerprint: str
    formats: dict[str, int] = field(default_factory=dict)
    grid_inference: dict | None = None
    #: the preset's own labels (read before any task runs, so a missing package fails first)
    preset_labels: pd.DataFrame | None = None


def make_plan(inputs: Sequence[str | Path], config: IngestConfig) -> Plan:
    """Expand inputs, pick the reader, fix the grid, count spectra and cut tasks."""
    files, quarantine = expand_inputs(inputs)
    if not files:
        raise ConfigError(f"no FITS files found in {', '.join(map(str, inputs))}")
    names, unknown = identify_files(files, config)
    quarantine.extend(unknown)
    if not names:
        reasons = "; ".join(f"{Path(q['file']).name}: {q['reason']}" for q in unknown[:2])
        raise ConfigError(
            f"none of the {len(files)} input files could be read as a spectrum ({reasons})"
        )
    grid_inference = None
    if config.preprocess.grid is None:
        grid_inference = infer_grid(files, names, config)
        update = {"grid": grid_inference.pop("grid")}
        resample = grid_inference.pop("resample")
        if resample is not None and config.preprocess.resample == "auto":
            update["resample"] = resample
        grid_inference["resample"] = update.get("resample", config.preprocess.resample)
        log.info("grid %s inferred: %s", update["grid"], grid_inference["rule"])
        config = config.model_copy(
            update={"preprocess": config.preprocess.model_copy(update=update)}
        )
    formats = sorted(set(names.values()))
    reader_name = formats[0] if len(formats) == 1 else "mixed"
    if len(formats) == 1:
        config = config.model_copy(update={"format": reader_name})
    readers = {name: readers_api.get(name, **config.reader_options) for name in formats}
    # validated again: --pad-to must still hold the grid inferred above
    PreprocessConfig.from_dict(config.preprocess.to_dict(), source="preprocessing (inferred grid)")
    length = config.preprocess.length
    itemsize = np.dtype(config.preprocess.dtype).itemsize
    chunk = _chunk_rows(length, itemsize)
    if config.rows_per_task:
        chunk = min(chunk, config.rows_per_task)

    counts: list[tuple[Path, int]] = []
    for path in files:
        if path not in names:
            continue
        try:
            n = readers[names[path]].count(path)
        except InputFileError as exc:
            quarantine.append({"file": str(path), "reason": exc.reason})
            continue
        if n == 0:
            quarantine.append({"file": str(path), "reason": "holds no spectra"})
        counts.append((path, n))
    n_rows = sum(n for _, n in counts)
    if n_rows == 0:
        raise ConfigError(f"the {len(files)} input files hold no readable spectra")
    workers = config.workers
    if config.rows_per_task:
        task_rows = config.rows_per_task
    else:
        per_task = max(chunk, (TASK_BYTES // (length * itemsize)) // chunk * chunk)
        balance = -(-n_rows // (4 * workers))  # at least ~4 tasks per worker when data are small
        task_rows = min(per_task, -(-balance // chunk) * chunk)
    task_rows = max(chunk, -(-task_rows // chunk) * chunk)  # whole chunks: no two tasks share one

    tasks: list[Task] = []
    segments: list[Segment] = []
    row = 0
    task_start = 0
    for path, n in counts:
        start = 0
        while start < n:
            room = task_start + task_rows - row
            take = min(room, n - start)
            segments.append(Segment(str(path), start, start + take, row, names[path]))
            row += take
            start += take
            if row - task_start == task_rows:
                tasks.append(Task(len(tasks), task_start, row, tuple(segments)))
                segments, task_start = [], row
    if segments:
        tasks.append(Task(len(tasks), task_start, row, tuple(segments)))
    return Plan(
        files=files,
        reader=reader_name,
        config=config,
        length=length,
        chunk_rows=chunk,
        n_rows=n_rows,
        tasks=tasks,
        quarantine=quarantine,
        fingerprint=_fingerprint(files, config),
        formats={name: sum(1 for v in names.values() if v == name) for name in formats},
        grid_inference=grid_inference,
        preset_labels=(
            preset_registry.get(config.preset).label_table()
            if config.preset is not None and not config.labels
            else None
        ),
    )


def _create_store(path: Path, plan: Plan, overwrite: bool) -> None:
    """Create the store's arrays, or check that an existing store holds the same plan."""
    if (path / "zarr.json").is_file():
        group = zarr.open_group(str(path), mode="r")
        old = group.attrs.get("fingerprint")
        if old == plan.fingerprint:
            return
        if old is not None and not overwrite:
            raise StoreError(
                f"{path}: this store was built from other inputs or preprocessing; "
                "choose a new store path or pass --overwrite"
            )
    pre = plan.config.preprocess
    marks.clear(path)  # an earlier or unfinished build: only its own files go
    group = zarr.create_group(store=str(path))
    rows = {
        "shape": (plan.n_rows, plan.length),
        "chunks": (plan.chunk_rows, plan.length),
        "compressors": BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
        # chunk files side by side (flux/c.ROW.0): no directory to create per row
        "chunk_key_encoding": {"name": "default", "separator": "."},
    }
    group.create_array("flux", dtype=pre.dtype, fill_value=0, **rows)
    group.create_array("valid", dtype=bool, fill_value=False, **rows)
    if pre.store_errors:
        group.create_array("err", dtype=pre.dtype, fill_value=0, **rows)
    wave = group.create_array("wave", shape=(plan.length,), chunks=(plan.length,), dtype="float64")
    wave[:] = pre.wavelengths()
    (path / "parts").mkdir(exist_ok=True)
    plan.config.save(path / "ingest.yaml")
    group.attrs.update(
        {
            "format_version": FORMAT_VERSION,
            "astrolatent_version": __version__,
            "reader": plan.reader,
            "formats": plan.formats,
            "grid_inference": plan.grid_inference,
            "reader_options": plan.config.reader_options,
            "preset": plan.config.preset,
            "preprocess": pre.to_dict(),
            "n_files": len(plan.files),
            "plan_quarantine": plan.quarantine,
            "checksum_algorithm": plan.config.checksum_algorithm if plan.config.checksum else None,
            # written last: a store without it is incomplete and gets recreated
            "fingerprint": plan.fingerprint,
        }
    )


def _forget_changed(store: Path, plan: Plan, algorithm: str | None) -> None:
    """Remove the metadata part of every done task one of whose files no longer has the
    checksum (of the store's algorithm) recorded in it, so that the task is redone."""
    if algorithm is None:
        raise ConfigError("--verify compares checksums, and this store has none (checksum: false)")
    sums: dict[str, str] = {}
    for task in plan.tasks:
        part = _part_path(store, task.index)
        if not part.is_file():
            continue
        recorded = pd.read_parquet(part, columns=["row", "checksum"]).set_index("row")["checksum"]
        for seg in task.segments:  # the files themselves: a table row's source is "FILE[i]"
            rows = recorded.reindex(range(seg.row0, seg.row0 + seg.stop - seg.start))
            known = set(rows.dropna()) - {""}
            if not known:
                continue
            if seg.path not in sums:  # a table file spans several segments: hashed once
                sums[seg.path] = checksum_api.file_checksum(seg.path, algorithm)
            if sums[seg.path] not in known:
                log.warning("%s changed since it was ingested: its task is redone", seg.path)
                part.unlink()
                break


def _part_path(store: Path, index: int) -> Path:
    return store / "parts" / f"task-{index:06d}.parquet"


def run_task(
    store_path: str,
    task: Task,
    reader: str,
    reader_options: dict,
    preprocess_config: dict,
    checksum: str | None,
) -> dict:
    """Process one task: read, preprocess, write its row block, then its metadata part.

    Every file is read once into a buffer kept per thread when it is hashed (``checksum``,
    the algorithm, or None) or its reader parses bytes; the reader then parses that buffer.
    Runs in a worker process (pool or Dask); everything it needs travels as arguments.
    """
    prep = task_preprocessor(preprocess_config)
    config = prep.config
    rdrs: dict[str, readers_api.Reader] = {}
    n = task.row1 - task.row0
    flux, valid, err = task_blocks(n, config)
    records: list[dict] = []
    sums: dict[str, str] = {}
    clock = _Clock()
    ahead = checksum_api.ReadAhead([s.path for s in task.segments])
    for seg in task.segments:
        ahead.at(seg.path)
        name = Path(seg.path).name.split(".fits")[0]
        try:
            fmt = seg.reader or reader
            if fmt not in rdrs:
                rdrs[fmt] = readers_api.get(fmt, **reader_options)
            spectra = _read_segment(rdrs[fmt], seg, checksum, sums, clock)
            if len(spectra) != seg.stop - seg.start:
                raise InputFileError(
                    seg.path, f"expected {seg.stop - seg.start} spectra, read {len(spectra)}"
                )
        except InputFileError as exc:
            first = seg.row0 - task.row0
            for block in (flux, valid, err):  # the rows of the previous task's spectra
                if block is not None:
                    block[first : first + seg.stop - seg.start] = 0
            for k in range(seg.start, seg.stop):
                records.append(
                    _record(
                        seg.row0 + k - seg.start,
                        name if seg.stop - seg.start == 1 else f"{name}:{k}",
                        "",
                        seg.path,
                        "",
                        "quarantined",
                        exc.reason,
                    )
                )
            continue
        for k, spectrum in enumerate(spectra):
            row = seg.row0 + k
            rec = _record(
                row, spectrum.id, spectrum.object, spectrum.source, sums.get(seg.path, ""), "ok", ""
            )
            rec.update(spectrum.extra)
            i = row - task.row0
            try:
                result = prep(spectrum, (flux[i], valid[i], None if err is None else err[i]))
            except InputFileError as exc:
                rec.update(status="quarantined", reason=exc.reason)
                records.append(rec)
                continue
            if isinstance(result, Processed):
                rec.update(
                    scale=result.scale, snr=result.snr, n_valid=result.n_valid, reason=result.note
                )
            else:
                rec.update(status="rejected", reason=result.reason)
            records.append(rec)
        clock.lap("preprocess")
    blocks = {"flux": flux, "valid": valid} | ({} if err is None else {"err": err})
    write_rows(zarr.open_group(store_path, mode="r+"), task.row0, blocks)
    frame = pd.DataFrame.from_records(records)
    write_parquet_atomic(_part_path(Path(store_path), task.index), frame)
    clock.lap("write")
    status = frame["status"].value_counts()
    return {
        "index": task.index,
        "rows": n,
        "seconds": clock.seconds,
        **{s: int(status.get(s, 0)) for s in ("ok", "rejected", "quarantined")},
    }


def _read_segment(
    reader: readers_api.Reader,
    seg: Segment,
    checksum: str | None,
    sums: dict[str, str],
    clock: _Clock,
) -> list:
    """The segment's spectra, hashing the file's bytes (into ``sums``) when asked to: a
    file read whole once for both, unless it is larger than the kept buffer may grow."""
    path = Path(seg.path)
    data = None
    if checksum or reader.reads_bytes:
        try:
            whole = path.stat().st_size <= checksum_api.WHOLE_FILE_BYTES
        except OSError as exc:
            raise InputFileError(path, f"cannot read file ({exc.strerror})") from None
        if whole:
            data = checksum_api.read_file(path)
            clock.lap("read")
        if checksum and seg.path not in sums:
            sums[seg.path] = (
                checksum_api.file_checksum(path, checksum)
                if data is None
                else checksum_api.digest(data, checksum)
            )
            clock.lap("hash")
    spectra = None if data is None else reader.read_bytes(path, data, seg.start, seg.stop)
    if spectra is None:
        spectra = reader.read(path, seg.start, seg.stop)
    clock.lap("read")
    return spectra


_blocks = threading.local()


def task_blocks(
    rows: int, config: PreprocessConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Flux, valid and err blocks ``(rows, L)`` for one task (err None if not stored),
    holding whatever the previous task left: the preprocessor writes every pixel of a
    spectrum's rows (zeros when it is rejected), and the task zeros the rows of files that
    cannot be read.

    The blocks of a thread's previous task are reused when the shape is the same: touching
    fresh pages of memory costs about as much as preprocessing them (docs/benchmarks.md,
    "Ingestion speed"). Kept per thread, since a Dask worker runs tasks in several threads.
    """
    key = (rows, config.length, config.dtype, config.store_errors)
    if getattr(_blocks, "key", None) == key:
        return _blocks.arrays
    shape = (rows, config.length)
    err = np.zeros(shape, config.dtype) if config.store_errors else None
    _blocks.key, _blocks.arrays = key, (np.zeros(shape, config.dtype), np.zeros(shape, bool), err)
    return _blocks.arrays


def task_preprocessor(preprocess_config: dict) -> Preprocessor:
    """This thread's :class:`Preprocessor` of the configuration, kept from task to task like
    the blocks: its static mask, work arrays and known wavelengths cost a few milliseconds
    to make again for every task."""
    key = json.dumps(preprocess_config, sort_keys=True)
    if getattr(_blocks, "prep_key", None) != key:
        _blocks.prep_key = key
        _blocks.prep = Preprocessor(PreprocessConfig.from_dict(preprocess_config))
    return _blocks.prep


def release_task_blocks() -> None:
    """Drop this thread's kept task blocks and preprocessor (after an ingestion that ran its
    tasks inline)."""
    _blocks.__dict__.clear()


class _Clock:
    """Seconds a task spends in each stage; :meth:`lap` books the time since the last lap."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now


def _record(
    row: int, spec_id: str, obj: str, source: str, checksum: str, status: str, reason: str
) -> dict:
    return {
        "row": row,
        "id": spec_id,
        "object": obj,
        "file": source,
        "checksum": checksum,
        "scale": np.nan,
        "snr": np.nan,
        "n_valid": 0,
        "status": status,
        "reason": reason,
    }


def _run_tasks(
    plan: Plan,
    store: Path,
    todo: list[Task],
    progress: Callable[[int], None] | None,
    checksum: str | None,
) -> dict[str, float]:
    """Run the tasks (hashing files with ``checksum``); return the seconds per stage summed
    over them."""
    cfg = plan.config
    args = (str(store),)
    extra = (plan.reader, cfg.reader_options, cfg.preprocess.to_dict(), checksum)
    seconds = dict.fromkeys(STAGES, 0.0)

    def done(result: dict) -> None:
        for stage, value in result["seconds"].items():
            seconds[stage] += value
        if progress is not None:
            progress(result["rows"])

    if cfg.scheduler:
        try:
            from distributed import Client, as_completed
        except ImportError:
            raise ConfigError(
                "--scheduler needs dask.distributed: pip install 'astrolatent[cluster]'"
            ) from None
        try:
            client = Client(cfg.scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {cfg.scheduler} ({exc})"
            ) from None
        with client:
            futures = [
                client.submit(
                    run_task,
                    *args,
                    t,
                    *extra,
                    pure=False,
                    key=f"astrolatent-ingest-{plan.fingerprint[:12]}-{t.index}",
                )
                for t in todo
            ]
            for fut in as_completed(futures):
                done(_result(fut.result, todo, futures.index(fut)))
        return seconds
    if cfg.workers == 1:
        try:
            for t in todo:
                done(_result(lambda t=t: run_task(*args, t, *extra), todo, todo.index(t)))
        finally:
            release_task_blocks()
        return seconds
    ctx = _worker_context()
    with cf.ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_task, *args, t, *extra): i for i, t in enumerate(todo)}
        for fut in cf.as_completed(futures):
            done(_result(fut.result, todo, futures[fut]))
    return seconds


def _worker_context() -> multiprocessing.context.BaseContext:
    """How pool workers start: forked from a server process that has imported ingestion once
    (``forkserver``, POSIX), so N workers do not each pay the ~1.3 s of CPU of the imports;
    ``spawn`` where there is no forkserver. Never a plain fork of this process, whose
    threads (zarr's event loop, Blosc's) a child would inherit stopped."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _result(get: Callable[[], dict], todo: list[Task], i: int) -> dict:
    try:
        return get()
    except Exception as exc:
        task = todo[i]
        first = Path(task.segments[0].path).name
        raise StoreError(
            f"ingestion task {task.index} (rows {task.row0}-{task.row1 - 1}, from {first}) failed: "
            f"{type(exc).__name__}: {exc}; completed tasks are kept, re-run to resume"
        ) from exc


def finalize(store: Path, plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame, dict | None]:
    """Merge the task parts into the metadata table, flag duplicate ids, join the labels."""
    parts = [pd.read_parquet(_part_path(store, t.index)) for t in plan.tasks]
    meta = (
        pd.concat(parts, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
    )
    usable = meta["status"] != "quarantined"
    first_row = meta[usable].groupby("id")["row"].transform("min")
    dup_rows = first_row[first_row != meta.loc[usable, "row"]].index
    for idx in dup_rows:
        first = meta.loc[meta["row"] == first_row[idx]].iloc[0]
        meta.loc[idx, ["status", "reason"]] = [
            "rejected",
            f"duplicate id (first stored at row {first['row']}, {Path(first['file']).name})",
        ]
    label_report = None
    cfg = plan.config
    labels = source = None
    if cfg.labels:
        labels, source = load_labels(cfg.labels, cfg.id_column), str(cfg.labels)
    elif plan.preset_labels is not None:
        labels, source = plan.preset_labels, f"preset {cfg.preset}"
    if labels is not None:
        meta, label_report = join_labels(meta, labels, source=source)
    q = meta.loc[meta["status"] == "quarantined", ["file", "reason"]]
    quarantine = pd.concat(
        [pd.DataFrame(plan.quarantine, columns=["file", "reason"]), q], ignore_index=True
    )
    return meta, quarantine, label_report


def ingest(
    inputs: Sequence[str | Path],
    store: str | Path,
    config: IngestConfig | None = None,
    *,
    overwrite: bool = False,
    verify: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Ingest spectrum files into ``store`` (created, or resumed if it exists).

    Args:
        inputs: FITS files, folders, or text files listing paths.
        store: directory of the store.
        config: reader, preprocessing, labels and parallelism options.
        overwrite: rebuild a store that was made from other inputs or preprocessing.
        verify: on resume, recompute the checksum of every file of a done task and redo the
            tasks whose files changed (a file rewritten with the same size and time is
            otherwise taken as unchanged); reads every input file once.
        progress: called as ``progress(rows_done, rows_total)`` as tasks finish.
    """
    t0 = time.perf_counter()
    config = config or IngestConfig()
    store = Path(store)
    plan = make_plan(inputs, config)
    marks.claim(store, "store", STORE_OWNS, what="--store")
    _create_store(store, plan, overwrite)
    algorithm = _store_checksum(store)
    if verify:
        _forget_changed(store, plan, algorithm)
    todo = [t for t in plan.tasks if not _part_path(store, t.index).is_file()]
    skipped = len(plan.tasks) - len(todo)
    if skipped:
        log.info("resuming: %d of %d tasks already done", skipped, len(plan.tasks))
    done_rows = sum(t.row1 - t.row0 for t in plan.tasks) - sum(t.row1 - t.row0 for t in todo)
    if progress is not None:
        progress(done_rows, plan.n_rows)

    def step(rows: int) -> None:
        nonlocal done_rows
        done_rows += rows
        if progress is not None:
            progress(done_rows, plan.n_rows)

    stage_seconds = _run_tasks(plan, store, todo, step, algorithm)
    meta, quarantine, label_report = finalize(store, plan)
    extra_labels = [c for c in meta.columns if c not in RESERVED_COLUMNS]
    write_parquet_atomic(store / "quarantine.parquet", quarantine)
    write_parquet_atomic(store / "metadata.parquet", meta)
    group = zarr.open_group(str(store), mode="r+")
    group.attrs.update(
        {
            "labels": extra_labels,
            "label_report": label_report,
            "labels_source": (label_report or {}).get("source"),
        }
    )
    status = meta["status"].value_counts()
    summary = IngestSummary(
        store=str(store),
        n_files=len(plan.files),
        n_rows=plan.n_rows,
        n_ok=int(status.get("ok", 0)),
        n_rejected=int(status.get("rejected", 0)),
        n_quarantined=len(quarantine),
        n_tasks=len(plan.tasks),
        n_tasks_skipped=skipped,
        wall_seconds=time.perf_counter() - t0,
        label_report=label_report,
        stage_seconds=stage_seconds,
    )
    write_summary(
        store / STORE_SUMMARY_FILE,
        StoreSummary,
        {**provenance(format_version=INGEST_SUMMARY_FORMAT_VERSION), **summary.to_dict()},
    )
    return summary


__all__ = ["IngestConfig", "IngestSummary", "SpectrumStore", "expand_inputs", "ingest", "make_plan"]
