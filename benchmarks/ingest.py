"""Ingestion throughput and memory on HARPS-format files, against astropy alone.

Writes N full-resolution HARPS-format ESO 1D files (312,501 px, float64 WAVE, float32 FLUX
and ERR; the content is a noisy absorption spectrum: this benchmark measures I/O, not
physics), then in the same run:

1. the baseline: astropy alone opening every file and reading its three arrays, and a
   plain read of the files' bytes (one after another, and with ingestion's read-ahead:
   what the disk gives);
2. `astrolatent ingest --preset harps` with 1 and 2 worker processes;

   both twice: with the files read from the disk (dropped from the page cache first with
   ``POSIX_FADV_DONTNEED``, as the files of an archive larger than memory are; the issue's
   baseline of 86.5 spectra/s was measured so), and with all of them in the page cache
   (the CPU-bound case);
3. peak resident memory of the whole ingest process tree (sampled, plus children's
   ru_maxrss) against a memory cap, for a store whose uncompressed size is several
   times that cap;
4. per-stage costs in this one process on the first ``--stage-files`` files (read, hash,
   preprocess, write, each as wall and CPU time, CPU time being what other jobs on a shared
   machine disturb least), with the levers beside them: astropy against our parse of the
   bytes read for the hash, BLAKE3 and SHA-256 against the default XXH3-128;
5. what the Sedaghat et al. HARPS archive (270,000 spectra) would take on N Dask workers at
   the per-worker rate measured from the disk, or at the disk's rate (``--disk-mbs``) when that is lower.

Prints spectra/s, MB/s (of input files) and the ratio ingest/baseline per worker.

    python benchmarks/ingest.py --n 2000 --workdir /tmp/al-bench --cap-mib 1024
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import zarr
from astropy.io import fits

from astrolatent.cli import command_line
from astrolatent.data import checksum, presets
from astrolatent.data import readers as readers_api
from astrolatent.data.ingest import STAGES, release_task_blocks, task_blocks
from astrolatent.data.preprocess import Preprocessor
from astrolatent.data.readers import fits_bytes
from astrolatent.data.readers.eso1d import write_eso1d
from astrolatent.data.store import write_rows

N_PIX = 312_501
SEDAGHAT_SPECTRA = 270_000


def make_files(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    wave = np.round(3785.0 + 0.01 * np.arange(N_PIX), 2)
    rng = np.random.default_rng(0)
    base = np.full(N_PIX, 3000.0)
    for centre in rng.uniform(3800, 6900, 300):
        near = slice(int((centre - 3785.5) / 0.01), int((centre - 3784.5) / 0.01))
        base[near] *= 1 - 0.4 * np.exp(-0.5 * ((wave[near] - centre) / 0.08) ** 2)
    for i in range(n):
        path = folder / f"ADP.2020-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000.fits"
        if path.exists():
            continue
        flux = base * rng.uniform(0.5, 2.0) + rng.normal(0, 30, N_PIX)
        write_eso1d(
            path, wave, flux, np.full(N_PIX, 30.0), arcfile=path.name, object_name=f"STAR{i % 500}"
        )


def astropy_read(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for path in files:
        with fits.open(path, memmap=True) as hdul:
            row = hdul[1].data[0]
            for col in ("WAVE", "FLUX", "ERR"):
                np.array(row[col])
    return time.perf_counter() - t0


def run_ingest(folder: Path, store: Path, workers: int) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS (MiB) and the summary of one ingest run (whole process tree)."""
    shutil.rmtree(store, ignore_errors=True)
    options = ["--preset", "harps", "--workers", str(workers), "--json"]
    cmd = command_line("ingest", str(folder), "--store", str(store), *options)
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                procs = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    stop.set()
    thread.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed ({proc.returncode}): {err.decode()[-2000:]}")
    summary = json.loads(out)
    assert summary["n_ok"] == len(list(folder.glob("*.fits"))), summary
    return wall, peak / 2**20, summary


#: how the input files are found: read from the disk (evicted from the page cache first, as
#: an archive larger than memory is), or all in the page cache (the CPU-bound case)
MODES = {"disk": "from the disk", "cache": "from the page cache"}
PEAKS: list[float] = []


def evict(files: list[Path]) -> None:
    """Drop the files' pages from the page cache (``POSIX_FADV_DONTNEED``; no root needed),
    so the next read comes from the disk."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def plain_read(files: list[Path], ahead: bool) -> float:
    """Seconds to read every file's bytes, one after another (``ahead``: with the read-ahead
    ingestion uses, the kernel reading the next files meanwhile): the disk's own rate."""
    buf = bytearray(max(p.stat().st_size for p in files) + 1)
    read_ahead = checksum.ReadAhead([str(p) for p in files])
    t0 = time.perf_counter()
    for path in files:
        if ahead:
            read_ahead.at(str(path))
        with open(path, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass
    return time.perf_counter() - t0


def prepare(mode: str, files: list[Path]) -> None:
    if mode == "disk":
        os.sync()
        evict(files)
    else:
        astropy_read(files)


def measure(
    mode: str, folder: Path, files: list[Path], input_mb: float, workdir: Path
) -> tuple[float, dict[int, float]]:
    """Print the baselines and the ingest runs with the files ``mode``; return the astropy
    rate and the end-to-end rate per worker of each worker count (spectra/s)."""
    n = len(files)
    print(f"-- input files {MODES[mode]} --")
    prepare(mode, files)
    base = n / astropy_read(files)
    print(f"baseline astropy read: {base:.1f} spectra/s, {input_mb / n * base:.0f} MB/s")
    for ahead in (False, True):
        prepare(mode, files)
        rate = n / plain_read(files, ahead)
        how = "with read-ahead" if ahead else "one after another"
        print(f"plain read of the bytes, {how}: {rate:.1f} files/s, {input_mb / n * rate:.0f} MB/s")
    per_worker = {}
    for workers in (1, 2):
        prepare(mode, files)
        wall, peak, summary = run_ingest(folder, workdir / f"store-{workers}", workers)
        PEAKS.append(peak)
        per_worker[workers] = n / wall / workers
        print(
            f"ingest, {workers} worker(s): {wall:.1f} s = {n / wall:.1f} spectra/s, {input_mb / wall:.0f} MB/s; "
            f"per worker {per_worker[workers]:.1f} spectra/s = {per_worker[workers] / base:.2f}x the astropy read rate; "
            f"peak RSS {peak:.0f} MiB"
        )
        inner = summary["wall_seconds"]  # ingest() alone: no interpreter start or imports
        print(
            f"  of which ingest() {inner:.1f} s (the rest: interpreter start and imports): "
            f"per worker {n / inner / workers:.1f} spectra/s = {n / inner / workers / base:.2f}x"
        )
        stages = summary.get("stage_seconds", {})
        print(
            "  stages (ms per spectrum, wall, summed over workers): "
            + ", ".join(f"{k} {1000 * v / n:.1f}" for k, v in stages.items())
        )
    return base, per_worker


class Timer:
    """Wall and CPU (all threads of this process) seconds, booked per label."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def time(self, label: str, fn, *args):
        w, c = time.perf_counter(), time.process_time()
        out = fn(*args)
        self.wall[label] = self.wall.get(label, 0.0) + time.perf_counter() - w
        self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - c
        return out


def _astropy_read(path: Path):
    """The ESO reader as it reads without our parse of the bytes: astropy."""
    saved, fits_bytes.read_row = fits_bytes.read_row, lambda *args, **kwargs: None
    try:
        return readers_api.get("eso-1d").read(path)
    finally:
        fits_bytes.read_row = saved


def stage_costs(files: list[Path], store: Path, block: int = 25) -> Timer:
    """Per-stage costs of ingesting ``files`` in this process, rewriting rows of ``store``.

    Three passes over all files, so that no stage finds a file in the CPU caches because
    another stage just read it (the files must together exceed the caches: 200 HARPS files
    are 1 GB): the astropy baseline, then our stages as a task runs them, then the
    alternatives (the astropy reader; BLAKE3 and SHA-256 of the same bytes).
    """
    config = presets.get("harps").preprocess
    prep, reader = Preprocessor(config), readers_api.get("eso-1d")
    group = zarr.open_group(str(store), mode="r+")
    for name in ("flux", "valid", "err"):  # write new files, as ingestion does: overwriting
        for chunk in (store / name).glob("c.*"):  # cached ones costs a fraction of that
            chunk.unlink()
    timer = Timer()
    for path in files:
        timer.time("astropy baseline", astropy_read, [path])
    for b0 in range(0, len(files), block):
        chunk = files[b0 : b0 + block]
        flux, valid, err = task_blocks(len(chunk), config)
        for i, path in enumerate(chunk):  # as ingest.run_task does
            data = timer.time("read", checksum.read_file, path)
            timer.time("hash", checksum.digest, data, checksum.DEFAULT)
            spectrum = timer.time("read", reader.read_bytes, path, data)[0]
            timer.time("preprocess", prep, spectrum, (flux[i], valid[i], err[i]))
        timer.time("write", write_rows, group, b0, {"flux": flux, "valid": valid, "err": err})
    release_task_blocks()
    for path in files:
        timer.time("read, astropy", _astropy_read, path)
        data = checksum.read_file(path)
        timer.time("hash, BLAKE3", checksum.digest, data, "blake3")
        timer.time("hash, SHA-256", checksum.digest, data, "sha256")
    return timer


def print_stage_costs(timer: Timer, n: int) -> None:
    """Print ms per spectrum of every stage and the CPU ratio baseline / our stages."""
    ours = {k: timer.cpu[k] for k in STAGES}
    base = timer.cpu["astropy baseline"]
    print(f"per-stage costs in one process, {n} files (ms per spectrum: wall / CPU):")
    labels = ("astropy baseline", "read, astropy", *STAGES[:2], "hash, BLAKE3", "hash, SHA-256")
    notes = {"read": "  (file bytes, parsed in place)", "hash": f"  ({checksum.DEFAULT})"}
    for label in (*labels, *STAGES[2:]):
        note = notes.get(label, "")
        print(
            f"  {label:18s} {1000 * timer.wall[label] / n:7.2f} / {1000 * timer.cpu[label] / n:6.2f}{note}"
        )
    total = sum(ours.values())
    print(
        f"  sum of our stages  {1000 * sum(timer.wall[k] for k in STAGES) / n:7.2f} / "
        f"{1000 * total / n:6.2f} -> CPU ratio astropy baseline / ingest stages = {base / total:.2f}"
    )


def print_archive_estimate(rate: float, file_mb: float, disk_mbs: float) -> None:
    """Hours for the Sedaghat HARPS archive on N workers: the slower of CPU and disk."""
    disk_hours = SEDAGHAT_SPECTRA * file_mb / disk_mbs / 3600
    print(
        f"Sedaghat archive ({SEDAGHAT_SPECTRA:,} spectra, {SEDAGHAT_SPECTRA * file_mb / 1e6:.2f} TB) "
        f"at {rate:.1f} spectra/s per worker, disk {disk_mbs:,.0f} MB/s:"
    )
    for workers in (1, 8, 32, 128, 512):
        cpu_hours = SEDAGHAT_SPECTRA / (rate * workers) / 3600
        bound = "disk" if disk_hours > cpu_hours else "workers"
        print(f"  {workers:4d} workers: {max(cpu_hours, disk_hours):7.2f} h ({bound}-bound)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workdir", type=Path, default=Path("bench-output/ingest"))
    parser.add_argument(
        "--cap-mib", type=float, default=1024.0, help="memory cap the ingest must stay under"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files and stores")
    parser.add_argument(
        "--stage-files", type=int, default=200, help="files for the per-stage costs (0: skip)"
    )
    parser.add_argument(
        "--disk-mbs", type=float, default=2000.0, help="shared file system read rate, MB/s"
    )
    args = parser.parse_args()
    folder = args.workdir / "files"
    t0 = time.perf_counter()
    make_files(folder, args.n)
    files = sorted(folder.glob("*.fits"))
    if len(files) != args.n:  # ingest reads the whole folder
        raise SystemExit(
            f"{folder} holds {len(files)} files, not --n {args.n}: use another --workdir"
        )
    input_mb = sum(p.stat().st_size for p in files) / 1e6
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"files: {len(files)} HARPS-format files, {input_mb:,.0f} MB (made in {time.perf_counter() - t0:.0f} s)"
    )
    rates = {mode: measure(mode, folder, files, input_mb, args.workdir) for mode in MODES}
    print("summary, per worker against astropy reading the same files the same way:")
    for mode, (base, per_worker) in rates.items():
        print(
            f"  {MODES[mode]:18s} astropy {base:6.1f} spectra/s; ingest "
            + ", ".join(f"{w} worker(s) {r:.1f}/s = {r / base:.2f}x" for w, r in per_worker.items())
        )
    if args.stage_files:
        some = files[: args.stage_files]
        print_stage_costs(stage_costs(some, args.workdir / "store-1"), len(some))
    print_archive_estimate(rates["disk"][1][1], input_mb / len(files), args.disk_mbs)
    store_bytes = args.n * 327_680 * (4 + 1 + 4)
    peak = max(PEAKS)
    on_disk = (
        sum(f.stat().st_size for f in (args.workdir / "store-2").rglob("*") if f.is_file()) / 2**20
    )
    print(
        f"memory: store holds {store_bytes / 2**30:.2f} GiB uncompressed ({on_disk:,.0f} MiB on disk), "
        f"{store_bytes / 2**20 / args.cap_mib:.1f}x the cap of {args.cap_mib:.0f} MiB; peak RSS {peak:.0f} MiB -> "
        f"{'within' if peak <= args.cap_mib else 'OVER'} the cap"
    )
    if not args.keep:
        shutil.rmtree(args.workdir)


if __name__ == "__main__":
    main()
