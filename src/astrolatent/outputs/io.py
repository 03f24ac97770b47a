"""Writing outputs so that a killed process never leaves half a file: write to a temporary
name beside the target, then rename over it (atomic on one file system)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a hidden temporary path beside ``path``, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text))


def write_json_atomic(path: str | Path, payload: object) -> Path:
    """``payload`` as indented JSON (values JSON cannot hold are written with ``str``)."""
    return write_text_atomic(path, json.dumps(payload, indent=2, default=str))


def write_npz_atomic(path: str | Path, **arrays: np.ndarray) -> Path:
    """``arrays`` as an uncompressed ``.npz`` file at exactly ``path``."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return write_atomic(path, write)


def write_parquet_atomic(path: str | Path, frame: pd.DataFrame) -> Path:
    return write_atomic(path, lambda p: frame.to_parquet(p, index=False))
