"""What the explorer serves, loaded once from a run directory and validated on every request.

:class:`ExplorerData` reads ``RUN/latents.parquet`` (``astrolatent encode``), the model, the
store the latents were encoded from, and ``RUN/analysis/summary.json`` when ``astrolatent
analyze`` has been run (informative dimensions, each label's best latent; without it the
informative dimensions are counted here the same way). It answers the web app's questions
(decode a latent vector, the nearest real spectra, a stored spectrum, a latent-vs-label
scatter) with plain dicts ready for JSON. Every input is checked against the run: a latent
vector must have the model's length and lie within :attr:`ExplorerData.limits`; a spectrum
id must be in the latents table; a label must be one of its labels. Problems raise
:class:`~astrolatent.errors.ConfigError` (or :class:`UnknownIdError`) with one line naming
the value and what is allowed.

Spectra are returned in a wavelength window (default: all of it) and, when the window holds
more than ``max_points`` pixels, reduced to each bin's minimum and maximum, so narrow lines
stay visible at any zoom. Masked pixels are ``None``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from astrolatent.analysis.dimensions import count_informative, dispersion
from astrolatent.errors import ConfigError, RunError, StoreError, UnknownIdError
from astrolatent.outputs.layout import ANALYSIS_SUMMARY, LATENTS_FILE
from astrolatent.outputs.summaries import analysed_dims, load_summary
from astrolatent.training.encode import decode, latents_store, load_model
from astrolatent.workflows.analyze import AnalyzeConfig, default_labels, latent_matrices
from astrolatent.workflows.audit import latent_roles as audit_roles

log = logging.getLogger(__name__)

#: Latents may be set this many data widths beyond the data range (and always to +-PRIOR_SPAN).
LIMIT_WIDTHS = 2.0
PRIOR_SPAN = 5.0
MAX_NEIGHBORS = 50
#: Decimals sent to the page: wavelengths in Angstrom, flux normalised to a median of ~1.
WAVE_DECIMALS = 4
FLUX_DECIMALS = 5
#: Memory for store chunks kept in memory (real spectra for the neighbours), in bytes.
CACHE_BYTES = 256 * 2**20


def _json_values(values: np.ndarray, decimals: int) -> list[float | None]:
    """Floats for JSON rounded to ``decimals``, ``None`` where not finite."""
    rounded = np.round(np.asarray(values, dtype=float), decimals).tolist()
    return [v if math.isfinite(v) else None for v in rounded]


def latent_roles(known, latent_dim: int) -> list[dict]:
    """Role of every latent of a run, as the analysis records it
    (:func:`astrolatent.workflows.audit.latent_roles`: ``tied`` to a known label, the first
    ``len(known.names)`` dims, or ``free``), with a tied label's standardisation so a tied
    value reads in the label's units (``label = mean + std * z``; None for free dims)."""
    roles = audit_roles(latent_dim, {name: k for k, name in enumerate(known.names)})
    for role in roles:
        tied = role["role"] == "tied"
        role["label_mean"] = float(known.mean.get(role["label"], 0.0)) if tied else None
        role["label_std"] = float(known.std.get(role["label"], 1.0)) if tied else None
    return roles


def _envelope(
    wave: np.ndarray, fluxes: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Spectra ``(k, n)`` reduced to at most ``max_points`` points: each bin's minimum and
    maximum (in pixel order) at the bin's mean wavelength. Returns wave ``(m,)``, flux ``(k, m)``.
    """
    k, n = fluxes.shape
    width = -(-n // max(1, max_points // 2))
    n_bins = -(-n // width)
    pad = n_bins * width - n
    centres = np.nanmean(np.concatenate([wave, np.full(pad, np.nan)]).reshape(n_bins, width), 1)
    blocks = np.concatenate([fluxes, np.full((k, pad), np.nan)], axis=1).reshape(k, n_bins, width)
    finite = np.isfinite(blocks)
    lo = np.where(finite, blocks, np.inf).argmin(axis=2)
    hi = np.where(finite, blocks, -np.inf).argmax(axis=2)
    pair = np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], axis=2)
    values = np.take_along_axis(blocks, pair, axis=2).reshape(k, 2 * n_bins)
    return np.repeat(centres, 2), values


class ExplorerData:
    """A trained, encoded run, ready to answer the explorer's requests.

    Args:
        run_dir: a run with ``model.pt`` and ``latents.parquet``.
        max_scatter: at most this many points per scatter plot (a fixed random subset).
        random_state: seed of that subset.
    """

    def __init__(
        self, run_dir: str | Path, *, max_scatter: int = 5000, random_state: int = 0
    ) -> None:
        run_dir = Path(run_dir)
        path = run_dir / LATENTS_FILE
        if not path.is_file():
            raise RunError(
                f"{path}: not found; encode the run first with `astrolatent encode {run_dir}`"
            )
        self.run_dir = run_dir
        self.model, config = load_model(run_dir)
        latents = pd.read_parquet(path)
        if latents.empty:
            raise ConfigError(f"{path}: the latents table is empty")
        self.mu, logvar = latent_matrices(latents)
        self.latent_dim = self.mu.shape[1]
        if self.latent_dim != self.model.latent_dim:
            raise ConfigError(
                f"{path}: {self.latent_dim} latents, but the model has {self.model.latent_dim}; "
                f"re-run `astrolatent encode {run_dir}`"
            )
        self.store = latents_store(path, config.store)
        if self.store.length != self.model.input_length:
            raise StoreError(
                f"{self.store.path}: spectra of {self.store.length} px, the model decodes "
                f"{self.model.input_length} px"
            )
        self.ids = latents["id"].astype(str).tolist()
        self.rows = latents["row"].to_numpy(np.int64)
        self.index = {spectrum_id: i for i, spectrum_id in enumerate(self.ids)}
        self.objects = latents["object"].fillna("").astype(str).tolist()
        self.labels = default_labels(latents)
        self.label_values = {
            name: pd.to_numeric(latents[name], errors="coerce").to_numpy(float)
            for name in self.labels
        }
        self.informative, self.best_dims = self._informative(run_dir, logvar)
        self.roles = latent_roles(config.known_labels, self.latent_dim)
        self.wave = np.asarray(self.store.wave, dtype=float)
        # pixels some spectrum covers: decoded flux elsewhere (padding) means nothing
        self.coverage = self.store.coverage()
        lo, self.median, hi = np.percentile(self.mu, [1, 50, 99], axis=0)
        self.lo, self.hi = lo, np.maximum(hi, lo + 1e-6)
        width = self.hi - self.lo
        self.limits = np.stack(
            [
                np.minimum(self.lo - LIMIT_WIDTHS * width, -PRIOR_SPAN),
                np.maximum(self.hi + LIMIT_WIDTHS * width, PRIOR_SPAN),
            ],
            axis=1,
        )
        # real spectra are read a whole (compressed) store chunk at a time: keep recent chunks
        self.chunk_rows = int(self.store.flux.chunks[0])
        block_bytes = 4 * self.chunk_rows * self.store.length
        self._block = lru_cache(maxsize=max(1, CACHE_BYTES // block_bytes))(self._read_block)
        self.search_dims = self.informative or list(range(self.latent_dim))
        self.neighbors_index = NearestNeighbors().fit(self.mu[:, self.search_dims])
        rng = np.random.default_rng(random_state)
        n = len(self.ids)
        self.scatter_rows = (
            np.sort(rng.choice(n, max_scatter, replace=False)) if n > max_scatter else np.arange(n)
        )

    def _informative(self, run_dir: Path, logvar: np.ndarray) -> tuple[list[int], dict[str, int]]:
        """Informative dims (both methods agree, else dispersion) and each label's best dim."""
        path = run_dir / ANALYSIS_SUMMARY
        if path.is_file():
            summary = load_summary(run_dir)
            informative = summary["informative"]
            best = {
                name: int(block["best_dim"])
                for name, block in summary.get("labels", {}).items()
                if name in self.labels
            }
        else:
            log.info("%s not found: counting informative dimensions as analyze does", path)
            defaults = AnalyzeConfig()
            informative = count_informative(
                self.mu, logvar, threshold=defaults.dispersion_threshold, split=defaults.split
            ).to_dict()
            best = {}
        return sorted(analysed_dims(informative)), best

    # -- validation --------------------------------------------------------------------------

    def check_z(self, z: Sequence[float]) -> np.ndarray:
        """``z`` as a float array after checking its length, finiteness and range."""
        arr = np.asarray(z, dtype=float)
        if arr.shape != (self.latent_dim,):
            raise ConfigError(
                f"z has {arr.size} values; this model has {self.latent_dim} latent dimensions"
            )
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ConfigError(f"z[{bad[0]}] is not a finite number")
        out = np.flatnonzero((arr < self.limits[:, 0]) | (arr > self.limits[:, 1]))
        if out.size:
            j = int(out[0])
            raise ConfigError(
                f"z[{j}]={arr[j]:.4g} is outside the allowed range "
                f"[{self.limits[j, 0]:.4g}, {self.limits[j, 1]:.4g}]"
            )
        return arr

    def _window(self, window: Sequence[float] | None) -> np.ndarray:
        """Pixel indices inside ``window`` (Angstrom, inclusive)."""
        if window is None:
            return np.arange(self.wave.size)
        lo, hi = (float(v) for v in window)
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
            raise ConfigError(f"window [{lo:g}, {hi:g}] must be two finite numbers, low < high")
        idx = np.flatnonzero((self.wave >= lo) & (self.wave <= hi))
        if idx.size < 2:
            raise ConfigError(
                f"window [{lo:g}, {hi:g}] holds fewer than 2 pixels; the spectra cover "
                f"[{self.wave[0]:g}, {self.wave[-1]:g}] Angstrom"
            )
        return idx

    def row_of(self, spectrum_id: str) -> int:
        """Latents-table row of a spectrum id."""
        try:
            return self.index[spectrum_id]
        except KeyError:
            raise UnknownIdError(f"no spectrum with id {spectrum_id!r} in this run") from None

    # -- answers -----------------------------------------------------------------------------

    def view(
        self, fluxes: np.ndarray, window: Sequence[float] | None, max_points: int
    ) -> tuple[list[float], list[list[float | None]]]:
        """Wavelengths and fluxes ``(k, L)`` cut to ``window`` and reduced to ``max_points``."""
        idx = self._window(window)
        wave, fluxes = self.wave[idx], np.atleast_2d(fluxes)[:, idx]
        if idx.size > max_points:
            wave, fluxes = _envelope(wave, fluxes, max_points)
        return _json_values(wave, WAVE_DECIMALS), [_json_values(f, FLUX_DECIMALS) for f in fluxes]

    def decode(self, z: np.ndarray) -> np.ndarray:
        """The decoded spectrum ``(L,)`` of a checked latent vector, NaN outside the coverage."""
        flux = decode(self.model, z[None])[0].astype(float)
        flux[~self.coverage] = np.nan
        return flux

    def _read_block(self, block: int) -> np.ndarray:
        """Flux of store chunk ``block`` (rows ``block * chunk`` on), NaN where masked."""
        start = block * self.chunk_rows
        flux, valid = self.store.read(
            np.arange(start, min(start + self.chunk_rows, self.store.n_rows))
        )
        flux[~valid] = np.nan
        return flux

    def real_flux(self, indices: Sequence[int]) -> np.ndarray:
        """Stored flux ``(k, L)`` of latents-table rows, NaN where masked."""
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        return np.array(
            [self._block(int(r) // self.chunk_rows)[r % self.chunk_rows] for r in rows], dtype=float
        ).reshape(len(rows), self.store.length)

    def describe(self, i: int) -> dict:
        """Id, object, labels and latent means of latents-table row ``i``."""
        return {
            "id": self.ids[i],
            "object": self.objects[i],
            "labels": {
                name: (float(v) if np.isfinite(v) else None)
                for name, v in ((n, self.label_values[n][i]) for n in self.labels)
            },
            "z": [float(v) for v in self.mu[i]],
        }

    def meta(self) -> dict:
        """What the page needs to build itself."""
        dims = [
            {
                "dim": j,
                "informative": j in self.informative,
                "lo": float(self.lo[j]),
                "hi": float(self.hi[j]),
                "median": float(self.median[j]),
                "limits": [float(v) for v in self.limits[j]],
                "dispersion": float(s),
                **self.roles[j],
            }
            for j, s in enumerate(dispersion(self.mu))
        ]
        return {
            "run": str(self.run_dir),
            "n_spectra": len(self.ids),
            "latent_dim": self.latent_dim,
            "informative": self.informative,
            "tied": self.tied,
            "search_dims": self.search_dims,
            "dims": dims,
            "labels": self.labels,
            "best_dims": self.best_dims,
            "wave_range": [float(self.wave[0]), float(self.wave[-1])],
            "n_pixels": int(self.wave.size),
            "max_neighbors": min(MAX_NEIGHBORS, len(self.ids)),
        }

    @property
    def tied(self) -> list[int]:
        """The dims tied to a known label (the first ones; none in a run without)."""
        return [j for j, r in enumerate(self.roles) if r["role"] == "tied"]

    def neighbors(self, z: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Latents-table rows of the ``k`` spectra nearest to ``z`` in the search dims."""
        if not 1 <= k <= min(MAX_NEIGHBORS, len(self.ids)):
            raise ConfigError(f"k={k} must be between 1 and {min(MAX_NEIGHBORS, len(self.ids))}")
        dist, idx = self.neighbors_index.kneighbors(z[None, self.search_dims], n_neighbors=k)
        return [(int(i), float(d)) for i, d in zip(idx[0], dist[0], strict=True)]

    def scatter(self, label: str, dim: int) -> dict:
        """Latent ``dim`` against ``label`` for (a fixed subset of) the spectra with the label."""
        if label not in self.label_values:
            raise ConfigError(
                f"unknown label {label!r}; labels of this run: {', '.join(self.labels) or 'none'}"
            )
        if not 0 <= dim < self.latent_dim:
            raise ConfigError(f"dim={dim} must be between 0 and {self.latent_dim - 1}")
        rows = self.scatter_rows
        y = self.label_values[label][rows]
        rows = rows[np.isfinite(y)]
        return {
            "label": label,
            "dim": dim,
            "ids": [self.ids[i] for i in rows],
            "x": [float(v) for v in self.mu[rows, dim]],
            "y": [float(v) for v in self.label_values[label][rows]],
        }
