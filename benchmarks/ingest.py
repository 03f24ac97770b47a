"""Ingestion throughput and memory on HARPS-format files, against astropy alone.

Writes N full-resolution HARPS-format ESO 1D files (312,501 px, float64 WAVE, float32 FLUX
and ERR; the content is a noisy absorption spectrum: this benchmark measures I/O, not
physics), then in the same run:

1. the baseline: astropy alone opening every file and reading its three arrays;
2. `astrolatent ingest --preset harps` with 1 and 2 worker processes;
3. peak resident memory of the whole ingest process tree (sampled, plus children's
   ru_maxrss) against a memory cap, for a store whose uncompressed size is several
   times that cap.

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
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from astropy.io import fits

from astrolatent.data.readers.eso1d import write_eso1d

N_PIX = 312_501


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


def run_ingest(folder: Path, store: Path, workers: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of the whole process tree of one ingest run."""
    shutil.rmtree(store, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "astrolatent",
        "ingest",
        str(folder),
        "--store",
        str(store),
        "--preset",
        "harps",
        "--workers",
        str(workers),
        "--json",
    ]
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
    return wall, peak / 2**20


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
    args = parser.parse_args()
    folder = args.workdir / "files"
    t0 = time.perf_counter()
    make_files(folder, args.n)
    files = sorted(folder.glob("*.fits"))[: args.n]
    input_mb = sum(p.stat().st_size for p in files) / 1e6
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"files: {len(files)} HARPS-format files, {input_mb:,.0f} MB (made in {time.perf_counter() - t0:.0f} s)"
    )
    astropy_read(files[:50])  # warm the page cache like the ingest runs will find it
    base = astropy_read(files)
    print(
        f"baseline astropy read: {base:.1f} s = {len(files) / base:.1f} spectra/s, {input_mb / base:.0f} MB/s"
    )
    results = {}
    for workers in (1, 2):
        wall, peak = run_ingest(folder, args.workdir / f"store-{workers}", workers)
        results[workers] = (wall, peak)
        per_worker = len(files) / wall / workers
        print(
            f"ingest, {workers} worker(s): {wall:.1f} s = {len(files) / wall:.1f} spectra/s, {input_mb / wall:.0f} MB/s; "
            f"per worker {per_worker:.1f} spectra/s = {per_worker / (len(files) / base):.2f}x the astropy read rate; "
            f"peak RSS {peak:.0f} MiB"
        )
    store_bytes = args.n * 327_680 * (4 + 1 + 4)
    peak = max(p for _, p in results.values())
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
