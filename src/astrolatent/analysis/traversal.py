"""Latent traversals: what one latent dimension does to a decoded spectrum.

For a dimension d, decode a sweep of z_d from ``median - k sigma`` to ``median + k sigma``
(sigma = 1.4826 MAD of the data's mu_d; the other dims fixed at their medians) and measure
the per-wavelength response (the range of the decoded flux over the sweep). The wavelengths
that respond most are listed with the nearest known line, so a user reads "this dim moves
the Balmer lines" or "this one moves every line" (a Doppler signature).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from astrolatent.simulate.lines import stellar_lines


@dataclass
class Traversal:
    dim: int
    values: np.ndarray  # (steps,) z_d values of the sweep
    spectra: np.ndarray  # (steps, L) decoded spectra
    response: np.ndarray  # (L,) max - min of the decoded flux over the sweep
    top: list[dict] = field(default_factory=list)  # most responsive wavelengths

    def to_dict(self) -> dict:
        return {"dim": self.dim, "values": self.values.tolist(), "top_wavelengths": self.top}


def _nearest_line(wavelength: float, tolerance: float) -> str | None:
    lines = stellar_lines()
    i = int(np.argmin(np.abs(lines.wavelength - wavelength)))
    if abs(lines.wavelength[i] - wavelength) <= tolerance:
        return f"{lines.species[i]} {lines.wavelength[i]:.1f}"
    return None


def traverse(
    decode: Callable[[np.ndarray], np.ndarray],
    mu: np.ndarray,
    dims: list[int],
    wave: np.ndarray,
    *,
    n_sigma: float = 3.0,
    steps: int = 9,
    n_top: int = 8,
    valid: np.ndarray | None = None,
) -> list[Traversal]:
    """Sweep each of ``dims`` and report its responsive wavelengths.

    decode: maps latent vectors (k, D) to spectra (k, L); mu: (n, D) latent means of the data;
    wave: (L,) Angstrom; valid: (L,) pixels to consider (e.g. not padding).
    """
    centre = np.median(mu, axis=0)
    spread = 1.4826 * np.median(np.abs(mu - centre), axis=0)
    considered = np.ones(wave.size, bool) if valid is None else valid
    step_width = float(np.median(np.diff(wave)))
    out = []
    for d in dims:
        values = centre[d] + np.linspace(-n_sigma, n_sigma, steps) * max(spread[d], 1e-6)
        z = np.repeat(centre[None], steps, axis=0)
        z[:, d] = values
        spectra = decode(z)
        response = np.where(considered, spectra.max(axis=0) - spectra.min(axis=0), 0.0)
        top: list[dict] = []
        order = np.argsort(response)[::-1]
        min_separation = 10 * step_width  # one entry per feature, not its neighbouring pixels
        for i in order:
            if len(top) == n_top or response[i] <= 0:
                break
            if any(abs(wave[i] - t["wavelength"]) < min_separation for t in top):
                continue
            top.append(
                {
                    "wavelength": float(wave[i]),
                    "response": float(response[i]),
                    "line": _nearest_line(wave[i], max(2 * step_width, 1.0)),
                }
            )
        out.append(Traversal(dim=d, values=values, spectra=spectra, response=response, top=top))
    return out
