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
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import zarr
from pydantic import Field
from zarr.codecs import BloscCodec

from astrolatent import __version__
from astrolatent.config import Config
from astrolatent.data import presets as preset_registry
from astrolatent.data import readers as readers_api
from astrolatent.data.labels import join_labels, load_labels
from astrolatent.data.preprocess import (
    GridConfig,
    PreprocessConfig,
    Processed,
    check_content,
    preprocess,
)
from astrolatent.data.store import (
    FORMAT_VERSION,
    RESERVED_COLUMNS,
    SpectrumStore,
    write_json_atomic,
    write_parquet_atomic,
)
from astrolatent.errors import ConfigError, InputFileError, StoreError
from astrolatent.outputs import marks

log = logging.getLogger(__name__)

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
#: what ingestion writes in a store (the only names it ever removes there)
STORE_OWNS = (
    *("zarr.json", "flux", "valid", "err", "wave", "parts", "ingest.yaml"),
    *("metadata.parquet", "quarantine.parquet", "summary.json"),
)
CHUNK_BYTES = 2 * 1024**2
TASK_BYTES = 32 * 1024**2


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


def _infer_grid(spectrum) -> GridConfig:
    wave = check_content(spectrum).wave
    diff = np.diff(wave)
    if np.max(np.abs(diff - diff.mean())) <= 1e-6 * abs(diff.mean()) + 1e-9:
        return GridConfig(start=float(wave[0]), stop=float(wave[-1]), step=float(diff.mean()))
    ldiff = np.diff(np.log10(wave))
    if np.max(np.abs(ldiff - ldiff.mean())) <= 1e-6 * abs(ldiff.mean()) + 1e-12:
        return GridConfig(
            start=float(wave[0]), stop=float(wave[-1]), step=float(ldiff.mean()), scale="log"
        )
    raise ConfigError(
        f"{spectrum.source}: wavelengths are not on a uniform linear or log grid; "
        "give a target grid (--grid START,STOP,STEP) to resample onto"
    )


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
        if k not in {"labels", "id_column", "workers", "scheduler"}
    }
    h.update(json.dumps(content, sort_keys=True).encode())
    return h.hexdigest()


def file_checksum(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    except OSError as exc:
        raise InputFileError(path, f"cannot read file ({exc.strerror})") from None
    return h.hexdigest()


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


def make_plan(inputs: Sequence[str | Path], config: IngestConfig) -> Plan:
    """Expand inputs, pick the reader, fix the grid, count spectra and cut tasks."""
    files, quarantine = expand_inputs(inputs)
    if not files:
        raise ConfigError(f"no FITS files found in {', '.join(map(str, inputs))}")
    reader_name = config.format
    first_spectrum = None
    if reader_name is None or config.preprocess.grid is None:
        for path in files:
            try:
                name = reader_name or readers_api.identify(path)
                first_spectrum = readers_api.get(name, **config.reader_options).read(path, 0, 1)[0]
                reader_name = name
                break
            except (InputFileError, IndexError):
                continue
        else:
            raise ConfigError(f"none of the {len(files)} input files could be read as a spectrum")
    reader = readers_api.get(reader_name, **config.reader_options)
    if config.preprocess.grid is None:
        grid = _infer_grid(first_spectrum)
        log.info("grid inferred from %s: %s", first_spectrum.source, grid)
        config = config.model_copy(
            update={"preprocess": config.preprocess.model_copy(update={"grid": grid})}
        )
    config = config.model_copy(update={"format": reader_name})
    # validated again: --pad-to must still hold the grid inferred above
    PreprocessConfig.from_dict(config.preprocess.to_dict(), source="preprocessing (inferred grid)")
    length = config.preprocess.length
    itemsize = np.dtype(config.preprocess.dtype).itemsize
    chunk = _chunk_rows(length, itemsize)
    if config.rows_per_task:
        chunk = min(chunk, config.rows_per_task)

    counts: list[tuple[Path, int]] = []
    for path in files:
        try:
            counts.append((path, reader.count(path)))
        except InputFileError as exc:
            quarantine.append({"file": str(path), "reason": exc.reason})
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
            segments.append(Segment(str(path), start, start + take, row))
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
    compressor = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    chunks = (plan.chunk_rows, plan.length)
    shape = (plan.n_rows, plan.length)
    group.create_array(
        "flux", shape=shape, chunks=chunks, dtype=pre.dtype, compressors=compressor, fill_value=0
    )
    group.create_array(
        "valid",
        shape=shape,
        chunks=chunks,
        dtype=bool,
        compressors=BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
        fill_value=False,
    )
    if pre.store_errors:
        group.create_array(
            "err", shape=shape, chunks=chunks, dtype=pre.dtype, compressors=compressor, fill_value=0
        )
    wave = group.create_array("wave", shape=(plan.length,), chunks=(plan.length,), dtype="float64")
    wave[:] = pre.wavelengths()
    (path / "parts").mkdir(exist_ok=True)
    plan.config.save(path / "ingest.yaml")
    group.attrs.update(
        {
            "format_version": FORMAT_VERSION,
            "astrolatent_version": __version__,
            "reader": plan.reader,
            "reader_options": plan.config.reader_options,
            "preset": plan.config.preset,
            "preprocess": pre.to_dict(),
            "n_files": len(plan.files),
            "plan_quarantine": plan.quarantine,
            # written last: a store without it is incomplete and gets recreated
            "fingerprint": plan.fingerprint,
        }
    )


def _forget_changed(store: Path, plan: Plan) -> None:
    """Remove the metadata part of every done task one of whose files no longer has the
    checksum recorded in it, so that the task is redone."""
    if not plan.config.checksum:
        raise ConfigError("--verify compares checksums, and this configuration has checksum: false")
    sums: dict[str, str] = {}
    for task in plan.tasks:
        part = _part_path(store, task.index)
        if not part.is_file():
            continue
        rows = pd.read_parquet(part, columns=["file", "checksum"])
        rows = rows[rows["checksum"] != ""].drop_duplicates()
        for source, recorded in zip(rows["file"], rows["checksum"], strict=True):
            if sums.setdefault(source, file_checksum(source)) != recorded:
                log.warning("%s changed since it was ingested: its task is redone", source)
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
    checksum: bool,
) -> dict:
    """Process one task: read, preprocess, write its row block, then its metadata part.

    Runs in a worker process (pool or Dask); everything it needs travels as arguments.
    """
    config = PreprocessConfig.from_dict(preprocess_config)
    rdr = readers_api.get(reader, **reader_options)
    static = config.static_mask()
    n, length = task.row1 - task.row0, config.length
    flux = np.zeros((n, length), dtype=config.dtype)
    valid = np.zeros((n, length), dtype=bool)
    err = np.zeros((n, length), dtype=config.dtype) if config.store_errors else None
    records: list[dict] = []
    sums: dict[str, str] = {}
    for seg in task.segments:
        name = Path(seg.path).name.split(".fits")[0]
        try:
            spectra = rdr.read(Path(seg.path), seg.start, seg.stop)
            if len(spectra) != seg.stop - seg.start:
                raise InputFileError(
                    seg.path, f"expected {seg.stop - seg.start} spectra, read {len(spectra)}"
                )
            if checksum and seg.path not in sums:
                sums[seg.path] = file_checksum(seg.path)
        except InputFileError as exc:
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
            try:
                result = preprocess(spectrum, config, static)
            except InputFileError as exc:
                rec.update(status="quarantined", reason=exc.reason)
                records.append(rec)
                continue
            if isinstance(result, Processed):
                i = row - task.row0
                flux[i], valid[i] = result.flux, result.valid
                if err is not None and result.err is not None:
                    err[i] = result.err
                rec.update(
                    scale=result.scale, snr=result.snr, n_valid=result.n_valid, reason=result.note
                )
            else:
                rec.update(status="rejected", reason=result.reason)
            records.append(rec)
    group = zarr.open_group(store_path, mode="r+")
    group["flux"][task.row0 : task.row1] = flux
    group["valid"][task.row0 : task.row1] = valid
    if err is not None:
        group["err"][task.row0 : task.row1] = err
    frame = pd.DataFrame.from_records(records)
    write_parquet_atomic(_part_path(Path(store_path), task.index), frame)
    status = frame["status"].value_counts()
    return {
        "index": task.index,
        "rows": n,
        **{s: int(status.get(s, 0)) for s in ("ok", "rejected", "quarantined")},
    }


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
    plan: Plan, store: Path, todo: list[Task], progress: Callable[[int], None] | None
) -> None:
    cfg = plan.config
    args = (str(store),)
    extra = (plan.reader, cfg.reader_options, cfg.preprocess.to_dict(), cfg.checksum)

    def done(result: dict) -> None:
        if progress is not None:
            progress(result["rows"])

    if cfg.scheduler:
        try:
            from distributed import Client, as_completed
        except ImportError:  # pragma: no cover - dask[distributed] is a dependency
            raise ConfigError(
                "--scheduler needs dask.distributed: pip install 'dask[distributed]'"
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
        return
    if cfg.workers == 1:
        for t in todo:
            done(_result(lambda t=t: run_task(*args, t, *extra), todo, todo.index(t)))
        return
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_task, *args, t, *extra): i for i, t in enumerate(todo)}
        for fut in cf.as_completed(futures):
            done(_result(fut.result, todo, futures[fut]))


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
    if cfg.labels:
        labels = load_labels(cfg.labels, cfg.id_column)
        meta, label_report = join_labels(meta, labels, source=str(cfg.labels))
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
    if verify:
        _forget_changed(store, plan)
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

    _run_tasks(plan, store, todo, step)
    meta, quarantine, label_report = finalize(store, plan)
    extra_labels = [c for c in meta.columns if c not in RESERVED_COLUMNS]
    write_parquet_atomic(store / "quarantine.parquet", quarantine)
    write_parquet_atomic(store / "metadata.parquet", meta)
    group = zarr.open_group(str(store), mode="r+")
    group.attrs.update(
        {"labels": extra_labels, "label_report": label_report, "labels_source": config.labels}
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
    )
    write_json_atomic(store / "summary.json", summary.to_dict())
    return summary


__all__ = ["IngestConfig", "IngestSummary", "SpectrumStore", "expand_inputs", "ingest", "make_plan"]
