"""Preprocessing: wavelength window and grid, resampling, masks, normalisation, rejection.

Every spectrum is put on one target grid so the store holds fixed-length rows:

1. content checks (finite, increasing wavelengths; some finite flux) — failures are file
   problems and go to quarantine;
2. resampling onto the grid (exact pixel copy when the input already lies on it, linear
   interpolation, or flux-conserving rebinning);
3. the validity mask: pixels outside the spectrum's coverage, non-finite flux, pixels the
   file flags, zero/invalid errors, configured wavelength ranges (e.g. the HARPS CCD gap),
   and the zero padding;
4. masked median normalisation (the median over VALID pixels only), and rejection of
   degenerate spectra (median <= threshold, non-positive mean, too few valid pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from astrolatent.config import Config
from astrolatent.data.spectrum import Spectrum
from astrolatent.errors import ConfigError, InputFileError

#: the most pixels a grid may have (HARPS: 312,501): more is a mistyped step, not a spectrum
MAX_GRID_PIXELS = 10_000_000


class GridConfig(Config):
    """A wavelength grid: ``start`` to ``stop`` inclusive in Angstrom.

    ``scale="linear"``: constant ``step`` in Angstrom; ``scale="log"``: constant ``step`` in
    log10(wavelength / Angstrom) (SDSS uses 1e-4).
    """

    start: float = Field(gt=0, allow_inf_nan=False)
    stop: float = Field(gt=0, allow_inf_nan=False)
    step: float = Field(gt=0, allow_inf_nan=False)
    scale: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _ordered(self) -> GridConfig:
        if self.stop <= self.start:
            raise ValueError(f"grid stop={self.stop} must be greater than start={self.start}")
        if self.size > MAX_GRID_PIXELS:  # checked before any array of that size exists
            raise ValueError(
                f"grid {self.start}-{self.stop} with step {self.step} has {self.size:,} pixels, "
                f"more than {MAX_GRID_PIXELS:,}; check the step (log scale: in dex)"
            )
        return self

    @property
    def size(self) -> int:
        lo, hi = (
            (np.log10(self.start), np.log10(self.stop))
            if self.scale == "log"
            else (self.start, self.stop)
        )
        return int(np.floor((hi - lo) / self.step + 1e-6)) + 1

    def wavelengths(self, pad_left: int = 0, pad_right: int = 0) -> np.ndarray:
        """Grid wavelengths in Angstrom, extended by ``pad_left``/``pad_right`` pixels."""
        k = np.arange(-pad_left, self.size + pad_right, dtype=np.float64)
        if self.scale == "log":
            return 10.0 ** (np.log10(self.start) + self.step * k)
        return self.start + self.step * k


class PreprocessConfig(Config):
    """How raw spectra become fixed-length, normalised, masked rows of the store."""

    grid: GridConfig | None = None
    resample: Literal["auto", "interp", "flux-conserving"] = "auto"
    pad_to: int | None = Field(default=None, gt=0, le=MAX_GRID_PIXELS)
    mask_ranges: list[tuple[float, float]] = Field(default_factory=list)
    mask_nonpositive_error: bool = True
    normalise: Literal["median", "none"] = "median"
    min_median: float = Field(default=0.0, allow_inf_nan=False)
    min_valid_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    dtype: Literal["float32", "float16"] = "float32"
    store_errors: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> PreprocessConfig:
        for lo, hi in self.mask_ranges:
            if hi < lo:
                raise ValueError(f"mask range ({lo}, {hi}) is reversed")
        if self.grid is not None and self.pad_to is not None and self.pad_to < self.grid.size:
            raise ValueError(f"pad_to={self.pad_to} is shorter than the grid ({self.grid.size} px)")
        return self

    @property
    def padding(self) -> tuple[int, int]:
        """Zero-padding (left, right) in pixels; the extra goes right when it is odd."""
        if self.grid is None or self.pad_to is None:
            return (0, 0)
        extra = self.pad_to - self.grid.size
        return (extra // 2, extra - extra // 2)

    @property
    def length(self) -> int:
        if self.grid is None:
            raise ConfigError("no wavelength grid configured")
        return self.pad_to or self.grid.size

    def wavelengths(self) -> np.ndarray:
        """Wavelength of every stored pixel (padding included), in Angstrom."""
        if self.grid is None:
            raise ConfigError("no wavelength grid configured")
        return self.grid.wavelengths(*self.padding)

    def static_mask(self) -> np.ndarray:
        """Pixels valid for every spectrum: False on the padding and the configured ranges."""
        wave = self.wavelengths()
        valid = np.ones(wave.size, dtype=bool)
        left, right = self.padding
        valid[:left] = False
        valid[wave.size - right :] = False
        tol = 1e-6 * (
            self.grid.step if self.grid.scale == "linear" else self.grid.start * self.grid.step
        )
        for lo, hi in self.mask_ranges:
            valid &= ~((wave >= lo - tol) & (wave <= hi + tol))
        return valid


@dataclass
class Processed:
    """A spectrum on the store's grid (all arrays have the store length)."""

    flux: np.ndarray
    valid: np.ndarray
    err: np.ndarray | None
    scale: float
    snr: float
    n_valid: int
    note: str = ""  #: why some pixels were masked beyond the usual reasons (or "")


@dataclass
class Rejected:
    """A readable spectrum that preprocessing rejects as degenerate."""

    reason: str


def check_content(spectrum: Spectrum) -> Spectrum:
    """Return the spectrum with increasing wavelengths, or raise :class:`InputFileError`."""
    src = spectrum.source
    wave, flux = np.asarray(spectrum.wave, np.float64), np.asarray(spectrum.flux, np.float64)
    if wave.ndim != 1 or flux.ndim != 1:
        raise InputFileError(
            src, f"wavelength and flux must be 1D, got shapes {wave.shape} and {flux.shape}"
        )
    if wave.size != flux.size:
        raise InputFileError(src, f"wavelength has {wave.size} values but flux has {flux.size}")
    if wave.size < 2:
        raise InputFileError(src, f"spectrum has {wave.size} pixel(s)")
    if spectrum.err is not None and np.shape(spectrum.err) != flux.shape:
        raise InputFileError(
            src, f"error array has shape {np.shape(spectrum.err)}, flux has {flux.shape}"
        )
    if not np.all(np.isfinite(wave)):
        raise InputFileError(src, "non-finite wavelengths")
    if not np.any(np.isfinite(flux)):
        raise InputFileError(src, "flux is entirely NaN/inf")
    diff = np.diff(wave)
    if np.all(diff < 0):
        order = slice(None, None, -1)
        spectrum.wave, spectrum.flux = wave[order], flux[order]
        if spectrum.err is not None:
            spectrum.err = np.asarray(spectrum.err)[order]
        if spectrum.bad is not None:
            spectrum.bad = np.asarray(spectrum.bad)[order]
    elif not np.all(diff > 0):
        raise InputFileError(src, "wavelengths are not strictly monotonic")
    return spectrum


def _on_grid(wave: np.ndarray, grid: GridConfig) -> int | None:
    """Offset of ``wave`` in the grid if it lies exactly on it, else None."""
    coord = np.log10(wave) if grid.scale == "log" else wave
    origin = np.log10(grid.start) if grid.scale == "log" else grid.start
    k = (coord - origin) / grid.step
    k0 = np.rint(k[0])
    expected = k0 + np.arange(wave.size)
    if np.max(np.abs(k - expected)) < 1e-3:
        return int(k0)
    return None


def _edges(centres: np.ndarray) -> np.ndarray:
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate(
        [[centres[0] - (mid[0] - centres[0])], mid, [centres[-1] + (centres[-1] - mid[-1])]]
    )


def _rebin(wave: np.ndarray, values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Flux-conserving rebinning: mean flux density over each target pixel's extent."""
    src_edges, dst_edges = _edges(wave), _edges(target)
    cum = np.concatenate([[0.0], np.cumsum(values * np.diff(src_edges))])
    at = np.interp(dst_edges, src_edges, cum)
    out = np.diff(at) / np.diff(dst_edges)
    covered = (dst_edges[:-1] >= src_edges[0]) & (dst_edges[1:] <= src_edges[-1])
    return np.where(covered, out, np.nan)


def resample(
    spectrum: Spectrum, config: PreprocessConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Flux, file-flagged-bad mask and error on the (unpadded) grid; NaN where not covered."""
    grid = config.grid
    target = grid.wavelengths()
    n = target.size
    flux = np.asarray(spectrum.flux, np.float64)
    err = None if spectrum.err is None else np.asarray(spectrum.err, np.float64)
    bad = np.zeros(flux.size, bool) if spectrum.bad is None else np.asarray(spectrum.bad, bool)
    offset = _on_grid(spectrum.wave, grid) if config.resample == "auto" else None
    if offset is not None:
        out_f, out_b = np.full(n, np.nan), np.ones(n, bool)
        out_e = None if err is None else np.full(n, np.nan)
        lo, hi = max(offset, 0), min(offset + flux.size, n)
        if hi > lo:
            src = slice(lo - offset, hi - offset)
            out_f[lo:hi], out_b[lo:hi] = flux[src], bad[src]
            if err is not None:
                out_e[lo:hi] = err[src]
        return out_f, out_b, out_e
    wave = spectrum.wave
    finite = np.isfinite(flux)
    # Non-finite pixels are flagged and bridged so they do not poison their neighbours.
    filled = np.where(finite, flux, np.interp(wave, wave[finite], flux[finite]))
    flag = (bad | ~finite).astype(np.float64)
    if config.resample == "flux-conserving":
        out_f = _rebin(wave, filled, target)
        out_b = _rebin(wave, flag, target) > 0
    else:
        out_f = np.interp(target, wave, filled, left=np.nan, right=np.nan)
        out_b = np.interp(target, wave, flag, left=1.0, right=1.0) > 0
    out_e = None
    if err is not None:
        e = np.where(np.isfinite(err), err, np.inf)
        out_e = np.interp(target, wave, e, left=np.nan, right=np.nan)
    return out_f, out_b, out_e


def der_snr(flux: np.ndarray) -> float:
    """DER_SNR signal-to-noise estimate (Stoehr et al. 2008) of a 1D flux array."""
    f = flux[np.isfinite(flux)]
    if f.size < 5:
        return float("nan")
    noise = 0.6052697 * np.median(np.abs(2.0 * f[2:-2] - f[:-4] - f[4:]))
    return float(np.median(f) / noise) if noise > 0 else float("inf")


def preprocess(
    spectrum: Spectrum, config: PreprocessConfig, static_mask: np.ndarray | None = None
) -> Processed | Rejected:
    """Put one spectrum on the store grid; raise :class:`InputFileError` for broken content."""
    if config.grid is None:
        raise ConfigError("preprocessing needs a wavelength grid (set grid or use a preset)")
    spectrum = check_content(spectrum)
    grid = config.grid
    flux, bad, err = resample(spectrum, config)
    covered = np.isfinite(flux)
    if not covered.any():
        lo, hi = spectrum.wave[0], spectrum.wave[-1]
        raise InputFileError(
            spectrum.source,
            f"wavelength coverage {lo:.6g}-{hi:.6g} A does not overlap the grid "
            f"{grid.start:.6g}-{grid.stop:.6g} A (wrong units or wrong window?)",
        )
    left = config.padding[0]
    if static_mask is None:
        static_mask = config.static_mask()
    valid = covered & ~bad & static_mask[left : left + grid.size]
    if err is not None and config.mask_nonpositive_error:
        valid &= np.isfinite(err) & (err > 0)
    n_valid = int(valid.sum())
    if n_valid < config.min_valid_fraction * grid.size or n_valid == 0:
        return Rejected(
            f"only {n_valid} of {grid.size} pixels valid (minimum fraction {config.min_valid_fraction})"
        )
    good = flux[valid]
    median = float(np.median(good))
    mean = float(np.mean(good))
    if config.normalise == "median":
        if median <= config.min_median:
            return Rejected(f"median flux {median:.4g} <= threshold {config.min_median:.4g}")
        if mean <= 0:
            return Rejected(f"non-positive mean flux {mean:.4g}")
        scale = median
    else:
        scale = 1.0
    if err is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = float(np.median(good / err[valid]))
    else:
        snr = der_snr(good)
    flux, err = flux / scale, None if err is None else err / scale
    out_of_range = _beyond_dtype(flux, err if config.store_errors else None, config.dtype) & valid
    note = ""
    if out_of_range.any():
        valid &= ~out_of_range
        n_valid = int(valid.sum())
        note = (
            f"{int(out_of_range.sum())} pixels masked: normalised flux or error beyond the "
            f"{config.dtype} range (|value| > {float(np.finfo(config.dtype).max):.6g})"
        )
        if n_valid < config.min_valid_fraction * grid.size or n_valid == 0:
            return Rejected(f"only {n_valid} of {grid.size} pixels valid; {note}")
    out_f = np.zeros(config.length, np.float32)
    out_v = np.zeros(config.length, bool)
    out_f[left : left + grid.size] = np.where(valid, flux, 0.0)
    out_v[left : left + grid.size] = valid
    out_e = None
    if err is not None and config.store_errors:
        out_e = np.zeros(config.length, np.float32)
        out_e[left : left + grid.size] = np.where(valid, err, 0.0)
    return Processed(
        flux=out_f, valid=out_v, err=out_e, scale=scale, snr=snr, n_valid=n_valid, note=note
    )


def _beyond_dtype(flux: np.ndarray, err: np.ndarray | None, dtype: str) -> np.ndarray:
    """Pixels whose flux or error would not be finite once stored as ``dtype``."""
    limit = float(np.finfo(dtype).max)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(flux) <= limit)
        if err is not None:
            bad |= ~(np.abs(err) <= limit)
    return bad
