"""Training: configuration and presets, the object split, the data stream, fit, resume after a
real kill, 2-process data parallel (gloo), encoding, reconstruction, decoding and the CLI."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import typer
import yaml
import zarr
from typer.testing import CliRunner

from astrolatent.cli.training import register
from astrolatent.data.store import SpectrumStore
from astrolatent.errors import ConfigError, StoreError
from astrolatent.training.config import PRESETS, TrainConfig, auto_preset, make_config
from astrolatent.training.datamodule import (
    SpectrumDataModule,
    StoreBatchDataset,
    StreamBatchSampler,
    split_by_object,
)
from astrolatent.training.encode import decode, encode, load_model, reconstruct
from astrolatent.training.fit import fit
from tests.conftest import N_SPECTRA, TINY_LENGTH

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["OMP_NUM_THREADS"] = "1"
    return env


#: torch on one thread in every test here (the cores are shared)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


#: fast options for the tiny store
FAST = {
    "optim": {"batch_size": 8},
    "trainer": {"val_every": 10, "checkpoint_every": 10, "log_every": 5},
    "data": {"val_fraction": 0.25},
}


def _state(run: Path) -> dict:
    return torch.load(run / "model.pt", weights_only=True)["state_dict"]


# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------
def test_presets_follow_the_length():
    assert auto_preset(327_680) == "harps-full"
    assert auto_preset(6251) == "lowres"
    assert auto_preset(343) == "gaia-xp"
    harps = make_config(327_680)
    assert harps.preset == "harps-full" and harps.architecture.latent_dim == 128
    published = make_config(327_680, preset="harps-published")
    assert harps.architecture == published.architecture
    assert (published.loss.kl_reduction, published.loss.beta) == ("mean", 0.3)
    assert (published.loss.kl_start, published.loss.kl_end, published.optim.lr) == (
        5000,
        20000,
        1e-4,
    )
    # the weight of one nat of KL: published 0.3 / 128 dims; calibrated 5e-4
    assert published.nat_cost == pytest.approx(0.3 / 128) and harps.nat_cost == 5e-4
    low = make_config(6251)
    assert low.architecture.latent_dim == 16 and low.architecture.padded_length == 6256
    assert low.trainer.max_minutes == PRESETS["lowres"]["trainer"]["max_minutes"]
    xp = make_config(343, overrides={"architecture": {"latent_dim": 8}})
    assert xp.preset == "gaia-xp" and xp.architecture.latent_dim == 8


def test_impossible_options_are_config_errors():
    with pytest.raises(ConfigError, match=r"harps-full.*327,680 px.*6,251 px"):
        make_config(6251, preset="harps-full")
    with pytest.raises(ConfigError, match="unknown preset 'big'"):
        make_config(6251, preset="big")
    with pytest.raises(ConfigError, match="max_steps=0"):
        make_config(6251, max_steps=0)
    with pytest.raises(ConfigError, match="beta"):
        make_config(6251, overrides={"loss": {"beta": -1}})
    with pytest.raises(ConfigError, match="kl_end"):
        make_config(6251, overrides={"loss": {"kl_start": 10, "kl_end": 5}})
    with pytest.raises(ConfigError, match="unknown configuration section"):
        make_config(6251, overrides={"optimizer": {"lr": 1}})
    with pytest.raises(ConfigError, match="architecture: unknown option"):
        make_config(6251, overrides={"architecture": {"depth": 3}})


def test_budget_and_short_run_kl_schedule():
    cfg = make_config(6251, max_steps=400)
    assert cfg.trainer.max_steps == 400 and cfg.trainer.max_minutes is None
    assert cfg.loss.kl_end == 200 and cfg.loss.kl_start < cfg.loss.kl_end  # ends by half the run
    long = make_config(6251, max_steps=100_000)
    assert (long.loss.kl_start, long.loss.kl_end) == (
        PRESETS["lowres"]["loss"]["kl_start"],
        PRESETS["lowres"]["loss"]["kl_end"],
    )
    mine = make_config(6251, max_steps=400, overrides={"loss": {"kl_start": 0, "kl_end": 390}})
    assert mine.loss.kl_end == 390  # a schedule the user sets is kept
    timed = make_config(6251, max_minutes=3)
    assert timed.trainer.max_minutes == 3 and timed.trainer.max_steps is None


def test_saved_config_round_trips(tmp_path):
    cfg = make_config(
        343, overrides={"loss": {"beta": 0.01}}, max_steps=50, store="s", store_fingerprint="f"
    )
    cfg.save(tmp_path / "c.yaml")
    again = make_config(343, overrides=yaml.safe_load((tmp_path / "c.yaml").read_text()))
    assert again == cfg
    assert TrainConfig.load(tmp_path / "c.yaml") == cfg


# ---------------------------------------------------------------------------------------
# split and data stream
# ---------------------------------------------------------------------------------------
def test_split_is_by_object_seeded_and_sized(tiny_store):
    meta = SpectrumStore(tiny_store).metadata
    split = split_by_object(meta, val_fraction=0.25, random_state=3)
    assert len(split) == N_SPECTRA
    by_obj = split.groupby("object")["split"].nunique()
    assert (by_obj == 1).all()  # no object in both sets
    n_val = (split["split"] == "val").sum()
    assert 0.25 * N_SPECTRA <= n_val <= 0.25 * N_SPECTRA + 3
    pd.testing.assert_frame_equal(split, split_by_object(meta, val_fraction=0.25, random_state=3))
    other = split_by_object(meta, val_fraction=0.25, random_state=4)
    assert not other["split"].equals(split["split"])
    one = meta.assign(object="SAME")
    with pytest.raises(ConfigError, match="one object"):
        split_by_object(one, val_fraction=0.1, random_state=0)
    assert (split_by_object(one, val_fraction=0.0, random_state=0)["split"] == "train").all()


def test_stream_gives_ranks_disjoint_rows_and_resumes_exactly():
    rows = np.arange(5, 205)
    kw = {"batch_size": 8, "seed": 1, "chunk_rows": 16, "window": 2}
    full = StreamBatchSampler(rows, **kw, world_size=2, rank=0)
    other = StreamBatchSampler(rows, **kw, world_size=2, rank=1)
    per_epoch = full.batches_per_epoch
    assert per_epoch == 200 // 16
    for epoch in range(2):
        a = np.concatenate([full.batch(epoch * per_epoch + k) for k in range(per_epoch)])
        b = np.concatenate([other.batch(epoch * per_epoch + k) for k in range(per_epoch)])
        assert not set(a) & set(b)
        assert len(set(a)) == a.size and set(a) | set(b) <= set(rows)
    it = iter(full)
    stream = [next(it) for _ in range(30)]
    resumed = iter(StreamBatchSampler(rows, **kw, world_size=2, rank=0, start=17))
    for k in range(17, 30):
        assert np.array_equal(next(resumed), stream[k])
    # chunk shuffling: a batch touches at most `window` chunks (plus one at a window edge)
    single = StreamBatchSampler(rows, **kw)
    assert max(np.unique(single.batch(k) // 16).size for k in range(40)) <= 2 * kw["window"]
    with pytest.raises(ConfigError, match="needs at least 16 training spectra"):
        StreamBatchSampler(rows[:10], **kw, world_size=2)


def test_object_balanced_sampling_weights_objects_equally():
    rows = np.arange(400)
    objects = np.where(
        rows < 300, "BIG", np.char.add("S", rows.astype(str))
    )  # 1 object x 300, 100 x 1
    split = pd.DataFrame({"row": rows, "id": rows.astype(str), "object": objects, "split": "train"})
    dm = SpectrumDataModule(
        "unused",
        split,
        make_config(6251).data.model_copy(update={"balance_objects": True}),
        batch_size=20,
        seed=0,
    )
    dm._chunk_rows = 64
    weights = dm.object_weights()
    assert np.allclose(weights[:300], 1 / 300) and np.allclose(weights[300:], 1.0)
    sampler = dm.sampler()
    drawn = np.concatenate([sampler.batch(k) for k in range(200)])
    big_share = np.mean(drawn < 300)
    assert 0.004 < big_share < 0.03  # 1 of 101 objects: ~1%, against 75% of the spectra


def test_batch_dataset_reads_what_the_store_holds(tiny_store):
    store = SpectrumStore(tiny_store)
    rows = np.array([70, 3, 40, 3, 95])
    data = StoreBatchDataset(tiny_store, with_errors=True, cache_chunks=2)[rows]
    flux, valid = store.read(rows)
    assert np.array_equal(data["flux"].numpy(), flux) and np.array_equal(
        data["valid"].numpy(), valid
    )
    assert np.array_equal(data["row"].numpy(), rows) and data["err"].shape == flux.shape


# ---------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------
def test_fit_writes_a_complete_run_directory(tiny_store, tmp_path):
    run = tmp_path / "run"
    seen: list[dict] = []
    fit(tiny_store, run, FAST, max_steps=30, progress=seen.append)
    for name in (
        "config.yaml",
        "split.parquet",
        "checkpoints/last.ckpt",
        "model.pt",
        "metrics.csv",
        "train_summary.json",
    ):
        assert (run / name).is_file(), name
    data = json.loads((run / "train_summary.json").read_text())
    for key in (
        "steps",
        "samples",
        "wall_seconds",
        "samples_per_second",
        "final_train_loss",
        "final_val_loss",
    ):
        assert data[key] is not None, key
    assert data["steps"] == 30 and data["samples"] == 240 and data["stopped_by"] == "max_steps"
    assert np.isfinite(data["final_train_loss"]) and np.isfinite(data["final_val_loss"])
    cfg = TrainConfig.load(run / "config.yaml")
    assert cfg.store == str(tiny_store.resolve())
    assert cfg.store_fingerprint == SpectrumStore(tiny_store).attrs["fingerprint"]
    assert cfg.preset == "gaia-xp" and cfg.trainer.max_steps == 30
    metrics = pd.read_csv(run / "metrics.csv")
    assert {"train/loss", "train/recon", "train/kl", "train/kl_weight", "val/loss"} <= set(
        metrics["metric"]
    )
    split = pd.read_parquet(run / "split.parquet")
    assert split.groupby("object")["split"].nunique().max() == 1
    assert seen and seen[-1]["step"] == 30
    payload = torch.load(run / "model.pt", weights_only=True)
    assert payload["format_version"] == 1 and payload["config"] == cfg.to_dict()
    # the run refuses to be overwritten
    with pytest.raises(ConfigError, match="--resume"):
        fit(tiny_store, run, FAST, max_steps=30)


def test_fit_is_deterministic(tiny_store, tmp_path):
    a = fit(tiny_store, tmp_path / "a", FAST, max_steps=12)
    b = fit(tiny_store, tmp_path / "b", FAST, max_steps=12)
    assert a.final_train_loss == b.final_train_loss
    sa, sb = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_budgets_early_stopping_and_errors(tiny_store, tmp_path, caplog):
    timed = fit(tiny_store, tmp_path / "timed", FAST, max_minutes=0.02, max_steps=100_000)
    assert timed.stopped_by == "max_minutes" and 0 < timed.steps < 100_000
    # a time cap that stops a scheduled learning rate before its end says so
    cosine = {**FAST, "optim": {**FAST["optim"], "schedule": "cosine"}}
    with caplog.at_level(logging.WARNING, logger="astrolatent.training.fit"):
        capped = fit(tiny_store, tmp_path / "capped", cosine, max_minutes=0.02, max_steps=100_000)
    assert capped.stopped_by == "max_minutes"
    assert f"stopped the run at step {capped.steps} of 100000, before its cosine" in caplog.text
    frozen = {
        **FAST,
        "optim": {"batch_size": 8, "lr": 1e-12},
        "loss": {"kl_start": 0, "kl_end": 6},
        "trainer": {**FAST["trainer"], "val_every": 2, "early_stopping_patience": 2},
    }
    stopped = fit(tiny_store, tmp_path / "early", frozen, max_steps=400)
    # validation never improves: it stops 2 validations after the warm-up has ended
    assert stopped.stopped_by == "early_stopping" and stopped.steps == 10
    with pytest.raises(StoreError, match="no such store"):
        fit(tmp_path / "nowhere", tmp_path / "x", FAST, max_steps=5)
    with pytest.raises(ConfigError, match="max_steps=-3"):
        fit(tiny_store, tmp_path / "y", FAST, max_steps=-3)
    if (
        importlib.util.find_spec("tensorboard") is None
        and importlib.util.find_spec("tensorboardX") is None
    ):
        with pytest.raises(ConfigError, match="pip install tensorboard"):
            fit(tiny_store, tmp_path / "tb", {"trainer": {"tensorboard": True}}, max_steps=2)
        assert not (tmp_path / "tb").exists()  # nothing written before the options are checked


@pytest.mark.filterwarnings("ignore:.*bf16.*:UserWarning")
def test_bf16_mixed_precision_runs(tiny_store, tmp_path):
    cfg = {**FAST, "trainer": {**FAST["trainer"], "precision": "bf16-mixed"}}
    summary = fit(tiny_store, tmp_path / "bf16", cfg, max_steps=4)
    assert summary.steps == 4 and np.isfinite(summary.final_train_loss)


def test_options_ivar_loss_balanced_sampling_and_loader_workers(tiny_store, tmp_path):
    cfg = {
        **FAST,
        "loss": {"reconstruction": "ivar"},
        "data": {
            "val_fraction": 0.25,
            "balance_objects": True,
            "shuffle": "full",
            "num_workers": 1,
        },
    }
    summary = fit(tiny_store, tmp_path / "opts", cfg, max_steps=4)
    assert summary.steps == 4 and np.isfinite(summary.final_train_loss)
    assert np.isfinite(summary.final_val_loss)


def test_resume_after_a_real_kill_continues_exactly(tiny_store, tmp_path):
    config = {**FAST, "trainer": {**FAST["trainer"], "checkpoint_every": 5}}
    steps = 60
    reference = fit(tiny_store, tmp_path / "ref", config, max_steps=steps)

    run = tmp_path / "killed"
    script = textwrap.dedent(
        f"""
        import json, sys, warnings
        warnings.filterwarnings("ignore", category=FutureWarning)
        import torch
        torch.set_num_threads(1)
        from astrolatent.training.fit import fit
        fit({str(tiny_store)!r}, {str(run)!r}, json.loads(sys.argv[1]), max_steps={steps}, resume=len(sys.argv) > 2)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(config)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ckpt = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    killed_at = torch.load(ckpt, weights_only=True)["global_step"]
    assert 0 < killed_at < steps
    assert not (run / "model.pt").exists()

    resumed = fit(tiny_store, run, config, max_steps=steps, resume=True)
    assert resumed.resumed_from_step == killed_at and resumed.steps == reference.steps == steps
    ref_state, state = _state(tmp_path / "ref"), _state(run)
    assert all(torch.equal(ref_state[k], state[k]) for k in ref_state)  # bit for bit
    assert resumed.final_val_loss == reference.final_val_loss
    ref_log, log = pd.read_csv(tmp_path / "ref" / "metrics.csv"), pd.read_csv(run / "metrics.csv")
    assert not log.duplicated(["step", "metric"]).any()
    merged = ref_log.merge(log, on=["step", "metric"])
    assert len(merged) == len(ref_log) and np.allclose(merged["value_x"], merged["value_y"])


@pytest.fixture(scope="module")
def reference_runs(tiny_store, tmp_path_factory):
    """``reference_runs(config)``: a 20-step run of ``config``, trained once per module."""
    runs: dict[str, Path] = {}

    def get(config: dict) -> Path:
        key = json.dumps(config, sort_keys=True)
        if key not in runs:
            runs[key] = tmp_path_factory.mktemp("reference") / "run"
            fit(tiny_store, runs[key], config, max_steps=20)
        return runs[key]

    return get


KILL_SCRIPT = """
import json, os, sys, warnings
warnings.filterwarnings("ignore", category=FutureWarning)
import lightning as L, torch
torch.set_num_threads(1)
from astrolatent.training.fit import fit

hook, at = sys.argv[3], int(sys.argv[4])

class Kill(L.Callback):
    pass

def die(self, trainer, *args):
    if trainer.global_step == at and not trainer.sanity_checking:
        os._exit(9)  # as a SIGKILL would: nothing is flushed or cleaned up

setattr(Kill, hook, die)
fit(sys.argv[1], sys.argv[2], json.loads(sys.argv[5]), max_steps=20, callbacks=[Kill()])
"""


@pytest.mark.parametrize(
    "hook, at, log_every",
    [
        ("on_train_batch_end", 5, 5),  # just after the checkpoint and the step's rows
        ("on_validation_start", 10, 5),  # the checkpoint of a validating step waits
        ("on_validation_end", 10, 5),
        ("on_train_batch_start", 10, 5),  # after the validation, at the next step's start
        ("on_train_batch_end", 6, 2),  # after rows of a step the checkpoint does not hold
    ],
)
def test_a_run_killed_anywhere_resumes_with_every_row_once(
    tiny_store, tmp_path, reference_runs, hook, at, log_every
):
    """Killed at a chosen point (os._exit in a hook), resumed: the model is bit for bit the
    reference's and metrics.csv holds each of the reference's rows exactly once."""
    trainer = {**FAST["trainer"], "checkpoint_every": 5, "log_every": log_every}
    config = {**FAST, "trainer": trainer}
    reference = reference_runs(config)
    run = tmp_path / "killed"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            KILL_SCRIPT,
            str(tiny_store),
            str(run),
            hook,
            str(at),
            json.dumps(config),
        ],
        env=_env(),
        capture_output=True,
    )
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    fit(tiny_store, run, config, max_steps=20, resume=True)
    ref_state, state = _state(reference), _state(run)
    assert all(torch.equal(ref_state[k], state[k]) for k in ref_state)
    ref_log, log = pd.read_csv(reference / "metrics.csv"), pd.read_csv(run / "metrics.csv")
    assert not log.duplicated(["step", "metric"]).any()
    merged = ref_log.merge(log, on=["step", "metric"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    assert np.allclose(merged["value_x"], merged["value_y"])


def test_a_changed_store_is_detected(tiny_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    run = tmp_path / "run"
    fit(store, run, FAST, max_steps=3)
    zarr.open_group(str(store), mode="r+").attrs["fingerprint"] = "0" * 64  # as if re-ingested
    with pytest.raises(StoreError, match="changed since"):
        fit(store, run, resume=True, max_steps=6)
    with pytest.raises(StoreError, match="changed since"):
        encode(run)
    forced = encode(run, store)  # named explicitly: encoded, flagged as another store
    assert not forced.same_store and forced.n_spectra == N_SPECTRA


DDP_SCRIPT = """
import json, sys, warnings
warnings.filterwarnings("ignore", category=FutureWarning)
import lightning as L, numpy as np
from astrolatent.training.fit import fit

class Record(L.Callback):
    def __init__(self):
        self.rows = []
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append(batch["row"].numpy().copy())
    def on_train_end(self, trainer, pl_module):
        np.save(f"{sys.argv[2]}/rows-{trainer.global_rank}.npy", np.stack(self.rows))

summary = fit(sys.argv[1], sys.argv[2] + "/run", json.loads(sys.argv[3]), max_steps=int(sys.argv[4]), callbacks=[Record()])
if summary.world_size and __import__("os").environ.get("RANK") == "0":
    print("SUMMARY", json.dumps(summary.to_dict()))
"""


def test_two_process_data_parallel_gloo(tiny_store, tmp_path):
    steps = 8
    config = {**FAST, "trainer": {**FAST["trainer"], "val_every": 4}}
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(tiny_store),
        str(tmp_path),
        json.dumps(config),
        str(steps),
    ]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(
        next(line for line in out.stdout.splitlines() if line.startswith("SUMMARY"))[8:]
    )
    assert summary["world_size"] == 2 and summary["steps"] == steps
    assert summary["global_batch_size"] == 16 and summary["samples"] == 16 * steps
    rank0, rank1 = np.load(tmp_path / "rows-0.npy"), np.load(tmp_path / "rows-1.npy")
    assert rank0.shape == rank1.shape == (steps, 8)
    split = pd.read_parquet(tmp_path / "run" / "split.parquet")
    train = set(split.loc[split["split"] == "train", "row"])
    per_epoch = len(train) // 16
    for epoch in range(2):
        a, b = (
            rank0[epoch * per_epoch : (epoch + 1) * per_epoch],
            rank1[epoch * per_epoch : (epoch + 1) * per_epoch],
        )
        assert not set(a.ravel()) & set(b.ravel())  # disjoint data within every epoch
    assert set(rank0.ravel()) | set(rank1.ravel()) <= train
    # together the two ranks take exactly the global batches a one-process run takes
    one = StreamBatchSampler(
        np.array(sorted(train)),
        batch_size=16,
        seed=0,
        chunk_rows=SpectrumStore(tiny_store).flux.chunks[0],
        window=8,
    )
    for k in range(steps):
        assert np.array_equal(np.sort(np.r_[rank0[k], rank1[k]]), np.sort(one.batch(k)))
    # the same global batch in one process: same shapes, sane numbers, same data order
    single = fit(
        tiny_store, tmp_path / "single", {**config, "optim": {"batch_size": 16}}, max_steps=steps
    )
    assert np.isfinite(summary["final_train_loss"]) and np.isfinite(summary["final_val_loss"])
    assert abs(summary["final_val_loss"] - single.final_val_loss) < 0.5 * single.final_val_loss
    ddp_state, one_state = _state(tmp_path / "run"), _state(tmp_path / "single")
    assert all(ddp_state[k].shape == one_state[k].shape for k in one_state)
    assert all(torch.isfinite(v).all() for v in ddp_state.values())


# ---------------------------------------------------------------------------------------
# encode, reconstruct, decode
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tiny_store, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    fit(tiny_store, run, FAST, max_steps=20)
    return run


def test_encode_writes_one_row_per_spectrum(trained_run, tiny_store, tmp_path):
    result = encode(trained_run, batch_size=16)
    frame = pd.read_parquet(result.path)
    store = SpectrumStore(tiny_store)
    d = 16
    assert result.path == str(trained_run / "latents.parquet") and result.same_store
    assert list(frame.columns) == [
        "id",
        "object",
        "row",
        "split",
        *[f"mu_{i}" for i in range(d)],
        *[f"logvar_{i}" for i in range(d)],
        "rv",
        "depth",
    ]
    assert len(frame) == N_SPECTRA and frame["id"].is_unique
    meta = store.metadata.set_index("id")
    assert np.allclose(frame["rv"], meta.loc[frame["id"], "rv"])
    assert (frame["object"].to_numpy() == meta.loc[frame["id"], "object"].to_numpy()).all()
    split = pd.read_parquet(trained_run / "split.parquet").set_index("row")["split"]
    assert (frame["split"].to_numpy() == split.loc[frame["row"]].to_numpy()).all()
    model, _cfg = load_model(trained_run)
    flux, _ = store.read(frame["row"].to_numpy()[:5])
    with torch.no_grad():
        mu, logvar = model.encode(torch.from_numpy(flux))
    assert np.allclose(frame[[f"mu_{i}" for i in range(d)]].to_numpy()[:5], mu.numpy(), atol=1e-5)
    assert np.allclose(
        frame[[f"logvar_{i}" for i in range(d)]].to_numpy()[:5], logvar.numpy(), atol=1e-5
    )
    # another store with the same grid can be encoded; one with another length cannot
    other = encode(trained_run, tiny_store, out=tmp_path / "other.parquet")
    assert other.n_spectra == N_SPECTRA
    with pytest.raises(StoreError, match="no such store"):
        encode(trained_run, tmp_path / "missing")


def test_an_analysis_of_another_store_reads_that_store(analyzed_run, tmp_path):
    """A run encoding a store it was not trained on (``encode RUN --store OTHER``) is
    analysed on OTHER: its data summary, PCA baseline and reconstructions read OTHER's
    spectra, not the training store's (here OTHER holds rows and ids the training store
    lacks)."""
    from astrolatent.data.ingest import IngestConfig, ingest
    from astrolatent.workflows.analyze import analyze_run
    from tests.conftest import tiny_analysis, write_tiny_spectra

    labels = write_tiny_spectra(tmp_path / "fits", n=120, seed=7)
    other = tmp_path / "other"
    ingest([tmp_path / "fits"], other, IngestConfig(workers=1, labels=str(labels)))
    run = tmp_path / "run"
    shutil.copytree(analyzed_run, run)
    encode(run, other)
    summary = analyze_run(run, tiny_analysis())
    data = json.loads((run / "analysis" / "data_summary.json").read_text())
    assert Path(data["path"]) == other and data["n_spectra"] == 120
    assert summary["labels"]["rv"]["n"] == 120
    examples = np.load(run / "analysis" / "reconstructions.npz")
    store = SpectrumStore(other)
    row = store.metadata.set_index("id").loc[str(examples["id"][0]), "row"]
    assert np.allclose(examples["flux"][0], store.read(np.array([row]))[0][0])
    # the recorded store must still be the one encoded
    shutil.rmtree(other)
    with pytest.raises(StoreError, match="is gone"):
        analyze_run(run, tiny_analysis())


def test_reconstruct_and_decode_agree(trained_run, tiny_store):
    ids = SpectrumStore(tiny_store).metadata["id"].tolist()[:4]
    rec = reconstruct(trained_run, ids[::-1])
    assert rec.ids == ids[::-1] and rec.recon.shape == rec.flux.shape == (4, TINY_LENGTH)
    assert rec.mu.shape == (4, 16) and rec.wave.shape == (TINY_LENGTH,)
    assert np.allclose(decode(trained_run, rec.mu), rec.recon, atol=1e-5)
    model, _ = load_model(trained_run)
    assert decode(model, np.zeros((3, 16))).shape == (3, TINY_LENGTH)
    with pytest.raises(ConfigError, match=r"\(k, 16\)"):
        decode(model, np.zeros((3, 5)))
    with pytest.raises(ConfigError, match="not accepted spectra"):
        reconstruct(trained_run, ["nope"])
    with pytest.raises(ConfigError, match="not a training run"):
        load_model(trained_run.parent)


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_train_encode_reconstruct(cli, tiny_store, tmp_path):
    runner = CliRunner()
    conf = tmp_path / "fast.yaml"
    conf.write_text(yaml.safe_dump(FAST))
    run = tmp_path / "run"
    res = runner.invoke(
        cli,
        [
            "train",
            str(tiny_store),
            "--run",
            str(run),
            "--config",
            str(conf),
            "--max-steps",
            "6",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["steps"] == 6 and summary["preset"] == "gaia-xp"
    res = runner.invoke(
        cli, ["train", str(tiny_store), "--run", str(run), "--max-steps", "9", "--resume"]
    )
    assert res.exit_code == 0, res.output
    assert "resumed at step 6" in res.output and "9 steps" in res.output
    res = runner.invoke(cli, ["encode", str(run), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["n_spectra"] == N_SPECTRA
    ids = SpectrumStore(tiny_store).metadata["id"].tolist()[:2]
    res = runner.invoke(cli, ["reconstruct", str(run), "--ids", ",".join(ids), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    with np.load(payload["path"]) as npz:
        assert npz["recon"].shape == (2, TINY_LENGTH) and list(npz["ids"]) == ids


def test_cli_errors_are_library_errors(cli, tiny_store, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        cli, ["train", str(tiny_store), "--run", str(tmp_path / "r"), "--max-steps", "0"]
    )
    assert isinstance(res.exception, ConfigError) and "max_steps=0" in str(res.exception)
    res = runner.invoke(
        cli, ["train", str(tiny_store), "--run", str(tmp_path / "r"), "--preset", "harps-full"]
    )
    assert isinstance(res.exception, ConfigError) and "harps-full" in str(res.exception)
    res = runner.invoke(cli, ["train", str(tmp_path / "none"), "--run", str(tmp_path / "r")])
    assert isinstance(res.exception, StoreError)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(tiny_store, unfinished)
    (unfinished / "metadata.parquet").unlink()
    res = runner.invoke(cli, ["train", str(unfinished), "--run", str(tmp_path / "r")])
    assert isinstance(res.exception, StoreError) and "ingestion has not finished" in str(
        res.exception
    )
