"""Compare the numbers of two reference-output folders (scripts/reference_outputs.sh).

Usage: python scripts/compare_reference.py REFERENCE NEW [--tol 1e-9]

Every numeric value in the JSON, CSV and Parquet files of REFERENCE is compared with the same
value in NEW; keys that hold paths, timings or versions are skipped. Prints each difference
and exits 1 when any value differs by more than the tolerance (absolute or relative).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

SKIP = ("time", "second", "minute", "path", "dir", "table", "version", "command", "created",
        "elapsed", "duration", "host", "file", "store", "run", "out", "images", "source")


def _skipped(key: str) -> bool:
    return any(word in key.lower() for word in SKIP)


def _walk(a, b, where: str, tol: float, out: list[str]) -> None:
    if isinstance(a, dict):
        if not isinstance(b, dict):
            out.append(f"{where}: not a mapping in NEW")
            return
        for key, value in a.items():
            if _skipped(str(key)):
                continue
            if key not in b:
                out.append(f"{where}.{key}: missing in NEW")
                continue
            _walk(value, b[key], f"{where}.{key}", tol, out)
    elif isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            out.append(f"{where}: list of {len(a)} vs {len(b) if isinstance(b, list) else type(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{where}[{i}]", tol, out)
    elif isinstance(a, bool) or a is None or isinstance(a, str):
        if a != b:
            out.append(f"{where}: {a!r} vs {b!r}")
    elif isinstance(a, int | float):
        if not isinstance(b, int | float):
            out.append(f"{where}: {a!r} vs {b!r}")
        elif not (math.isnan(a) and math.isnan(b)) and abs(a - b) > tol * max(1.0, abs(a)):
            out.append(f"{where}: {a!r} vs {b!r} (diff {abs(a - b):.3g})")


def _load(path: Path):
    if path.suffix == ".json":
        return json.loads(path.read_text())
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    frame = frame[[c for c in frame.columns if not _skipped(str(c))]]
    return json.loads(frame.to_json(orient="split", double_precision=15))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--tol", type=float, default=1e-9)
    args = parser.parse_args()
    diffs: list[str] = []
    files = sorted(p for p in args.reference.rglob("*") if p.suffix in {".json", ".csv", ".parquet"})
    for path in files:
        rel = path.relative_to(args.reference)
        other = args.new / rel
        if not other.exists():
            diffs.append(f"{rel}: missing in NEW")
            continue
        found: list[str] = []
        _walk(_load(path), _load(other), str(rel), args.tol, found)
        diffs += found
        print(f"{'same' if not found else 'DIFFERENT':9} {rel}")
    for line in diffs:
        print(line)
    print(f"{len(files)} files, {len(diffs)} differences (tolerance {args.tol:g})")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
