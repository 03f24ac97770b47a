"""Training throughput: astrolatent's training loop against a plain PyTorch loop.

For each preset (``harps-full`` at batch 4 and ``lowres`` at batch 32 by default) this runs,
each in a fresh subprocess so that peak memory is its own:

* ``baseline``: a plain fp32 eager PyTorch loop over the same architecture and loss
  (``SpectrumVAE``, Adam, masked L1 + KL), on batches already in memory;
* ``astrolatent``: ``astrolatent.training.fit`` as ``astrolatent train`` runs it (Lightning,
  data read from the store by the data module, logging), no validation or checkpoints inside
  the timed window;
* ``astrolatent-fast``: the same with the fast options (bf16-mixed on GPUs, ``torch.compile``,
  loader workers on GPUs);
* ``loader``: the data module's training loader alone (samples/s read from the store).

Step rates exclude warm-up steps. Peak memory is the process's peak RSS (CPU) or the peak
CUDA allocation (GPU). The ratio ``astrolatent / baseline`` is the figure of merit (goal:
>= 1.0); ``loader / astrolatent`` > 1 means the model, not the data, limits training.

    python benchmarks/train_throughput.py --work /tmp/bench --steps 6 --json out.json

Stores are simulated with ``astrolatent.simulate.spectra`` and ingested on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRESETS = {
    "harps-full": {"batch": 4, "resolution": "harps", "n": 12},
    "lowres": {"batch": 32, "resolution": "low", "n": 320},
}


def make_store(work: Path, preset: str) -> Path:
    from astrolatent.data.ingest import IngestConfig, ingest
    from astrolatent.simulate.spectra import SpectrumSimulationConfig, write_spectra

    spec = PRESETS[preset]
    store = work / f"store-{preset}"
    if (store / "metadata.parquet").is_file():
        return store
    fits = work / f"fits-{preset}"
    write_spectra(
        fits,
        SpectrumSimulationConfig(n=spec["n"], resolution=spec["resolution"], random_state=0),
        batch_size=8,
    )
    config = (
        IngestConfig.from_preset("harps", workers=1)
        if preset == "harps-full"
        else IngestConfig(workers=1)
    )
    ingest([fits], store, config)
    return store


def _peak_memory_mb(device: str, base_rss_mb: float) -> dict:
    import torch

    if device == "cuda":
        return {
            "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20,
            "memory_kind": "cuda max allocated",
        }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "peak_memory_mb": peak,
        "peak_over_imports_mb": peak - base_rss_mb,
        "memory_kind": "process peak RSS",
    }


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(args: argparse.Namespace) -> dict:
    """One measurement, in this (fresh) process."""
    import numpy as np
    import torch

    from astrolatent.data.store import SpectrumStore
    from astrolatent.training.config import make_config

    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    store = SpectrumStore(args.store)
    batch, steps, warmup = args.batch, args.steps, args.warmup
    base_rss = _rss_mb()
    out = {
        "mode": args.mode,
        "preset": args.preset,
        "batch": batch,
        "device": device,
        "threads": torch.get_num_threads(),
    }

    if args.mode == "baseline":
        from astrolatent.models.vae import SpectrumVAE, kl_per_dim, reconstruction_loss, reduce_kl

        cfg = make_config(store.length, preset=args.preset)
        torch.manual_seed(0)
        model = SpectrumVAE(cfg.architecture).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
        rows = store.accepted_rows()[:batch]
        flux, valid = store.read(np.resize(rows, batch))
        x, v = torch.from_numpy(flux).to(device), torch.from_numpy(valid).to(device)
        times = []
        for _ in range(steps + warmup):
            t = time.perf_counter()
            out_ = model(x)
            loss = (
                reconstruction_loss(out_["recon"], x, v)
                + cfg.loss.beta
                * reduce_kl(kl_per_dim(out_["mu"], out_["logvar"]), cfg.loss.kl_reduction)
            ).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        dt = float(np.sum(times[warmup:]))
        out["samples_per_second"] = steps * batch / dt
    elif args.mode in ("astrolatent", "astrolatent-fast"):
        import lightning as L

        from astrolatent.training.fit import fit

        class Clock(L.Callback):
            def __init__(self) -> None:
                self.t: list[float] = []

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                if device == "cuda":
                    torch.cuda.synchronize()
                self.t.append(time.perf_counter())

        clock = Clock()
        fast = args.mode == "astrolatent-fast"
        overrides = {
            "optim": {"batch_size": batch},
            "data": {
                "val_fraction": 0.0,
                **({"num_workers": "auto"} if fast else {"num_workers": 0}),
            },
            "trainer": {
                "checkpoint_every": 10**9,
                "log_every": 10,
                "compile": fast,
                "precision": "bf16-mixed" if fast and device == "cuda" else "32",
            },
        }
        with tempfile.TemporaryDirectory() as tmp:
            fit(
                args.store,
                Path(tmp) / "run",
                overrides,
                preset=args.preset,
                max_steps=steps + warmup + 1,
                callbacks=[clock],
            )
        t = np.array(clock.t)
        dt = t[warmup + 1 :] - t[warmup:-1]
        out["samples_per_second"] = len(dt) * batch / float(dt.sum())
    elif args.mode == "loader":
        import pandas as pd

        from astrolatent.training.datamodule import SpectrumDataModule

        cfg = make_config(store.length, preset=args.preset)
        meta = store.metadata
        ok = meta[meta["status"] == "ok"]
        split = pd.DataFrame(
            {"row": ok["row"], "id": ok["id"], "object": ok["object"], "split": "train"}
        )
        dm = SpectrumDataModule(args.store, split, cfg.data, batch_size=batch, seed=0)
        n = max(steps * 4, 20)
        it = iter(dm.train_dataloader())
        next(it)
        t = time.perf_counter()
        for _ in range(n):
            next(it)
        out["samples_per_second"] = n * batch / (time.perf_counter() - t)
        out["note"] = f"{n} batches after the first, chunk cache on"
    out.update(_peak_memory_mb(device, base_rss))
    return out


def run_worker(mode: str, preset: str, store: Path, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable, __file__, "--worker", mode, "--preset", preset, "--store", str(store),
        "--batch", str(PRESETS[preset]["batch"]), "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--threads", str(args.threads or 0),
    ]  # fmt: skip
    env = dict(os.environ)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return {
            "mode": mode,
            "preset": preset,
            "error": res.stderr.strip().splitlines()[-1]
            if res.stderr.strip()
            else f"exit {res.returncode}",
        }
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description="astrolatent training throughput vs a plain PyTorch loop"
    )
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "astrolatent-bench"
    )
    parser.add_argument("--presets", default="harps-full,lowres")
    parser.add_argument("--modes", default="baseline,astrolatent,astrolatent-fast,loader")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--preset", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning)
        args.mode = args.worker
        args.threads = args.threads or None
        print(json.dumps(worker(args)))
        return

    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        t = time.perf_counter()
        store = make_store(args.work, preset)
        print(f"# {preset}: store ready ({time.perf_counter() - t:.0f} s): {store}", flush=True)
        rows = {}
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            r = run_worker(mode, preset, store, args)
            rows[mode] = r
            results.append(r)
            rate = r.get("samples_per_second")
            mem = r.get("peak_memory_mb")
            print(
                f"{preset:11s} {mode:17s} "
                + (
                    f"{rate:9.2f} samples/s  peak {mem:8.0f} MB"
                    if rate is not None
                    else f"error: {r.get('error')}"
                ),
                flush=True,
            )
        base = rows.get("baseline", {}).get("samples_per_second")
        ours = rows.get("astrolatent", {}).get("samples_per_second")
        fast = rows.get("astrolatent-fast", {}).get("samples_per_second")
        loader = rows.get("loader", {}).get("samples_per_second")
        summary = {"preset": preset, "mode": "ratios"}
        if base and ours:
            summary["astrolatent/baseline"] = ours / base
        if base and fast:
            summary["fast/baseline"] = fast / base
        if loader and ours:
            summary["loader/astrolatent"] = loader / ours
            summary["limited_by"] = "model" if loader > ours else "data loading"
        print(
            f"{preset:11s} ratios            "
            + "  ".join(
                f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in summary.items()
                if k not in ("preset", "mode")
            ),
            flush=True,
        )
        results.append(summary)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
