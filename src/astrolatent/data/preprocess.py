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
    #: Reject spectra whose normalised flux exceeds this in any valid pixel (None: no limit).
    max_flux: float | None = Field(default=None, gt=0)
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


def _check_wave(spectrum: Spectrum) -> Spectrum:
    """Return the spectrum with increasing wavelengths, or raise :class:`InputFileError`."""
    src = spectrum.source
    wave = spectrum.wave
    if not np.all(np.isfinite(wave)):
        raise InputFileError(src, "non-finite wavelengths")
    diff = np.diff(wave)
    if np.all(diff < 0):
        order = slice(None, None, -1)
        spectrum.wave, spectrum.flux = wave[order], spectrum.flux[order]
        if spectrum.err is not None:
            spectrum.err = spectrum.err[order]
        if spectrum.bad is not None:
            spectrum.bad = spectrum.bad[order]
    elif not np.all(diff > 0):
        raise InputFileError(src, "wavelengths are not strictly monotonic")
    return spectrum


def _check_arrays(spectrum: Spectrum) -> Spectrum:
    """Return the spectrum with array fields (float wave and flux), or raise
    :class:`InputFileError` for shapes that do not fit together."""
    src = spectrum.source
    wave, flux = np.asarray(spectrum.wave), _float_array(spectrum.flux)
    if wave.dtype.kind != "f" or wave.dtype.itemsize != 8:  # float64 in either byte order stays
        wave = wave.astype(np.float64)
    if wave.ndim != 1 or flux.ndim != 1:
        raise InputFileError(
            src, f"wavelength and flux must be 1D, got shapes {wave.shape} and {flux.shape}"
        )
    if wave.size != flux.size:
        raise InputFileError(src, f"wavelength has {wave.size} values but flux has {flux.size}")
    if wave.size < 2:
        raise InputFileError(src, f"spectrum has {wave.size} pixel(s)")
    err = (
        None if spectrum.err is None else _float_array(spectrum.err).astype(flux.dtype, copy=False)
    )
    if err is not None and err.shape != flux.shape:
        raise InputFileError(src, f"error array has shape {err.shape}, flux has {flux.shape}")
    bad = None if spectrum.bad is None else np.asarray(spectrum.bad, bool)
    spectrum.wave, spectrum.flux, spectrum.err, spectrum.bad = wave, flux, err, bad
    return spectrum


def _float_array(values: object) -> np.ndarray:
    """``values`` as a float32 or float64 array in native byte order (no copy when it is one)."""
    values = np.asarray(values)
    single_or_double = values.dtype.kind == "f" and values.dtype.itemsize in (4, 8)
    dtype = values.dtype if single_or_double else np.dtype(np.float64)
    return values.astype(dtype.newbyteorder("="), copy=False)


def _check_some_flux(spectrum: Spectrum) -> None:
    if not np.any(np.isfinite(spectrum.flux)):
        raise InputFileError(spectrum.source, "flux is entirely NaN/inf")


def check_content(spectrum: Spectrum) -> Spectrum:
    """Return the spectrum with increasing wavelengths, or raise :class:`InputFileError`.

    Flux and errors keep their precision (float32 files stay float32); wavelengths are float64.
    """
    spectrum = _check_wave(_check_arrays(spectrum))
    _check_some_flux(spectrum)
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
    spectrum: Spectrum, config: PreprocessConfig, target: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Flux, file-flagged-bad mask and error interpolated or rebinned onto the (unpadded)
    grid ``target`` (Angstrom; the config's grid by default), float64; NaN where not covered."""
    target = config.grid.wavelengths() if target is None else target
    wave = spectrum.wave
    flux = np.asarray(spectrum.flux, np.float64)
    bad = np.zeros(flux.size, bool) if spectrum.bad is None else spectrum.bad
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
    if spectrum.err is not None:
        e = np.where(np.isfinite(spectrum.err), spectrum.err, np.inf)
        out_e = np.interp(target, wave, e, left=np.nan, right=np.nan)
    return out_f, out_b, out_e


def der_snr(flux: np.ndarray) -> float:
    """DER_SNR signal-to-noise estimate (Stoehr et al. 2008) of a 1D flux array."""
    f = flux[np.isfinite(flux)]
    if f.size < 5:
        return float("nan")
    noise = 0.6052697 * np.median(np.abs(2.0 * f[2:-2] - f[:-4] - f[4:]))
    return float(np.median(f) / noise) if noise > 0 else float("inf")


#: the integer type of each float width, for selecting floats by their bits
_INTS = {2: np.int16, 4: np.int32, 8: np.int64}


def masked_median(
    values: np.ndarray, valid: np.ndarray, n_valid: int, work: np.ndarray, flags: np.ndarray
) -> float:
    """The median of ``values[valid]`` (``n_valid >= 1`` of them), the same number as
    :func:`numpy.median` of them; NaN when one of them is NaN. ``values`` is left as it is.

    The floats are selected as integers, without gathering the valid ones: their bits are
    mapped so that integer order is float order (a negative float's magnitude bits
    flipped), the invalid pixels set above every number, and one integer partition taken
    (NumPy's integer selection is ~3x faster than its float one at 312,501 values;
    docs/benchmarks.md, "Third round"). An even count gives the mean of the two middle
    values, in float64 like :func:`numpy.median`. ``work``: an integer array of
    ``values``' size and itemsize; ``flags``: a bool array of its size (both overwritten).
    """
    if np.logical_and(np.isnan(values, out=flags), valid, out=flags).any():
        return float("nan")
    itype = _INTS[values.dtype.itemsize]
    top = np.iinfo(itype).max
    bits = values.view(itype)
    np.right_shift(bits, 8 * values.dtype.itemsize - 1, out=work)  # 0, or -1 where negative
    np.bitwise_and(work, top, out=work)
    np.bitwise_xor(work, bits, out=work)
    np.copyto(work, top, where=np.logical_not(valid, out=flags))
    half = n_valid // 2
    work.partition(half)

    def value(key: int) -> float:
        return float(np.array(key ^ top if key < 0 else key, itype).view(values.dtype))

    upper = value(int(work[half]))
    return upper if n_valid % 2 else 0.5 * (value(int(work[:half].max())) + upper)


@dataclass
class _OnGrid:
    """A spectrum's arrays over the grid pixels ``lo:hi`` (views when copied exactly)."""

    flux: np.ndarray
    bad: np.ndarray | None
    err: np.ndarray | None
    lo: int
    hi: int


class Preprocessor:
    """Preprocessing of many spectra with one configuration.

    What all spectra share is computed once: the grid, the static mask, and the wavelengths
    of the last spectrum found exactly on the grid (a file with the very same wavelength
    array, such as every HARPS product, skips the wavelength checks). A spectrum on the grid
    is copied in its file's precision (float32 stays float32); one that is resampled is
    interpolated in float64. Results go straight into caller-given rows of the store block.
    """

    def __init__(self, config: PreprocessConfig) -> None:
        if config.grid is None:
            raise ConfigError("preprocessing needs a wavelength grid (set grid or use a preset)")
        self.config = config
        self.static = config.static_mask()
        self._target: np.ndarray | None = None
        self._known_wave: np.ndarray | None = None
        self._known_offset = 0
        self._buffers: dict[str, np.ndarray] = {}

    def __call__(
        self,
        spectrum: Spectrum,
        out: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    ) -> Processed | Rejected:
        """Put one spectrum on the store grid; raise :class:`InputFileError` for broken content.

        ``out``: (flux, valid, err) rows of the store length to write into, whatever they
        hold (err None: not stored); new rows by default. Every pixel of the rows is written:
        the spectrum, or zeros where it is invalid, and zeros everywhere when it is rejected
        or raises.
        """
        rows = out or self._new_rows(spectrum.err is not None and self.config.store_errors)
        try:
            result = self._process(spectrum, rows)
        except Exception:
            _clear(rows)
            raise
        if isinstance(result, Rejected):
            _clear(rows)
        return result

    def _process(
        self, spectrum: Spectrum, rows: tuple[np.ndarray, np.ndarray, np.ndarray | None]
    ) -> Processed | Rejected:
        cfg, grid = self.config, self.config.grid
        spectrum.flux = self._native("flux", spectrum.flux)
        spectrum.err = self._native("err", spectrum.err)
        seg = self._on_grid(_check_arrays(spectrum))
        valid = self._valid(seg, spectrum)
        n_valid = int(np.count_nonzero(valid))
        if n_valid < cfg.min_valid_fraction * grid.size or n_valid == 0:
            return Rejected(
                f"only {n_valid} of {grid.size} pixels valid (minimum fraction {cfg.min_valid_fraction})"
            )
        snr, median = self._medians(seg, valid, n_valid)
        scale = 1.0
        if cfg.normalise == "median":
            if median <= cfg.min_median:
                return Rejected(f"median flux {median:.4g} <= threshold {cfg.min_median:.4g}")
            scale = median
        out_f, out_v, out_e = rows
        if out_e is not None and seg.err is None:  # a store with errors, a file without
            out_e.fill(0)
            out_e = None
        span = self._write(seg, valid, scale, (out_f, out_v, out_e))
        flux = out_f[span]
        if cfg.normalise == "median":
            total = float(np.add.reduce(flux, dtype=np.float64))  # sum over valid / scale
            if not total > 0:
                return Rejected(f"non-positive mean flux {total * scale / n_valid:.4g}")
        peak = max(float(flux.max()), -float(flux.min()))
        if cfg.max_flux is not None and peak > cfg.max_flux:
            return Rejected(f"normalised flux reaches {peak:.4g} > max_flux {cfg.max_flux:.4g}")
        note = ""
        err = None if out_e is None else out_e[span]
        beyond = self._beyond(flux, err, peak)
        if beyond is not None:
            n_beyond = int(np.count_nonzero(beyond))
            out_v[span] &= ~beyond
            flux[beyond] = 0
            if err is not None:
                err[beyond] = 0
            n_valid -= n_beyond
            note = (
                f"{n_beyond} pixels masked: normalised flux or error beyond the "
                f"{cfg.dtype} range (|value| > {float(np.finfo(cfg.dtype).max):.6g})"
            )
            if n_valid < cfg.min_valid_fraction * grid.size or n_valid == 0:
                return Rejected(f"only {n_valid} of {grid.size} pixels valid; {note}")
        return Processed(
            flux=out_f, valid=out_v, err=out_e, scale=scale, snr=snr, n_valid=n_valid, note=note
        )

    def _medians(self, seg: _OnGrid, valid: np.ndarray, n_valid: int) -> tuple[float, float]:
        """The S/N (median flux/err over the valid pixels, or DER_SNR without errors) and
        the median flux of the valid pixels."""
        n = seg.hi - seg.lo
        flags = self._scratch("flags", n, bool)

        def median(values: np.ndarray) -> float:
            itype = np.dtype(_INTS[values.dtype.itemsize])
            work = self._scratch(f"select{itype.itemsize}", n, itype)
            return masked_median(values, valid, n_valid, work, flags)

        if seg.err is None:
            snr = der_snr(seg.flux[valid])
        else:
            ratio = self._scratch("ratio", n, np.result_type(seg.flux, seg.err))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                snr = median(np.divide(seg.flux, seg.err, out=ratio))
        return snr, median(seg.flux)

    def _write(
        self,
        seg: _OnGrid,
        valid: np.ndarray,
        scale: float,
        rows: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    ) -> slice:
        """Write the normalised spectrum into ``rows`` (zeros where invalid and outside its
        stretch of the grid); return that stretch's slice of the rows."""
        left = self.config.padding[0]
        span = slice(left + seg.lo, left + seg.hi)
        invalid = np.logical_not(valid, out=self._scratch("invalid", valid.size, bool))
        out_f, out_v, out_e = rows
        for row, values in ((out_f, seg.flux), (out_e, seg.err)):
            if row is None:
                continue
            row[: span.start] = 0
            row[span.stop :] = 0
            with np.errstate(over="ignore", invalid="ignore"):
                np.divide(values, scale, out=row[span], casting="same_kind")
            np.copyto(row[span], 0, where=invalid)
        out_v[: span.start] = False
        out_v[span.stop :] = False
        out_v[span] = valid
        return span

    def _beyond(self, flux: np.ndarray, err: np.ndarray | None, peak: float) -> np.ndarray | None:
        """The pixels whose stored flux or error overflowed to infinity (beyond the store
        dtype's range once normalised), or None when there are none."""
        overflow = bool(np.isinf(peak))
        if err is not None:
            overflow |= bool(np.isinf(max(float(err.max()), -float(err.min()))))
        if not overflow:
            return None
        beyond = np.isinf(flux)
        if err is not None:
            beyond |= np.isinf(err)
        return beyond

    def _valid(self, seg: _OnGrid, spectrum: Spectrum) -> np.ndarray:
        """Validity of the pixels ``seg.lo:seg.hi``; raise when none is covered."""
        cfg, n = self.config, seg.hi - seg.lo
        valid = np.isfinite(seg.flux, out=self._scratch("valid", n, bool))
        if not valid.any():
            _check_some_flux(spectrum)
            lo, hi, grid = spectrum.wave[0], spectrum.wave[-1], cfg.grid
            raise InputFileError(
                spectrum.source,
                f"wavelength coverage {lo:.6g}-{hi:.6g} A does not overlap the grid "
                f"{grid.start:.6g}-{grid.stop:.6g} A (wrong units or wrong window?)",
            )
        left = cfg.padding[0]
        valid &= self.static[left + seg.lo : left + seg.hi]
        if seg.bad is not None:
            valid &= ~seg.bad
        if seg.err is not None and cfg.mask_nonpositive_error:
            check = self._scratch("check", n, bool)
            valid &= np.isfinite(seg.err, out=check)
            valid &= np.greater(seg.err, 0, out=check)
        return valid

    def _scratch(self, name: str, size: int, dtype: np.dtype) -> np.ndarray:
        """A work array kept between spectra: fresh pages of memory for every temporary cost
        about as much as the arithmetic on them (docs/benchmarks.md, "Ingestion speed")."""
        buf = self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(max(size, self.config.grid.size), dtype)
        return buf[:size]

    def _native(self, name: str, values: np.ndarray | None) -> np.ndarray | None:
        """A float array of the other byte order (a view of a file's bytes) copied into a
        kept work array, valid until the next spectrum; anything else as it is."""
        if not (
            isinstance(values, np.ndarray)
            and values.dtype.kind == "f"
            and values.dtype.itemsize in (4, 8)
            and not values.dtype.isnative
            and values.ndim == 1
        ):
            return values
        out = self._scratch(name, values.size, values.dtype.newbyteorder("="))
        np.copyto(out, values)
        return out

    def _new_rows(self, with_err: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        n, dtype = self.config.length, self.config.dtype
        err = np.zeros(n, dtype) if with_err else None
        return np.zeros(n, dtype), np.zeros(n, bool), err

    def _is_known(self, wave: np.ndarray) -> bool:
        """Whether ``wave`` holds the same values as the last wavelengths found on the grid.

        Compared as raw 64-bit words when both have one byte order (a file's big-endian
        bytes need no conversion): equal words are equal finite numbers, since the known
        wavelengths passed the checks.
        """
        known = self._known_wave
        if known is None or known.shape != wave.shape:
            return False
        same = self._scratch("same", wave.size, bool)
        if known.dtype == wave.dtype and wave.flags.c_contiguous:
            return bool(np.equal(known.view(np.uint64), wave.view(np.uint64), out=same).all())
        return bool(np.equal(known, wave, out=same).all())

    def _on_grid(self, spectrum: Spectrum) -> _OnGrid:
        """The spectrum over the grid: an exact copy when it lies on it, else resampled."""
        cfg, wave = self.config, spectrum.wave
        if self._is_known(wave):
            offset = self._known_offset
        else:
            spectrum = _check_wave(spectrum)
            wave = spectrum.wave
            offset = _on_grid(wave, cfg.grid) if cfg.resample == "auto" else None
            if offset is None:
                _check_some_flux(spectrum)
                if self._target is None:
                    self._target = cfg.grid.wavelengths()
                flux, bad, err = resample(spectrum, cfg, self._target)
                return _OnGrid(flux, bad, err, 0, flux.size)
            self._known_wave, self._known_offset = wave.copy(), offset
        lo, hi = max(offset, 0), min(offset + wave.size, cfg.grid.size)
        src = slice(lo - offset, max(hi, lo) - offset)
        bad = None if spectrum.bad is None else spectrum.bad[src]
        err = None if spectrum.err is None else spectrum.err[src]
        return _OnGrid(spectrum.flux[src], bad, err, lo, hi)


def preprocess(spectrum: Spectrum, config: PreprocessConfig) -> Processed | Rejected:
    """Put one spectrum on the store grid; raise :class:`InputFileError` for broken content.

    For many spectra with one configuration use :class:`Preprocessor`, which keeps what they
    share.
    """
    return Preprocessor(config)(spectrum)


def _clear(rows: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> None:
    """Zero a spectrum's rows (rejected, or its content broken)."""
    for row in rows:
        if row is not None:
            row.fill(0)
