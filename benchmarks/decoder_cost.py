"""CPU seconds per training step of the decoder options, side by side on one thread.

Each option's model takes a forward + backward + Adam step on a random batch; the options
are interleaved in rounds so that load from other processes hits them alike, and the
median over rounds of the process time per step is printed with the parameter count.

    python benchmarks/decoder_cost.py --length 6251 --batch 16 --steps 20 --rounds 5

Used for the CPU column of docs/training-calibration.md ("Decoder options (issue 16)").
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from astrolatent.models.vae import (
    ArchitectureConfig,
    DopplerConfig,
    SpectrumVAE,
    count_parameters,
    line_weights,
    reconstruction_loss,
)

OPTIONS = {
    "conv (today)": {},
    "doppler": {"doppler": True},
    "dense_hidden=0": {"dense_hidden": 0},
    "doppler + dense_hidden=0": {"doppler": True, "dense_hidden": 0},
    "doppler + broadening + dense_hidden=0": {
        "doppler": True,
        "broadening": True,
        "dense_hidden": 0,
    },
    "dense_hidden=64": {"dense_hidden": 64},
    "line_weight": {"line_weight": True},
}


def _model(length: int, option: dict) -> SpectrumVAE:
    arch = ArchitectureConfig.for_length(length)
    update: dict = {}
    if option.get("doppler"):
        broadening = 20.0 if option.get("broadening") else None
        update["doppler"] = DopplerConfig(
            wave_start=3785.0, wave_step=0.5, broadening_kms=broadening
        )
    if "dense_hidden" in option:
        update["dense_hidden"] = option["dense_hidden"]
    return SpectrumVAE(ArchitectureConfig.from_dict({**arch.to_dict(), **update}))


def _cpu_per_step(model, opt, x, valid, steps: int, line: bool) -> float:
    t0 = time.process_time()
    for _ in range(steps):
        out = model(x)
        weight = line_weights(x, valid, 5.0) if line else None
        loss = reconstruction_loss(out["recon"], x, valid, pixel_weight=weight).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.process_time() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=6251)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = 1.0 + 0.05 * torch.randn(args.batch, args.length)
    valid = torch.ones_like(x, dtype=torch.bool)
    models = {name: _model(args.length, opt) for name, opt in OPTIONS.items()}
    optims = {name: torch.optim.Adam(m.parameters(), lr=1e-3) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in OPTIONS}
    for _ in range(args.rounds):
        for name, model in models.items():
            line = bool(OPTIONS[name].get("line_weight"))
            times[name].append(_cpu_per_step(model, optims[name], x, valid, args.steps, line))
    base = float(np.median(times["conv (today)"]))
    for name, model in models.items():
        print(
            json.dumps(
                {
                    "option": name,
                    "parameters": count_parameters(model),
                    "cpu_seconds_per_step": round(float(np.median(times[name])), 4),
                    "ratio_to_conv": round(float(np.median(times[name])) / base, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
